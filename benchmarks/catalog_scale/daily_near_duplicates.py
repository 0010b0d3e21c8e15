"""A daily `signals near-duplicates` run after 1 % of the catalog changed, beside the full run.

`prepare` writes the catalog of `near_duplicates` (planted copies included), runs the full job
(its wall time is the baseline, `full_seconds`) and then appends a day of changes: 0.5 % new
items that are planted copies of existing ones, 0.25 % items whose artwork and audio change
(they leave whatever group they had), 0.25 % items that leave the catalog. `measure` is the daily
run; `check` is the same recall and precision as the full run's, on the updated catalog. Both
runs are timed after Ray has started, so the ratio is the job's own.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.catalog_scale import near_duplicates as catalog
from features import get_signal
from tests.signal_rows import standard_columns

CHANGED = 0.01
check = catalog.check


def _changes(workdir: Path, items: int, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """The day's artwork and audio rows; the new planted pairs are added to planted.parquet."""
    from jobs.lake.removals import tombstones
    from jobs.lake.tables import read_table

    settings = catalog._settings(workdir)
    art, audio = get_signal("artwork_hash@1"), get_signal("audio_fingerprint@1")
    planted = pq.read_table(workdir / "planted.parquet")
    busy = {*planted.column("a").to_pylist(), *planted.column("b").to_pylist()}
    free = np.array([i for i in range(items) if f"track:{i:08d}" not in busy])
    n = max(4, int(items * CHANGED))
    picked = rng.choice(free, size=n, replace=False)
    sources, edited, gone = picked[: n // 2], picked[n // 2 : 3 * n // 4], picked[3 * n // 4 :]
    wanted = [f"track:{i:08d}" for i in sources]
    stored = read_table(settings.signal_uri(art.storage_name), columns=["content_id", "phash",
                        "colour_layout"]).to_pandas().set_index("content_id").loc[wanted]  # fmt: skip
    copies = catalog._ids(items, items + len(sources))
    hashes = catalog._flip(np.array([int(h, 16) for h in stored["phash"]], np.uint64), rng)
    fresh = rng.integers(0, 2**63, size=len(edited), dtype=np.uint64) * np.uint64(2)
    vectors = rng.standard_normal((len(edited), 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    edited_ids = [f"track:{i:08d}" for i in edited]
    now = datetime.now(UTC)
    art_rows = pa.table(
        {
            **standard_columns([*copies, *edited_ids], now, "day"),
            "phash": [f"{h:016x}" for h in np.concatenate([hashes, fresh])],
            "colour_layout": [*stored["colour_layout"],
                              *rng.uniform(0, 1, (len(edited), 48)).astype(np.float32)],
        }
    ).cast(art.arrow_schema())  # fmt: skip
    audio_rows = pa.table(
        {**standard_columns(edited_ids, now, "day"), "fingerprint": list(vectors)}
    ).cast(audio.arrow_schema())
    removed = pa.array([f"track:{i:08d}" for i in gone])
    pq.write_table(
        pa.concat_tables([planted, pa.table({"a": wanted, "b": copies})]),
        workdir / "planted.parquet",
    )
    return tuple(  # type: ignore[return-value]
        pa.concat_tables(
            [
                rows,
                tombstones(
                    removed, s.arrow_schema(), run_id="day", event_timestamp=now, version="1"
                ),
            ]
        )
        for rows, s in ((art_rows, art), (audio_rows, audio))
    )


def prepare(workdir: Path, items: int) -> dict[str, object]:
    """The catalog, its full run (timed: the baseline) and a day of changes."""
    from deltalake import write_deltalake

    from jobs.pipeline.near_duplicates import run_near_duplicates
    from jobs.pipeline.runtime import ensure_ray

    catalog.prepare(workdir, items)
    settings = catalog._settings(workdir)
    ensure_ray(settings)  # both runs are timed without starting Ray
    started = time.perf_counter()
    full = run_near_duplicates(settings)
    full_seconds = time.perf_counter() - started
    art_rows, audio_rows = _changes(workdir, items, np.random.default_rng(3))
    for signal, rows in (("artwork_hash@1", art_rows), ("audio_fingerprint@1", audio_rows)):
        write_deltalake(settings.signal_uri(get_signal(signal).storage_name), rows, mode="append")
    return {"full_seconds": round(full_seconds, 1), "full_rows": full.extracted,
            "changed_rows": art_rows.num_rows + audio_rows.num_rows}  # fmt: skip


def measure(workdir: Path, items: int) -> dict[str, object]:
    """The daily run over the changes: wall time (Ray's start apart), the rows it wrote."""
    from jobs.pipeline.near_duplicates import run_near_duplicates
    from jobs.pipeline.runtime import ensure_ray

    settings = catalog._settings(workdir)
    begun = time.perf_counter()
    ensure_ray(settings)
    stages: list[str] = []
    started = time.perf_counter()
    record = run_near_duplicates(settings, on_stage=stages.append)
    seconds = time.perf_counter() - started
    if not any(s.startswith("daily run") for s in stages):
        raise SystemExit("the run after the full one was not a daily run")
    return {"seconds": round(seconds, 1), "ray_start_seconds": round(started - begun, 1),
            "rows": record.extracted, "removed": record.removed, "status": record.status}  # fmt: skip
