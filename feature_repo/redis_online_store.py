"""Feast's Redis online store, answering NOT_FOUND for an item that has no row in a feature view.

Feast 0.67's Redis store turns a missing entity into empty values with status PRESENT, while its
SQLite store (and the protocol) say NOT_FOUND. A downstream service must be able to tell "this item
has no loudness" from "its loudness is null", whichever store serves it. The view's `_ts:<view>`
field is written with every row, so its absence is exactly "no row": this store returns no
features then, and Feast reports NOT_FOUND. Everything else (writes, key layout, TTL) is Feast's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from feast.infra.online_stores.redis import RedisOnlineStore as FeastRedisOnlineStore
from feast.infra.online_stores.redis import RedisOnlineStoreConfig as FeastRedisConfig
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from feature_repo.indexed_store import VectorIndexed
from feature_repo.vector_index import VectorIndexConfig

TYPE = "feature_repo.redis_online_store.RedisOnlineStore"


class RedisOnlineStoreConfig(FeastRedisConfig):
    """Feast's Redis options, and the vector index (none: no similarity search)."""

    type: Literal["feature_repo.redis_online_store.RedisOnlineStore"] = TYPE  # type: ignore[assignment]
    vector_index: VectorIndexConfig | None = None


class RedisOnlineStore(VectorIndexed, FeastRedisOnlineStore):
    """Feast's Redis store; an entity without the view's timestamp field has no row. It keeps
    the vector index in step (`feature_repo.indexed_store`)."""

    def _get_features_for_entity(
        self,
        values: Sequence[bytes | None],
        feature_view: str,
        requested_features: list[str],
    ) -> tuple[datetime | None, dict[str, ValueProto] | None]:
        timestamp_field = requested_features.index(f"_ts:{feature_view}")
        if not values[timestamp_field]:
            return None, None
        return super()._get_features_for_entity(values, feature_view, requested_features)
