"""Text signals: what the catalog's words say about an item."""

from __future__ import annotations

from datetime import timedelta

from features.signal import Signal
from features.types import Embedding

text_embedding = Signal(
    name="text_embedding",
    version=1,
    description=(
        "Sentence embedding of title + description with all-MiniLM-L6-v2; 384-d, L2-normalised, "
        "so a dot product is the cosine similarity."
    ),
    owner="content-understanding",
    tags={"modality": "text", "model": "all-MiniLM-L6-v2"},
    consumers=("search", "recommendations"),
    extractor="extractors.text:TextEmbedding",
    features={"embedding": Embedding(dim=384, normalized=True)},
    ttl=timedelta(days=365),
    freshness=timedelta(days=1),
)
