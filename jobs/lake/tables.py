"""Delta tables of the lake: open, read, write and time-travel them; the newest row per key.

The one room (with the Feast offline store) that imports `deltalake`: every other part of the
project reaches a table through these functions, so the lake's format is decided in one place.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
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
    uri: str, schema: pa.Schema, features: list[str], storage_options: dict[str, str] | None = None
) -> pa.Table:
    """`content_id` plus `features` as serving sees them: the newest row per item of a signal
    table (`schema` is the signal's; an empty table when none exists yet)."""
    wanted = ["content_id", *features]
    order = ("event_timestamp", "created_timestamp")
    rows = read_table(
        uri, columns=[*wanted, *order], storage_options=storage_options, if_missing=schema
    )
    return latest_per_key(rows, order=order).select(wanted)


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
