"""Near-duplicate grouping on its own: known hashes and fingerprints, known groups."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extractors.duplicates import NearDuplicates
from extractors.near_index import Bands, bucket_pairs


def _flip(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for b in bits:
        value ^= 1 << b
    return f"{value:016x}"


def _table(phashes: list[str | None], fingerprints: list[list[float] | None]) -> pa.Table:
    return pa.table(
        {
            "content_id": [f"item:{i:03d}" for i in range(len(phashes))],
            "artwork_phash": pa.array(phashes, pa.string()),
            "audio_fingerprint": pa.array(fingerprints, pa.list_(pa.float32())),
        }
    )


def test_hashes_within_the_threshold_group_and_far_ones_stay_alone() -> None:
    rng = np.random.default_rng(0)
    base = [f"{int(x):016x}" for x in rng.integers(0, 2**63, size=30)]
    hashes: list[str | None] = [*base, _flip(base[0], [1, 7, 30]), _flip(base[5], list(range(10)))]
    out = NearDuplicates(max_hamming=10).extract(_table(hashes, [None] * len(hashes))).to_pylist()
    assert out[30]["group_id"] == out[0]["group_id"] == "item:000"
    assert out[30]["nearest_id"] == "item:000"
    assert out[30]["distance"] == 3.0 and out[30]["match"] == "artwork"
    assert out[31]["group_id"] == "item:005" and out[31]["distance"] == 10.0
    singles = [r for i, r in enumerate(out) if i not in (0, 5, 30, 31)]
    assert all(r["group_size"] == 1 and r["group_id"] == r["content_id"] for r in singles)


def test_fingerprints_group_by_cosine_and_groups_are_transitive() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=32)
    b = rng.normal(size=32)
    near_a = a + rng.normal(scale=0.01, size=32)
    near_near_a = near_a + rng.normal(scale=0.01, size=32)
    fps = [list(map(float, v)) for v in (a, b, near_a, near_near_a)] + [None]
    out = NearDuplicates(min_cosine=0.99).extract(_table([None] * 5, fps)).to_pylist()
    assert {r["group_id"] for r in out[:4]} == {"item:000", "item:001"}
    assert out[0]["group_size"] == out[2]["group_size"] == out[3]["group_size"] == 3
    assert out[1]["group_size"] == 1
    assert out[2]["match"] == "audio" and out[2]["distance"] < 0.01
    assert out[4] == {**out[4], "group_id": "item:004", "group_size": 1, "nearest_id": None}


def test_equal_hashes_with_different_colour_layouts_are_not_duplicates() -> None:
    red, blue = [1.0, 0.0, 0.0] * 16, [0.0, 0.0, 1.0] * 16
    table = pa.table(
        {
            "content_id": ["a", "b", "c"],
            "artwork_phash": ["00ff00ff00ff00ff"] * 3,
            "artwork_layout": pa.array([red, blue, red], pa.list_(pa.float32())),
            "audio_fingerprint": pa.nulls(3, pa.list_(pa.float32())),
        }
    )
    out = NearDuplicates().extract(table).to_pylist()
    assert [r["group_id"] for r in out] == ["a", "b", "a"]


def _flipped(values: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = values.copy()
    for i in range(len(out)):
        for b in rng.choice(64, size=bits, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(b)
    return out


def test_lsh_buckets_find_planted_pairs_at_the_design_distance_and_few_others() -> None:
    rng = np.random.default_rng(3)
    n, planted = 20_000, 500
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    hashes[n - planted :] = _flipped(hashes[:planted], 6, rng)  # exactly the design distance
    bands = Bands.for_catalog(n, min_cosine=0.98)
    keys = bands.phash_keys(hashes)
    items = np.repeat(np.arange(n, dtype=np.int64), bands.phash_tables)
    a, b = bucket_pairs(
        keys.ravel(), items, np.repeat(hashes, bands.phash_tables), np.full(keys.size, 12)
    )
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    recall = np.mean([(i, n - planted + i) in found for i in range(planted)])
    assert recall >= 0.97  # designed for 0.99 at 6 bits; closer pairs are found more often
    # Candidates are only pairs within 12 bits: the planted ones and chance ones (random 64-bit
    # hashes lie within 12 bits with probability 2.4e-7: about 48 of the 2e8 pairs here).
    assert len(found) <= planted + 60
    assert all(int(np.bitwise_count(hashes[x] ^ hashes[y])) <= 12 for x, y in found)


def test_lsh_tables_find_fingerprints_at_the_cosine_threshold() -> None:
    rng = np.random.default_rng(4)
    n, planted, dim = 5_000, 300, 128
    unit = rng.standard_normal((n, dim)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    # Copies at cosine 0.98 exactly: cos·u + sin·(orthogonal unit).
    noise = rng.standard_normal((planted, dim)).astype(np.float32)
    noise -= (noise * unit[:planted]).sum(1, keepdims=True) * unit[:planted]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    unit[n - planted :] = 0.98 * unit[:planted] + np.sqrt(1 - 0.98**2) * noise
    bands = Bands.for_catalog(n, min_cosine=0.98)
    keys, sketches = bands.audio_keys(unit)
    items = np.repeat(np.arange(n, dtype=np.int64), bands.audio_tables)
    limits = np.full(keys.size, bands.sketch_limit)
    a, b = bucket_pairs(keys.ravel(), items, np.repeat(sketches, bands.audio_tables), limits)
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    recall = np.mean([(i, n - planted + i) in found for i in range(planted)])
    assert recall >= 0.97
    assert len(found) < planted * 2  # unrelated vectors (cosine ≈ 0) almost never meet


def test_a_bucket_of_many_equal_keys_yields_each_pair_once() -> None:
    keys = np.array([5] * 40 + [9, 9, 1], dtype=np.uint64)
    items = np.arange(43, dtype=np.int64)
    a, b = bucket_pairs(keys, items, np.zeros(43, np.uint64), np.zeros(43, np.int64))
    assert len(a) == 40 * 39 // 2 + 1
    assert (a < b).all() and len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(a)
