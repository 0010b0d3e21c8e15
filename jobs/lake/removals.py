"""Items that left the catalog: a tombstone in the signal's history, then out of the online store.

The extract job finds the items that have a live value in the signal table but are not in the
snapshot it reads (`jobs.pipeline.plan`), and appends one tombstone row for each (`standard.REMOVED_HASH`, every
feature null) in the same commit as its values. History stays: a point-in-time read before the
removal still returns the old value, one after it returns nothing. The materialize job then
deletes the tombstoned items from the online store.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from features import get_signal
from features.standard import REMOVED_HASH, TIMESTAMP
from jobs.lake.tables import latest_per_key, read_table
from jobs.settings import Settings

_HISTORY_COLUMNS = ["content_id", "input_hash", "event_timestamp", "created_timestamp"]
ORDER = ("event_timestamp", "created_timestamp")


def tombstones(
    ids: pa.Array | pa.ChunkedArray,
    schema: pa.Schema,
    *,
    run_id: str,
    event_timestamp: datetime,
    version: str,
) -> pa.Table:
    """Ids of live items that left the catalog → one tombstone row each (every feature null), in
    the signal's `schema`."""
    n = len(ids)
    columns = {
        "content_id": ids.cast(pa.string()),
        "event_timestamp": pa.array([event_timestamp] * n, TIMESTAMP),
        "created_timestamp": pa.array([datetime.now(UTC)] * n, TIMESTAMP),
        "input_hash": pa.array([REMOVED_HASH] * n, pa.string()),
        "extractor_version": pa.array([version] * n, pa.string()),
        "run_id": pa.array([run_id] * n, pa.string()),
    }
    return pa.table([columns.get(f.name, pa.nulls(n, f.type)) for f in schema], schema=schema)


def tombstoned_since(
    settings: Settings, signal_ref: str, start: datetime | None, end: datetime
) -> list[str]:
    """Items whose newest row in (start, end] is a tombstone: what materialization must delete
    from the online store (an item that came back later in the window is served again)."""
    signal = get_signal(signal_ref)
    window = [("event_timestamp", "<=", end)]
    if start is not None:
        window.append(("event_timestamp", ">", start))
    rows = read_table(
        settings.signal_uri(signal.storage_name),
        columns=_HISTORY_COLUMNS,
        filters=window,
        storage_options=settings.storage_options,
        if_missing=signal.arrow_schema(),
    )
    latest = latest_per_key(rows, order=ORDER)
    removed = latest.filter(pc.equal(latest.column("input_hash"), REMOVED_HASH))
    return removed.column("content_id").to_pylist()
