"""Catalog snapshots as the jobs see them before reading a row: schema, version and size."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from jobs.lake.errors import SnapshotNotFoundError
from jobs.lake.tables import open_table


def _at_version(
    uri: str, version: int | None, storage_options: dict[str, str] | None
) -> DeltaTable | None:
    table = open_table(uri, storage_options)
    if table is not None and version is not None:
        table.load_as_version(version)
    return table


def snapshot_schema(
    uri: str, version: int | None, storage_options: dict[str, str] | None = None
) -> tuple[pa.Schema, int]:
    """The snapshot's Arrow schema and the Delta version a job will read (the latest unless
    `version` is given): checked against the catalog contract before any work starts."""
    table = _at_version(uri, version, storage_options)
    if table is None:
        raise SnapshotNotFoundError(f"no catalog snapshot at {uri}")
    return pa.schema(table.schema().to_arrow()), table.version()


def snapshot_rows(
    uri: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> int:
    """Rows in a snapshot, from the Delta log alone (no data read): a progress bar's total."""
    table = _at_version(uri, version, storage_options)
    if table is None:
        return 0
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)
