"""Writing the sample catalog: the snapshot, its media and its ground truth, in one pass."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.catalog import CATALOG_SCHEMA
from jobs.lake.tables import write_table
from jobs.sample.batches import text_batch
from jobs.sample.breaks import REASONS, broken_rows
from jobs.sample.duplicates import planted_copies
from jobs.sample.media import Media, media_jobs, write_media
from jobs.sample.plan import DEFAULT_BATCH_ROWS, plan
from jobs.sample.truth import GROUND_TRUTH_FILE, GROUND_TRUTH_SCHEMA, truth_batch

MEDIA_BATCH_ROWS = 1024


@dataclass(frozen=True)
class SampleCatalog:
    """What `write_sample_catalog` wrote, and what is deliberately wrong in it."""

    snapshot_uri: str
    media_dir: Path
    items: int
    counts_by_type: dict[str, int]  # `content_type` values as written (a broken row shows as such)
    broken: dict[str, str]  # content_id -> what is deliberately wrong with it
    ground_truth_uri: str


def _with_uris(batch: pa.RecordBatch, media: list[Media]) -> pa.RecordBatch:
    uris = {
        "audio_uri": pa.array([m.audio_uri for m in media], pa.string()),
        "artwork_uri": pa.array([m.artwork_uri for m in media], pa.string()),
        "video_uri": pa.array([m.video_uri for m in media], pa.string()),
    }
    arrays = [uris.get(f.name, batch.column(f.name)) for f in CATALOG_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=CATALOG_SCHEMA)


@dataclass
class _Tally:
    """What went by while the batches streamed into the Delta writer."""

    counts: dict[str, int]
    broken: dict[str, str]

    def add(self, batch: pa.RecordBatch, reasons: list[str | None]) -> None:
        for entry in pc.value_counts(batch.column("content_type")).to_pylist():
            self.counts[entry["values"]] = self.counts.get(entry["values"], 0) + entry["counts"]
        ids = batch.column("content_id")
        self.broken |= {ids[i].as_py(): r for i, r in enumerate(reasons) if r is not None}


def write_sample_catalog(
    snapshot_uri: str,
    media_dir: str | Path,
    items: int,
    *,
    seed: int = 0,
    with_media: bool = True,
    storage_options: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SampleCatalog:
    """Write the sample snapshot (Delta, overwrite), its media and its ground truth.

    Why one call: the demo, the CLI (`signals sample`) and the end-to-end tests need the same
    catalog with the same planted problems, and the ground truth must describe exactly the files
    that were written. Rows stream batch by batch into one Delta commit, so size is bounded only
    by the disk. `media_dir` must be local (the snapshot may be remote, via `storage_options`).
    `progress(n)` is called with the number of items finished since the previous call, like
    rich's `Progress.advance`: after every item with media, after every batch without.
    Without media the URIs are null, media-level breaks are not planted, and the ground truth
    holds only the text-level columns.
    """
    layout = plan(items, seed)
    root = Path(media_dir).expanduser().resolve()
    for folder in ("audio", "artwork", "video") if with_media else ():
        (root / folder).mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    breaks = broken_rows(items, seed, with_media)
    copies = planted_copies(items, seed) if with_media else {}
    truth_uri = str(root / GROUND_TRUTH_FILE)
    tally = _Tally({}, {})
    batch_rows = MEDIA_BATCH_ROWS if with_media else DEFAULT_BATCH_ROWS
    workers = min(4, os.cpu_count() or 1)

    def batches(truth: pq.ParquetWriter, pool: ThreadPoolExecutor) -> Iterator[pa.RecordBatch]:
        for start in range(0, items, batch_rows):
            rows = np.arange(start, min(items, start + batch_rows), dtype=np.int64)
            batch, text_truth = text_batch(layout, start, start + len(rows), breaks)
            code, number = layout.locate(rows)
            reasons = [REASONS.get(breaks.get(r, "")) for r in rows.tolist()]
            media = None
            if with_media:
                jobs = media_jobs(batch, rows, code, number, breaks, copies)
                media = []
                for item in pool.map(lambda job: write_media(root, seed, job), jobs):
                    media.append(item)
                    if progress:
                        progress(1)
                batch = _with_uris(batch, media)
            elif progress:
                progress(len(rows))
            truth.write_batch(truth_batch(batch, code, text_truth, reasons, media))
            tally.add(batch, reasons)
            yield batch

    with (
        pq.ParquetWriter(truth_uri, GROUND_TRUTH_SCHEMA) as truth,
        ThreadPoolExecutor(workers, thread_name_prefix="sample-media") as pool,
    ):
        reader = pa.RecordBatchReader.from_batches(CATALOG_SCHEMA, batches(truth, pool))
        write_table(snapshot_uri, reader, mode="overwrite", storage_options=storage_options)
    return SampleCatalog(snapshot_uri, root, items, tally.counts, tally.broken, truth_uri)
