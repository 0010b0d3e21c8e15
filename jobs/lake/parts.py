"""Parts and commits: workers write Parquet parts, the driver commits them once, atomically.

Why not `Dataset.write_delta`: one pass of the pipeline feeds two tables (signal rows and quarantine
rows), and every commit must carry the run id as a Delta application transaction so that a retried
run never lands twice. Workers write part files into the table folder; a file that no commit names
is invisible to every reader and is removed by a full `vacuum` (`signals vacuum`), so a crash before
the commit leaves the table at its previous version.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, CommitProperties, Transaction

from jobs.lake.errors import CommitConflictError
from jobs.lake.tables import open_table, split_uri

APP_ID_PREFIX = "content-signals"
COMMIT_RETRIES = 10


@dataclass(frozen=True)
class Part:
    """One Parquet file written by a worker, waiting for the driver's commit."""

    path: str  # relative to the table root
    size: int
    rows: int
    stats: str

    def add_action(self) -> AddAction:
        return AddAction(self.path, self.size, {}, int(time.time() * 1000), True, self.stats)


def app_id(run_id: str) -> str:
    """The Delta application id that marks a run's commit in a table's log."""
    return f"{APP_ID_PREFIX}:{run_id}"


def _stat_bounds(column: pa.ChunkedArray | pa.Array) -> tuple[object, object] | None:
    """(min, max) of a column as Delta stats JSON writes them, or None when it has none.

    Timestamps are ISO-8601 at millisecond precision (Delta's), the minimum rounded down and the
    maximum up so that the bounds still contain every value.
    """
    kind = column.type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_timestamp(kind)
    ):
        return None
    bounds = pc.min_max(column)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is None or hi is None:
        return None
    if pa.types.is_floating(kind) and not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    if pa.types.is_timestamp(kind):
        lo = lo.replace(microsecond=lo.microsecond // 1000 * 1000)
        if hi.microsecond % 1000:
            hi = hi.replace(microsecond=hi.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
        return (_iso_ms(lo), _iso_ms(hi))
    return lo, hi


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def file_stats(table: pa.Table) -> str:
    """Delta `add.stats`: row count, nulls, and min/max of every column that can have them.

    Min/max on `content_id` lets readers skip files when they look up a few items. A column
    without bounds is worse than unknown to delta-rs: it reads the missing bound as null and
    prunes every file on a filter over that column, so each primitive column gets its bounds.
    """
    mins: dict[str, object] = {}
    maxs: dict[str, object] = {}
    nulls: dict[str, int] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        nulls[name] = column.null_count
        bounds = _stat_bounds(column)
        if bounds is not None:
            mins[name], maxs[name] = bounds
    return json.dumps(
        {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    )


def write_part(
    table_uri: str,
    table: pa.Table,
    run_id: str,
    storage_options: dict[str, str] | None = None,
) -> Part:
    """Write one Parquet file into the table folder without committing it (worker side)."""
    fs, root = split_uri(table_uri, storage_options)
    name = f"part-{run_id}-{uuid.uuid4().hex}.parquet"
    fs.create_dir(root, recursive=True)
    path = f"{root.rstrip('/')}/{name}"
    pq.write_table(table, path, filesystem=fs, compression="zstd")
    size = fs.get_file_info(path).size
    return Part(path=name, size=size, rows=table.num_rows, stats=file_stats(table))


def committed_runs(
    uri: str, run_ids: Iterable[str], storage_options: dict[str, str] | None = None
) -> list[str]:
    """Those of `run_ids` whose commit is in the table's log (one read of the log for all)."""
    table = open_table(uri, storage_options)
    if table is None:
        return []
    return [r for r in run_ids if table.transaction_version(app_id(r)) is not None]


def has_committed(uri: str, run_id: str, storage_options: dict[str, str] | None = None) -> bool:
    """Whether `run_id` has already committed to the table (the retry check)."""
    return bool(committed_runs(uri, [run_id], storage_options))


def _created(uri: str, schema: pa.Schema, storage_options: dict[str, str] | None) -> DeltaTable:
    """The table at `uri`, created empty when there is none yet.

    An empty CREATE, never one carrying a run's files: two writers that both find no table may
    both create it (delta-rs lands the second CREATE as the next version), which is harmless for
    an empty one; the run's files then land through an append that its app transaction guards.
    """
    table = open_table(uri, storage_options)
    if table is not None:
        return table
    try:
        return DeltaTable.create(
            uri, Schema.from_arrow(schema), mode="ignore", storage_options=storage_options
        )
    except DeltaError:
        return DeltaTable(uri, storage_options=storage_options)


def _version_of(table: DeltaTable, run_id: str) -> int:
    """The version holding `run_id`'s commit: the first whose snapshot knows its app transaction.

    Not `table.version()`, which may already include a concurrent writer's later commit, nor
    `history()`, which numbers commits from the newest version in storage and so shifts when
    another writer commits while it reads.
    """
    version = table.version()
    while version > 0:
        table.load_as_version(version - 1)
        if table.transaction_version(app_id(run_id)) is None:
            break
        version -= 1
    return version


def commit_parts(
    table_uri: str,
    schema: pa.Schema,
    parts: Iterable[Part],
    run_id: str,
    *,
    operation: dict[str, object] | None = None,
    storage_options: dict[str, str] | None = None,
    mode: str = "append",
) -> int | None:
    """Commit every part of a run in ONE Delta transaction tagged with the run id (`mode`
    "overwrite" replaces every file the table had: a rebuilt state table).

    Returns the version of that commit, or None when the run had already committed (a retry, or
    another process with the same run id that won the race). Concurrent writers of different runs
    are handled by Delta's optimistic concurrency: blind appends retry. A writer that keeps
    losing gets `CommitConflictError`, and the table is left valid.
    """
    parts = list(parts)
    counts = {"rows": sum(p.rows for p in parts), "files": len(parts)}
    props = CommitProperties(
        custom_metadata={"run_id": run_id, **(operation or {}), **counts},
        max_commit_retries=COMMIT_RETRIES,
        app_transactions=[Transaction(app_id(run_id), 1, int(time.time() * 1000))],
    )
    actions = [p.add_action() for p in parts]
    table = _created(table_uri, schema, storage_options)
    error: Exception | None = None
    for _ in range(COMMIT_RETRIES):
        table.update_incremental()
        if table.transaction_version(app_id(run_id)) is not None:
            return None
        try:
            table.create_write_transaction(actions, mode, schema, commit_properties=props)
        except CommitFailedError as exc:  # e.g. a concurrent CREATE or the same run id
            error = exc
            continue
        table.update_incremental()
        return _version_of(table, run_id)
    raise CommitConflictError(
        f"run {run_id} could not commit to {table_uri}: other writers kept committing first",
        details=[str(error)],
        hint="rerun with the same run id: it commits once, or finds its commit already there",
    )
