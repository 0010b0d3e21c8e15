"""A Feast offline store that reads Delta Lake tables through delta-rs, honouring the Delta log.

Why a store of our own: Feast's `file`/`dask` store reads a Delta folder as plain Parquet, so once an
overwrite or a compaction has removed files from the log (and until vacuum deletes them) it returns
rows the table no longer holds; Feast's `duckdb` store reads Delta through DuckDB's `delta` extension,
which is downloaded at run time. This store keeps the DuckDB store's ibis point-in-time logic and
swaps only the reader: `deltalake.DeltaTable` resolves the snapshot from the log, so exactly the
table's current (or pinned) files are read. The snapshot is read into memory, projected to the
columns a query needs; cluster-scale materialization uses Feast's Ray engine instead.

Source paths. A `FileSource` path that is an absolute path or a URI (`/abs`, `file://`, `s3://`, ...)
is used as is; a relative path (`signals/text_embedding/v1`) is joined to the lake URI, which is
`$SIGNALS_LAKE_URI` if set, else the config's `lake_uri` (relative to the repo), else
`<repo>/../lake`. A path may end in `@<version>` (`signals/text_embedding/v1@3`) to read that Delta
version. `storage_options` are handed to delta-rs as they are (`${VAR}` works in the YAML).

Missing tables. Materialization (`pull_latest_*`, `pull_all_*`) treats a table that does not exist
yet as empty and logs a warning: a signal that has not been extracted yet has nothing to serve, and
`feast materialize` over every view must not fail on a fresh lake. `get_historical_features` raises
`DeltaTableNotFoundError`: a training set silently full of nulls is worse than an error.

Writes (`offline_write_batch`, feature logging, saved datasets) are not supported: signal tables are
written by the extract jobs alone, with their contracts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ibis
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from feast.data_format import DeltaFormat
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.ibis import (
    get_historical_features_ibis,
    pull_all_from_table_or_query_ibis,
    pull_latest_from_table_or_query_ibis,
)
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig
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
    wanted = list(dict.fromkeys(columns))
    present = {f.name for f in table.schema().fields}
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DeltaSourceError(
            f"the Delta table of source '{data_source.name}' lacks columns the query needs",
            details=[f"missing: {', '.join(missing)}", f"present: {', '.join(sorted(present))}"],
        )
    return table.to_pyarrow_table(columns=wanted)


def _empty_table(columns: list[str], timestamp_columns: list[str]) -> pa.Table:
    # Column types of a table that does not exist are unknown; null columns hold zero rows fine.
    utc = pa.timestamp("us", tz="UTC")
    return pa.table(
        {c: pa.array([], utc if c in timestamp_columns else pa.null()) for c in columns}
    )


def _pull_reader(config: RepoConfig, columns: list[str], timestamp_columns: list[str]) -> Reader:
    def read(data_source: DataSource, _repo_path: str) -> Table:
        try:
            return ibis.memtable(read_delta_source(config, data_source, columns))
        except DeltaTableNotFoundError as e:
            logger.warning("%s; nothing to materialize from it yet", e.message)
            return ibis.memtable(_empty_table(columns, timestamp_columns))

    return read


def _historical_reader(
    config: RepoConfig, feature_views: list[FeatureView], feature_refs: list[str]
) -> Reader:
    # Columns each source must provide: its views' join keys, requested features and timestamps,
    # named as they are in the table (before field mapping).
    needed: dict[int, list[str]] = {}
    for view in feature_views:
        source = view.batch_source
        if source is None:
            continue
        prefix = f"{view.projection.name_to_use()}:"
        features = [ref.removeprefix(prefix) for ref in feature_refs if ref.startswith(prefix)]
        join_keys = list(view.projection.join_key_map) or [e.name for e in view.entity_columns]
        to_source = {feast_name: column for column, feast_name in source.field_mapping.items()}
        columns = [to_source.get(name, name) for name in [*join_keys, *features]]
        columns += [c for c in (source.timestamp_field, source.created_timestamp_column) if c]
        needed.setdefault(id(source), []).extend(columns)

    def read(data_source: DataSource, _repo_path: str) -> Table:
        return ibis.memtable(read_delta_source(config, data_source, needed.get(id(data_source))))

    return read


def _refuse_write(*_args: Any, **_kwargs: Any) -> None:
    raise UnsupportedOperationError(
        "DeltaOfflineStore is read-only",
        hint="signal tables are written by the extract jobs; persist training sets yourself",
    )


def _pull_arguments(
    config: RepoConfig,
    data_source: DataSource,
    join_key_columns: list[str],
    feature_name_columns: list[str],
    timestamp_field: str,
    created_timestamp_column: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
) -> dict[str, Any]:
    """What both materialization pulls hand to Feast's ibis functions: our reader, no writer."""
    timestamps = [c for c in (timestamp_field, created_timestamp_column) if c]
    return {
        "config": config,
        "data_source": data_source,
        "join_key_columns": join_key_columns,
        "feature_name_columns": feature_name_columns,
        "timestamp_field": timestamp_field,
        "created_timestamp_column": created_timestamp_column,
        "start_date": start_date,
        "end_date": end_date,
        "data_source_reader": _pull_reader(
            config, [*join_key_columns, *feature_name_columns, *timestamps], timestamps
        ),
        "data_source_writer": _refuse_write,
        "staging_location": config.offline_store.staging_location,
        "staging_location_endpoint_override": config.offline_store.staging_location_endpoint_override,
    }


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
        return pull_latest_from_table_or_query_ibis(
            **_pull_arguments(
                config,
                data_source,
                join_key_columns,
                feature_name_columns,
                timestamp_field,
                created_timestamp_column,
                start_date,
                end_date,
            )
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
        return pull_all_from_table_or_query_ibis(
            **_pull_arguments(
                config,
                data_source,
                join_key_columns,
                feature_name_columns,
                timestamp_field,
                created_timestamp_column,
                start_date,
                end_date,
            )
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
        """Point-in-time join over the Delta snapshots; a missing table is an error, not nulls."""
        return get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=_historical_reader(config, feature_views, feature_refs),
            data_source_writer=_refuse_write,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            filter_by_created_timestamp=filter_by_created_timestamp,
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
