"""The LanceDB online store against Feast's contract, checked against exact numpy search."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from feast import Entity, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.filter_models import ComparisonFilter, CompoundFilter
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import FloatList, Value
from feast.types import Array, Float32, String

from feature_repo.lance_online_store import TYPE, LanceFilterTranslator, LanceOnlineStore

DIM, ROWS, K = 8, 300, 10
TYPES = ["article", "video", "it's"]  # a quote in a value must not break the SQL
T0 = datetime(2024, 1, 1)

VIEW = FeatureView(
    name="emb",
    entities=[Entity(name="content", join_keys=["content_id"], value_type=ValueType.STRING)],
    schema=[
        Field(
            name="embedding",
            dtype=Array(Float32),
            vector_index=True,
            vector_length=DIM,
            vector_search_metric="cosine",
        ),
        Field(name="content_type", dtype=String),
    ],
    source=FileSource(path="unused.parquet", timestamp_field="ts"),
)


def config(tmp_path: Path, **store: Any) -> RepoConfig:
    return RepoConfig(
        project="t",
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store={"type": TYPE, "path": "vectors.lance", **store},
        entity_key_serialization_version=3,
        repo_path=tmp_path,
    )


def key(i: int) -> EntityKey:
    return EntityKey(join_keys=["content_id"], entity_values=[Value(string_val=f"c{i}")])


def row(i: int, vector: np.ndarray, kind: str, ts: datetime = T0) -> tuple:
    values = {
        "embedding": Value(float_list_val=FloatList(val=vector.tolist())),
        "content_type": Value(string_val=kind),
    }
    return key(i), values, ts, None


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(ROWS, DIM)).astype("f4"), [TYPES[i % 3] for i in range(ROWS)]


def filled(tmp_path: Path, data: tuple[np.ndarray, list[str]], **store: Any) -> tuple:
    vectors, kinds = data
    cfg, store_ = config(tmp_path, **store), LanceOnlineStore()
    rows = [row(i, vectors[i], kinds[i]) for i in range(ROWS)]
    store_.online_write_batch(cfg, VIEW, rows[:150], None)
    store_.online_write_batch(cfg, VIEW, rows[150:], None)
    store_.finish_writes(cfg, VIEW)
    return cfg, store_


def exact(vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray | None = None) -> tuple:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distance = 1 - unit @ (query / np.linalg.norm(query))
    if allowed is not None:
        distance = np.where(allowed, distance, np.inf)
    order = np.argsort(distance)[:K]
    return [f"c{i}" for i in order], distance[order]


def search(store: LanceOnlineStore, cfg: RepoConfig, query: np.ndarray, **kw: Any) -> list:
    return store.retrieve_online_documents_v2(cfg, VIEW, ["content_type"], query.tolist(), K, **kw)


def ids(results: list) -> list[str]:
    return [entity.entity_values[0].string_val for _, entity, _ in results]


@pytest.mark.parametrize("index_min_rows", [10_000, 100], ids=["flat", "indexed"])
def test_neighbours_match_exact_cosine_search(tmp_path, data, index_min_rows):
    cfg, store = filled(tmp_path, data, index_min_rows=index_min_rows)
    indices = store._open(cfg, VIEW).list_indices()
    assert any("embedding" in i.columns for i in indices) == (index_min_rows < ROWS)
    for query in np.random.default_rng(1).normal(size=(5, DIM)).astype("f4"):
        expected, distances = exact(data[0], query)
        results = search(store, cfg, query)
        assert ids(results) == expected
        got = [values["distance"].float_val for _, _, values in results]
        np.testing.assert_allclose(got, distances, atol=1e-4)
        ts, _, values = results[0]
        assert ts == T0 and values["content_type"].string_val in TYPES


def test_filters_are_prefilters_in_sql(tmp_path, data):
    cfg, store = filled(tmp_path, data, index_min_rows=100)
    vectors, kinds = data
    query = vectors[0] + 0.1
    for kind in TYPES:
        results = search(
            store, cfg, query, filters=ComparisonFilter(type="eq", key="content_type", value=kind)
        )
        assert {v["content_type"].string_val for _, _, v in results} == {kind}
        assert ids(results) == exact(vectors, query, np.array(kinds) == kind)[0]
    inject = ComparisonFilter(type="eq", key="content_type", value="x' OR '1'='1")
    assert search(store, cfg, query, filters=inject) == []
    nearest = exact(vectors, query)[0]
    only = search(
        store, cfg, query, filters=ComparisonFilter(type="in", key="content_id", value=nearest[3:5])
    )
    assert ids(only) == nearest[3:5]
    nin = search(
        store, cfg, query, filters=ComparisonFilter(type="nin", key="content_id", value=nearest[:2])
    )
    assert ids(nin)[:8] == nearest[2:]
    ne = search(
        store, cfg, query, filters=ComparisonFilter(type="ne", key="content_id", value=nearest[0])
    )
    assert ids(ne)[:9] == nearest[1:]
    both = CompoundFilter(
        type="and",
        filters=[
            ComparisonFilter(type="eq", key="content_type", value="video"),
            ComparisonFilter(type="nin", key="content_id", value=nearest),
        ],
    )
    allowed = (np.array(kinds) == "video") & ~np.isin([f"c{i}" for i in range(ROWS)], nearest)
    assert ids(search(store, cfg, query, filters=both)) == exact(vectors, query, allowed)[0]


def test_an_older_event_never_overwrites_a_newer_one(tmp_path, data):
    cfg, store = config(tmp_path), LanceOnlineStore()
    vector = data[0][0]
    store.online_write_batch(cfg, VIEW, [row(1, vector, "video")], None)
    store.online_write_batch(cfg, VIEW, [row(1, vector, "article", T0 - timedelta(days=1))], None)
    [(ts, values)] = store.online_read(cfg, VIEW, [key(1)])
    assert ts == T0 and values["content_type"].string_val == "video"
    newer = [row(1, vector, "it's", T0 + timedelta(days=1)), row(1, vector, "article")]
    seen: list[int] = []
    store.online_write_batch(cfg, VIEW, newer, seen.append)
    [(ts, values)] = store.online_read(cfg, VIEW, [key(1)], ["content_type"])
    assert ts == T0 + timedelta(days=1) and values == {"content_type": Value(string_val="it's")}
    assert seen == [2]
    np.testing.assert_allclose(
        store.online_read(cfg, VIEW, [key(1)])[0][1]["embedding"].float_list_val.val, vector
    )


def test_deleted_entities_are_never_returned(tmp_path, data):
    cfg, store = filled(tmp_path, data, index_min_rows=100)
    query = data[0][5]
    gone = [key(int(i[1:])) for i in exact(data[0], query)[0][:3]]
    assert store.delete_entities(cfg, VIEW, [*gone, key(10_000)]) == 3
    assert store.online_read(cfg, VIEW, gone) == [(None, None)] * 3
    store.finish_writes(cfg, VIEW)
    returned = ids(search(store, cfg, query))
    assert not {k.entity_values[0].string_val for k in gone} & set(returned)
    assert returned == exact(data[0], query)[0][3:] + returned[7:]


def test_another_store_sees_writes_after_read_consistency(tmp_path, data):
    cfg = config(tmp_path, read_consistency_s=0.1)
    writer, reader = LanceOnlineStore(), LanceOnlineStore()
    assert reader.online_read(cfg, VIEW, [key(1)]) == [(None, None)]
    assert search(reader, cfg, data[0][0]) == []
    writer.online_write_batch(cfg, VIEW, [row(1, data[0][1], "video")], None)
    assert reader.online_read(cfg, VIEW, [key(1)])[0][0] == T0
    writer.online_write_batch(cfg, VIEW, [row(2, data[0][2], "video")], None)
    time.sleep(0.2)
    assert ids(search(reader, cfg, data[0][2]))[0] == "c2"


def test_bad_requests_raise_clear_errors(tmp_path, data):
    cfg, store = filled(tmp_path, data)
    with pytest.raises(ValueError, match=r"'colour'.*content_id.*content_type"):
        search(
            store, cfg, data[0][0], filters=ComparisonFilter(type="eq", key="colour", value="red")
        )
    with pytest.raises(ValueError, match=r"length 3.*expects 8"):
        store.retrieve_online_documents_v2(cfg, VIEW, [], [0.1, 0.2, 0.3], K)
    with pytest.raises(ValueError, match="vector search only"):
        store.retrieve_online_documents_v2(cfg, VIEW, [], None, K, query_string="cats")


def test_missing_key_reads_as_none(tmp_path, data):
    cfg, store = filled(tmp_path, data)
    result = store.online_read(cfg, VIEW, [key(3), key(99_999), key(4)], ["content_type"])
    assert result[1] == (None, None)
    assert [r[1]["content_type"].string_val for r in (result[0], result[2])] == [TYPES[0], TYPES[1]]


def test_filter_values_are_typed_literals():
    translate = LanceFilterTranslator({"n": pa.int64(), "s": pa.string()}).translate
    assert translate(ComparisonFilter(type="gt", key="n", value=3.5)) == "`n` > 3.5"
    assert translate(ComparisonFilter(type="in", key="s", value=["a'b"])) == "`s` IN ('a''b')"
    assert translate(ComparisonFilter(type="in", key="s", value=[])) == "FALSE"
    with pytest.raises(ValueError, match="not a number"):
        translate(ComparisonFilter(type="lte", key="n", value="1 OR 1=1"))


def test_teardown_drops_the_views_table(tmp_path, data):
    cfg, store = filled(tmp_path, data)
    store.teardown(cfg, [VIEW], [])
    assert search(LanceOnlineStore(), cfg, data[0][0]) == []
    assert store.online_read(cfg, VIEW, [key(1)]) == [(None, None)]
    store.update(cfg, [VIEW], [], [], [], partial=False)  # dropping again is a no-op
