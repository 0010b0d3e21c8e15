"""What an online store of this repository adds to Feast's: a vector index it keeps in step.

`VectorIndexed` is mixed into the SQLite and Redis stores (`feature_repo.sqlite_online_store`,
`feature_repo.redis_online_store`). Feast calls them as it calls its own: every write of a
searchable view also goes into the vector index (`vector_index:` in the store's config), and
`retrieve_online_documents_v2` — `FeatureStore.retrieve_online_documents_v2`, `POST /search` of
`feast serve` — searches it and answers with the view's features read from the online store.

Filters on `content_id` and `content_type` run inside the vector store's search; a filter on
`language` is checked against the language `text_language@1` serves for each candidate, asking
the index for more candidates until `top_k` pass or the index has no more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from feast import Entity, FeatureView, Field, FileSource
from feast.filter_models import ComparisonFilter, CompoundFilter
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.types import String

from feature_repo.vector_index import DISTANCE, JOIN_KEY, Document, VectorIndex, vector_field

LANGUAGE = "language"
LANGUAGE_SIGNAL = "text_language@1"
MAX_K = 1000
SLACK = 3
MAX_CANDIDATES = 20_000  # how far a language filter may widen one search
Filters = ComparisonFilter | CompoundFilter | None


class VectorIndexed:
    """Mixin for a Feast `OnlineStore`: writes feed the vector index, searches read it."""

    _index: VectorIndex | None = None

    def vector_index(self, config: RepoConfig) -> VectorIndex | None:
        """The index the config names (`online_store.vector_index`), opened once."""
        wanted = getattr(config.online_store, "vector_index", None)
        if wanted is None:
            return None
        if self._index is None or self._index.config != wanted:
            self._index = VectorIndex(wanted)
        return self._index

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        super().online_write_batch(config, table, data, progress)  # type: ignore[misc]
        self.index_rows(config, table, data)

    def index_rows(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
    ) -> None:
        """Write the rows' vectors into the index, when the view is searchable."""
        index = self.vector_index(config)
        if index is not None and vector_field(table) is not None and data:
            index.write(config, table, data)

    def finish_index(self, config: RepoConfig, table: FeatureView) -> None:
        """After a materialization of `table`: let the vector store index what was written."""
        index = self.vector_index(config)
        if index is not None and vector_field(table) is not None:
            index.finish(config, table)

    def unindex(self, config: RepoConfig, table: FeatureView, keys: list[EntityKeyProto]) -> int:
        """Remove items that left the catalog from the index; how many it held."""
        index = self.vector_index(config)
        if index is None or vector_field(table) is None or not keys:
            return 0
        return index.delete(config, table, keys)

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        super().update(  # type: ignore[misc]
            config, tables_to_delete, tables_to_keep, entities_to_delete, entities_to_keep, partial
        )
        index = self.vector_index(config)
        if index is not None:
            index.update(config, list(tables_to_delete))

    def teardown(
        self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]
    ) -> None:
        super().teardown(config, tables, entities)  # type: ignore[misc]
        index = self.vector_index(config)
        if index is not None:
            index.update(config, list(tables))

    def retrieve_online_documents_v2(
        self,
        config: RepoConfig,
        table: FeatureView,
        requested_features: list[str],
        embedding: list[float] | None,
        top_k: int,
        distance_metric: str | None = None,
        query_string: str | None = None,
        filters: Filters = None,
        include_feature_view_version_metadata: bool = False,
    ) -> list[Document]:
        """The `top_k` items nearest to `embedding` under `filters`, nearest first: each with
        `distance` and the requested features as the online store serves them."""
        index = self.vector_index(config)
        if index is None:
            raise ValueError("no vector index is configured: set `vector_index:` in the store")
        if vector_field(table) is None:
            raise ValueError(f"{table.name} is not searchable: it declares no searchable embedding")
        if embedding is None:
            raise ValueError("this store searches by vector: give `query` (an embedding)")
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_K:
            raise ValueError(f"top_k must be an integer from 1 to {MAX_K}, not {top_k!r}")
        in_index, languages, left_out = split_filters(filters)
        # A few more than asked: an item deleted a moment ago may still be in a reader's view of
        # the index (it is already gone from the online store, and dropped below).
        wanted = top_k + SLACK + len(left_out)
        found = self._search(config, index, table, embedding, wanted, in_index, languages)
        found = [doc for doc in found if _content_id(doc) not in left_out]
        # Feast 0.67 builds the response by pairing these rows with the entities sorted by key
        # (`utils._get_unique_entities_from_values`): rows in any other order would give one
        # item another's distance. Sorted by key, they pair right; callers sort by distance.
        found.sort(key=_content_id)
        keys = [key for _, key, _ in found]
        served = super().online_read(config, table, keys, requested_features)  # type: ignore[misc]
        present = [
            (
                ts,
                key,
                {
                    **{f: values[f] for f in requested_features if f in values},
                    DISTANCE: doc[DISTANCE],
                },
            )
            for (_, key, doc), (ts, values) in zip(found, served, strict=True)
            if values is not None  # gone from the online store since the index answered
        ]
        nearest = sorted(present, key=lambda doc: doc[2][DISTANCE].float_val)[:top_k]
        return sorted(nearest, key=_content_id)

    def _search(
        self,
        config: RepoConfig,
        index: VectorIndex,
        table: FeatureView,
        embedding: list[float],
        top_k: int,
        filters: Filters,
        languages: Callable[[str | None], bool] | None,
    ) -> list[Document]:
        asked = top_k if languages is None else top_k * 4
        while True:
            found = index.search(config, table, embedding, asked, filters)
            if languages is None:
                return found[:top_k]
            kept = [
                d
                for d, lang in zip(found, self._languages(config, found), strict=True)
                if languages(lang)
            ]
            if len(kept) >= top_k or len(found) < asked or asked >= MAX_CANDIDATES:
                return kept[:top_k]
            asked = min(asked * 4, MAX_CANDIDATES)

    def _languages(self, config: RepoConfig, found: list[Document]) -> list[str | None]:
        view = _language_view()
        keys = [key for _, key, _ in found]
        read = super().online_read(config, view, keys, [LANGUAGE])  # type: ignore[misc]
        return [
            values[LANGUAGE].string_val if values and LANGUAGE in values else None
            for _, values in read
        ]


def split_filters(
    filters: Filters,
) -> tuple[Filters, Callable[[str | None], bool] | None, set[str]]:
    """What the index runs, a test of an item's language (None: no language filter), and the
    content IDs left out (`content_id ne …`, as a search by an item's ID leaves the item out).

    A language condition may stand alone or in a top-level `and`: an `or` mixing it with index
    conditions would need the language of every item. Leaving IDs out is done on the answer, not
    in the index: a `!=` prefilter would make the vector store scan every row.
    """
    if filters is None:
        return None, None, set()
    parts = (
        filters.filters
        if isinstance(filters, CompoundFilter) and filters.type == "and"
        else [filters]
    )
    on_language = [p for p in parts if isinstance(p, ComparisonFilter) and p.key == LANGUAGE]
    left_out = [
        p
        for p in parts
        if isinstance(p, ComparisonFilter) and p.key == JOIN_KEY and p.type == "ne"
        and isinstance(p.value, str)
    ]  # fmt: skip
    rest = [p for p in parts if p not in on_language and p not in left_out]
    if any(_mentions_language(p) for p in rest):
        raise ValueError("a language filter may only be combined with others by `and`")
    tests = [_test(p) for p in on_language]
    language = (lambda lang: all(t(lang) for t in tests)) if tests else None
    return _all_of(rest, filters), language, {str(p.value) for p in left_out}


def _all_of(parts: list[ComparisonFilter | CompoundFilter], whole: Filters) -> Filters:
    """`parts` and-ed, as few levels as it takes (`whole` itself when nothing was taken out)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if isinstance(whole, CompoundFilter) and whole.filters == parts:
        return whole
    return CompoundFilter(type="and", filters=parts)


def _content_id(doc: Document) -> str:
    return doc[1].entity_values[0].string_val if doc[1] else ""


def _mentions_language(f: ComparisonFilter | CompoundFilter) -> bool:
    if isinstance(f, CompoundFilter):
        return any(_mentions_language(p) for p in f.filters)
    return f.key == LANGUAGE


def _test(f: ComparisonFilter) -> Callable[[str | None], bool]:
    values = f.value if isinstance(f.value, list) else [f.value]
    if f.type in ("eq", "in"):
        return lambda lang: lang in values
    if f.type in ("ne", "nin"):
        return lambda lang: lang not in values
    raise ValueError(f"language filters compare with eq, ne, in or nin, not {f.type!r}")


_LANGUAGE_VIEW: list[FeatureView] = []


def _language_view() -> FeatureView:
    """`text_language@1`'s feature view as the online store keys it (name and feature)."""
    if not _LANGUAGE_VIEW:
        from features import get_signal

        signal = get_signal(LANGUAGE_SIGNAL)
        view = FeatureView(
            name=signal.feature_view_name,
            entities=[],
            schema=[Field(name=LANGUAGE, dtype=String)],
            source=FileSource(path="unused", timestamp_field="event_timestamp"),
        )
        _LANGUAGE_VIEW.append(view)
    return _LANGUAGE_VIEW[0]
