"""`DeltaOfflineStore`: Feast's DuckDB offline store with a reader that goes through the Delta log.

Writes (`offline_write_batch`, feature logging, saved datasets) are not supported: signal tables
are written by the extract jobs alone, with their contracts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig
from ibis.backends import BaseBackend
from pydantic import Field, StrictStr

from feature_repo.delta_offline.pull_job import pull_job
from feature_repo.delta_offline.ray_join import PartitionableJob
from feature_repo.delta_offline.retrieval import JoinRequest, plan_join
from feature_repo.delta_offline.snapshots import Snapshot, ViewColumns
from feature_repo.delta_offline.tables import open_delta_table, refuse_write
from feature_repo.errors import DeltaTableNotFoundError, UnsupportedOperationError

logger = logging.getLogger(__name__)


# Beside the store: Feast finds the store's class in its config class's module.
class DeltaOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """`offline_store:` settings; subclasses DuckDB's config because the ibis functions read it."""

    type: StrictStr = "feature_repo.delta_offline_store.DeltaOfflineStore"
    lake_uri: StrictStr | None = None
    storage_options: dict[str, str] = Field(default_factory=dict)


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
        return pull_job(
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
        return pull_job(
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
        streams it (`feature_readers`) never holds the history or the result, and
        `write_partitioned` runs the same join in Ray tasks, a partition of the keys each.
        """

        def delta_snapshot(backend: BaseBackend, cols: ViewColumns, columns: list[str]) -> Snapshot:
            return Snapshot.of_delta(backend, config, cols.source, columns)

        request = JoinRequest(
            config,
            feature_views,
            feature_refs,
            project,
            full_feature_names,
            filter_by_created_timestamp,
        )
        return plan_join(request, entity_df, registry, delta_snapshot, PartitionableJob)

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
        refuse_write()

    @staticmethod
    def write_logged_features(*args: Any, **kwargs: Any) -> None:
        """Refused: this store writes nothing; log features to a store that does."""
        refuse_write()

    @staticmethod
    def compute_monitoring_metrics(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Refused rather than inherited: DuckDB's version reads Delta through the extension."""
        raise UnsupportedOperationError("DeltaOfflineStore does not compute monitoring metrics")

    @staticmethod
    def get_monitoring_max_timestamp(*args: Any, **kwargs: Any) -> datetime | None:
        """Refused rather than inherited: DuckDB's version reads Delta through the extension."""
        raise UnsupportedOperationError("DeltaOfflineStore does not compute monitoring metrics")
