"""The vector index beside the online store: what Feast's `retrieve_online_documents_v2` searches.

The online store (SQLite or Redis) keeps serving every feature by content ID, embeddings
included. A feature view whose embedding is declared searchable (a field with `vector_index`) is
also written, by the same materialization, into a vector store: embedded LanceDB by default (a
directory, no server), or Milvus (`uri:` a Milvus server; `path:` Milvus Lite, its embedded form).
The index holds a projection of the view: the content ID, the vector and `content_type`, so that
the filters a product needs are pushed down into the vector store's own search.

`content_type` is the prefix of the content ID (`track:000042`): the catalog names its items
`<content_type>:<id>`. `language` is not stored in the index; it is the language served by
`text_language@1`, looked up for the candidates of a search (`feature_repo.indexed_store`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.filter_models import ComparisonFilter, CompoundFilter
from feast.infra.online_stores.online_store import OnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.types import String
from pydantic import StrictStr

CONTENT_TYPE = "content_type"
JOIN_KEY = "content_id"
DISTANCE = "distance"
Document = tuple[datetime | None, EntityKeyProto | None, dict[str, ValueProto] | None]


class VectorIndexConfig(FeastConfigBaseModel):
    """`vector_index:` under the online store in `feature_store.yaml`."""

    type: Literal["lance", "milvus"] = "lance"
    # lance: the dataset directory (or an object-store URI); milvus: a Milvus Lite file (*.db).
    path: StrictStr = "data/vectors.lance"
    # milvus: a Milvus server (`http://host:19530`), which takes precedence over `path`.
    uri: StrictStr | None = None
    token: StrictStr | None = None
    # Passed to the backend's own config (index type and search parameters, e.g. `nprobes`).
    options: dict[str, Any] = pydantic.Field(default_factory=dict)


def vector_field(view: FeatureView) -> Field | None:
    """The view's searchable embedding (the field Feast marks `vector_index`), if any."""
    return next((f for f in view.features if f.vector_index), None)


def content_type_of(content_id: str) -> str:
    """The item's content type, from its ID (`track:000042` → `track`); '' without a prefix."""
    head, sep, _ = content_id.partition(":")
    return head if sep else ""


_CONTENT = Entity(name="content", join_keys=[JOIN_KEY], value_type=ValueType.STRING)


def index_view(view: FeatureView) -> FeatureView:
    """The projection of a searchable view that the vector store holds: key, vector, type."""
    field = vector_field(view)
    assert field is not None, f"{view.name} has no searchable embedding"
    projected = FeatureView(
        name=view.name,
        entities=[_CONTENT],
        schema=[Field(name=JOIN_KEY, dtype=String), field, Field(name=CONTENT_TYPE, dtype=String)],
        source=FileSource(path="unused", timestamp_field="event_timestamp"),
        online=True,
        ttl=view.ttl,
    )
    projected.entity_columns = [Field(name=JOIN_KEY, dtype=String)]
    return projected


class VectorIndex:
    """One vector store, addressed per searchable feature view."""

    def __init__(self, config: VectorIndexConfig) -> None:
        self.config = config
        self.store = _backend_store(config.type)
        self._views: dict[str, FeatureView] = {}
        self._configs: dict[tuple[int, str], RepoConfig] = {}

    def _view(self, view: FeatureView) -> FeatureView:
        if view.name not in self._views:
            self._views[view.name] = index_view(view)
        return self._views[view.name]

    def repo_config(self, config: RepoConfig, view: FeatureView) -> RepoConfig:
        """The repository config with the vector store as its online store, sized for `view`."""
        field = vector_field(view)
        dim = field.vector_length if field else 0
        key = (id(config), view.name)
        if key not in self._configs:
            copied = config.model_copy()
            # RepoConfig builds its online store config once, into a private attribute.
            copied.online_config = copied._online_store = _backend_config(self.config, dim)
            self._configs[key] = copied
        return self._configs[key]

    def write(
        self,
        config: RepoConfig,
        view: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
    ) -> None:
        """Write the rows' vectors; a row whose vector is null (a tombstone) is deleted."""
        field = vector_field(view)
        assert field is not None
        rows, gone = [], []
        for key, values, event_ts, created_ts in data:
            vector = values.get(field.name)
            content_id = key.entity_values[0].string_val
            if vector is None or not vector.HasField("float_list_val"):
                gone.append(key)
                continue
            projected = {
                JOIN_KEY: ValueProto(string_val=content_id),
                field.name: vector,
                CONTENT_TYPE: ValueProto(string_val=content_type_of(content_id)),
            }
            rows.append((key, projected, event_ts, created_ts))
        target = self.repo_config(config, view)
        if rows:
            self.store.online_write_batch(target, self._view(view), rows, None)
        if gone:
            self.delete(config, view, gone)

    def delete(self, config: RepoConfig, view: FeatureView, keys: list[EntityKeyProto]) -> int:
        """Remove items from the index (they left the catalog); how many it held."""
        target = self.repo_config(config, view)
        return self.store.delete_entities(target, self._view(view), keys)  # type: ignore[attr-defined]

    def finish(self, config: RepoConfig, view: FeatureView) -> None:
        """After a materialization's last batch: let the store fold new rows into its index."""
        self.store.finish_writes(self.repo_config(config, view), self._view(view))  # type: ignore[attr-defined]

    def search(
        self,
        config: RepoConfig,
        view: FeatureView,
        embedding: list[float],
        top_k: int,
        filters: ComparisonFilter | CompoundFilter | None,
    ) -> list[Document]:
        """The `top_k` nearest items under `filters`, nearest first, `distance` beside each."""
        field = vector_field(view)
        assert field is not None
        if len(embedding) != field.vector_length:
            raise ValueError(
                f"{view.name}: the query vector has {len(embedding)} dimensions, "
                f"the index {field.vector_length}"
            )
        _check_keys(filters)
        target = self.repo_config(config, view)
        found = self.store.retrieve_online_documents_v2(
            target,
            self._view(view),
            [],  # the key and the distance are the answer: no column more is read
            embedding,
            top_k,
            field.vector_search_metric,
            None,
            filters,
        )
        return [
            (ts, key, values)
            for ts, key, values in (
                _as_distance(doc, field.vector_search_metric, self.config) for doc in found
            )
            if key is not None
        ]

    def update(self, config: RepoConfig, deleted: list[FeatureView]) -> None:
        """Drop the index of views that are no longer registered."""
        for view in deleted:
            if vector_field(view) is not None:
                target = self.repo_config(config, view)
                self.store.teardown(target, [self._view(view)], [])


INDEX_KEYS = (JOIN_KEY, CONTENT_TYPE)


def _check_keys(filters: ComparisonFilter | CompoundFilter | None) -> None:
    if filters is None:
        return
    if isinstance(filters, CompoundFilter):
        for part in filters.filters:
            _check_keys(part)
        return
    if filters.key not in INDEX_KEYS:
        raise ValueError(
            f"cannot filter on {filters.key!r}: the index filters on {', '.join(INDEX_KEYS)}"
            " (and language)"
        )


def _as_distance(doc: Document, metric: str | None, config: VectorIndexConfig) -> Document:
    """Milvus answers a similarity for cosine and inner product (larger is nearer); Lance and
    this API answer a distance (smaller is nearer): 1 − similarity."""
    ts, key, values = doc
    if config.type == "milvus" and values and (metric or "cosine") in ("cosine", "inner_product"):
        similarity = values[DISTANCE].float_val
        values = {**values, DISTANCE: ValueProto(float_val=1.0 - similarity)}
    return ts, key, values


def _backend_store(kind: str) -> OnlineStore:
    # Imported when used: a process that never searches does not pay for a vector store's import.
    if kind == "lance":
        from feature_repo.lance_online_store import LanceOnlineStore

        return LanceOnlineStore()
    from feature_repo.milvus_online_store import MilvusOnlineStore

    return MilvusOnlineStore()


def _backend_config(index: VectorIndexConfig, dim: int) -> FeastConfigBaseModel:
    if index.type == "lance":
        from feature_repo.lance_online_store import LanceOnlineStoreConfig

        options = {"bitmap_columns": [CONTENT_TYPE], "search_timestamps": False, **index.options}
        return LanceOnlineStoreConfig(path=index.path, **options)
    from feature_repo.milvus_online_store import MilvusOnlineStoreConfig

    # Feast's Milvus store sizes every vector field by one `embedding_dim`: each searchable view
    # gets its own.
    options = {
        "index_type": "HNSW",
        "index_params": {"M": 16, "efConstruction": 200},
        "search_params": {"ef": 128},
        **index.options,
    }
    location = {"uri": index.uri, "token": index.token} if index.uri else {"path": index.path}
    return MilvusOnlineStoreConfig(embedding_dim=dim, vector_enabled=True, **location, **options)
