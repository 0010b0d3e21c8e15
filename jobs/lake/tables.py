"""Delta tables of the lake: open, read, write and time-travel them; the newest row per key.

The one room (with the Feast offline store) that imports `deltalake`: every other part of the
project reaches a table through these functions, so the lake's format is decided in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from jobs.storage import pyarrow_s3


def split_uri(uri: str, storage_options: dict[str, str] | None) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem for `uri` and the path on it (S3 with the lake's options)."""
    if uri.startswith("s3://") and storage_options:
        return pyarrow_s3(storage_options), uri.removeprefix("s3://")
    return pafs.FileSystem.from_uri(uri)


def open_table(uri: str, storage_options: dict[str, str] | None = None) -> DeltaTable | None:
    """The Delta table at `uri`, or None when none has been created there yet."""
    try:
        return DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        return None


def table_exists(uri: str, storage_options: dict[str, str] | None = None) -> bool:
    """Whether a Delta table has been created at `uri`."""
    return open_table(uri, storage_options) is not None


def write_table(
    uri: str,
    data: pa.Table | pa.RecordBatchReader,
    *,
    mode: str = "append",
    storage_options: dict[str, str] | None = None,
) -> None:
    """Write rows from the driver in one commit: an append evolves the schema if it grew (run
    records, profiles, review decisions); an overwrite replaces the table (a sample snapshot,
    streamed batch by batch from a reader)."""
    write_deltalake(
        uri,
        data,
        mode=mode,
        schema_mode="merge" if mode == "append" else None,
        storage_options=storage_options,
    )


def read_table(
    uri: str,
    *,
    version: int | str | None = None,
    columns: list[str] | None = None,
    filters: list[tuple[str, str, object]] | None = None,
    storage_options: dict[str, str] | None = None,
    if_missing: pa.Schema | None = None,
) -> pa.Table:
    """Read a (small) table, optionally at a version or timestamp (time travel).

    `filters` are pushed down to the files' statistics (mind STACK-NOTES' trap with string
    columns). A table that does not exist is an empty table of `if_missing` when given (a runs
    table before the first run), an error otherwise.
    """
    table = open_table(uri, storage_options)
    if table is None:
        if if_missing is None:
            raise TableNotFoundError(f"no Delta table at {uri}")
        return if_missing.empty_table().select(columns or if_missing.names)
    if version is not None:
        table.load_as_version(int(version) if str(version).isdigit() else version)
    return pa.table(table.to_pyarrow_table(columns=columns, filters=filters))


def table_version(uri: str, storage_options: dict[str, str] | None = None) -> int | None:
    """The table's current version (None when it does not exist): pin it so every task of a job
    reads the same snapshot."""
    table = open_table(uri, storage_options)
    return None if table is None else table.version()


def file_count(uri: str, version: int, storage_options: dict[str, str] | None = None) -> int:
    """Data files in a snapshot, from the Delta log alone: how many shares a job can read."""
    return len(DeltaTable(uri, version=version, storage_options=storage_options).file_uris())


def read_share(
    uri: str,
    version: int,
    share: int,
    shares: int,
    columns: list[str],
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """Rows of every `shares`-th data file of a snapshot, starting at `share`: the tasks of a
    distributed job each read one share and together read the snapshot once."""
    dataset = DeltaTable(uri, version=version, storage_options=storage_options).to_pyarrow_dataset()
    fragments = list(dataset.get_fragments())[share::shares]
    parts = [f.to_table(columns=columns, schema=dataset.schema) for f in fragments]
    return pa.concat_tables(parts) if parts else dataset.schema.empty_table().select(columns)


def latest_per_key(
    table: pa.Table, key: str = "content_id", order: tuple[str, ...] = ("event_timestamp",)
) -> pa.Table:
    """The newest row per key, as serving sees a history table (`order` columns, newest first)."""
    if table.num_rows == 0:
        return table
    ranked = table.sort_by([(key, "ascending"), *((c, "descending") for c in order)])
    keys = ranked.column(key).combine_chunks()
    changed = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    first = pc.fill_null(pa.concat_arrays([pa.array([True]), changed]), True)
    return ranked.filter(first)


def latest_signal_values(
    uri: str,
    schema: pa.Schema,
    features: list[str],
    storage_options: dict[str, str] | None = None,
    content_ids: Iterable[str] | None = None,
) -> pa.Table:
    """`content_id` plus `features` as serving sees them: the newest row per item of a signal
    table (`schema` is the signal's; an empty table when none exists yet).

    `content_ids`: only those items (a gold or truth set, a run's answers), read from the files
    and row groups whose statistics may hold them. Either way the table is streamed and only the
    newest row per item is kept, so memory follows the items, not the history.
    """
    wanted = ["content_id", *features]
    order = ("event_timestamp", "created_timestamp")
    scanner = scan_items(uri, [*wanted, *order], content_ids, storage_options)
    if scanner is None:
        return schema.empty_table().select(wanted)
    return fold_latest(scanner, order).select(wanted)


def some_content_ids(uri: str, n: int, storage_options: dict[str, str] | None = None) -> list[str]:
    """A few content IDs of a signal table, one of each content type first, then in order: the
    items a demo looks up to show what is served."""
    table = read_table(uri, columns=["content_id"], storage_options=storage_options)
    ids = sorted(table.column("content_id").to_pylist())
    by_type: dict[str, str] = {}
    for cid in ids:
        by_type.setdefault(cid.split(":")[0], cid)
    chosen = list(by_type.values())[:n]
    return chosen + [c for c in ids if c not in chosen][: n - len(chosen)]


def read_where(
    uri: str,
    version: int,
    where: pc.Expression,
    columns: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """The rows of a snapshot that match `where` (an Arrow expression on non-string columns):
    files and row groups whose statistics exclude it are never read, so a task reads its own
    partition of a state table and nothing else."""
    dataset = DeltaTable(uri, version=version, storage_options=storage_options).to_pyarrow_dataset()
    return dataset.to_table(columns=columns, filter=where)


_SAME_ROWS = ("OPTIMIZE", "VACUUM START", "VACUUM END")  # commits that change no row


def rows_changed_since(
    uri: str, version: int, storage_options: dict[str, str] | None = None
) -> bool:
    """Whether any commit after `version` added or removed rows (compaction and vacuum do not):
    a reader that kept a table's version can tell its copy of the rows is still whole."""
    table = DeltaTable(uri, storage_options=storage_options)
    return any(
        entry.get("version", -1) > version and entry.get("operation") not in _SAME_ROWS
        for entry in table.history()
    )


def _paths(table: DeltaTable) -> set[str]:
    return set(table.get_add_actions(flatten=False).column("path").to_pylist())


def added_files(
    uri: str, since: int | None, version: int, storage_options: dict[str, str] | None = None
) -> list[str]:
    """Data files of snapshot `version` holding rows committed after snapshot `since` (None:
    every file): what a daily run reads instead of the table.

    A compaction (OPTIMIZE) writes new files holding rows that were already there: its files
    count as old when every file it replaced was old, and as new (whole) otherwise.
    """
    table = DeltaTable(uri, version=version, storage_options=storage_options)
    now = _paths(table)
    if since is None:
        return sorted(now)
    table.load_as_version(since)
    old = _paths(table)
    table.load_as_version(version)
    compactions = sorted(
        entry["version"]
        for entry in table.history()
        if entry.get("operation") == "OPTIMIZE" and since < entry.get("version", -1) <= version
    )
    for at in compactions:
        table.load_as_version(at - 1)
        before = _paths(table)
        table.load_as_version(at)
        after = _paths(table)
        if before - after <= old:
            old |= after - before
    return sorted(now - old)


FOLD_ROWS = 65_536  # rows gathered before they are reduced to the newest per key


def scan_items(
    uri: str,
    columns: list[str],
    content_ids: Iterable[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pads.Scanner | None:
    """A streaming scan of a table's current snapshot, of some items only when `content_ids` is
    given: the filter goes to the scanner, so files (their Delta statistics) and row groups
    whose `content_id` bounds hold none of them are never read. None when there is nothing to
    read (no table, or no items asked).

    Why an Arrow dataset and not `read_table(filters=...)`: the scan streams fragment by fragment
    instead of building the table, and the filter is an Arrow expression bound to the dataset's
    `string` column, not delta-rs's filter path where STACK-NOTES saw the `string_view` trap
    (tests/test_narrow_reads.py checks it on committed parts).
    """
    table = open_table(uri, storage_options)
    ids = None if content_ids is None else sorted(set(content_ids))
    if table is None or ids == []:
        return None
    dataset = table.to_pyarrow_dataset()
    where = None if ids is None else pc.field("content_id").isin(pa.array(ids, pa.string()))
    return dataset.scanner(columns=columns, filter=where)


def read_items(
    uri: str,
    content_ids: Iterable[str],
    columns: list[str],
    if_missing: pa.Schema,
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """The rows of some items (those under review, a ground-truth set): as small as what is
    asked, whatever the table's size (an empty table of `if_missing` when there is none)."""
    scanner = scan_items(uri, columns, content_ids, storage_options)
    return if_missing.empty_table().select(columns) if scanner is None else scanner.to_table()


def fold_latest(scanner: pads.Scanner, order: tuple[str, ...], key: str = "content_id") -> pa.Table:
    """The newest row per key of a scan, reduced as the batches arrive: memory holds the newest
    rows so far plus at most as many pending ones (or `FOLD_ROWS`), never the whole history."""
    newest = scanner.projected_schema.empty_table()
    pending: list[pa.RecordBatch] = []
    waiting = 0
    for batch in scanner.to_batches():
        pending.append(batch)
        waiting += batch.num_rows
        if waiting >= max(FOLD_ROWS, newest.num_rows):
            newest, pending, waiting = _newest_of(newest, pending, key, order), [], 0
    return _newest_of(newest, pending, key, order)


def _newest_of(
    newest: pa.Table, pending: list[pa.RecordBatch], key: str, order: tuple[str, ...]
) -> pa.Table:
    rows = pa.Table.from_batches([*newest.to_batches(), *pending], newest.schema)
    return latest_per_key(rows, key, order)


def iter_part_files(
    uri: str,
    paths: Iterable[str],
    columns: list[str],
    storage_options: dict[str, str] | None = None,
) -> Iterator[pa.Table]:
    """The rows of some data files of a table (paths relative to its root, as a run's parts or
    the Delta log name them), one file at a time: a run's own rows are read without listing,
    let alone opening, the files of other runs."""
    fs, root = split_uri(uri, storage_options)
    for path in paths:
        yield pq.read_table(f"{root.rstrip('/')}/{path}", filesystem=fs, columns=columns)
