"""`signals near-duplicates` over a synthetic catalog with planted duplicates.

Every item has artwork (a random 64-bit pHash and a 4×4 RGB colour layout); 70% have an audio
fingerprint (a random unit vector, 128-d). 5% of the items are planted copies of another item: the
pHash with 0–6 bits flipped (what a re-encode or a resize does), the layout with ±2/255 noise, the
fingerprint with noise that keeps the cosine ≥ 0.98. The check compares the job's groups with the
planted pairs and, up to 200k items, with exact all-pairs search (`NearDuplicates.edges`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features import get_signal
from tests.signal_rows import standard_columns

if TYPE_CHECKING:
    from jobs.settings import Settings

CHUNK = 100_000
COPIES = 0.05
AUDIO = 0.7
EXACT_UP_TO = 200_000


def _settings(workdir: Path) -> Settings:
    os.environ["SIGNALS_LAKE_URI"] = str(workdir / "lake")
    os.environ.setdefault("SIGNALS_RAY_NUM_CPUS", str(os.cpu_count() or 2))
    from jobs.settings import Settings

    return Settings.from_env()


def _ids(start: int, stop: int) -> list[str]:
    return [f"track:{i:08d}" for i in range(start, stop)]


def _flip(hashes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = hashes.copy()
    for i in range(len(out)):
        for bit in rng.choice(64, size=rng.integers(0, 7), replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out


def prepare(workdir: Path, items: int) -> None:
    """Both source tables in their signals' schemas, written chunk by chunk, plus the planted pairs."""
    from deltalake import write_deltalake

    settings = _settings(workdir)
    art, audio = get_signal("artwork_hash@1"), get_signal("audio_fingerprint@1")
    rng = np.random.default_rng(7)
    originals = items - int(items * COPIES)
    # Copies reuse the values of earlier originals; keep those originals' values at hand.
    sources = np.sort(rng.choice(originals, size=items - originals, replace=False))
    kept: dict[str, np.ndarray] = {}
    now = datetime.now(UTC) - timedelta(minutes=5)
    for start in range(0, items, CHUNK):
        stop = min(items, start + CHUNK)
        n = stop - start
        hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + rng.integers(
            0, 2, size=n, dtype=np.uint64
        )
        layouts = rng.uniform(0, 1, size=(n, 48)).astype(np.float32)
        vectors = rng.standard_normal((n, 128)).astype(np.float32)
        has_audio = rng.uniform(size=n) < AUDIO
        rows = np.arange(start, stop)
        if start < originals:
            for name, values in (("hash", hashes), ("layout", layouts), ("vector", vectors),
                                 ("audio", has_audio)):  # fmt: skip
                own = values[rows < originals]
                kept[name] = np.concatenate([kept[name], own]) if name in kept else own
        copies = rows >= originals
        if copies.any():
            src = sources[rows[copies] - originals]
            hashes[copies] = _flip(kept["hash"][src], rng)
            layouts[copies] = np.clip(
                kept["layout"][src] + rng.uniform(-2 / 255, 2 / 255, (len(src), 48)), 0, 1
            )
            vectors[copies] = kept["vector"][src] + rng.standard_normal((len(src), 128)) * 0.12
            has_audio[copies] = kept["audio"][src]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = _ids(start, stop)
        write_deltalake(
            settings.signal_uri(art.storage_name),
            pa.table(
                {
                    **standard_columns(ids, now),
                    "phash": [f"{h:016x}" for h in hashes],
                    "colour_layout": list(layouts),
                }
            ).cast(art.arrow_schema()),
            mode="append",
        )
        audio_ids = [i for i, a in zip(ids, has_audio, strict=True) if a]
        write_deltalake(
            settings.signal_uri(audio.storage_name),
            pa.table(
                {**standard_columns(audio_ids, now), "fingerprint": list(vectors[has_audio])}
            ).cast(audio.arrow_schema()),
            mode="append",
        )
    pq.write_table(
        pa.table({"a": [f"track:{s:08d}" for s in sources], "b": _ids(originals, items)}),
        workdir / "planted.parquet",
    )


def measure(workdir: Path, items: int) -> dict[str, object]:
    """The real job over the lake: wall time, rows, groups."""
    import time

    from jobs.pipeline.near_duplicates import run_near_duplicates

    started = time.perf_counter()
    record = run_near_duplicates(_settings(workdir))
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 1), "rows": record.extracted, "status": record.status,
            "items_per_s": round(record.extracted / seconds)}  # fmt: skip


def _mapping(table: pa.Table, key: str, value: str) -> dict[str, str]:
    return dict(zip(table.column(key).to_pylist(), table.column(value).to_pylist(), strict=True))


def _same_group(groups: dict[str, str], pairs: pa.Table) -> float:
    a, b = pairs.column("a").to_pylist(), pairs.column("b").to_pylist()
    hits = sum(
        groups.get(x) is not None and groups.get(x) == groups.get(y)
        for x, y in zip(a, b, strict=True)
    )
    return hits / max(len(a), 1)


def check(workdir: Path, items: int) -> dict[str, object]:
    """Recall on the planted pairs; against exact search, recall and precision of the pairs the
    groups imply (not measured: it holds the whole output, which only a benchmark may)."""
    from jobs.lake.tables import latest_signal_values

    settings = _settings(workdir)
    signal = get_signal("near_duplicates@1")
    out = latest_signal_values(settings.signal_uri(signal.storage_name), signal.arrow_schema(),
                               ["group_id"], settings.storage_options)  # fmt: skip
    groups = _mapping(out, "content_id", "group_id")
    figures: dict[str, object] = {
        "planted_recall": round(_same_group(groups, pq.read_table(workdir / "planted.parquet")), 4),
        "in_groups": int(
            pc.sum(pc.not_equal(out.column("group_id"), out.column("content_id"))).as_py() or 0
        ),
    }
    if items <= EXACT_UP_TO:
        figures.update(_against_exact(settings, groups))
    return figures


def _against_exact(settings: Settings, groups: dict[str, str]) -> dict[str, object]:
    from extractors.duplicates import NearDuplicates
    from jobs.lake.tables import latest_signal_values

    art, audio = get_signal("artwork_hash@1"), get_signal("audio_fingerprint@1")
    hashes = latest_signal_values(settings.signal_uri(art.storage_name), art.arrow_schema(),
                                  ["phash", "colour_layout"])  # fmt: skip
    vectors = latest_signal_values(settings.signal_uri(audio.storage_name), audio.arrow_schema(),
                                   ["fingerprint"])  # fmt: skip
    ids = hashes.column("content_id")
    at = pc.index_in(ids, value_set=vectors.column("content_id"))
    batch = pa.table({"content_id": ids, "artwork_phash": hashes.column("phash"),
                      "artwork_layout": hashes.column("colour_layout"),
                      "audio_fingerprint": vectors.column("fingerprint").take(at)})  # fmt: skip
    exact = NearDuplicates().edges(batch)
    recall = _same_group(groups, exact)
    # Precision: pairs the job's groups imply that exact search's components also join.
    truth = NearDuplicates().extract(batch)
    true_group = _mapping(truth, "content_id", "group_id")
    members: dict[str, list[str]] = {}
    for cid, g in groups.items():
        if g is not None:  # an item that left the catalog
            members.setdefault(g, []).append(cid)
    implied = [(m[0], x) for m in members.values() if len(m) > 1 for x in m[1:]]
    right = sum(true_group.get(a) == true_group.get(b) for a, b in implied)
    return {"exact_pairs": exact.num_rows, "exact_recall": round(recall, 4),
            "precision": round(right / max(len(implied), 1), 4)}  # fmt: skip
