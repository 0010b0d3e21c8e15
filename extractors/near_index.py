"""Candidate generation for near-duplicates without comparing all pairs: LSH tables and buckets.

Two items are compared only when they share a bucket key in at least one table:
- **pHash (Hamming):** bit sampling. Table t reads `phash_bits` fixed positions of the 64-bit hash;
  a pair at distance r collides in a table with probability C(64-r, k) / C(64, k).
- **Audio fingerprint (cosine):** random hyperplanes (SimHash). A pair at angle θ agrees on one
  hyperplane with probability 1 - θ/π, on a table of k with (1 - θ/π)^k.

Keys are k ≈ log2(items) - 3 bits wide, so a bucket holds about eight unrelated items whatever the
catalog size, and the number of tables is the smallest that finds a pair at the design distance with
probability `recall`: the work per item grows like items^ρ (ρ ≈ 0.14 for pHash at 6 bits), not
like items. Exact recall at the full 12-bit threshold would need that many bits to agree by chance
too: 13 exact 5-bit bands (pigeonhole) put two pairs in five in a shared bucket, which is the
all-pairs comparison again; the design distance is what a re-encode or resize does to a pHash.

Inside a bucket a cheap sketch filters pairs before anything leaves the task: the pHash itself
(exact Hamming) and a 64-bit SimHash sketch for fingerprints (a true match at cosine 0.98 differs in
about 4 of 64 bits, unrelated vectors in about 32). Survivors are verified exactly elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SKETCH_BITS = 64
_TABLE_SHIFT = np.uint64(32)  # key = table << 32 | bucket value (k ≤ 24 bits)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64."""
    return np.bitwise_count(x).astype(np.int64)


def _tables_for(collide: float, recall: float) -> int:
    if collide >= 1.0:
        return 1
    return max(1, math.ceil(math.log(1.0 - recall) / math.log(1.0 - collide)))


def key_bits(items: int) -> int:
    """Bucket key width for a catalog of `items`: about eight unrelated items per bucket."""
    return int(min(24, max(8, math.ceil(math.log2(max(items, 2))) - 3)))


@dataclass(frozen=True)
class Bands:
    """The LSH tables of one run; the same seed and sizes give the same keys on every worker."""

    phash_tables: int
    phash_bits: int
    audio_tables: int
    audio_bits: int
    sketch_limit: int  # fingerprint pairs whose sketches differ in more bits are not candidates
    seed: int = 0

    @classmethod
    def for_catalog(
        cls,
        items: int,
        *,
        min_cosine: float,
        phash_radius: int = 6,
        recall: float = 0.99,
        seed: int = 0,
    ) -> Bands:
        """Tables sized so a pair at `phash_radius` bits, or exactly at `min_cosine`, is a
        candidate with probability ≥ `recall`, in a catalog of `items`."""
        k = key_bits(items)
        phash_collide = math.comb(64 - phash_radius, k) / math.comb(64, k)
        agree = 1.0 - math.acos(min(max(min_cosine, -1.0), 1.0)) / math.pi
        # The sketch test keeps a true match unless its 64 sketch bits disagree far beyond the
        # expected 64·(1-agree): the binomial tail at +5 standard deviations.
        mean = SKETCH_BITS * (1 - agree)
        limit = math.ceil(mean + 5 * math.sqrt(SKETCH_BITS * agree * (1 - agree)))
        return cls(
            phash_tables=_tables_for(phash_collide, recall),
            phash_bits=k,
            audio_tables=_tables_for(agree**k, recall),
            audio_bits=k,
            sketch_limit=limit,
            seed=seed,
        )

    @property
    def tables(self) -> int:
        return self.phash_tables + self.audio_tables

    def _positions(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return np.stack([rng.permutation(64)[: self.phash_bits] for _ in range(self.phash_tables)])

    def _hyperplanes(self, dim: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed + 1)
        return rng.standard_normal((dim, self.audio_tables * self.audio_bits + SKETCH_BITS)).astype(
            np.float32
        )

    def phash_keys(self, hashes: np.ndarray) -> np.ndarray:
        """(n, phash_tables) bucket keys of 64-bit hashes."""
        bits = ((hashes[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        weights = np.uint64(1) << np.arange(self.phash_bits, dtype=np.uint64)
        values = (bits[:, self._positions()].astype(np.uint64) * weights).sum(axis=-1)
        tables = np.arange(self.phash_tables, dtype=np.uint64) << _TABLE_SHIFT
        return values.astype(np.uint64) | tables

    def audio_keys(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, audio_tables) bucket keys and (n,) sketches of unit-length fingerprints."""
        signs = (unit @ self._hyperplanes(unit.shape[1])) > 0
        n, k = len(unit), self.audio_bits
        weights = np.uint64(1) << np.arange(k, dtype=np.uint64)
        table_bits = signs[:, : self.audio_tables * k].reshape(n, self.audio_tables, k)
        values = (table_bits.astype(np.uint64) * weights).sum(axis=-1).astype(np.uint64)
        first = np.uint64(self.phash_tables)
        tables = (np.arange(self.audio_tables, dtype=np.uint64) + first) << _TABLE_SHIFT
        sketch_weights = np.uint64(1) << np.arange(SKETCH_BITS, dtype=np.uint64)
        sketch_bits = signs[:, self.audio_tables * k :].astype(np.uint64)
        return values | tables, (sketch_bits * sketch_weights).sum(axis=-1).astype(np.uint64)

    def is_phash_key(self, keys: np.ndarray) -> np.ndarray:
        """Which keys belong to pHash tables (the rest are fingerprint tables)."""
        return (keys >> _TABLE_SHIFT) < np.uint64(self.phash_tables)


def bucket_pairs(
    keys: np.ndarray, items: np.ndarray, sketches: np.ndarray, limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of items that share a key and whose sketches differ in at most the row's limit.

    Sorted by key, row i meets rows i+1, i+2, … of its run; each round keeps only the rows whose
    run is still longer, so the cost is the number of pairs inside buckets, never n².
    Returns (a, b) with a < b, each pair once.
    """
    order = np.argsort(keys, kind="stable")
    keys, items, sketches, limits = keys[order], items[order], sketches[order], limits[order]
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    rows = np.nonzero(keys[:-1] == keys[1:])[0]
    offset = 1
    while len(rows):
        other = rows + offset
        close = popcount(sketches[rows] ^ sketches[other]) <= limits[rows]
        a, b = items[rows[close]], items[other[close]]
        found_a.append(np.minimum(a, b))
        found_b.append(np.maximum(a, b))
        offset += 1
        rows = rows[rows + offset < len(keys)]
        rows = rows[keys[rows] == keys[rows + offset]]
    if not found_a:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    pairs = np.unique(np.stack([np.concatenate(found_a), np.concatenate(found_b)], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return pairs[:, 0], pairs[:, 1]
