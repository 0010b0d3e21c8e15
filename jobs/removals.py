"""Items that left the catalog: a tombstone in the signal's history, then out of the online store.

The extract job finds the items that have a live value in the signal table but are not in the
snapshot it reads, and appends one tombstone row for each (`standard.REMOVED_HASH`, every
feature null) in the same commit as its values. History stays: a point-in-time read before the
removal still returns the old value, one after it returns nothing. The materialize job then
deletes the tombstoned items from the online store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from features import get_signal
from features.standard import REMOVED_HASH, TIMESTAMP
from jobs.lake import latest_per_key, open_table
from jobs.settings import Settings

if TYPE_CHECKING:
    import ray.data

_HISTORY_COLUMNS = ["content_id", "input_hash", "event_timestamp", "created_timestamp"]
ORDER = ("event_timestamp", "created_timestamp")


def tombstones(
    group: pa.Table, *, signal_ref: str, run_id: str, event_timestamp: datetime, version: str
) -> pa.Table:
    """One item's stored rows (it is no longer in the catalog) → its tombstone, unless its newest
    row already is one."""
    schema = get_signal(signal_ref).arrow_schema()
    latest = latest_per_key(group, order=ORDER)
    live = latest.filter(pc.not_equal(latest.column("input_hash"), REMOVED_HASH))
    n = live.num_rows
    columns = {
        "content_id": live.column("content_id").cast(pa.string()),
        "event_timestamp": pa.array([event_timestamp] * n, TIMESTAMP),
        "created_timestamp": pa.array([datetime.now(UTC)] * n, TIMESTAMP),
        "input_hash": pa.array([REMOVED_HASH] * n, pa.string()),
        "extractor_version": pa.array([version] * n, pa.string()),
        "run_id": pa.array([run_id] * n, pa.string()),
    }
    return pa.table([columns.get(f.name, pa.nulls(n, f.type)) for f in schema], schema=schema)


def removed_items(
    settings: Settings,
    signal_ref: str,
    snapshot_uri: str,
    snapshot_version: int,
    partitions: int,
    *,
    run_id: str,
    event_timestamp: datetime,
    version: str,
) -> ray.data.Dataset | None:
    """Tombstone rows for the signal's live items missing from the snapshot (None: no table).

    Two shuffles on the cluster — an anti-join of the table's keys against the snapshot's, then
    a group per removed item — so the driver never holds either key set.
    """
    import ray

    signal = get_signal(signal_ref)
    uri = settings.signal_uri(signal.storage_name)
    if open_table(uri, settings.storage_options) is None:
        return None
    options = settings.storage_options or None
    stored = ray.data.read_delta(uri, columns=_HISTORY_COLUMNS, storage_options=options)
    catalog = ray.data.read_delta(
        snapshot_uri, version=snapshot_version, columns=["content_id"], storage_options=options
    )
    gone = stored.join(catalog, "left_anti", num_partitions=partitions, on=("content_id",))
    return gone.groupby("content_id").map_groups(
        tombstones,
        fn_kwargs={
            "signal_ref": signal.ref,
            "run_id": run_id,
            "event_timestamp": event_timestamp,
            "version": version,
        },
        batch_format="pyarrow",
    )


def tombstoned_since(
    settings: Settings, signal_ref: str, start: datetime | None, end: datetime
) -> list[str]:
    """Items whose newest row in (start, end] is a tombstone: what materialization must delete
    from the online store (an item that came back later in the window is served again)."""
    signal = get_signal(signal_ref)
    table = open_table(settings.signal_uri(signal.storage_name), settings.storage_options)
    if table is None:
        return []
    window = [("event_timestamp", "<=", end)]
    if start is not None:
        window.append(("event_timestamp", ">", start))
    rows = pa.table(table.to_pyarrow_table(columns=_HISTORY_COLUMNS, filters=window))
    latest = latest_per_key(rows, order=ORDER)
    removed = latest.filter(pc.equal(latest.column("input_hash"), REMOVED_HASH))
    return removed.column("content_id").to_pylist()
