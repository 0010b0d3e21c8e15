"""The catalog-snapshot contract: what a job may read, checked before any work starts."""

from __future__ import annotations

import pandera.pandas as pa_schema
import pyarrow as pa

from features.errors import SchemaMismatchError
from features.standard import TIMESTAMP

CONTENT_TYPES: tuple[str, ...] = ("track", "episode", "audiobook", "chapter", "video")

CATALOG_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string(), nullable=False),
        pa.field("content_type", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=True),
        pa.field("description", pa.string(), nullable=True),
        pa.field("language", pa.string(), nullable=True),
        pa.field("duration_ms", pa.int64(), nullable=True),
        pa.field("audio_uri", pa.string(), nullable=True),
        pa.field("artwork_uri", pa.string(), nullable=True),
        pa.field("video_uri", pa.string(), nullable=True),
        pa.field("updated_at", TIMESTAMP, nullable=False),
    ]
)
CATALOG_COLUMNS: tuple[str, ...] = tuple(CATALOG_SCHEMA.names)

# Row-level rules; a row that breaks one is quarantined, the rest of the snapshot goes on.
CATALOG_CONTRACT = pa_schema.DataFrameSchema(
    {
        "content_id": pa_schema.Column(str, pa_schema.Check.str_length(min_value=1)),
        "content_type": pa_schema.Column(str, pa_schema.Check.isin(list(CONTENT_TYPES))),
        "duration_ms": pa_schema.Column(None, pa_schema.Check.ge(0), nullable=True),
        "updated_at": pa_schema.Column(nullable=False),
    },
    name="catalog_snapshot",
    strict=False,
    coerce=False,
)


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    if found == expected:
        return True
    # Readers hand out string_view / large_string for strings; they hold the same values.
    stringish = (pa.string(), pa.large_string(), pa.string_view())
    if expected == pa.string() and found in stringish:
        return True
    if pa.types.is_timestamp(expected) and pa.types.is_timestamp(found):
        return found.tz is not None and found.tz.upper() in ("UTC", "+00:00", "ETC/UTC")
    return expected == pa.int64() and pa.types.is_integer(found)


def schema_problems(schema: pa.Schema, columns: tuple[str, ...] | None = None) -> list[str]:
    """Every column of the catalog contract that is missing or has the wrong type.

    `columns` narrows the check to what a job actually reads (plus the key and `updated_at`).
    """
    wanted = set(columns or CATALOG_COLUMNS) | {"content_id", "content_type", "updated_at"}
    problems = []
    for field in CATALOG_SCHEMA:
        if field.name not in wanted:
            continue
        if field.name not in schema.names:
            problems.append(f"column '{field.name}': missing (expected {field.type})")
            continue
        found = schema.field(field.name).type
        if not _compatible(found, field.type):
            problems.append(f"column '{field.name}': expected {field.type}, found {found}")
    return problems


def check_snapshot_schema(schema: pa.Schema, columns: tuple[str, ...] | None = None) -> None:
    """Raise before any work when the snapshot cannot be read as a catalog snapshot."""
    problems = schema_problems(schema, columns)
    if problems:
        raise SchemaMismatchError(
            "the snapshot does not match the catalog contract",
            details=problems,
            hint="fix the producer, or cast it: the job has not started, nothing was written",
        )
