"""Near-duplicate grouping on its own: known hashes and fingerprints, known groups."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extractors.duplicates import NearDuplicates


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
