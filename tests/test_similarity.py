"""Similarity search through Feast's document retrieval, on the real vector stores: embedded
LanceDB (the default) and Milvus (Milvus Lite, its embedded form), beside the SQLite store.

Ground truth is exact cosine search in numpy over the same synthetic vectors: clustered unit
vectors, a known content type and a known served language per item.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from deltalake import write_deltalake
from serve_process import running
from signal_rows import history

from features import get_signal
from jobs.serving.errors import FeatureRequestError
from jobs.serving.materialize import materialize
from jobs.serving.similarity import similar
from jobs.settings import Settings

EMBEDDING = get_signal("text_embedding@2")
LANGUAGE = get_signal("text_language@1")
N, K = 240, 10
T1 = datetime.now(UTC) - timedelta(hours=2)


def catalog() -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((12, 384))
    vectors = centres[rng.integers(0, 12, N)] + 0.5 * rng.standard_normal((N, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"{('track', 'episode', 'audiobook')[i % 3]}:{i:06d}" for i in range(N)]
    languages = [("en", "de", "sv", "fr")[i % 4] for i in range(N)]
    return ids, vectors, languages


IDS, VECTORS, LANGUAGES = catalog()


def exact(query: int, keep: list[bool] | None = None, k: int = K) -> list[str]:
    scores = VECTORS @ VECTORS[query]
    order = [int(i) for i in np.argsort(-scores, kind="stable") if i != query]
    return [IDS[i] for i in order if keep is None or keep[i]][:k]


@pytest.fixture(params=["lance", "milvus"])
def indexed(request: pytest.FixtureRequest, settings: Settings, monkeypatch) -> Settings:
    """The catalog's embeddings and languages materialized into the store and its index."""
    monkeypatch.setenv("SIGNALS_VECTOR_STORE", request.param)
    chosen = Settings.from_env()
    rows = [(cid, T1, {"embedding": v.tolist()}) for cid, v in zip(IDS, VECTORS, strict=True)]
    write_deltalake(chosen.signal_uri(EMBEDDING.storage_name), history(EMBEDDING.ref, rows, "r1"))
    langs = [(cid, T1, {"language": lang, "confidence": 0.9})
             for cid, lang in zip(IDS, LANGUAGES, strict=True)]  # fmt: skip
    write_deltalake(chosen.signal_uri(LANGUAGE.storage_name), history(LANGUAGE.ref, langs, "r1"))
    materialize(chosen, [EMBEDDING, LANGUAGE])
    return chosen


def neighbours(settings: Settings, content_id: str, **kwargs) -> list[dict]:
    return similar(content_id, signal=EMBEDDING.ref, k=K, settings=settings, output="dicts",
                   **kwargs)  # fmt: skip


def test_neighbours_equal_exact_search_and_filters_hold(indexed: Settings) -> None:
    for query in (0, 17, 101):
        found = neighbours(indexed, IDS[query])
        assert [r["content_id"] for r in found] == exact(query)
        expected = 1.0 - VECTORS[[IDS.index(r["content_id"]) for r in found]] @ VECTORS[query]
        assert np.allclose([r["distance"] for r in found], expected, atol=1e-4)
        assert [r["rank"] for r in found] == list(range(1, K + 1))

        tracks = neighbours(indexed, IDS[query], where={"content_type": "track"})
        assert [r["content_id"] for r in tracks] == exact(
            query, [i.startswith("track:") for i in IDS]
        )
        german = neighbours(indexed, IDS[query], where={"language": "de"})
        assert [r["content_id"] for r in german] == exact(
            query, [lang == "de" for lang in LANGUAGES]
        )
        both = neighbours(
            indexed,
            IDS[query],
            where={"content_type": ["episode", "audiobook"], "language": ["sv", "fr"]},
        )
        keep = [not c.startswith("track:") and lang in ("sv", "fr")
                for c, lang in zip(IDS, LANGUAGES, strict=True)]  # fmt: skip
        assert [r["content_id"] for r in both] == exact(query, keep)

    by_vector = similar(vector=VECTORS[5].tolist(), signal=EMBEDDING.ref, k=3, settings=indexed,
                        output="dicts")  # fmt: skip
    assert by_vector[0]["content_id"] == IDS[5] and by_vector[0]["distance"] < 1e-4


def test_a_removed_item_is_never_a_neighbour_after_materialize(indexed: Settings) -> None:
    nearest = exact(3)[0]
    gone = [(nearest, datetime.now(UTC), None)]  # a tombstone: the item left the catalog
    write_deltalake(indexed.signal_uri(EMBEDDING.storage_name),
                    history(EMBEDDING.ref, gone, "r2"), mode="append")  # fmt: skip
    assert neighbours(indexed, IDS[3])[0]["content_id"] == nearest  # served until materialized
    done = materialize(indexed, [EMBEDDING])
    assert done.deleted == {EMBEDDING.feature_view_name: 1}
    found = [r["content_id"] for r in neighbours(indexed, IDS[3])]
    assert nearest not in found
    assert found == [c for c in exact(3, k=K + 1) if c != nearest]


def test_bad_requests_are_the_callers_errors(indexed: Settings) -> None:
    with pytest.raises(FeatureRequestError, match="not searchable"):
        similar(IDS[0], signal="text_tags@2", settings=indexed)
    with pytest.raises(FeatureRequestError, match="cannot filter on 'colour'"):
        neighbours(indexed, IDS[0], where={"colour": "red"})
    with pytest.raises(FeatureRequestError, match="384"):
        similar(vector=[0.1, 0.2], signal=EMBEDDING.ref, settings=indexed)
    with pytest.raises(FeatureRequestError, match="k must be"):
        similar(IDS[0], signal=EMBEDDING.ref, k=0, settings=indexed)


def test_the_feature_server_answers_searches_and_refuses_malformed_ones(
    settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    rows = [(cid, T1, {"embedding": v.tolist()}) for cid, v in zip(IDS, VECTORS, strict=True)]
    write_deltalake(settings.signal_uri(EMBEDDING.storage_name),
                    history(EMBEDDING.ref, rows, "r1"))  # fmt: skip
    materialize(settings, [EMBEDDING])
    with running(["serve", "--no-access-log"], tmp_path / "serve.log") as url:
        remote = similar(IDS[9], signal=EMBEDDING.ref, k=K, url=url, output="dicts",
                         where={"content_type": "episode"})  # fmt: skip
        local = neighbours(settings, IDS[9], where={"content_type": "episode"})
        assert [r["content_id"] for r in remote] == [r["content_id"] for r in local]
        assert np.allclose([r["distance"] for r in remote], [r["distance"] for r in local],
                           atol=1e-5)  # fmt: skip

        feature = f"{EMBEDDING.feature_view_name}:embedding"
        good = {"features": [feature], "query": VECTORS[0].tolist(), "top_k": 3, "api_version": 2}
        malformed = [
            {**good, "top_k": 0},
            {**good, "top_k": "ten"},
            {**good, "query": [0.1, 0.2]},
            {**good, "query": None},
            {**good, "features": ["text_tags_v2:genre"]},
            {**good, "features": ["no_such_view:x"]},
            {**good, "filters": {"type": "eq", "key": "colour", "value": "red"}},
            {**good, "filters": {"type": "like", "key": "content_type", "value": "t"}},
            {
                **good,
                "filters": {
                    "type": "or",
                    "filters": [
                        {"type": "eq", "key": "language", "value": "de"},
                        {"type": "eq", "key": "content_type", "value": "track"},
                    ],
                },
            },
        ]
        for body in malformed:
            reply = httpx.post(f"{url}/search", json=body, timeout=10)
            assert 400 <= reply.status_code < 500, (body, reply.status_code, reply.text)
            assert reply.text
        answer = httpx.post(f"{url}/search", json=good, timeout=10)
        assert answer.status_code == 200
        columns = dict(zip(answer.json()["metadata"]["feature_names"], answer.json()["results"],
                           strict=True))  # fmt: skip
        assert set(columns["content_id"]["values"]) == {IDS[0], *exact(0, k=2)}  # itself first

        asked = {"signal": EMBEDDING.ref, "content_id": IDS[9], "k": 3}
        refused = [
            ({}, 422),
            ({**asked, "signal": "no_such@1"}, 400),
            ({**asked, "signal": "text_tags@2"}, 400),
            ({**asked, "vector": VECTORS[0].tolist()}, 400),
            ({**asked, "k": 0}, 422),
            ({**asked, "k": "ten"}, 422),
            ({**asked, "colour": "red"}, 422),
            ({**asked, "where": {"colour": "red"}}, 400),
            ({**asked, "content_id": "track:missing"}, 404),
            ({"signal": EMBEDDING.ref, "vector": [0.1, 0.2]}, 400),
        ]
        for body, status in refused:
            reply = httpx.post(f"{url}/similar", json=body, timeout=10)
            assert reply.status_code == status, (body, reply.status_code, reply.text)
            assert reply.text
