"""Text-only catalog rows in row order, batch by batch: what the snapshot holds before media."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.catalog import CATALOG_SCHEMA
from jobs.sample.breaks import break_text, broken_rows
from jobs.sample.plan import DEFAULT_BATCH_ROWS, TYPE_NAMES, Plan, plan
from jobs.sample.rows import type_rows
from jobs.sample.words import NULL_STRING

TEXT_TRUTH = ("genre", "translation_of")  # what the rows know of their text, for the truth only


def text_batch(
    layout: Plan, start: int, stop: int, breaks: dict[int, str]
) -> tuple[pa.RecordBatch, dict[str, pa.Array]]:
    """Rows [start, stop) and what their text holds (`TEXT_TRUTH`: the genre it states, the
    item it translates): built type by type (each type has its own templates), then put back in
    row order. A broken row's text holds nothing."""
    rows = np.arange(start, stop, dtype=np.int64)
    code, number = layout.locate(rows)
    order = np.argsort(code, kind="stable")
    parts = []
    for c in np.unique(code):
        selected = order[code[order] == c]
        parts.append(type_rows(layout, int(c), number[selected]))
    back = np.empty_like(order)
    back[order] = np.arange(len(order))

    columns = {name: pa.concat_arrays([p[name] for p in parts]).take(back) for name in parts[0]}
    columns["content_type"] = TYPE_NAMES.take(code)
    for name in ("audio_uri", "artwork_uri", "video_uri"):
        columns[name] = pa.nulls(len(rows), pa.string())
    break_text(columns, rows, breaks)
    broken = pa.array(np.isin(rows, list(breaks)))
    truth = {name: pc.if_else(broken, NULL_STRING, columns[name]) for name in TEXT_TRUTH}
    batch = pa.RecordBatch.from_arrays(
        [columns[f.name] for f in CATALOG_SCHEMA], schema=CATALOG_SCHEMA
    )
    return batch, truth


def iter_catalog_batches(
    items: int,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    *,
    with_broken: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Text-only catalog rows as RecordBatches with CATALOG_SCHEMA, media URIs null.

    Why batches: a 1M-item snapshot for a benchmark streams into the Delta writer through a
    RecordBatchReader without ever being held in memory. Every batch is computed from its row
    numbers alone, so the rows are identical whatever `batch_rows` is.
    """
    layout = plan(items, seed)
    breaks = broken_rows(items, seed, False) if with_broken else {}
    for start in range(0, items, batch_rows):
        yield text_batch(layout, start, min(items, start + batch_rows), breaks)[0]


def generate_catalog_rows(items: int, seed: int = 0) -> pa.Table:
    """The sample catalog's text-only rows (no media, URIs null) as one table.

    Why: benchmarks and tests need a realistic catalog of any size in a few seconds without
    touching the disk. The text-level broken rows (blank text, unknown content type) are
    included, as in the written snapshot.
    """
    return pa.Table.from_batches(list(iter_catalog_batches(items, seed)), CATALOG_SCHEMA)
