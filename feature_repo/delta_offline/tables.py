"""Opening a source's Delta table: its snapshot, its columns, and the DuckDB jobs run on.

Missing tables. Materialization treats a table that does not exist yet as empty and logs a
warning: a signal that has not been extracted yet has nothing to serve, and `feast materialize`
over every view must not fail on a fresh lake. A point-in-time join raises
`DeltaTableNotFoundError`: a training set silently full of nulls is worse than an error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from feast.data_source import DataSource
from feast.repo_config import RepoConfig
from ibis.backends import BaseBackend

from feature_repo.delta_offline.config import delta_source, resolve_table_uri, storage_options
from feature_repo.errors import DeltaSourceError, DeltaTableNotFoundError, UnsupportedOperationError

UTC_MICROS = pa.timestamp("us", tz="UTC")  # how Delta stores every timestamp of a signal row
# The point-in-time join's DuckDB: how much memory it may hold before it spills, and where.
DUCKDB_MEMORY_LIMIT_ENV = "SIGNALS_DUCKDB_MEMORY_LIMIT"
DUCKDB_TEMP_ENV = "SIGNALS_DUCKDB_TEMP_DIRECTORY"
DEFAULT_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class PinnedTable:
    """A table at one version, in plain values: what a Ray task needs to read the very snapshot
    the driver planned on any node, through delta-rs (object storage included)."""

    uri: str
    version: int
    storage_options: dict[str, str]

    def dataset(self) -> ds.Dataset:
        """The snapshot's files as a lazy Arrow dataset, in the driver's fragment order."""
        table = DeltaTable(self.uri, version=self.version, storage_options=self.storage_options)
        return table.to_pyarrow_dataset()


def open_delta_table(config: RepoConfig, data_source: DataSource) -> DeltaTable:
    """The source's Delta table at its current or pinned version, with errors that name the path."""
    source = delta_source(data_source)
    uri, version = resolve_table_uri(config, source.path)
    where = f"source '{source.name}', path '{source.path}'"
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options(config, source))
    except TableNotFoundError:
        raise DeltaTableNotFoundError(f"no Delta table at {uri} ({where})") from None
    except DeltaError as e:
        at = f" at version {version}" if version is not None else ""
        raise DeltaSourceError(
            f"cannot open the Delta table {uri}{at} ({where})", details=[str(e)]
        ) from e


def pinned(config: RepoConfig, data_source: DataSource, table: DeltaTable) -> PinnedTable:
    """`table` (opened from `data_source`) as a `PinnedTable` at the version it was opened at."""
    source = delta_source(data_source)
    uri, _ = resolve_table_uri(config, source.path)
    return PinnedTable(uri, table.version(), storage_options(config, source))


def checked_columns(
    table: DeltaTable, data_source: DataSource, columns: Iterable[str]
) -> list[str]:
    """The columns a query needs, once each; a clear error naming the source if any is missing."""
    wanted = list(dict.fromkeys(columns))
    present = {f.name for f in table.schema().fields}
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DeltaSourceError(
            f"the Delta table of source '{data_source.name}' lacks columns the query needs",
            details=[f"missing: {', '.join(missing)}", f"present: {', '.join(sorted(present))}"],
        )
    return wanted


def read_delta_source(
    config: RepoConfig, data_source: DataSource, columns: Iterable[str] | None = None
) -> pa.Table:
    """The snapshot the Delta log defines, projected to `columns` (all when None)."""
    table = open_delta_table(config, data_source)
    if columns is None:
        return table.to_pyarrow_table()
    return table.to_pyarrow_table(columns=checked_columns(table, data_source, columns))


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
        checked_columns(table, data_source, columns)
    return table.to_pyarrow_dataset()


def out_of_core_backend(memory_limit: str | None = None) -> BaseBackend:
    """A private DuckDB for one job over the history, bounded in memory, spilling to a temp
    folder, reading timestamps without a zone as UTC.

    Why: joins, windows (newest row per entity row) and temporary tables run on data as large as
    the history or the training set; with a memory limit and a temporary directory DuckDB works
    on them out of core instead of growing with them. The limit comes from the argument,
    `$SIGNALS_DUCKDB_MEMORY_LIMIT`, or 1GB; the folder lives under
    `$SIGNALS_DUCKDB_TEMP_DIRECTORY` (or the system's temp folder) and goes with the backend.
    """
    limit = memory_limit or os.environ.get(DUCKDB_MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    spill = tempfile.mkdtemp(prefix="delta-pit-", dir=os.environ.get(DUCKDB_TEMP_ENV) or None)
    backend = ibis.duckdb.connect(memory_limit=limit, temp_directory=spill)
    weakref.finalize(backend, shutil.rmtree, spill, ignore_errors=True)
    # A timestamp without a zone must not be read in the machine's zone.
    backend.raw_sql("SET TimeZone = 'UTC'")
    return backend


def empty_table(columns: Iterable[str], timestamp_columns: Iterable[str]) -> pa.Table:
    """Zero rows of `columns`: the timestamps typed, the rest null (a missing table's types are
    unknown, and null columns hold zero rows fine)."""
    stamps = set(timestamp_columns)
    return pa.table({c: pa.array([], UTC_MICROS if c in stamps else pa.null()) for c in columns})


def quoted(name: str) -> str:
    """A name quoted for DuckDB's SQL."""
    return '"' + name.replace('"', '""') + '"'


def refuse_write(*_args: Any, **_kwargs: Any) -> None:
    """Every write this store is asked for: signal tables are written by the extract jobs."""
    raise UnsupportedOperationError(
        "DeltaOfflineStore is read-only",
        hint="signal tables are written by the extract jobs; persist training sets yourself",
    )
