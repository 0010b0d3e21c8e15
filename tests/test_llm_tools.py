"""The agent's tools against a real lake and a real Feast online store: an item's served signals,
and its nearest neighbours by text embedding — answered by the vector index beside the online
store, not from the lake — with their zero-shot tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from deltalake import write_deltalake
from signal_rows import history

from features import get_signal
from jobs.serving.llm_tools import LLMTools
from jobs.serving.materialize import materialize
from jobs.settings import Settings

EMBEDDING = get_signal("text_embedding@2")
TAGS = get_signal("text_tags@2")


def unit(*values: float) -> list[float]:
    vector = np.zeros(EMBEDDING.features["embedding"].dim, dtype=np.float32)
    vector[: len(values)] = values
    return (vector / np.linalg.norm(vector)).tolist()


def test_item_signals_and_nearest_items(settings: Settings) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    vectors = {"a": unit(1, 0), "b": unit(0.9, 0.1), "c": unit(0.5, 0.5), "d": unit(0, 1)}
    embeddings = [(cid, at, {"embedding": v}) for cid, v in vectors.items()]
    write_deltalake(settings.signal_uri(EMBEDDING.storage_name),
                    history(EMBEDDING.ref, embeddings, "r"))  # fmt: skip
    genres = {"a": "jazz", "b": "blues", "c": "rock", "d": "pop"}
    tags = [(cid, at, {"genre": g, "genre_score": 0.5, "mood": None, "mood_score": None,
                       "topic": None, "topic_score": None}) for cid, g in genres.items()]  # fmt: skip
    write_deltalake(settings.signal_uri(TAGS.storage_name), history(TAGS.ref, tags, "r"))
    materialize(settings, [TAGS, EMBEDDING])  # the embedding reaches the vector index

    tools = LLMTools(settings, asking="llm_metadata")
    nearest = tools.nearest_items("a", {"k": 2})
    assert [n["content_id"] for n in nearest] == ["b", "c"]  # d is orthogonal: last
    assert nearest[0]["genre"] == "blues" and nearest[0]["similarity"] > nearest[1]["similarity"]
    assert tools.nearest_items("zzz", {}) == {"error": "zzz has no text embedding yet"}

    served = tools.item_signals("a", {"signals": ["text_tags"]})
    assert served == {"text_tags_v2__genre": "jazz", "text_tags_v2__genre_score": 0.5}
    assert "error" in tools.item_signals("a", {"signals": ["no_such_signal"]})
