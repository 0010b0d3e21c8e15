"""Near-duplicates across the catalog: items whose artwork hashes or audio fingerprints lie within a
threshold of each other (re-uploads, re-encodes, spam).

Unlike the per-item extractors, this one needs the whole catalog at once: its input is one row per
item with the item's perceptual hash and audio fingerprint (read by the job from those signals'
tables), its output one row per item with its duplicate group, nearest neighbour and distance.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pyarrow as pa

from extractors.base import Extractor
from extractors.image_stats import DUPLICATE_MAX_BITS, DUPLICATE_MAX_LAYOUT

AUDIO_MIN_COSINE = 0.98
_BLOCK = 1024  # rows per block of the pairwise comparison: bounded memory


def _phash_bits(hashes: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    present = np.array([h is not None for h in hashes], dtype=bool)
    values = np.array([int(h, 16) if h else 0 for h in hashes], dtype=np.uint64)
    return values, present


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)


class _Nearest:
    """Running nearest neighbour and the edges within the threshold, over blocks of rows."""

    def __init__(self, n: int) -> None:
        self.index = np.full(n, -1, dtype=np.int64)
        self.distance = np.full(n, np.inf)
        self.edges: list[tuple[int, int]] = []

    def update(self, rows: np.ndarray, distances: np.ndarray, within: np.ndarray) -> None:
        best = distances.argmin(axis=1)
        best_distance = distances[np.arange(len(rows)), best]
        better = best_distance < self.distance[rows]
        self.index[rows[better]] = best[better]
        self.distance[rows[better]] = best_distance[better]
        for i, j in zip(*np.nonzero(within), strict=True):
            if rows[i] < j:
                self.edges.append((int(rows[i]), int(j)))


def _layout_matrix(layouts: list[list[float] | None], n: int) -> np.ndarray | None:
    if all(v is None for v in layouts):
        return None
    dim = len(next(v for v in layouts if v is not None))
    matrix = np.full((n, dim), np.nan, dtype=np.float64)
    for i, v in enumerate(layouts):
        if v is not None:
            matrix[i] = v
    return matrix


def _artwork_neighbours(
    hashes: list[str | None],
    layouts: list[list[float] | None],
    max_bits: int,
    max_layout: float,
) -> _Nearest:
    """pHash Hamming finds candidates; the colour layout (RMS, 0–1) rejects look-alike designs
    that share a structure but not their colours (the rule of `image_stats.near_duplicates`)."""
    values, present = _phash_bits(hashes)
    layout = _layout_matrix(layouts, len(hashes))
    nearest = _Nearest(len(hashes))
    candidates = np.nonzero(present)[0]
    for start in range(0, len(candidates), _BLOCK):
        rows = candidates[start : start + _BLOCK]
        dist = _popcount(values[rows][:, None] ^ values[None, :]).astype(float)
        dist[:, ~present] = np.inf
        dist[np.arange(len(rows)), rows] = np.inf
        within = dist <= max_bits
        if layout is not None:
            with warnings.catch_warnings():  # items without a layout: all-NaN rows, no match
                warnings.simplefilter("ignore", RuntimeWarning)
                rms = np.sqrt(
                    np.nanmean((layout[rows][:, None, :] - layout[None, :, :]) ** 2, axis=-1)
                )
            within &= np.nan_to_num(rms, nan=np.inf) <= max_layout
        nearest.update(rows, dist, within)
    return nearest


def _cosine_neighbours(vectors: list[list[float] | None], min_cosine: float) -> _Nearest:
    present = np.array([v is not None for v in vectors], dtype=bool)
    nearest = _Nearest(len(vectors))
    if not present.any():
        return nearest
    dim = len(next(v for v in vectors if v is not None))
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    for i, v in enumerate(vectors):
        if v is not None:
            matrix[i] = v
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    candidates = np.nonzero(present)[0]
    for start in range(0, len(candidates), _BLOCK):
        rows = candidates[start : start + _BLOCK]
        # Cosine distance; rounding can push identical vectors a hair below zero.
        dist = np.maximum(1.0 - (matrix[rows] @ matrix.T).astype(float), 0.0)
        dist[:, ~present] = np.inf
        dist[np.arange(len(rows)), rows] = np.inf
        nearest.update(rows, dist, dist <= 1.0 - min_cosine)
    return nearest


def _groups(n: int, edges: list[tuple[int, int]], ids: list[str]) -> list[str]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    group_of = [""] * n
    for rows in members.values():
        name = min(ids[r] for r in rows)  # stable: the smallest content_id names the group
        for r in rows:
            group_of[r] = name
    return group_of


class NearDuplicates(Extractor):
    """Group items by artwork (pHash Hamming + colour layout) and audio fingerprint (cosine).

    Exact pairwise comparison in bounded blocks: O(n²) time, O(n·block) memory. That is seconds at
    tens of thousands of items; a catalog of hundreds of millions needs candidate generation
    (LSH bands) first — the output shape would not change.
    """

    inputs: ClassVar[tuple[str, ...]] = ("artwork_phash", "artwork_layout", "audio_fingerprint")
    version = "1"
    scope = "catalog"

    def __init__(
        self,
        device: str | None = None,
        max_hamming: int = DUPLICATE_MAX_BITS,
        max_layout: float = DUPLICATE_MAX_LAYOUT,
        min_cosine: float = AUDIO_MIN_COSINE,
    ) -> None:
        super().__init__(device)
        self.max_hamming = max_hamming
        self.max_layout = max_layout
        self.min_cosine = min_cosine

    @property
    def full_version(self) -> str:
        return f"{self.version}+h{self.max_hamming}l{self.max_layout:.3f}c{self.min_cosine}"

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("group_id", pa.string()),
                pa.field("group_size", pa.int64()),
                pa.field("nearest_id", pa.string(), nullable=True),
                pa.field("distance", pa.float32(), nullable=True),
                pa.field("match", pa.string(), nullable=True),
            ]
        )

    def extract(self, batch: pa.Table) -> pa.Table:
        ids = batch.column("content_id").to_pylist()
        n = len(ids)
        layouts = (
            batch.column("artwork_layout").to_pylist()
            if "artwork_layout" in batch.column_names
            else [None] * n
        )
        art = _artwork_neighbours(
            batch.column("artwork_phash").to_pylist(), layouts, self.max_hamming, self.max_layout
        )
        audio = _cosine_neighbours(batch.column("audio_fingerprint").to_pylist(), self.min_cosine)
        groups = _groups(n, art.edges + audio.edges, ids)
        sizes = {g: groups.count(g) for g in set(groups)}
        # Nearest neighbour: the closer of the two, each normalised to its own threshold.
        art_score = art.distance / max(self.max_hamming, 1)
        audio_score = audio.distance / max(1.0 - self.min_cosine, 1e-9)
        nearest_id: list[str | None] = []
        distance: list[float | None] = []
        match: list[str | None] = []
        for i in range(n):
            use_art = art_score[i] <= audio_score[i]
            source = art if use_art else audio
            if source.index[i] < 0 or not np.isfinite(source.distance[i]):
                nearest_id.append(None)
                distance.append(None)
                match.append(None)
                continue
            nearest_id.append(ids[source.index[i]])
            distance.append(float(source.distance[i]))
            match.append("artwork" if use_art else "audio")
        return self.result(
            ids,
            {
                "group_id": groups,
                "group_size": [sizes[g] for g in groups],
                "nearest_id": nearest_id,
                "distance": distance,
                "match": match,
            },
            [None] * n,
        )
