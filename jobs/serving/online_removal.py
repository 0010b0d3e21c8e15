"""Deleting removed items from the online store, one implementation per Feast online store.

Feast materializes values but has no per-entity delete: an item that left the catalog would keep
being served from the online store until its TTL. Each store gets a `Remover` that deletes the
item's row of one feature view through the store's own connection and key layout; a store
without one fails loudly rather than serving removed items silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from jobs.serving.errors import ServingConfigError

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView


class Remover(ABC):
    """Deletes the online rows of some entities from one feature view."""

    @abstractmethod
    def delete(self, store: FeatureStore, view: FeatureView, content_ids: list[str]) -> int:
        """Delete the items' rows of `view`; returns how many items had one."""


def _entity_key(content_id: str):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from features.standard import JOIN_KEY

    return EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=content_id)])


class SqliteRemover(Remover):
    """One table per feature view, keyed by the serialized entity key (Feast's layout)."""

    def delete(self, store: FeatureStore, view: FeatureView, content_ids: list[str]) -> int:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.sqlite import _quote_id, _table_id

        config = store.config
        online = store._get_provider().online_store
        conn = online._get_conn(config)
        table = _table_id(
            config.project, view, config.registry.enable_online_feature_view_versioning
        )
        keys = [
            (serialize_entity_key(_entity_key(cid), config.entity_key_serialization_version),)
            for cid in content_ids
        ]
        with conn:
            before = conn.total_changes
            conn.executemany(f"DELETE FROM {_quote_id(table)} WHERE entity_key = ?", keys)
            deleted_rows = conn.total_changes - before
        return deleted_rows // max(1, len(view.features))


class RedisRemover(Remover):
    """One hash per entity, a field per feature of each view plus `_ts:<view>` (Feast's layout)."""

    def delete(self, store: FeatureStore, view: FeatureView, content_ids: list[str]) -> int:
        from feast.infra.online_stores.redis import _mmh3, _redis_key, _versioned_fv_name

        config = store.config
        online = store._get_provider().online_store
        client = online._get_client(config.online_store)
        name = _versioned_fv_name(view, config)
        fields = [_mmh3(f"{name}:{f.name}") for f in view.features] + [f"_ts:{name}".encode()]
        with client.pipeline(transaction=False) as pipe:
            for cid in content_ids:
                key = _redis_key(
                    config.project, _entity_key(cid), config.entity_key_serialization_version
                )
                pipe.hdel(key, *fields)
            removed = pipe.execute()
        return sum(1 for n in removed if n)


REMOVERS: dict[str, type[Remover]] = {
    "sqlite": SqliteRemover,
    "feature_repo.sqlite_online_store.SqliteOnlineStore": SqliteRemover,  # Feast's, same layout
    "redis": RedisRemover,
    "feature_repo.redis_online_store.RedisOnlineStore": RedisRemover,  # Feast's, same key layout
}


class IndexedRemover(Remover):
    """The store's own remover, then the same items out of its vector index."""

    def __init__(self, inner: Remover) -> None:
        self.inner = inner

    def delete(self, store: FeatureStore, view: FeatureView, content_ids: list[str]) -> int:
        """Both, so a removed item is neither served nor returned as a neighbour."""
        deleted = self.inner.delete(store, view, content_ids)
        online = store._get_provider().online_store
        online.unindex(store.config, view, [_entity_key(cid) for cid in content_ids])
        return deleted


def remover_for(store: FeatureStore) -> Remover:
    """The remover of the store's online store type, or a clear error naming those supported."""
    kind = store.config.online_store.type
    if kind not in REMOVERS:
        raise ServingConfigError(
            f"online store {kind!r} cannot delete the items that left the catalog",
            hint=f"supported: {', '.join(REMOVERS)}; add a Remover in jobs/serving/online_removal.py",
        )
    remover = REMOVERS[kind]()
    if hasattr(store._get_provider().online_store, "unindex"):
        return IndexedRemover(remover)
    return remover
