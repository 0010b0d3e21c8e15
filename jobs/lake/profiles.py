"""The profiles table (`lake/_profiles`): what each run committed, summarised, for drift checks.

Each run that commits values profiles exactly the parts it committed (`profile_parts`, which the
pipeline runs in a Ray task beside the data, so the driver only receives the small profile), and
appends one row here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from features.profile import embedding_norms, profile_table
from features.signal import Signal
from features.standard import REMOVED_HASH, TIMESTAMP
from jobs.lake.tables import iter_part_files, read_table, write_table
from jobs.settings import Settings

PROFILES_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("signal", pa.string(), nullable=False),
        pa.field("signal_table_version", pa.int64(), nullable=True),
        pa.field("created_at", TIMESTAMP, nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("profile", pa.string(), nullable=False),  # JSON, `features.profile`
    ]
)


def profile_parts(
    table_uri: str,
    paths: list[str],
    kinds: dict[str, str],
    storage_options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Profile the value rows of some part files of a table, one file at a time: an embedding is
    reduced to its norms as each file is read, so a run's vectors are never all in memory."""
    pieces = []
    for part in iter_part_files(table_uri, paths, ["input_hash", *kinds], storage_options):
        part = part.filter(pc.not_equal(part.column("input_hash"), REMOVED_HASH))
        columns = {
            name: embedding_norms(part.column(name)) if kind == "embedding" else part.column(name)
            for name, kind in kinds.items()
        }
        pieces.append(pa.table(columns))
    values = pa.concat_tables(pieces) if pieces else pa.table({n: pa.array([]) for n in kinds})
    return profile_table(values, kinds)


def append_profile(
    settings: Settings,
    signal: Signal,
    run_id: str,
    table_version: int | None,
    profile: dict[str, Any],
) -> None:
    """Append one run's profile of what it committed (`table_version` of the signal table)."""
    row = {
        "run_id": run_id,
        "signal": signal.ref,
        "signal_table_version": table_version,
        "created_at": datetime.now(UTC),
        "rows": profile["rows"],
        "profile": json.dumps(profile),
    }
    write_table(
        settings.profiles_uri,
        pa.Table.from_pylist([row], schema=PROFILES_SCHEMA),
        storage_options=settings.storage_options,
    )


@dataclass(frozen=True)
class StoredProfile:
    """One run's profile of a signal, as stored."""

    run_id: str
    signal: str
    signal_table_version: int | None
    created_at: datetime
    profile: dict[str, Any]


def profiles_of(settings: Settings, signal_ref: str) -> list[StoredProfile]:
    """The signal's stored profiles, newest first."""
    rows = read_table(
        settings.profiles_uri,
        filters=[("signal", "=", signal_ref)],
        storage_options=settings.storage_options,
        if_missing=PROFILES_SCHEMA,
    )
    rows = rows.sort_by([("created_at", "descending")])
    return [
        StoredProfile(
            r["run_id"],
            r["signal"],
            r["signal_table_version"],
            r["created_at"],
            json.loads(r["profile"]),
        )
        for r in rows.to_pylist()
    ]
