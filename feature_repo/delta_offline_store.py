"""A Feast offline store that reads Delta Lake tables through delta-rs, honouring the Delta log.

Why a store of our own: Feast's `file`/`dask` store reads a Delta folder as plain Parquet, so once an
overwrite or a compaction has removed files from the log (and until vacuum deletes them) it returns
rows the table no longer holds; Feast's `duckdb` store reads Delta through DuckDB's `delta` extension,
which is downloaded at run time. This store keeps the DuckDB store's ibis point-in-time logic and
swaps only the reader: `deltalake.DeltaTable` resolves the snapshot from the log, so exactly the
table's current (or pinned) files are read, projected to the columns a query needs, and streamed
(see the two paragraphs on joins and pulls below).

Source paths. A `FileSource` path that is an absolute path or a URI (`/abs`, `file://`, `s3://`, ...)
is used as is; a relative path (`signals/text_embedding/v1`) is joined to the lake URI, which is
`$SIGNALS_LAKE_URI` if set, else the config's `lake_uri` (relative to the repo), else
`<repo>/../lake`. A path may end in `@<version>` (`signals/text_embedding/v1@3`) to read that Delta
version. `storage_options` are handed to delta-rs as they are (`${VAR}` works in the YAML).

Missing tables. Materialization (`pull_latest_*`, `pull_all_*`) treats a table that does not exist
yet as empty and logs a warning: a signal that has not been extracted yet has nothing to serve, and
`feast materialize` over every view must not fail on a fresh lake. `get_historical_features` raises
`DeltaTableNotFoundError`: a training set silently full of nulls is worse than an error.

Point-in-time joins (`get_historical_features`) never load a table: each source is a lazy view in
a private DuckDB with a memory limit and a spill folder (`out_of_core_backend`), read by DuckDB's
Parquet reader from exactly the log's files (delta-rs's Arrow dataset on object storage). Feast's
ibis join runs over narrow rows (keys, timestamps, and locators of the chosen history row: its
timestamps and its file); the features are fetched afterwards, one history file at a time, so
nothing wide is windowed, sorted or held. `DeltaRetrievalJob.feature_readers` streams them for
training sets of any size; `to_df()`/`to_arrow()` still collect the whole result.

Materialization pulls (`pull_latest_*`, `pull_all_*`) return a `DeltaPullJob` that streams:
`iter_batches(rows)` yields the window's rows a few record batches at a time, straight from the
Delta files; for the newest row per entity a first pass over the keys and timestamps alone (in
the same bounded DuckDB) lists the superseded rows, and the second pass drops them file by file.
`to_ray_dataset()` reads the same rows in Ray tasks, one per file, for Feast's Ray engine.

Writes (`offline_write_batch`, feature logging, saved datasets) are not supported: signal tables are
written by the extract jobs alone, with their contracts.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from feast.data_format import DeltaFormat
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.ibis import (
    IbisRetrievalJob,
    get_historical_features_ibis,
)
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from ibis.backends import BaseBackend
from ibis.expr.types import Table
from pydantic import Field, StrictStr

from feature_repo.errors import (
    LAKE_URI_ENV,
    DeltaSourceError,
    DeltaTableNotFoundError,
    UnsupportedOperationError,
)

logger = logging.getLogger(__name__)


Reader = Callable[[DataSource, str], Table]

# The point-in-time join's DuckDB: how much memory it may hold before it spills, and where.
DUCKDB_MEMORY_LIMIT_ENV = "SIGNALS_DUCKDB_MEMORY_LIMIT"
DUCKDB_TEMP_ENV = "SIGNALS_DUCKDB_TEMP_DIRECTORY"
DEFAULT_MEMORY_LIMIT = "1GB"


class DeltaOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """`offline_store:` settings; subclasses DuckDB's config because the ibis functions read it."""

    type: StrictStr = "feature_repo.delta_offline_store.DeltaOfflineStore"
    lake_uri: StrictStr | None = None
    storage_options: dict[str, str] = Field(default_factory=dict)


def _is_absolute(uri: str) -> bool:
    # A one-letter scheme is a Windows drive, not a URI.
    return len(urlparse(uri).scheme) > 1 or Path(uri).is_absolute()


def resolve_lake_uri(config: RepoConfig) -> str:
    """The lake a relative source path is joined to.

    The environment wins so that tests and jobs can point one repository at any lake without
    editing `feature_store.yaml`.
    """
    from_env = os.environ.get(LAKE_URI_ENV, "").strip()
    if from_env:
        return from_env if _is_absolute(from_env) else os.path.abspath(from_env)
    repo = Path(config.repo_path) if config.repo_path else Path.cwd()
    configured = getattr(config.offline_store, "lake_uri", None)
    if configured:
        return configured if _is_absolute(configured) else os.path.abspath(repo / configured)
    return os.path.abspath(repo / ".." / "lake")


def split_version(path: str) -> tuple[str, int | None]:
    """`signals/x/v1@3` → (`signals/x/v1`, 3); a path without a numeric `@` suffix is unpinned.

    Only digits count, so `abfss://container@account...` is not mistaken for a version.
    """
    base, sep, tail = path.rpartition("@")
    if sep and tail.isdigit():
        return base, int(tail)
    return path, None


def resolve_table_uri(config: RepoConfig, path: str) -> tuple[str, int | None]:
    """The table URI and pinned version a source path names, so every reader agrees on both."""
    base, version = split_version(path)
    if _is_absolute(base):
        return base, version
    return f"{resolve_lake_uri(config).rstrip('/')}/{base}", version


def _delta_source(data_source: DataSource) -> FileSource:
    if isinstance(data_source, FileSource) and isinstance(data_source.file_format, DeltaFormat):
        return data_source
    raise DeltaSourceError(
        f"source '{data_source.name}' is not a Delta FileSource",
        hint="DeltaOfflineStore reads FileSource(file_format=DeltaFormat()) only",
    )


def _storage_options(config: RepoConfig, source: FileSource) -> dict[str, str]:
    options = dict(getattr(config.offline_store, "storage_options", None) or {})
    if source.s3_endpoint_override:
        options.setdefault("AWS_ENDPOINT_URL", source.s3_endpoint_override)
    return options


def open_delta_table(config: RepoConfig, data_source: DataSource) -> DeltaTable:
    """The source's Delta table at its current or pinned version, with errors that name the path."""
    source = _delta_source(data_source)
    uri, version = resolve_table_uri(config, source.path)
    where = f"source '{source.name}', path '{source.path}'"
    try:
        return DeltaTable(uri, version=version, storage_options=_storage_options(config, source))
    except TableNotFoundError:
        raise DeltaTableNotFoundError(f"no Delta table at {uri} ({where})") from None
    except DeltaError as e:
        at = f" at version {version}" if version is not None else ""
        raise DeltaSourceError(
            f"cannot open the Delta table {uri}{at} ({where})", details=[str(e)]
        ) from e


def read_delta_source(
    config: RepoConfig, data_source: DataSource, columns: Iterable[str] | None = None
) -> pa.Table:
    """The snapshot the Delta log defines, projected to `columns` (all when None)."""
    table = open_delta_table(config, data_source)
    if columns is None:
        return table.to_pyarrow_table()
    return table.to_pyarrow_table(columns=_checked_columns(table, data_source, columns))


def _checked_columns(
    table: DeltaTable, data_source: DataSource, columns: Iterable[str]
) -> list[str]:
    # The columns a query needs, once each; a clear error naming the source if any is missing.
    wanted = list(dict.fromkeys(columns))
    present = {f.name for f in table.schema().fields}
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DeltaSourceError(
            f"the Delta table of source '{data_source.name}' lacks columns the query needs",
            details=[f"missing: {', '.join(missing)}", f"present: {', '.join(sorted(present))}"],
        )
    return wanted


def delta_dataset(
    config: RepoConfig, data_source: DataSource, columns: Iterable[str] | None = None
) -> ds.Dataset:
    """The snapshot the Delta log defines as a lazy Arrow dataset: nothing is read yet.

    Why a dataset rather than a table: a scan of it reads only the columns and row batches it
    needs while it needs them, so a pass over years of history never holds the history in
    memory. It lists exactly the log's files (stale files of an overwrite or compaction are not
    in it) and reads object storage through delta-rs.
    """
    table = open_delta_table(config, data_source)
    if columns is not None:
        _checked_columns(table, data_source, columns)
    return table.to_pyarrow_dataset()


def out_of_core_backend(memory_limit: str | None = None) -> BaseBackend:
    """A private DuckDB for one job over the history, bounded in memory, spilling to a temp
    folder.

    Why: joins, windows (newest row per entity row) and temporary tables run on data as large as
    the history or the training set; with a memory limit and a temporary directory DuckDB works
    on them out of core instead of growing with them. The limit comes from the
    argument, `$SIGNALS_DUCKDB_MEMORY_LIMIT`, or 1GB; the folder lives under
    `$SIGNALS_DUCKDB_TEMP_DIRECTORY` (or the system's temp folder) and goes with the backend.
    """
    limit = memory_limit or os.environ.get(DUCKDB_MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    spill = tempfile.mkdtemp(prefix="delta-pit-", dir=os.environ.get(DUCKDB_TEMP_ENV) or None)
    backend = ibis.duckdb.connect(memory_limit=limit, temp_directory=spill)
    weakref.finalize(backend, shutil.rmtree, spill, ignore_errors=True)
    return backend


def _empty_table(columns: list[str], timestamp_columns: list[str]) -> pa.Table:
    # Column types of a table that does not exist are unknown; null columns hold zero rows fine.
    utc = pa.timestamp("us", tz="UTC")
    return pa.table(
        {c: pa.array([], utc if c in timestamp_columns else pa.null()) for c in columns}
    )


# --- Materialization pulls: streamed from the Delta history, never the whole window at once -----

_UTC = pa.timestamp("us", tz="UTC")
_SCAN_READAHEAD = 2  # record batches read ahead of the consumer, one file at a time
_KEYS_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class _Pull:
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
            bounds.append(field >= pa.scalar(_aware(self.start), _UTC))
        if self.end is not None:
            bounds.append(field <= pa.scalar(_aware(self.end), _UTC))
        return functools.reduce(operator.and_, bounds) if bounds else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ident(name: str) -> str:
    # A column name quoted for DuckDB's SQL.
    return '"' + name.replace('"', '""') + '"'


def _scan(
    dataset: ds.Dataset, pull: _Pull, columns: Iterable[str], rows: int
) -> pa.RecordBatchReader:
    # One file at a time with a short readahead: memory is a few batches, whatever the history.
    return dataset.scanner(
        columns=list(columns),
        filter=pull.window(),
        batch_size=rows,
        batch_readahead=_SCAN_READAHEAD,
        fragment_readahead=1,
    ).to_reader()


def _scan_file(
    dataset: ds.Dataset, fragment: ds.Fragment, pull: _Pull, columns: Iterable[str], rows: int
) -> Iterator[pa.RecordBatch]:
    # One file of the snapshot, in the table's schema (a file older than a column reads null).
    return ds.Scanner.from_fragment(
        fragment,
        schema=dataset.schema,
        columns=list(columns),
        filter=pull.window(),
        batch_size=rows,
        batch_readahead=_SCAN_READAHEAD,
    ).to_batches()


def _tagged_keys(
    dataset: ds.Dataset, files: list[ds.Fragment], pull: _Pull
) -> pa.RecordBatchReader:
    # Every row's join keys and timestamps, with the index of the file it is in (`__file`).
    keys = [*pull.join_keys, *pull.order]
    schema = pa.schema([*(dataset.schema.field(c) for c in keys), pa.field("__file", pa.int32())])

    def batches() -> Iterator[pa.RecordBatch]:
        for index, fragment in enumerate(files):
            for batch in _scan_file(dataset, fragment, pull, keys, _KEYS_BATCH_ROWS):
                tag = pa.array(np.full(batch.num_rows, index, np.int32))
                yield pa.RecordBatch.from_arrays([*batch.columns, tag], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _superseded(
    con: duckdb.DuckDBPyConnection, dataset: ds.Dataset, files: list[ds.Fragment], pull: _Pull
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
    partition = ", ".join(_ident(c) for c in pull.join_keys)
    newest_first = ", ".join(f"{_ident(c)} DESC NULLS LAST" for c in pull.order)
    listed = ", ".join(_ident(c) for c in [*keys, "__file"])
    con.execute(
        f"CREATE TEMP TABLE superseded AS SELECT DISTINCT {listed} FROM ("
        f"SELECT {listed}, rank() OVER (PARTITION BY {partition} ORDER BY {newest_first}) AS r "
        "FROM pull_keys) WHERE r > 1"
    ).fetchall()  # DuckDB 2 wants a result consumed before the connection's next statement
    con.unregister("pull_keys")
    ((count,),) = con.execute("SELECT count(*) FROM superseded").fetchall()
    return int(count)


def _superseded_per_file(con: duckdb.DuckDBPyConnection, files: int) -> Iterator[pa.Table]:
    """For file 0, 1, … in turn: its superseded rows (join keys and timestamps).

    Read as one stream sorted by file, so only the current file's rows are held, however many
    rows a window supersedes.
    """
    reader = con.sql("SELECT * FROM superseded ORDER BY __file").to_arrow_reader(_KEYS_BATCH_ROWS)
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


def _pull_batches(
    config: RepoConfig, data_source: DataSource, pull: _Pull, rows: int
) -> Iterator[pa.RecordBatch]:
    """The pull's rows as record batches of at most `rows`, holding a few batches at a time.

    Pass two streams the window's rows from the Delta files, a file at a time, and drops the
    rows pass one found superseded in that file (an Arrow join against that file's few rows).
    When nothing is superseded the Arrow scan is handed over as it is. Why not DuckDB for this
    pass: it reads an Arrow stream ahead of a slow consumer without bound, so a window being
    written to a store would pile up in memory. A table that does not exist yet has no rows.
    """
    try:
        dataset = delta_dataset(config, data_source, pull.columns)
    except DeltaTableNotFoundError as e:
        logger.warning("%s; nothing to materialize from it yet", e.message)
        return
    if not pull.latest:
        yield from _scan(dataset, pull, pull.columns, rows)
        return
    files = list(dataset.get_fragments())
    backend = out_of_core_backend()
    try:
        if not _superseded(backend.con, dataset, files, pull):
            yield from _scan(dataset, pull, pull.columns, rows)
            return
        for fragment, superseded in zip(
            files, _superseded_per_file(backend.con, len(files)), strict=True
        ):
            for batch in _scan_file(dataset, fragment, pull, pull.columns, rows):
                yield from _drop_superseded(
                    pa.Table.from_batches([batch]), superseded, pull
                ).to_batches()
    finally:
        backend.disconnect()


@dataclass(frozen=True)
class _FileRead:
    """What a Ray task needs to read some of a table's files on any node: plain values only."""

    uri: str
    version: int
    storage_options: dict[str, str]
    pull: _Pull
    superseded: dict[str, pa.Table]  # file path → its rows to drop (join keys and timestamps)


def _read_delta_files(files: pa.Table, read: _FileRead) -> pa.Table:
    """In a Ray task: the pull's rows of the files named in `files`, superseded rows dropped.

    The task opens the table at the driver's version, so it reads the very snapshot the driver
    planned, through delta-rs (object storage included) rather than by path.
    """
    wanted = set(files.column("path").to_pylist())
    dataset = DeltaTable(read.uri, version=read.version, storage_options=read.storage_options)
    arrow = dataset.to_pyarrow_dataset()
    parts = [
        _drop_superseded(
            fragment.to_table(
                schema=arrow.schema, columns=list(read.pull.columns), filter=read.pull.window()
            ),
            read.superseded.get(fragment.path),
            read.pull,
        )
        for fragment in arrow.get_fragments()
        if fragment.path in wanted
    ]
    schema = pa.schema([arrow.schema.field(c) for c in read.pull.columns])
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _drop_superseded(table: pa.Table, superseded: pa.Table | None, pull: _Pull) -> pa.Table:
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


class DeltaPullJob(RetrievalJob):
    """A materialization pull from a Delta table, in three shapes: streamed record batches
    (`iter_batches`, what the streaming engine writes from), a Ray dataset (`to_ray_dataset`,
    what Feast's Ray engine writes from, read by tasks on every node), and Feast's `to_arrow`
    (the whole window in one table, for callers that want that)."""

    def __init__(self, config: RepoConfig, data_source: DataSource, pull: _Pull) -> None:
        super().__init__()
        self._config = config
        self._source = data_source
        self._pull = pull

    def iter_batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of at most `rows`; memory does not grow with the table."""
        return _pull_batches(self._config, self._source, self._pull, rows)

    def _empty(self) -> pa.Table:
        return _empty_table(list(self._pull.columns), list(self._pull.order))

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        batches = list(self.iter_batches(_KEYS_BATCH_ROWS))
        return pa.Table.from_batches(batches) if batches else self._empty()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def to_ray_dataset(self) -> Any:
        """The rows as a Ray dataset whose blocks Ray tasks read from the Delta files, one task
        per file: what Feast's Ray engine hands to its distributed online writes.

        Feast's default would collect `to_arrow()` on the driver. Here the driver reads only the
        log and, for the newest row per entity, pass one over keys and timestamps (bounded by
        DuckDB's memory limit); the superseded rows it finds travel with the tasks, which drop
        them, so every entity arrives once and the engine's per-block dedup has nothing left to
        get wrong across blocks.
        """
        from feast.infra.ray_initializer import get_ray_wrapper

        ray_data = get_ray_wrapper()
        try:
            table = open_delta_table(self._config, self._source)  # one snapshot for all tasks
        except DeltaTableNotFoundError as e:
            logger.warning("%s; nothing to materialize from it yet", e.message)
            return ray_data.from_arrow(self._empty())
        _checked_columns(table, self._source, self._pull.columns)
        dataset = table.to_pyarrow_dataset()
        files = list(dataset.get_fragments())
        if not files:
            return ray_data.from_arrow(self._empty())
        paths = [fragment.path for fragment in files]
        superseded: dict[str, pa.Table] = {}
        if self._pull.latest:
            backend = out_of_core_backend()
            try:
                if _superseded(backend.con, dataset, files, self._pull):
                    per_file = _superseded_per_file(backend.con, len(files))
                    superseded = {
                        path: rows
                        for path, rows in zip(paths, per_file, strict=True)
                        if rows.num_rows
                    }
            finally:
                backend.disconnect()
        source = _delta_source(self._source)
        read = _FileRead(
            uri=resolve_table_uri(self._config, source.path)[0],
            version=table.version(),
            storage_options=_storage_options(self._config, source),
            pull=self._pull,
            superseded=superseded,
        )
        listing = ray_data.from_pandas([pd.DataFrame({"path": [path]}) for path in paths])
        return listing.map_batches(
            _read_delta_files, fn_kwargs={"read": read}, batch_size=1, batch_format="pyarrow"
        )

    @property
    def full_feature_names(self) -> bool:
        """Materialization names features as the view does."""
        return False

    @property
    def on_demand_feature_views(self) -> list[Any]:
        """None: a pull reads one source."""
        return []

    @property
    def metadata(self) -> RetrievalMetadata | None:
        """None: Feast asks it of training sets, not of pulls."""
        return None

    def persist(self, *args: Any, **kwargs: Any) -> None:
        """Refused: this store writes nothing."""
        _refuse_write()


def _pull_job(
    config: RepoConfig,
    data_source: DataSource,
    join_key_columns: list[str],
    feature_name_columns: list[str],
    timestamp_field: str,
    created_timestamp_column: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
    *,
    latest: bool,
) -> DeltaPullJob:
    """Both materialization pulls: the columns once each, named as in the table."""
    timestamps = [c for c in (timestamp_field, created_timestamp_column) if c]
    columns = tuple(dict.fromkeys([*join_key_columns, *feature_name_columns, *timestamps]))
    pull = _Pull(
        join_keys=tuple(join_key_columns),
        columns=columns,
        timestamp_field=timestamp_field,
        created_timestamp_column=created_timestamp_column,
        start=start_date,
        end=end_date,
        latest=latest,
    )
    return DeltaPullJob(config, data_source, pull)


# The point-in-time join carries these instead of each history row's features: the row's
# timestamps and the index of its file in the snapshot. With the join keys they find the row
# again afterwards, one file at a time, so the join, its window and anything that spills stay a
# few dozen bytes wide whatever the features (a 384-d embedding is 1.5 KB).
PIT_TIMESTAMP = "__pit_event_timestamp"
PIT_CREATED = "__pit_created_timestamp"
PIT_FILE = "__pit_file"


@dataclass(frozen=True)
class _ViewColumns:
    """One feature view's part of a point-in-time join, in Feast's names (after field mapping)."""

    view: FeatureView
    keys: dict[str, str]  # history column → entity column
    features: dict[str, str]  # feature → its column in the result
    timestamp: str
    created: str | None

    @classmethod
    def of(cls, view: FeatureView, refs: list[str], full_names: bool) -> _ViewColumns:
        """The columns `refs` ask of `view`, named as Feast's ibis join names them."""
        source = view.batch_source
        if source is None:
            raise DeltaSourceError(f"feature view '{view.name}' has no batch source")
        prefix = f"{view.projection.name_to_use()}:"
        base = view.projection.name_alias or view.name
        names = [ref.removeprefix(prefix) for ref in refs if ref.startswith(prefix)]
        keys = view.projection.join_key_map or {e.name: e.name for e in view.entity_columns}
        return cls(
            view,
            dict(keys),
            {n: f"{base}__{n}" if full_names else n for n in names},
            source.timestamp_field,
            source.created_timestamp_column or None,
        )

    @property
    def stamps(self) -> list[str]:
        """The history's timestamp columns: event time, and write time where there is one."""
        return [self.timestamp, *([self.created] if self.created else [])]

    @property
    def locators(self) -> dict[str, str]:
        """Locator column of the history → its column in the narrow join (a full name)."""
        base = self.view.projection.name_alias or self.view.name
        own = [PIT_TIMESTAMP, *([PIT_CREATED] if self.created else []), PIT_FILE]
        return {c: f"{base}__{c}" for c in own}

    @property
    def locator_refs(self) -> list[str]:
        """The feature references that make Feast's join carry the locators."""
        return [f"{self.view.projection.name_to_use()}:{c}" for c in self.locators]

    def source_columns(self) -> list[str]:
        """Everything either step reads of the source, in the source's names."""
        to_source = {f: c for c, f in self.view.batch_source.field_mapping.items()}
        return [to_source.get(c, c) for c in [*self.keys, *self.stamps, *self.features]]


def _utc(table: Table, column: str) -> ir.TimestampValue:
    return table[column].cast(dt.Timestamp(timezone="UTC"))


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class _Snapshot:
    """One source's Delta snapshot, opened once per join so both steps read the same files, as
    lazy DuckDB views: the whole history (with each row's file index) or one file of it.

    Why two readers: DuckDB's own Parquet reader is the fast, memory-accounted one, but reads
    plain local files only; a table on object storage, or one whose files do not hold its rows
    as they are (partition columns, column mapping, deletion vectors), is read through
    delta-rs's Arrow dataset with little read-ahead. Either way only the log's files are read.
    """

    def __init__(
        self, backend: BaseBackend, config: RepoConfig, source: DataSource, columns: list[str]
    ) -> None:
        self.backend, self.source = backend, source
        self.table = open_delta_table(config, source)
        self.columns = _checked_columns(self.table, source, columns)
        self.dataset = self.table.to_pyarrow_dataset()
        self.fragments = list(self.dataset.get_fragments())
        self.local = _plain_local_files(self.table, self.fragments, self.columns)

    def _register(self, data: ds.Dataset, columns: list[str]) -> Table:
        name = f"delta_{uuid.uuid4().hex}"
        scanner = data.scanner(
            columns=columns, batch_size=8_192, batch_readahead=2, fragment_readahead=1
        )
        self.backend.con.register(name, scanner)
        return self.backend.table(name)

    def whole(self) -> Table:
        """Every row of the snapshot: the needed columns (source names) and `PIT_FILE`."""
        listed = ", ".join(_quoted(c) for c in self.columns)
        if self.local is not None:
            name = f"delta_{uuid.uuid4().hex}"
            self.backend.raw_sql(
                f"CREATE TEMP VIEW {_quoted(name)} AS SELECT {listed}, "
                f"CAST(file_index AS INTEGER) AS {PIT_FILE} "
                f"FROM read_parquet({_sql_list(self.local)}, union_by_name = true)"
            )
            return self.backend.table(name)
        view = self._register(self.dataset, [*self.columns, "__fragment_index"])
        return view.rename({PIT_FILE: "__fragment_index"})

    def file(self, index: int) -> Table | None:
        """The rows of the snapshot's file `index` alone as a DuckDB view (the needed columns,
        source names), or None where DuckDB cannot read it as plain Parquet holding them."""
        if self.local is None:
            return None
        path = self.local[index]
        if not set(self.columns) <= set(pq.read_schema(path).names):
            return None  # written before a column was added: the dataset fills it in
        listed = ", ".join(_quoted(c) for c in self.columns)
        name = f"delta_{uuid.uuid4().hex}"
        self.backend.raw_sql(
            f"CREATE TEMP VIEW {_quoted(name)} AS SELECT {listed} "
            f"FROM read_parquet({_sql_list([path])})"
        )
        return self.backend.table(name)

    def file_batches(self, index: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of the snapshot's file `index` alone through the dataset, a batch at a time."""
        data = ds.FileSystemDataset(
            [self.fragments[index]],
            self.dataset.schema,
            self.dataset.format,
            self.dataset.filesystem,
        )
        yield from data.to_batches(
            columns=self.columns, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1
        )


def _plain_local_files(
    table: DeltaTable, fragments: list[ds.Fragment], columns: list[str]
) -> list[str] | None:
    # The snapshot's files as local paths, in the dataset's fragment order, when DuckDB may read
    # them as plain Parquet holding every needed column; None otherwise.
    metadata = table.metadata()
    mapping = metadata.configuration.get("delta.columnMapping.mode", "none")
    features = set(table.protocol().reader_features or ())
    if metadata.partition_columns or mapping != "none" or "deletionVectors" in features:
        return None
    root = urlparse(table.table_uri)
    if len(root.scheme) > 1 and root.scheme != "file":
        return None
    base = url2pathname(root.path) if root.scheme == "file" else table.table_uri
    paths = [os.path.join(base, f.path) for f in fragments]
    if not paths or any(c in p for p in paths for c in "*?[{"):  # DuckDB would glob them
        return None
    # A column the schema gained after the first file was written: the dataset fills it in.
    return paths if set(columns) <= set(pq.read_schema(paths[0]).names) else None


def _historical_reader(views: list[_ViewColumns], snapshots: dict[int, _Snapshot]) -> Reader:
    # What Feast's join reads of each source: the whole history lazily, with the locators. The
    # columns keep the source's names: Feast applies the field mapping itself.
    by_source = {id(v.view.batch_source): v for v in views}

    def read(data_source: DataSource, _repo_path: str) -> Table:
        cols, table = by_source[id(data_source)], snapshots[id(data_source)].whole()
        to_source = {f: c for c, f in data_source.field_mapping.items()}
        stamps = {c: to_source.get(c, c) for c in cols.stamps}
        locators = {PIT_TIMESTAMP: _utc(table, stamps[cols.timestamp])}
        if cols.created:
            locators[PIT_CREATED] = _utc(table, stamps[cols.created])
        return table.mutate(**locators)

    return read


def _feature_rows(table: Table, cols: _ViewColumns) -> Table:
    """History rows (source names) as the second step joins them: the join keys and locators,
    and the features under their result names."""
    to_source = {f: c for c, f in cols.view.batch_source.field_mapping.items()}

    def column(name: str) -> ir.Value:
        return table[to_source.get(name, name)]

    locators = {PIT_TIMESTAMP: column(cols.timestamp).cast(dt.Timestamp(timezone="UTC"))}
    if cols.created:
        locators[PIT_CREATED] = column(cols.created).cast(dt.Timestamp(timezone="UTC"))
    if PIT_FILE in table.columns:
        locators[PIT_FILE] = table[PIT_FILE]
    return table.select(
        **{k: column(k) for k in cols.keys},
        **locators,
        **{out: column(f) for f, out in cols.features.items()},
    )


def _found(narrow: Table, rows: Table, cols: _ViewColumns) -> list[ir.BooleanValue]:
    # The history row the join picked: the same entity, the same timestamps (the same file).
    same = [rows[k] == narrow[e] for k, e in cols.keys.items()]
    return same + [rows[c] == narrow[n] for c, n in cols.locators.items() if c in rows.columns]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DeltaRetrievalJob(IbisRetrievalJob):
    """A point-in-time join in two steps: Feast's ibis join over narrow rows (keys, timestamps,
    locators), then each view's features fetched by locator. Both run lazily on the job's own
    memory-bounded DuckDB; `table` is the whole result as one ibis expression (for `to_df()` and
    `to_arrow()`), `feature_readers` the same features streamed one history file at a time."""

    def __init__(
        self,
        narrow: Table,
        views: list[_ViewColumns],
        snapshots: dict[int, _Snapshot],
        entity_columns: list[str],
        **job: Any,
    ) -> None:
        self._narrow, self._views, self._snapshots = narrow, views, snapshots
        result = narrow
        for cols in views:
            rows = _feature_rows(snapshots[id(cols.view.batch_source)].whole(), cols)
            joined = result.left_join(rows, _found(result, rows, cols))
            result = joined.select(
                *[result[c] for c in result.columns], *[rows[c] for c in cols.features.values()]
            )
        features = [c for cols in views for c in cols.features.values()]
        super().__init__(table=result.select(*entity_columns, *features), **job)

    def feature_readers(
        self, row_id: str, batch_rows: int = 16_384
    ) -> Iterator[pa.RecordBatchReader]:
        """One stream per feature view, in order: batches of `row_id` (an entity column) beside
        that view's feature columns, for the entity rows the join found a history row for, in
        no particular order. Start each stream after the previous one is consumed.

        Why this way: the features are the wide part (a 384-d embedding is 1.5 KB a row). The
        narrow join is computed once into a temporary table (DuckDB may spill it), sorted by
        history file; then each file's chosen rows are fetched by a join of that file alone with
        its few locators. Memory is one history file and one batch, whatever the history or the
        entity rows; nothing wide is sorted. A caller that wants the entity order places each row
        by `row_id` (the training set writes buckets by it).
        """
        if self.on_demand_feature_views:
            raise UnsupportedOperationError(
                "on-demand feature views cannot be streamed",
                hint="request the feature views and derive the columns from the batches",
            )
        backend = self._narrow.get_backend()
        wanted = [row_id]
        wanted += [c for v in self._views for c in (*v.keys.values(), *v.locators.values())]
        narrow_name = f"pit_{uuid.uuid4().hex}"
        # Stored by file, so that each file's rows are a few of the table's row groups.
        by_file = self._narrow.select(*dict.fromkeys(wanted)).order_by(
            *[v.locators[PIT_FILE] for v in self._views]
        )
        backend.raw_sql("SET preserve_insertion_order = true")
        narrow = backend.create_table(narrow_name, by_file, temp=True)
        backend.raw_sql("SET preserve_insertion_order = false")
        try:
            for cols in self._views:
                yield self._view_reader(narrow, cols, row_id, batch_rows)
        finally:  # DuckDB gives the narrow join's memory back before the caller goes on
            backend.raw_sql(f"DROP TABLE IF EXISTS {_quoted(narrow_name)}")

    def _view_reader(
        self, narrow: Table, cols: _ViewColumns, row_id: str, batch_rows: int
    ) -> pa.RecordBatchReader:
        # One view's features, file by file: only the files the join chose a row from are read.
        backend, snapshot = narrow.get_backend(), self._snapshots[id(cols.view.batch_source)]
        to_source = {f: c for c, f in cols.view.batch_source.field_mapping.items()}
        history = snapshot.dataset.schema
        schema = pa.schema(
            [pa.field(row_id, pa.int64())]
            + [
                pa.field(out, history.field(to_source.get(f, f)).type)
                for f, out in cols.features.items()
            ]
        )
        file_column = narrow[cols.locators[PIT_FILE]]
        chosen_files = narrow.select(f=file_column).filter(file_column.notnull()).distinct()
        files = sorted(chosen_files.to_pyarrow().column("f").to_pylist())

        def in_duckdb(index: int, history_file: Table) -> Iterator[pa.RecordBatch]:
            # DuckDB's join builds on the file's few chosen rows and streams the file past them.
            chosen = narrow.filter(file_column == index)
            rows = _feature_rows(history_file, cols)
            found = chosen.inner_join(rows, _found(chosen, rows, cols))
            found = found.select(chosen[row_id], *[rows[c] for c in cols.features.values()])
            name = f"pit_{uuid.uuid4().hex}"
            backend.create_view(name, found)
            for batch in backend.con.sql(f"SELECT * FROM {_quoted(name)}").to_arrow_reader(
                batch_rows
            ):
                yield batch.cast(schema)
            for view in (name, history_file.get_name()):
                backend.raw_sql(f"DROP VIEW IF EXISTS {_quoted(view)}")

        def in_arrow(index: int) -> Iterator[pa.RecordBatch]:
            # DuckDB cannot tell an Arrow scan's size and would build its join on the file's
            # wide rows: join each batch's keys with the chosen rows in Arrow instead, and take.
            keys = {e: to_source.get(k, k) for k, e in cols.keys.items()}
            stamps = {cols.locators[PIT_TIMESTAMP]: to_source.get(cols.timestamp, cols.timestamp)}
            if cols.created:
                stamps[cols.locators[PIT_CREATED]] = to_source.get(cols.created, cols.created)
            chosen = narrow.filter(file_column == index).select(row_id, *keys, *stamps)
            chosen = chosen.to_pyarrow().rename_columns([row_id, *keys.values(), *stamps.values()])
            on = [*keys.values(), *stamps.values()]
            for batch in snapshot.file_batches(index, batch_rows):
                probe = pa.table(
                    [*(batch.column(c) for c in on), pa.array(range(batch.num_rows), pa.int64())],
                    names=[*on, "__row"],
                )
                typed = pa.schema([pa.field(row_id, pa.int64()), *(probe.field(c) for c in on)])
                matched = probe.join(chosen.cast(typed), keys=on, join_type="inner")
                rows = matched.column("__row").combine_chunks()
                features = [batch.column(to_source.get(f, f)).take(rows) for f in cols.features]
                yield pa.RecordBatch.from_arrays(
                    [matched.column(row_id).combine_chunks(), *features], schema=schema
                )

        def batches() -> Iterator[pa.RecordBatch]:
            for index in files:
                history_file = snapshot.file(index)
                yield from (
                    in_arrow(index) if history_file is None else in_duckdb(index, history_file)
                )

        return pa.RecordBatchReader.from_batches(schema, batches())


def _refuse_write(*_args: Any, **_kwargs: Any) -> None:
    raise UnsupportedOperationError(
        "DeltaOfflineStore is read-only",
        hint="signal tables are written by the extract jobs; persist training sets yourself",
    )


class DeltaOfflineStore(DuckDBOfflineStore):
    """Feast's DuckDB offline store with a reader that goes through the Delta log."""

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: datetime,
        end_date: datetime,
    ) -> RetrievalJob:
        """Latest row per entity in a window (materialization); a missing table reads as empty."""
        return _pull_job(
            config,
            data_source,
            join_key_columns,
            feature_name_columns,
            timestamp_field,
            created_timestamp_column,
            start_date,
            end_date,
            latest=True,
        )

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> RetrievalJob:
        """Every row in a window (Feast's default materialization path); missing table = empty."""
        return _pull_job(
            config,
            data_source,
            join_key_columns,
            feature_name_columns,
            timestamp_field,
            created_timestamp_column,
            start_date,
            end_date,
            latest=False,
        )

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        """Point-in-time join over the Delta snapshots; a missing table is an error, not nulls.

        The job's `table` is a lazy ibis expression on a private, memory-bounded DuckDB that
        scans the Delta files as it runs: `to_arrow()` still collects it, while a caller that
        streams it (`job.table.to_pyarrow_batches()`) never holds the history or the result.
        """
        views = [_ViewColumns.of(v, feature_refs, full_feature_names) for v in feature_views]
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        if any(o.mode == "substrait" for o in odfvs):
            raise UnsupportedOperationError("DeltaOfflineStore does not run substrait transforms")
        entity_columns = list(entity_df.columns) if isinstance(entity_df, pd.DataFrame) else []
        backend = out_of_core_backend()
        # Nothing here needs DuckDB's row order (the caller orders): let it stream and spill.
        # UTC: a timestamp without a zone must not be read in the machine's zone.
        backend.raw_sql("SET preserve_insertion_order = false")
        backend.raw_sql("SET TimeZone = 'UTC'")
        needed: dict[int, list[str]] = {}
        for cols in views:
            needed.setdefault(id(cols.view.batch_source), []).extend(cols.source_columns())
        snapshots = {
            id(cols.view.batch_source): _Snapshot(
                backend, config, cols.view.batch_source, needed[id(cols.view.batch_source)]
            )
            for cols in views
        }
        narrow = get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=[ref for cols in views for ref in cols.locator_refs],
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=True,
            data_source_reader=_historical_reader(views, snapshots),
            data_source_writer=_refuse_write,
            filter_by_created_timestamp=filter_by_created_timestamp,
        )
        metadata = narrow.metadata
        return DeltaRetrievalJob(
            narrow.table,
            views,
            snapshots,
            entity_columns or [c for c in narrow.table.columns if "____pit_" not in c],
            on_demand_feature_views=odfvs,
            full_feature_names=full_feature_names,
            metadata=RetrievalMetadata(
                features=feature_refs,
                keys=metadata.keys if metadata else [],
                min_event_timestamp=metadata.min_event_timestamp if metadata else None,
                max_event_timestamp=metadata.max_event_timestamp if metadata else None,
            ),
            data_source_writer=_refuse_write,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            repo_path=str(config.repo_path),
        )

    def validate_data_source(self, config: RepoConfig, data_source: DataSource) -> None:
        """Checked by `feast plan/apply`: a Delta source that opens at its pinned version.

        A table that does not exist only warns: definitions are applied before the first extract.
        """
        try:
            open_delta_table(config, data_source)
        except DeltaTableNotFoundError as e:
            logger.warning("%s (not written yet?)", e.message)

    def get_table_column_names_and_types_from_data_source(
        self, config: RepoConfig, data_source: DataSource
    ) -> Iterable[tuple[str, str]]:
        """Column names and Arrow types for Feast's schema inference, read from the Delta log."""
        schema = pa.schema(open_delta_table(config, data_source).schema().to_arrow())
        # Feast parses list types only in pyarrow's default spelling, `list<item: ...>`.
        return [
            (f.name, str(pa.list_(f.type.value_type) if pa.types.is_list(f.type) else f.type))
            for f in schema
        ]

    @staticmethod
    def offline_write_batch(
        config: RepoConfig,
        feature_view: FeatureView,
        table: pa.Table,
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Refused: signal tables are written by the extract jobs, under their contracts."""
        _refuse_write()

    @staticmethod
    def write_logged_features(*args: Any, **kwargs: Any) -> None:
        """Refused: this store writes nothing; log features to a store that does."""
        _refuse_write()

    @staticmethod
    def compute_monitoring_metrics(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Refused rather than inherited: DuckDB's version reads Delta through the extension."""
        raise UnsupportedOperationError("DeltaOfflineStore does not compute monitoring metrics")

    @staticmethod
    def get_monitoring_max_timestamp(*args: Any, **kwargs: Any) -> datetime | None:
        """Refused rather than inherited: DuckDB's version reads Delta through the extension."""
        raise UnsupportedOperationError("DeltaOfflineStore does not compute monitoring metrics")
