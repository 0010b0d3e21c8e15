"""The stages of the near-duplicates job: plain functions over tables, run as Ray tasks by the
job (and in-process by tests), each returning one table per partition of the next stage.

    sources ──share──▶ items(p) ──keys──▶ pairs(q) ──▶ attach(p of a) ──▶ verify(p of b)
                                                                              │ edges
    write(p) ◀──assignments by p── groups ◀───────────────────────────────────┘

An item lives in partition `p = hash(content_id) % P` and is known by `p << 32 | row`, its row in
that partition's table. Buckets live in partition `q = mix(key) % Q`. Only the candidates that
pass the in-bucket sketch test travel on, first to their first item's partition to pick up its
features, then to their second's, where the rule is applied exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractors.duplicates import (
    ARTWORK,
    AUDIO,
    EDGE_SCHEMA,
    Rule,
    assignments,
    duplicate_columns,
    edge_table,
    phash_values,
    unit_rows,
    vector_matrix,
)
from extractors.near_index import Bands, bucket_pairs
from features.standard import TIMESTAMP
from jobs.lake.tables import latest_per_key, read_share
from jobs.pipeline.shuffle import partition_of, split
from jobs.pipeline.worker import ExtractBatches

ROW_BITS = np.int64(32)
ROW_MASK = np.int64((1 << 32) - 1)
PREVIOUS = "previous_group"  # the item's current near-duplicate group: it had a row
ORDER = ("event_timestamp", "created_timestamp")
STAMPED = ("artwork", "audio")  # sources whose row stamps an item keeps (the daily run's order)
COLUMNS = {  # every column of a partition's items, whichever sources exist
    "artwork_phash": pa.string(),
    "artwork_layout": pa.list_(pa.float32()),
    "audio_fingerprint": pa.list_(pa.float32()),
    **{f"{name}_{stamp}": TIMESTAMP for name in STAMPED for stamp in ("event", "created")},
    PREVIOUS: pa.string(),
}
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing spreads bucket keys over partitions


@dataclass(frozen=True)
class Source:
    """A signal table the job reads: the newest value per item of some features, each feeding
    an input column of the extractor (`name` prefixes the stamps of the rows they came from)."""

    name: str
    uri: str
    version: int
    columns: tuple[tuple[str, str], ...]  # (feature in the table, input column)


@dataclass(frozen=True)
class Layout:
    """How the run is cut: item partitions, bucket partitions, the tables and the rule."""

    partitions: int
    bucket_partitions: int
    bands: Bands
    rule: Rule


def read_source(
    source: Source, share: int, shares: int, layout: Layout, options: dict[str, str]
) -> tuple[pa.Table, ...] | pa.Table:
    """One share of a source table, its rows sent to their items' partitions."""
    return route_rows(
        source, read_share(source.uri, source.version, share, shares, source_columns(source),
                           options), layout,
    )  # fmt: skip


def source_columns(source: Source) -> list[str]:
    """The columns a source's rows are read with."""
    return ["content_id", *ORDER, *(feature for feature, _ in source.columns)]


def route_rows(source: Source, rows: pa.Table, layout: Layout) -> tuple[pa.Table, ...] | pa.Table:
    """A source's rows under the extractor's input names, sent to their items' partitions."""
    rows = rows.rename_columns(["content_id", *ORDER, *(c for _, c in source.columns)])
    return split(
        rows, partition_of(rows.column("content_id"), layout.partitions), layout.partitions
    )


def partition_items(sources: list[Source], tables: list[list[pa.Table]]) -> pa.Table:
    """The newest value per item of every source, with the stamps of its row, one row per item,
    sorted by content_id.

    Joined by position, not with Arrow's hash join, which refuses list columns."""
    latest: dict[str, pa.Table] = {}
    for source, parts in zip(sources, tables, strict=True):
        newest = latest_per_key(pa.concat_tables(parts, promote_options="permissive"), order=ORDER)
        names = [f"{source.name}_event", f"{source.name}_created"]
        newest = newest.rename_columns(
            [dict(zip(ORDER, names, strict=True)).get(c, c) for c in newest.column_names]
        )
        latest.update({column: newest for _, column in source.columns})
        if source.name in STAMPED:
            latest.update({name: newest for name in names})
    every = [t.column("content_id").combine_chunks() for t in latest.values()]
    ids = pc.unique(pa.concat_arrays(every)) if every else pa.array([], pa.string())
    ids = ids.take(pc.sort_indices(ids))
    columns: dict[str, pa.Array] = {"content_id": ids}
    for column, kind in COLUMNS.items():
        if column in latest:
            rows = latest[column]
            at = pc.index_in(ids, value_set=rows.column("content_id").combine_chunks())
            columns[column] = rows.column(column).combine_chunks().take(at).cast(kind)
        else:  # a source with no table yet
            columns[column] = pa.nulls(len(ids), kind)
    return pa.table(columns)


def group_parts(counts: list[int], parts: tuple[pa.Table, ...]) -> list[list[pa.Table]]:
    """A task's flat list of inputs cut back into one list per source (`counts` of each)."""
    grouped, start = [], 0
    for count in counts:
        grouped.append(list(parts[start : start + count]))
        start += count
    return grouped


def build_items(
    p: int, layout: Layout, sources: list[Source], counts: list[int], *parts: pa.Table
) -> tuple[pa.Table, ...]:
    """Partition p's items (they have a hash or a fingerprint, or had a group) and its bucket rows
    (key, item, sketch), sent to their buckets' partitions. Returns (items, *buckets)."""
    items = partition_items(sources, group_parts(counts, parts))
    return (items, *lsh_rows(p, layout, items, np.arange(items.num_rows)))


def lsh_rows(p: int, layout: Layout, items: pa.Table, rows: np.ndarray) -> tuple[pa.Table, ...]:
    """The LSH rows (key, item, sketch) of some rows of partition p's items, one table per
    bucket partition."""
    picked = items.take(pa.array(rows, pa.int64()))
    n = picked.num_rows
    hashes, has_hash = phash_values(picked.column("artwork_phash").to_pylist())
    vectors, has_fingerprint = vector_matrix(picked.column("audio_fingerprint"), n)
    ids = (np.int64(p) << ROW_BITS) | rows.astype(np.int64)
    bands = layout.bands
    keys, members, sketches = [], [], []
    if has_hash.any():
        keys.append(bands.phash_keys(hashes[has_hash]).ravel())
        members.append(np.repeat(ids[has_hash], bands.phash_tables))
        sketches.append(np.repeat(hashes[has_hash], bands.phash_tables))
    if has_fingerprint.any():
        audio_keys, sketch = bands.audio_keys(unit_rows(vectors, has_fingerprint)[has_fingerprint])
        keys.append(audio_keys.ravel())
        members.append(np.repeat(ids[has_fingerprint], bands.audio_tables))
        sketches.append(np.repeat(sketch, bands.audio_tables))
    table = pa.table(
        {
            "key": pa.array(np.concatenate([np.empty(0, np.uint64), *keys]), pa.uint64()),
            "item": pa.array(np.concatenate([np.empty(0, np.int64), *members]), pa.int64()),
            "sketch": pa.array(np.concatenate([np.empty(0, np.uint64), *sketches]), pa.uint64()),
        }
    )
    q = layout.bucket_partitions
    dest = ((np.asarray(table.column("key")) * _MIX) >> np.uint64(40)) % np.uint64(q)
    buckets = split(table, dest.astype(np.int64), q)
    return buckets if q > 1 else (buckets,)  # type: ignore[return-value]


def candidate_pairs(layout: Layout, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of items sharing a bucket whose sketches are close (pHash keys: the hash itself
    within the rule's bits; fingerprint keys: SimHash sketches within the sketch limit)."""
    keys = np.asarray(rows.column("key"))
    limits = np.where(
        layout.bands.is_phash_key(keys), layout.rule.max_hamming, layout.bands.sketch_limit
    ).astype(np.int64)
    return bucket_pairs(
        keys, np.asarray(rows.column("item")), np.asarray(rows.column("sketch")), limits
    )


def route_pairs(a: np.ndarray, b: np.ndarray, layout: Layout) -> tuple[pa.Table, ...] | pa.Table:
    """Candidate pairs sent to their first item's partition."""
    pairs = pa.table({"a": pa.array(a, pa.int64()), "b": pa.array(b, pa.int64())})
    return split(pairs, (a >> ROW_BITS).astype(np.int64), layout.partitions)


def bucket_candidates(layout: Layout, *parts: pa.Table) -> tuple[pa.Table, ...] | pa.Table:
    """Pairs sharing a bucket whose sketches are close, sent to their first item's partition."""
    return route_pairs(*candidate_pairs(layout, pa.concat_tables(parts)), layout)


def _features(items: pa.Table, rows: np.ndarray) -> dict[str, pa.Array]:
    """What the rule needs of some items of a partition, as columns to carry with their pairs."""
    picked = items.take(pa.array(rows, pa.int64()))
    return {
        "id": picked.column("content_id").combine_chunks(),
        "phash": picked.column("artwork_phash").combine_chunks(),
        "layout": picked.column("artwork_layout").combine_chunks(),
        "fingerprint": picked.column("audio_fingerprint").combine_chunks(),
        "group": picked.column(PREVIOUS).combine_chunks(),
    }


def attach_first(
    layout: Layout, items: pa.Table, *parts: pa.Table
) -> tuple[pa.Table, ...] | pa.Table:
    """Candidates whose first item is in this partition, with that item's features, sent on to
    their second item's partition."""
    pairs = pa.concat_tables(parts)
    pairs = pairs.group_by(["a", "b"]).aggregate([])  # one pair found by several tables
    a = np.asarray(pairs.column("a"))
    carried = {f"a_{k}": v for k, v in _features(items, a & ROW_MASK).items()}
    out = pa.table({"b": pairs.column("b"), **carried})
    return split(out, (np.asarray(out.column("b")) >> ROW_BITS).astype(np.int64), layout.partitions)


def _same_width(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two vector matrices of one width: a side whose vectors are all missing is all NaN."""
    if x.shape[1] == y.shape[1]:
        return x, y
    width = max(x.shape[1], y.shape[1])
    pad = np.full((len(x), width), np.nan, dtype=np.float32)
    return (pad, y) if x.shape[1] < width else (x, pad)


def verify(layout: Layout, items: pa.Table, *parts: pa.Table) -> pa.Table:
    """The rule applied exactly to every candidate whose second item is in this partition."""
    pairs = pa.concat_tables(parts)
    b = _features(items, np.asarray(pairs.column("b")) & ROW_MASK)
    n = pairs.num_rows
    ids = np.concatenate(
        [np.asarray(pairs.column("a_id"), dtype=object), np.asarray(b["id"], dtype=object)]
    )
    first, second = np.arange(n), np.arange(n, 2 * n)
    edges = []
    ha, has_a = phash_values(pairs.column("a_phash").to_pylist())
    hb, has_b = phash_values(b["phash"].to_pylist())
    la, lb = _same_width(
        vector_matrix(pairs.column("a_layout"), n)[0], vector_matrix(b["layout"], n)[0]
    )
    if n:
        distance, ok = layout.rule.artwork(ha, hb, la, lb)
        ok &= has_a & has_b
        edges.append(edge_table(ids, first[ok], second[ok], distance[ok], ARTWORK))
    (fa, fpa), (fb, fpb) = (
        vector_matrix(pairs.column("a_fingerprint"), n),
        vector_matrix(b["fingerprint"], n),
    )
    fa, fb = _same_width(fa, fb)
    if n:
        distance, ok = layout.rule.audio(unit_rows(fa, fpa), unit_rows(fb, fpb))
        ok &= fpa & fpb
        edges.append(edge_table(ids, first[ok], second[ok], distance[ok], AUDIO))
    return pa.concat_tables([EDGE_SCHEMA.empty_table(), *edges])


def group(layout: Layout, *edges: pa.Table) -> tuple[pa.Table, ...] | pa.Table:
    """Connected components over the verified pairs alone, each item's row sent to its partition.

    One task holds the pairs, not the catalog: items without a near-duplicate never reach it.
    """
    assigned = assignments(pa.concat_tables([EDGE_SCHEMA.empty_table(), *edges]), layout.rule)
    dest = partition_of(assigned.column("content_id"), layout.partitions)
    return split(assigned, dest, layout.partitions)


def has_input(items: pa.Table) -> pa.ChunkedArray:
    """Which items have a hash or a fingerprint: the others left the catalog (or never had one)."""
    return pc.or_(
        pc.is_valid(items.column("artwork_phash")), pc.is_valid(items.column("audio_fingerprint"))
    )


def output_groups(items: pa.Table, *assigned: pa.Table) -> pa.Array:
    """Each item's group after the run (its own id when it has no near-duplicate), null for an
    item without input: what the job's state keeps."""
    out = duplicate_columns(items.column("content_id"), pa.concat_tables(assigned))
    live = has_input(items)
    return pc.if_else(live, out.column("group_id"), pa.scalar(None, pa.string())).combine_chunks()


def write_partition(
    writer: dict[str, object], started: datetime, items: pa.Table, *assigned: pa.Table
) -> pa.Table:
    """Partition p's output rows through the contract, quarantine and part writer of every job;
    items that had a group and have neither hash nor fingerprint now get a tombstone."""
    worker = ExtractBatches(**writer, event_timestamp=started, device=None, threads=1)  # type: ignore[arg-type]
    live_rows = has_input(items)
    gone = items.filter(pc.and_(pc.invert(live_rows), pc.is_valid(items.column(PREVIOUS))))
    live = items.filter(live_rows)
    live = live.append_column("updated_at", pa.nulls(live.num_rows, TIMESTAMP))
    out = duplicate_columns(live.column("content_id"), pa.concat_tables(assigned))
    features = {name: out.column(name) for name in worker.extractor.output_schema().names}
    computed = worker.extractor.result(live.column("content_id"), features, [None] * live.num_rows)
    return worker.process(
        live.select(["content_id", "updated_at", *type(worker.extractor).inputs]),
        read=live.num_rows,
        gone=gone.column("content_id"),
        computed=computed,
    )
