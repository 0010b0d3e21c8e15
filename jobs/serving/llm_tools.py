"""The tools an agentic LLM extractor may call before it answers: what the store already knows
about the item (its served signals, from the online store) and which catalog items are most like
it (nearest neighbours by text embedding, from the vector index).

They live in the serving room because they read what is served (and the lake); the extractor receives them as plain
functions (`Extractor.bind_tools`) and never learns where the answers come from.
"""

from __future__ import annotations

from typing import Any

from features import all_signals, get_signal
from jobs.settings import Settings

EMBEDDING = "text_embedding@2"
NEIGHBOUR_TAGS = "text_tags@2"
ITEM_SIGNALS = {
    "type": "object",
    "properties": {
        "signals": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Signal names, e.g. text_tags, audio_features; all when omitted.",
        }
    },
    "additionalProperties": False,
}
NEAREST_ITEMS = {
    "type": "object",
    "properties": {"k": {"type": "integer", "minimum": 1, "maximum": 20}},
    "additionalProperties": False,
}


class LLMTools:
    """One actor's tools, reading the online store and its vector index."""

    def __init__(self, settings: Settings, asking: str) -> None:
        self.settings = settings
        self.asking = asking  # the signal being computed: never offered to itself

    def item_signals(self, content_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The item's served values of every other item signal (embeddings left out: numbers a
        model cannot read), newest version of each name."""
        from jobs.serving.client import get_signals

        names = set(arguments.get("signals") or [])
        newest: dict[str, str] = {}
        for s in sorted(all_signals(), key=lambda s: s.version):
            kinds = {f.kind for f in s.features.values()}
            if s.name != self.asking and kinds != {"embedding"} and (not names or s.name in names):
                newest[s.name] = s.ref
        if not newest:
            return {"error": f"no such signals: {', '.join(sorted(names))}"}
        (row,) = get_signals([content_id], signals=sorted(newest.values()),
                             settings=self.settings, output="dicts")  # fmt: skip
        # Floats are float32 in the store: rounded, so the model reads 0.6, not 0.6000000238.
        return {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in row.items()
            if k != "content_id" and v is not None
        }

    def nearest_items(self, content_id: str, arguments: dict[str, Any]) -> Any:
        """The `k` items whose text embeddings are closest (cosine) to this one's, with their
        zero-shot tags: asked of the vector index (`similar`), so no actor holds the catalog's
        embeddings."""
        from jobs.serving.client import get_signals
        from jobs.serving.errors import NotServedError
        from jobs.serving.similarity import similar

        k = int(arguments.get("k", 5))
        try:
            found = similar(content_id, signal=EMBEDDING, k=k, settings=self.settings,
                            output="dicts")  # fmt: skip
        except NotServedError:
            return {"error": f"{content_id} has no text embedding yet"}
        neighbours = [row["content_id"] for row in found]
        tags = get_signals(neighbours, signals=[NEIGHBOUR_TAGS], settings=self.settings,
                           output="dicts")  # fmt: skip
        view = get_signal(NEIGHBOUR_TAGS).feature_view_name
        return [
            {"content_id": row["content_id"], "similarity": round(1.0 - row["distance"], 3),
             **{f: t.get(f"{view}__{f}") for f in ("genre", "mood", "topic")}}
            for row, t in zip(found, tags, strict=True)
        ]  # fmt: skip

    def tools(self, names: tuple[str, ...]) -> dict[str, tuple[dict[str, Any], Any]]:
        """The named tools with their JSON-schema parameters, as `bind_tools` takes them."""
        every = {
            "item_signals": (ITEM_SIGNALS, self.item_signals),
            "nearest_items": (NEAREST_ITEMS, self.nearest_items),
        }
        return {n: every[n] for n in names}
