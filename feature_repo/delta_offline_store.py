"""The Delta offline store under the import path Feast's configuration names
(`offline_store: type: feature_repo.delta_offline_store.DeltaOfflineStore`); the code lives in
`feature_repo.delta_offline`, a module per job (see its package docstring)."""

from __future__ import annotations

from feature_repo.delta_offline.config import (
    resolve_lake_uri,
    resolve_table_uri,
    split_version,
)
from feature_repo.delta_offline.pull_job import DeltaPullJob
from feature_repo.delta_offline.retrieval import DeltaRetrievalJob
from feature_repo.delta_offline.store import DeltaOfflineStore, DeltaOfflineStoreConfig
from feature_repo.delta_offline.tables import (
    delta_dataset,
    open_delta_table,
    out_of_core_backend,
    read_delta_source,
)

__all__ = [
    "DeltaOfflineStore",
    "DeltaOfflineStoreConfig",
    "DeltaPullJob",
    "DeltaRetrievalJob",
    "delta_dataset",
    "open_delta_table",
    "out_of_core_backend",
    "read_delta_source",
    "resolve_lake_uri",
    "resolve_table_uri",
    "split_version",
]
