"""Feast's Milvus online store, with what the vector index needs beyond Feast's methods.

Feast 0.67's Milvus store writes, reads and searches; an item that left the catalog must also
leave the index, and a materialization should end with Milvus's segments sealed so the next
search uses the built index. Everything else (collections, keys, filters) is Feast's.
"""

from __future__ import annotations

from typing import Literal

from feast import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.milvus_online_store.milvus import (
    MilvusOnlineStore as FeastMilvusOnlineStore,
)
from feast.infra.online_stores.milvus_online_store.milvus import (
    MilvusOnlineStoreConfig as FeastMilvusConfig,
)
from feast.infra.online_stores.milvus_online_store.milvus import _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.repo_config import RepoConfig

TYPE = "feature_repo.milvus_online_store.MilvusOnlineStore"


class MilvusOnlineStoreConfig(FeastMilvusConfig):
    """Feast's Milvus options, unchanged; only the type names this store."""

    type: Literal["feature_repo.milvus_online_store.MilvusOnlineStore"] = TYPE  # type: ignore[assignment]


class MilvusOnlineStore(FeastMilvusOnlineStore):
    """Feast's Milvus store, plus deleting entities and sealing writes."""

    def delete_entities(
        self, config: RepoConfig, table: FeatureView, keys: list[EntityKeyProto]
    ) -> int:
        """Delete the rows of `keys` (Feast's primary key: the serialized entity key, in hex)."""
        client = self._connect(config)
        name = _table_id(config.project, table)
        if not client.has_collection(name):
            return 0
        version = config.entity_key_serialization_version
        ids = [serialize_entity_key(k, version).hex() for k in keys]
        result = client.delete(collection_name=name, ids=ids)
        return int(result.get("delete_count", 0) if isinstance(result, dict) else len(ids))

    def finish_writes(self, config: RepoConfig, table: FeatureView) -> None:
        """Flush the collection: rows written so far are sealed into indexed segments."""
        client = self._connect(config)
        name = _table_id(config.project, table)
        if client.has_collection(name):
            client.flush(name)
