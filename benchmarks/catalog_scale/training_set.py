"""Training sets at catalog scale: `build_training_set` over a `text_embedding@1` history.

`prepare` writes two runs of 384-d embeddings into a private lake (every item at T1, every other
item again at T2) and an entity file of `items` rows whose timestamps spread from before T1 to
after T2, so some rows predate any value, some get T1's and some T2's. Everything is written in
chunks: prepare never holds the whole history. `measure` runs the real `build_training_set` (the
`signals training-set` command's function) into a folder of parts, with the engine
`$SIGNALS_TRAINING_SET_ENGINE` names (`local`, the default, or `ray`: a local Ray here).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import write_deltalake

from benchmarks.serving_data import store_settings
from features import get_signal
from jobs.settings import Settings

SIGNAL = get_signal("text_embedding@1")
DIM = 384
CHUNK = 50_000  # rows generated and written at a time
NOW = datetime.now(UTC).replace(microsecond=0)
T1, T2 = NOW - timedelta(days=20), NOW - timedelta(days=10)


def _settings(workdir: Path) -> Settings:
    # The same lake and repository copy in both children (store_settings exports the env).
    engine = os.environ.get("SIGNALS_TRAINING_SET_ENGINE", "local")
    return replace(store_settings(workdir, "sqlite"), training_set_engine=engine)


def _ids(start: int, stop: int, step: int = 1) -> list[str]:
    return [f"track:{i:08d}" for i in range(start, stop, step)]


def _run(items: int, at: datetime, run_id: str, step: int, seed: int) -> Iterator[pa.RecordBatch]:
    """One run's rows, `CHUNK` items at a time, in the signal's own schema."""
    rng = np.random.default_rng(seed)
    schema = SIGNAL.arrow_schema()
    for start in range(0, items, CHUNK * step):
        ids = _ids(start, min(start + CHUNK * step, items), step)
        n = len(ids)
        stamp = pa.array([at] * n, pa.timestamp("us", tz="UTC"))
        values = rng.standard_normal(n * DIM, dtype=np.float32)
        embedding = pa.ListArray.from_arrays(
            pa.array(np.arange(0, (n + 1) * DIM, DIM, dtype=np.int32)), pa.array(values)
        )
        yield pa.RecordBatch.from_pydict(
            {
                "content_id": ids,
                "event_timestamp": stamp,
                "created_timestamp": stamp,
                "input_updated_at": stamp,
                "input_hash": [f"{run_id}-{i}" for i in ids],
                "extractor_version": ["bench"] * n,
                "run_id": [run_id] * n,
                "embedding": embedding,
            }
        ).cast(schema)


def prepare(workdir: Path, items: int) -> None:
    """The history (two committed runs) and `items` entity rows, written chunk by chunk."""
    settings = _settings(workdir)
    uri = settings.signal_uri(SIGNAL.storage_name)
    schema = SIGNAL.arrow_schema()
    for at, run_id, step, seed in ((T1, "run-1", 1, 1), (T2, "run-2", 2, 2)):
        batches = pa.RecordBatchReader.from_batches(schema, _run(items, at, run_id, step, seed))
        write_deltalake(uri, batches, mode="append")
    rng = np.random.default_rng(3)
    span = (T2 - T1 + timedelta(days=20)).total_seconds()
    start = (T1 - timedelta(days=10)).timestamp()
    entity_schema = pa.schema(
        [
            ("content_id", pa.string()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("label", pa.int8()),
        ]
    )
    with pq.ParquetWriter(workdir / "entities.parquet", entity_schema) as writer:
        for offset in range(0, items, CHUNK):
            n = min(CHUNK, items - offset)
            which = rng.integers(0, items, n)
            seconds = start + rng.uniform(0, span, n)
            writer.write_table(
                pa.table(
                    {
                        "content_id": [f"track:{i:08d}" for i in which],
                        "event_timestamp": pa.array(
                            (seconds * 1e6).astype("int64"), pa.timestamp("us", tz="UTC")
                        ),
                        "label": rng.integers(0, 2, n).astype(np.int8),
                    },
                    schema=entity_schema,
                )
            )


def measure(workdir: Path, items: int) -> dict[str, object]:
    """Run `build_training_set` over the history; the rows, parts and rows per second."""
    from jobs.serving.training_set import build_training_set

    settings = _settings(workdir)
    out = workdir / "train"
    start = time.perf_counter()
    done = build_training_set(settings, workdir / "entities.parquet", out, signals=[SIGNAL.ref])
    seconds = time.perf_counter() - start
    [filled] = done.filled.values()
    return {
        "engine": settings.training_set_engine,
        "rows": done.rows,
        "parts": len(list(out.glob("part-*.parquet"))),
        "filled": filled,
        "rows_per_s": round(done.rows / seconds),
        "build_seconds": round(seconds, 2),
        "out_mib": round(sum(p.stat().st_size for p in out.iterdir()) / 2**20, 1),
    }
