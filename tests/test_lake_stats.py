"""Parts committed by the jobs carry Delta statistics that readers can prune on, correctly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from jobs.lake.parts import commit_parts, write_part

TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [("content_id", pa.string()), ("at", TS), ("flag", pa.bool_()), ("score", pa.float32()),
     ("vector", pa.list_(pa.float32()))]
)  # fmt: skip
NOW = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def table(tmp_path: Path) -> DeltaTable:
    """Four one-row parts, 1.234567 s apart: bounds at millisecond precision must still hold."""
    uri = str(tmp_path / "t")
    parts = [
        write_part(
            uri,
            pa.table(
                {"content_id": [f"item-{i}"], "at": [NOW + timedelta(microseconds=i * 1_234_567)],
                 "flag": [i % 2 == 0], "score": [0.5 * i], "vector": [[1.0, 0.0]]},
                schema=SCHEMA,
            ),
            "run-1",
        )
        for i in range(4)
    ]  # fmt: skip
    commit_parts(uri, SCHEMA, parts, "run-1")
    return DeltaTable(uri)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([("at", ">", NOW)], 3),
        ([("at", ">=", NOW)], 4),
        ([("at", "<=", NOW + timedelta(microseconds=1_234_567))], 2),
        ([("at", "<", NOW + timedelta(microseconds=1_234_567))], 1),
        ([("flag", "=", True)], 2),
        ([("score", ">", 0.7)], 2),
    ],
)
def test_filters_on_timestamps_booleans_and_floats_see_every_matching_row(
    table: DeltaTable, filters: list[tuple], expected: int
) -> None:
    # Without min/max for a column delta-rs reads the bounds as null and prunes every file.
    assert table.to_pyarrow_table(filters=filters).num_rows == expected
