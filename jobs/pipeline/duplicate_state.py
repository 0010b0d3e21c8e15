"""What the near-duplicates job keeps between runs, so that a daily run compares only what changed.

    items    one row per version of an item: its inputs (with the stamps of the source rows they
             came from), its group, and `ref` = its partition and row, fixed for life
    buckets  the LSH rows (key, item ref, sketch) of every item, tagged with their bucket partition
    runs     one row per run: the layout, the source versions read, the state versions written

Both state tables carry their partition in a `part` column with file statistics, so a task reads
its own partition's files and no other. A full run overwrites them; a daily run appends the rows
of the items it touched (the newest row per ref wins) and the bucket rows of the items that
changed. An item's old bucket rows stay: they can only yield a candidate that exact verification
rejects, and the next full run drops them. The runs row is written last and names the versions
it wrote, so the state of a run that died half-way is never read: the next run finds the tables
past those versions and rebuilds them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractors.duplicates import Rule
from extractors.near_index import Bands
from features import get_signal
from features.standard import TIMESTAMP
from jobs.lake.parts import Part, commit_parts, write_part
from jobs.lake.state import state_uri
from jobs.lake.tables import (
    latest_per_key,
    read_table,
    read_where,
    rows_changed_since,
    table_version,
    write_table,
)
from jobs.pipeline.duplicate_tasks import COLUMNS, PREVIOUS, ROW_BITS, Layout, output_groups
from jobs.settings import Settings

SIGNAL = "near_duplicates@1"
ITEMS = pa.schema(
    [
        pa.field("part", pa.int64()),
        pa.field("ref", pa.int64()),
        pa.field("content_id", pa.string()),
        *(pa.field(name, kind) for name, kind in COLUMNS.items() if name != PREVIOUS),
        pa.field("group_id", pa.string()),  # null: the item left the catalog
        pa.field("written_at", TIMESTAMP),
    ]
)
BUCKETS = pa.schema(
    [
        pa.field("part", pa.int64()),
        pa.field("key", pa.int64()),  # the uint64 key's bits: Delta has no unsigned integers
        pa.field("item", pa.int64()),
        pa.field("sketch", pa.int64()),
    ]
)
RUNS = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("at", TIMESTAMP),
        pa.field("full", pa.bool_()),
        pa.field("extractor", pa.string()),
        pa.field("catalog_items", pa.int64()),
        pa.field("layout", pa.string()),
        pa.field("sources", pa.string()),
        pa.field("items_version", pa.int64()),
        pa.field("buckets_version", pa.int64()),
    ]
)


@dataclass(frozen=True)
class StateTables:
    """Where the state lives, and what a task needs to write a part of it."""

    items: str
    buckets: str
    runs: str
    run_id: str
    written_at: datetime
    storage_options: dict[str, str]

    @classmethod
    def of(cls, settings: Settings, run_id: str, written_at: datetime) -> StateTables:
        """The job's state tables (`jobs.lake.state`)."""
        folder = get_signal(SIGNAL).storage_name
        return cls(
            *(state_uri(settings, folder, name) for name in ("items", "buckets", "runs")),
            run_id,
            written_at,
            settings.storage_options,
        )


@dataclass(frozen=True)
class State:
    """The last run's state, as its runs row describes it."""

    layout: Layout
    extractor: str
    catalog_items: int
    sources: dict[str, int]  # source table → the version that run read
    items_version: int
    buckets_version: int


def _layout_json(layout: Layout) -> str:
    return json.dumps(asdict(layout))


def _layout(text: str) -> Layout:
    raw = json.loads(text)
    return Layout(
        raw["partitions"], raw["bucket_partitions"], Bands(**raw["bands"]), Rule(**raw["rule"])
    )


def last_state(settings: Settings) -> State | None:
    """The state a daily run can build on, or None: no run has kept one, or a run died after
    writing part of it (a state table has rows past the version its last runs row names)."""
    tables = StateTables.of(settings, "", datetime.min)
    runs = read_table(tables.runs, storage_options=settings.storage_options, if_missing=RUNS)
    if runs.num_rows == 0:
        return None
    last = runs.sort_by([("at", "descending")]).slice(0, 1).to_pylist()[0]
    for uri, version in ((tables.items, last["items_version"]),
                         (tables.buckets, last["buckets_version"])):  # fmt: skip
        if table_version(uri, settings.storage_options) is None or rows_changed_since(
            uri, version, settings.storage_options
        ):
            return None
    return State(
        _layout(last["layout"]),
        last["extractor"],
        last["catalog_items"],
        json.loads(last["sources"]),
        last["items_version"],
        last["buckets_version"],
    )


def item_state_rows(
    tables: StateTables, p: int, items: pa.Table, rows: np.ndarray, groups: pa.Array
) -> pa.Table:
    """State rows of some items of partition p (`rows` of its items table, `groups` theirs)."""
    picked = items.take(pa.array(rows, pa.int64()))
    n = len(rows)
    columns = {
        "part": pa.array(np.full(n, p), pa.int64()),
        "ref": pa.array((np.int64(p) << ROW_BITS) | rows.astype(np.int64), pa.int64()),
        **{name: picked.column(name) for name in ITEMS.names if name in picked.column_names},
        "group_id": groups,
        "written_at": pa.array([tables.written_at] * n, TIMESTAMP),
    }
    return pa.table(columns, schema=ITEMS)


def bucket_state_rows(q: int, rows: pa.Table) -> pa.Table:
    """State rows of bucket partition q's LSH rows."""
    n = rows.num_rows
    return pa.table(
        {
            "part": pa.array(np.full(n, q), pa.int64()),
            "key": pa.array(np.asarray(rows.column("key")).view(np.int64), pa.int64()),
            "item": rows.column("item"),
            "sketch": pa.array(np.asarray(rows.column("sketch")).view(np.int64), pa.int64()),
        },
        schema=BUCKETS,
    )


def store_part(uri: str, tables: StateTables, rows: pa.Table) -> str:
    """Write one part of a state table (task side); its metadata, as JSON, for the commit."""
    if rows.num_rows == 0:
        return ""
    return json.dumps(asdict(write_part(uri, rows, tables.run_id, tables.storage_options)))


def read_items(tables: StateTables, state: State, p: int) -> pa.Table:
    """Partition p's items as the job's stages hold them: row i is the item with ref p << 32 | i
    (the newest state row of each), its group in `PREVIOUS`."""
    rows = read_where(
        tables.items, state.items_version, pc.field("part") == p,
        storage_options=tables.storage_options,
    )  # fmt: skip
    newest = latest_per_key(rows, key="ref", order=("written_at",))
    if not np.array_equal(np.asarray(newest.column("ref")) & ((1 << 32) - 1),
                          np.arange(newest.num_rows)):  # fmt: skip
        raise ValueError(f"near-duplicates state partition {p} is not dense")
    return pa.table(
        {
            "content_id": newest.column("content_id"),
            **{name: newest.column(name) for name in COLUMNS if name != PREVIOUS},
            PREVIOUS: newest.column("group_id"),
        }
    )


def read_buckets(tables: StateTables, state: State, q: int, keys: np.ndarray) -> pa.Table:
    """Bucket partition q's stored rows whose key is one of `keys` (uint64), as uint64 again."""
    wanted = pa.array(np.unique(keys).view(np.int64), pa.int64())
    rows = read_where(
        tables.buckets,
        state.buckets_version,
        (pc.field("part") == q) & pc.field("key").isin(wanted),
        ["key", "item", "sketch"],
        tables.storage_options,
    )
    return pa.table(
        {
            "key": pa.array(np.asarray(rows.column("key")).view(np.uint64), pa.uint64()),
            "item": rows.column("item"),
            "sketch": pa.array(np.asarray(rows.column("sketch")).view(np.uint64), pa.uint64()),
        }
    )


def record_state(
    tables: StateTables,
    *,
    full: bool,
    layout: Layout,
    extractor: str,
    catalog_items: int,
    sources: dict[str, int],
    item_parts: list[str],
    bucket_parts: list[str],
) -> None:
    """Commit the run's state parts (a full run replaces the tables), then its runs row."""
    mode = "overwrite" if full else "append"
    versions = []
    for uri, schema, parts in (
        (tables.items, ITEMS, item_parts),
        (tables.buckets, BUCKETS, bucket_parts),
    ):
        found = [Part(**json.loads(p)) for p in parts if p]
        if found or full:
            commit_parts(uri, schema, found, tables.run_id, mode=mode,
                         storage_options=tables.storage_options)  # fmt: skip
        versions.append(table_version(uri, tables.storage_options))
    row = {
        "run_id": tables.run_id,
        "at": tables.written_at,
        "full": full,
        "extractor": extractor,
        "catalog_items": catalog_items,
        "layout": _layout_json(layout),
        "sources": json.dumps(sources),
        "items_version": versions[0],
        "buckets_version": versions[1],
    }
    write_table(tables.runs, pa.Table.from_pylist([row], schema=RUNS),
                storage_options=tables.storage_options)  # fmt: skip


def store_items(tables: StateTables, p: int, items: pa.Table, *assigned: pa.Table) -> str:
    """A full run's state part of partition p: every item, with its group after the run."""
    rows = np.arange(items.num_rows)
    return store_part(tables.items, tables, item_state_rows(tables, p, items, rows,
                                                      output_groups(items, *assigned)))  # fmt: skip


def store_buckets(tables: StateTables, q: int, *parts: pa.Table) -> str:
    """A full run's state part of bucket partition q: every LSH row."""
    return store_part(tables.buckets, tables, bucket_state_rows(q, pa.concat_tables(parts)))
