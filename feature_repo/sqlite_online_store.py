"""Feast's SQLite online store with this repository's vector index beside it (`vector_index:`).

Everything Feast's SQLite store does is unchanged (tables, keys, values); searchable views are
also written into the vector index, and document retrieval searches it. Feast's own SQLite
vector search (sqlite-vec) is enabled only on Python 3.10 in Feast 0.67, and it scans every
vector of a view for each query.
"""

from __future__ import annotations

from typing import Literal

from feast.infra.online_stores.sqlite import SqliteOnlineStore as FeastSqliteOnlineStore
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig as FeastSqliteConfig

from feature_repo.indexed_store import VectorIndexed
from feature_repo.vector_index import VectorIndexConfig

TYPE = "feature_repo.sqlite_online_store.SqliteOnlineStore"


class SqliteOnlineStoreConfig(FeastSqliteConfig):
    """Feast's SQLite options, and the vector index (none: no similarity search)."""

    type: Literal["feature_repo.sqlite_online_store.SqliteOnlineStore"] = TYPE  # type: ignore[assignment]
    vector_index: VectorIndexConfig | None = None


class SqliteOnlineStore(VectorIndexed, FeastSqliteOnlineStore):
    """Feast's SQLite store, keeping a vector index in step."""
