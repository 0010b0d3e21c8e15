"""The stages of a daily near-duplicates run: only the items that changed since the last run are
bucketed and compared, against the state that run kept (`duplicate_state`), and only the groups
they touch are joined again.

    new files ──▶ refresh(p) ──new keys──▶ lookup(q) ──▶ attach(p of a) ──▶ verify(p of b)
                     │ changed, old groups                                   │ edges, groups
                     ▼                                                       ▼
               members(p) ◀──────────── touched groups ◀─────────────────────┘
                     │ members by group
                     ▼
             group edges(r) ──▶ groups ──▶ write(p): rows and state of the touched items

A touched group is the old group of a changed item or of an item a changed one now matches; its
members' pairs among themselves are verified again exactly (their inputs did not change, so the
rule gives what it gave), the changed items' pairs come from the buckets. The components of those
pairs are the new groups of every touched item; no other item's group can have changed.
"""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractors.duplicates import EDGE_SCHEMA, exact_edges, phash_values, unit_rows, vector_matrix
from jobs.lake.tables import iter_part_files
from jobs.pipeline.duplicate_state import (
    State,
    StateTables,
    bucket_state_rows,
    item_state_rows,
    read_buckets,
    read_items,
    store_part,
)
from jobs.pipeline.duplicate_tasks import (
    ORDER,
    PREVIOUS,
    ROW_MASK,
    Layout,
    Source,
    candidate_pairs,
    group_parts,
    has_input,
    lsh_rows,
    output_groups,
    partition_items,
    route_pairs,
    route_rows,
    source_columns,
    verify,
    write_partition,
)
from jobs.pipeline.shuffle import partition_of, split

CHANGED = pa.schema([pa.field("row", pa.int64()), pa.field(PREVIOUS, pa.string())])
GROUPS = pa.schema([pa.field(PREVIOUS, pa.string())])  # old groups the run touches


def read_changes(
    source: Source, paths: list[str], layout: Layout, options: dict[str, str]
) -> tuple[pa.Table, ...] | pa.Table:
    """The rows of some new files of a source, sent to their items' partitions."""
    files = iter_part_files(source.uri, paths, source_columns(source), options)
    return route_rows(source, pa.concat_tables(files, promote_options="permissive"), layout)


def _stored_rows(source: Source, stored: pa.Table, at: pa.Array) -> pa.Table:
    """The rows of `stored` items at `at` as rows of `source` (those that had a value from it)."""
    picked = stored.take(at)
    stamps = [f"{source.name}_event", f"{source.name}_created"]
    picked = picked.filter(pc.is_valid(picked.column(stamps[0])))
    columns = [c for _, c in source.columns]
    return pa.table(
        {
            "content_id": picked.column("content_id"),
            ORDER[0]: picked.column(stamps[0]),
            ORDER[1]: picked.column(stamps[1]),
            **{c: picked.column(c) for c in columns},
        }
    )


def refresh_items(
    p: int,
    layout: Layout,
    tables: StateTables,
    state: State,
    sources: list[Source],
    counts: list[int],
    *parts: pa.Table,
) -> tuple[pa.Table, ...]:
    """Partition p's items with the new rows applied (the newest row per item and source wins,
    stored or new; a new item gets the next row), which rows changed and their old groups, and
    the changed items' bucket rows. Returns (items, changed, *buckets)."""
    stored = read_items(tables, state, p)
    grouped = group_parts(counts, parts)
    ids = pc.unique(pa.concat_arrays([t.column("content_id").combine_chunks()
                                      for rows in grouped for t in rows]))  # fmt: skip
    at = pc.index_in(ids, value_set=stored.column("content_id").combine_chunks())
    known = pc.drop_null(at)
    with_stored = [
        [*rows, _stored_rows(source, stored, known)]
        for source, rows in zip(sources, grouped, strict=True)
    ]
    updated = partition_items(sources, with_stored)
    # partition_items sorts by content_id; `position` is each updated item's row in the result.
    where = pc.index_in(updated.column("content_id"), value_set=stored.column("content_id"))
    fresh = pc.is_null(where).to_numpy(zero_copy_only=False)
    position = np.asarray(where.fill_null(-1), dtype=np.int64)
    n = stored.num_rows
    position[fresh] = n + np.arange(int(fresh.sum()))
    previous = stored.column(PREVIOUS).combine_chunks().take(pa.array(np.where(fresh, 0, position)))
    previous = pc.if_else(pa.array(fresh), pa.scalar(None, pa.string()), previous)
    updated = updated.set_column(updated.schema.get_field_index(PREVIOUS), PREVIOUS, previous)
    take = np.arange(n + int(fresh.sum()))
    take[position] = n + int(fresh.sum()) + np.arange(updated.num_rows)
    placeholder = pa.table({c: pa.nulls(int(fresh.sum()), stored.schema.field(c).type)
                            for c in stored.column_names})  # fmt: skip
    both = pa.concat_tables([stored, placeholder, updated.select(stored.column_names)
                             .cast(stored.schema)])  # fmt: skip
    items = both.take(pa.array(take))
    changed = pa.table({"row": pa.array(position, pa.int64()), PREVIOUS: previous}, schema=CHANGED)
    live = position[has_input(updated).to_numpy(zero_copy_only=False)]
    return (items, changed, *lsh_rows(p, layout, items, np.sort(live)))


def lookup_buckets(
    q: int, layout: Layout, tables: StateTables, state: State, *parts: pa.Table
) -> tuple[pa.Table | str, ...]:
    """The changed items' new bucket rows against the stored rows with the same keys: the pairs
    with at least one changed item, sent to their first item's partition, and the state part of
    the new rows. Returns (*pairs, part)."""
    new = pa.concat_tables(parts)
    changed = np.unique(np.asarray(new.column("item")))
    stored = read_buckets(tables, state, q, np.asarray(new.column("key")))
    stored = stored.filter(pc.invert(pc.is_in(stored.column("item"), pa.array(changed))))
    a, b = candidate_pairs(layout, pa.concat_tables([new, stored]))
    keep = np.isin(a, changed) | np.isin(b, changed)
    pairs = route_pairs(a[keep], b[keep], layout)
    part = store_part(tables.buckets, tables, bucket_state_rows(q, new))
    return (*(pairs if layout.partitions > 1 else (pairs,)), part)


def verify_touching(layout: Layout, items: pa.Table, *parts: pa.Table) -> tuple[pa.Table, ...]:
    """`verify`, and the old groups of both items of every verified pair: groups a changed item
    now joins. Returns (edges, groups)."""
    edges = verify(layout, items, *parts)
    pairs = pa.concat_tables(parts)
    ends = pa.concat_arrays(
        [edges.column("a").combine_chunks(), edges.column("b").combine_chunks()]
    )
    b_rows = pa.array(np.asarray(pairs.column("b")) & ROW_MASK)
    mine = items.take(b_rows)
    groups = pa.concat_arrays(
        [
            pairs.filter(pc.is_in(pairs.column("a_id"), ends)).column("a_group").combine_chunks(),
            mine.filter(pc.is_in(mine.column("content_id"), ends))
            .column(PREVIOUS)
            .combine_chunks(),
        ]
    )
    return edges, pa.table({PREVIOUS: groups}, schema=GROUPS)


def touched_groups(*tables: pa.Table) -> pa.Table:
    """The distinct groups touched by the run (old groups of changed items and of new partners)."""
    found = [t.column(PREVIOUS).combine_chunks() for t in tables]
    groups = pc.unique(pc.drop_null(pa.concat_arrays([pa.array([], pa.string()), *found])))
    return pa.table({PREVIOUS: groups}, schema=GROUPS)


def members_in(
    layout: Layout, items: pa.Table, changed: pa.Table, groups: pa.Table
) -> tuple[pa.Table, ...]:
    """The unchanged members of the touched groups in this partition, sent by group to be
    compared among themselves, and the rows this partition writes again (changed and members).
    Returns (rows, *members)."""
    in_group = pc.is_in(items.column(PREVIOUS), groups.column(PREVIOUS)).to_numpy(
        zero_copy_only=False
    )
    is_changed = np.zeros(items.num_rows, dtype=bool)
    is_changed[np.asarray(changed.column("row"))] = True
    member = in_group & ~is_changed
    rows = np.nonzero(member | is_changed)[0]
    picked = items.filter(pa.array(member))
    dest = partition_of(picked.column(PREVIOUS), layout.partitions)
    shipped = split(picked, dest, layout.partitions)
    touched = pa.table({"row": pa.array(rows, pa.int64())})
    return (touched, *(shipped if layout.partitions > 1 else (shipped,)))


def group_edges(layout: Layout, *parts: pa.Table) -> pa.Table:
    """The verified pairs inside each touched group among its unchanged members (all pairs of a
    group: groups are small, and their members' inputs did not change)."""
    members = pa.concat_tables(parts).sort_by(PREVIOUS)
    n = members.num_rows
    ids = np.asarray(members.column("content_id").to_pylist(), dtype=object)
    hashes, has_hash = phash_values(members.column("artwork_phash").to_pylist())
    layouts, _ = vector_matrix(members.column("artwork_layout"), n)
    vectors, has_fingerprint = vector_matrix(members.column("audio_fingerprint"), n)
    unit = unit_rows(vectors, has_fingerprint)
    group = np.asarray(members.column(PREVIOUS).to_pylist(), dtype=object)
    bounds = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True]) if n else np.array([0])
    edges = [EDGE_SCHEMA.empty_table()]
    for start, end in itertools.pairwise(bounds):
        if end - start > 1:
            block = slice(start, end)
            edges.append(exact_edges(ids[block], hashes[block], has_hash[block], layouts[block],
                                     unit[block], has_fingerprint[block], layout.rule))  # fmt: skip
    return pa.concat_tables(edges)


def write_touched(
    writer: dict[str, object],
    tables: StateTables,
    started: datetime,
    p: int,
    items: pa.Table,
    touched: pa.Table,
    *assigned: pa.Table,
) -> tuple[pa.Table, str]:
    """The touched items' output rows through the job's writer, and their new state rows.
    Returns (part metadata, state part)."""
    rows = np.asarray(touched.column("row"))
    picked = items.take(pa.array(rows, pa.int64()))
    meta = write_partition(writer, started, picked, *assigned)
    state = item_state_rows(tables, p, items, rows, output_groups(picked, *assigned))
    return meta, store_part(tables.items, tables, state)
