"""Near-duplicates across the catalog: items whose artwork hashes or audio fingerprints lie within a
threshold of each other (re-uploads, re-encodes, spam).

The rule (`Rule`) is exact and applies to given pairs; groups are the connected components of the
pairs that pass (`assignments`). Which pairs to test is the caller's business: the catalog job asks
the LSH buckets of `near_index` in Ray tasks, `NearDuplicates.extract` compares every pair of one
batch (small inputs, and the ground truth the benchmark measures the buckets' recall against).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from extractors.base import Extractor
from extractors.image_stats import DUPLICATE_MAX_BITS, DUPLICATE_MAX_LAYOUT
from extractors.near_index import popcount

AUDIO_MIN_COSINE = 0.98
ARTWORK, AUDIO = "artwork", "audio"
EDGE_SCHEMA = pa.schema(
    [
        pa.field("a", pa.string()),
        pa.field("b", pa.string()),
        pa.field("distance", pa.float64()),
        pa.field("match", pa.string()),
    ]
)
_BLOCK = 2048  # rows per block of the all-pairs comparison: bounded memory


def phash_values(hashes: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes from hex strings, and which rows have one."""
    present = np.array([h is not None for h in hashes], dtype=bool)
    values = np.array([int(h, 16) if h else 0 for h in hashes], dtype=np.uint64)
    return values, present


def vector_matrix(values: pa.ChunkedArray | pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width float32 rows from a list column (NaN rows where null), and which are present."""
    present = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
    if not present.any():
        return np.full((n, 1), np.nan, dtype=np.float32), present
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = np.full((n, len(flat) // int(present.sum())), np.nan, dtype=np.float32)
    matrix[present] = flat.reshape(int(present.sum()), -1)
    return matrix, present


def unit_rows(matrix: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zeros where absent or zero): cosine is then a dot product."""
    rows = np.where(present[:, None], np.nan_to_num(matrix), 0.0).astype(np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


@dataclass(frozen=True)
class Rule:
    """When two items are near-duplicates; the thresholds are part of the extractor version."""

    max_hamming: int = DUPLICATE_MAX_BITS
    max_layout: float = DUPLICATE_MAX_LAYOUT
    min_cosine: float = AUDIO_MIN_COSINE

    def artwork(
        self, ha: np.ndarray, hb: np.ndarray, la: np.ndarray, lb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hamming distances of pairs and whether each is a match: pHash within `max_hamming`
        bits and, where both have one, colour layouts within `max_layout` RMS (0–1) — the layout
        rejects look-alike designs that share a structure but not their colours."""
        bits = popcount(ha ^ hb)
        both = ~(np.isnan(la).all(axis=1) | np.isnan(lb).all(axis=1))
        rms = np.sqrt(np.mean((np.nan_to_num(la) - np.nan_to_num(lb)) ** 2, axis=1))
        return bits.astype(np.float64), (bits <= self.max_hamming) & (
            ~both | (rms <= self.max_layout)
        )

    def audio(self, ua: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine distances of pairs of unit fingerprints and whether each is a match."""
        # Rounding can push identical vectors a hair below zero.
        distance = np.maximum(1.0 - np.einsum("ij,ij->i", ua, ub).astype(np.float64), 0.0)
        return distance, distance <= 1.0 - self.min_cosine

    def score(self, distance: np.ndarray, match: np.ndarray) -> np.ndarray:
        """Distances normalised to their own threshold, so the nearest item can be either kind."""
        scale = np.where(match == ARTWORK, max(self.max_hamming, 1), max(1 - self.min_cosine, 1e-9))
        return distance / scale


def edge_table(
    ids: np.ndarray, a: np.ndarray, b: np.ndarray, distance: np.ndarray, match: str
) -> pa.Table:
    """Verified pairs as rows of `EDGE_SCHEMA` (`ids` maps the row numbers `a`, `b` to ids)."""
    return pa.table(
        {
            "a": pa.array(ids[a], pa.string()),
            "b": pa.array(ids[b], pa.string()),
            "distance": pa.array(distance, pa.float64()),
            "match": pa.array([match] * len(a), pa.string()),
        },
        schema=EDGE_SCHEMA,
    )


def exact_edges(
    ids: np.ndarray,
    hashes: np.ndarray,
    has_hash: np.ndarray,
    layouts: np.ndarray,
    unit: np.ndarray,
    has_fingerprint: np.ndarray,
    rule: Rule,
) -> pa.Table:
    """Every matching pair, found by comparing all pairs in bounded blocks: O(n²) time."""
    parts = []
    art = np.nonzero(has_hash)[0]
    for start in range(0, len(art), _BLOCK):
        rows = art[start : start + _BLOCK]
        close = popcount(hashes[rows][:, None] ^ hashes[art][None, :]) <= rule.max_hamming
        i, j = np.nonzero(close)
        a, b = rows[i], art[j]
        a, b = a[a < b], b[a < b]
        distance, ok = rule.artwork(hashes[a], hashes[b], layouts[a], layouts[b])
        parts.append(edge_table(ids, a[ok], b[ok], distance[ok], ARTWORK))
    audio = np.nonzero(has_fingerprint)[0]
    for start in range(0, len(audio), _BLOCK):
        rows = audio[start : start + _BLOCK]
        i, j = np.nonzero(unit[rows] @ unit[audio].T >= rule.min_cosine - 1e-6)
        a, b = rows[i], audio[j]
        a, b = a[a < b], b[a < b]
        distance, ok = rule.audio(unit[a], unit[b])
        parts.append(edge_table(ids, a[ok], b[ok], distance[ok], AUDIO))
    return pa.concat_tables([EDGE_SCHEMA.empty_table(), *parts])


def assignments(edges: pa.Table, rule: Rule) -> pa.Table:
    """Group, size and nearest match of every item that has at least one verified pair.

    Groups are the connected components of the pairs; the smallest content_id names a group, so
    the name is stable across runs while the group keeps its smallest member.
    """
    nodes, codes = np.unique(
        np.concatenate([np.asarray(edges.column("a")), np.asarray(edges.column("b"))]),
        return_inverse=True,
    )
    n, m = len(nodes), edges.num_rows
    a, b = codes[:m], codes[m:]
    graph = coo_matrix((np.ones(m, dtype=np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # Nodes are sorted, so the first node of each label is its smallest content_id.
    first = np.full(label.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))
    sizes = np.bincount(label)
    distance = np.asarray(edges.column("distance"))
    match = np.asarray(edges.column("match"), dtype=object)
    # Both directions of every pair; the nearest per node is its lowest normalised distance.
    node = np.concatenate([a, b])
    other = np.concatenate([b, a])
    score = np.tile(rule.score(distance, match), 2)
    order = np.lexsort((other, score, node))
    node, other = node[order], other[order]
    lead = np.concatenate([[True], node[1:] != node[:-1]]) if len(node) else np.empty(0, bool)
    # Every node has a pair, so the leads are nodes 0..n-1 in order.
    pair_of = np.tile(np.arange(m), 2)[order][lead]
    return pa.table(
        {
            "content_id": pa.array(nodes, pa.string()),
            "group_id": pa.array(nodes[first[label]], pa.string()),
            "group_size": pa.array(sizes[label], pa.int64()),
            "nearest_id": pa.array(nodes[other[lead]], pa.string()),
            "distance": pa.array(distance[pair_of], pa.float32()),
            "match": pa.array(match[pair_of], pa.string()),
        }
    )


def duplicate_columns(content_ids: pa.Array | pa.ChunkedArray, assigned: pa.Table) -> pa.Table:
    """Output columns for `content_ids` in their order: an item without a verified pair is a
    group of one with no nearest match."""
    ids = pa.table({"content_id": content_ids, "__row__": np.arange(len(content_ids))})
    joined = ids.join(assigned, "content_id", join_type="left outer").sort_by("__row__")
    return pa.table(
        {
            "content_id": joined.column("content_id"),
            "group_id": pc.coalesce(joined.column("group_id"), joined.column("content_id")),
            "group_size": pc.coalesce(joined.column("group_size"), pa.scalar(1, pa.int64())),
            "nearest_id": joined.column("nearest_id"),
            "distance": joined.column("distance"),
            "match": joined.column("match"),
        }
    )


class NearDuplicates(Extractor):
    """Group items by artwork (pHash Hamming + colour layout) and audio fingerprint (cosine).

    `extract` compares every pair of its batch; the catalog job finds the candidates with LSH in
    Ray tasks and applies the same `Rule` and `assignments`.
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
        self.rule = Rule(max_hamming, max_layout, min_cosine)

    @property
    def full_version(self) -> str:
        r = self.rule
        return f"{self.version}+h{r.max_hamming}l{r.max_layout:.3f}c{r.min_cosine}"

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

    def edges(self, batch: pa.Table) -> pa.Table:
        """Every verified pair of the batch (all pairs compared)."""
        n = batch.num_rows
        ids = np.asarray(batch.column("content_id").to_pylist(), dtype=object)
        hashes, has_hash = phash_values(batch.column("artwork_phash").to_pylist())
        layout_column = (
            batch.column("artwork_layout")
            if "artwork_layout" in batch.column_names
            else pa.nulls(n, pa.list_(pa.float32()))
        )
        layouts, _ = vector_matrix(layout_column, n)
        vectors, has_fingerprint = vector_matrix(batch.column("audio_fingerprint"), n)
        unit = unit_rows(vectors, has_fingerprint)
        return exact_edges(ids, hashes, has_hash, layouts, unit, has_fingerprint, self.rule)

    def extract(self, batch: pa.Table) -> pa.Table:
        out = duplicate_columns(
            batch.column("content_id"), assignments(self.edges(batch), self.rule)
        )
        features = {name: out.column(name) for name in self.output_schema().names}
        return self.result(batch.column("content_id"), features, [None] * batch.num_rows)
