"""Materialization's reads: a window's rows streamed from the Delta files, never held at once.

`stream(...)` yields the window's rows a few record batches at a time, straight from the Delta
files; for the newest row per entity a first pass over the keys and timestamps alone (in a
bounded DuckDB) lists the superseded rows, and the second pass drops them file by file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from feast.data_source import DataSource
from feast.repo_config import RepoConfig

from feature_repo.delta_offline.tables import (
    UTC_MICROS,
    delta_dataset,
    out_of_core_backend,
    quoted,
)
from feature_repo.errors import DeltaTableNotFoundError

logger = logging.getLogger(__name__)

SCAN_READAHEAD = 2  # record batches read ahead of the consumer, one file at a time
KEYS_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Pull:
    """One materialization pull: which columns of a table, in which event-time window, and
    whether only each entity's newest row (`latest`) or every row of the window is wanted."""

    join_keys: tuple[str, ...]
    columns: tuple[str, ...]  # join keys, features, timestamps, named as in the table
    timestamp_field: str
    created_timestamp_column: str | None
    start: datetime | None
    end: datetime | None
    latest: bool

    @property
    def order(self) -> tuple[str, ...]:
        """The columns that say which row of an entity is newest: event time, then creation."""
        return tuple(c for c in (self.timestamp_field, self.created_timestamp_column) if c)

    def window(self) -> ds.Expression | None:
        """Feast's window, both ends included, as a filter the Parquet statistics can prune by."""
        field = ds.field(self.timestamp_field)
        bounds = []
        if self.start is not None:
            bounds.append(field >= pa.scalar(_aware(self.start), UTC_MICROS))
        if self.end is not None:
            bounds.append(field <= pa.scalar(_aware(self.end), UTC_MICROS))
        return functools.reduce(operator.and_, bounds) if bounds else None

    def read_file(
        self, dataset: ds.Dataset, fragment: ds.Fragment, columns: Iterable[str], rows: int
    ) -> Iterator[pa.RecordBatch]:
        """One file of the snapshot within the window, in the table's schema (a file written
        before a column was added reads it as null), a few batches ahead of the consumer."""
        return ds.Scanner.from_fragment(
            fragment,
            schema=dataset.schema,
            columns=list(columns),
            filter=self.window(),
            batch_size=rows,
            batch_readahead=SCAN_READAHEAD,
        ).to_batches()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _tagged_keys(dataset: ds.Dataset, files: list[ds.Fragment], pull: Pull) -> pa.RecordBatchReader:
    # Every row's join keys and timestamps, with the index of the file it is in (`__file`).
    keys = [*pull.join_keys, *pull.order]
    schema = pa.schema([*(dataset.schema.field(c) for c in keys), pa.field("__file", pa.int32())])

    def batches() -> Iterator[pa.RecordBatch]:
        for index, fragment in enumerate(files):
            for batch in pull.read_file(dataset, fragment, keys, KEYS_BATCH_ROWS):
                tag = pa.array(np.full(batch.num_rows, index, np.int32))
                yield pa.RecordBatch.from_arrays([*batch.columns, tag], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _find_superseded(
    con: duckdb.DuckDBPyConnection, dataset: ds.Dataset, files: list[ds.Fragment], pull: Pull
) -> int:
    """Pass one, over the keys and timestamps alone: the rows of the window that a newer row
    of the same entity supersedes, with the file they are in, into the temporary table
    `superseded`; returns how many.

    Why keys only: they are a few dozen bytes a row, so this pass is cheap and DuckDB keeps it
    within its memory limit (spilling beyond it) however long the history is; the feature
    values are read once, in pass two, and never held. Rows tied on every timestamp are all
    kept, as Feast's own dedup keeps an arbitrary one of them.
    """
    keys = [*pull.join_keys, *pull.order]
    con.register("pull_keys", _tagged_keys(dataset, files, pull))
    partition = ", ".join(quoted(c) for c in pull.join_keys)
    newest_first = ", ".join(f"{quoted(c)} DESC NULLS LAST" for c in pull.order)
    listed = ", ".join(quoted(c) for c in [*keys, "__file"])
    con.execute(
        f"CREATE TEMP TABLE superseded AS SELECT DISTINCT {listed} FROM ("
        f"SELECT {listed}, rank() OVER (PARTITION BY {partition} ORDER BY {newest_first}) AS r "
        "FROM pull_keys) WHERE r > 1"
    ).fetchall()  # DuckDB 2 wants a result consumed before the connection's next statement
    con.unregister("pull_keys")
    ((count,),) = con.execute("SELECT count(*) FROM superseded").fetchall()
    return int(count)


def _per_file(con: duckdb.DuckDBPyConnection, files: int) -> Iterator[pa.Table]:
    """For file 0, 1, … in turn: its superseded rows (join keys and timestamps).

    Read as one stream sorted by file, so only the current file's rows are held, however many
    rows a window supersedes.
    """
    reader = con.sql("SELECT * FROM superseded ORDER BY __file").to_arrow_reader(KEYS_BATCH_ROWS)
    held = reader.schema.empty_table()
    for index in range(files):
        while held.num_rows == 0 or held.column("__file")[-1].as_py() <= index:
            try:
                held = pa.concat_tables([held, pa.Table.from_batches([reader.read_next_batch()])])
            except StopIteration:
                break
        tags = held.column("__file").to_numpy()
        start, end = np.searchsorted(tags, index, "left"), np.searchsorted(tags, index, "right")
        yield held.slice(start, end - start).drop_columns(["__file"])
        held = held.slice(end)


@contextlib.contextmanager
def superseded_per_file(
    dataset: ds.Dataset, files: list[ds.Fragment], pull: Pull
) -> Iterator[Iterator[pa.Table] | None]:
    """Each file's superseded rows in file order (pass one's result), or None when the pull
    wants every row or nothing is superseded; valid while the context is open."""
    if not pull.latest:
        yield None
        return
    backend = out_of_core_backend()
    try:
        found = _find_superseded(backend.con, dataset, files, pull)
        yield _per_file(backend.con, len(files)) if found else None
    finally:
        backend.disconnect()


def drop_superseded(table: pa.Table, superseded: pa.Table | None, pull: Pull) -> pa.Table:
    """`table` without the rows listed in `superseded` (matched on join keys and timestamps)."""
    if superseded is None or not superseded.num_rows or not table.num_rows:
        return table
    keys = [*pull.join_keys, *pull.order]
    # Join the keys and a row number only: Arrow's hash join carries no list columns.
    index = table.select(keys).append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    marked = superseded.append_column("__drop", pa.repeat(pa.scalar(True), superseded.num_rows))
    hits = index.join(marked, keys=keys, join_type="left outer")
    keep = hits.filter(pc.is_null(hits.column("__drop"))).column("__row").to_numpy()
    if len(keep) == table.num_rows:
        return table  # nothing of this batch is superseded: no copy
    return table.take(np.sort(keep))  # in the file's order, as the file reads


def stream(
    config: RepoConfig, data_source: DataSource, pull: Pull, rows: int
) -> Iterator[pa.RecordBatch]:
    """The pull's rows as record batches of at most `rows`, holding a few batches at a time.

    Pass two streams the window's rows from the Delta files, a file at a time, and drops the
    rows pass one found superseded in that file (an Arrow join against that file's few rows).
    Why not DuckDB for this pass: it reads an Arrow stream ahead of a slow consumer without
    bound, so a window being written to a store would pile up in memory. A table that does not
    exist yet has no rows.
    """
    try:
        dataset = delta_dataset(config, data_source, pull.columns)
    except DeltaTableNotFoundError as e:
        logger.warning("%s; nothing to materialize from it yet", e.message)
        return
    files = list(dataset.get_fragments())
    with superseded_per_file(dataset, files, pull) as superseded:
        dropped = superseded or (None for _ in files)
        for fragment, drop in zip(files, dropped, strict=True):
            for batch in pull.read_file(dataset, fragment, pull.columns, rows):
                if drop is None or not drop.num_rows:
                    yield batch
                else:
                    table = drop_superseded(pa.Table.from_batches([batch]), drop, pull)
                    yield from table.to_batches()
