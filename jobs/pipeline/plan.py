"""What a run must do for each item: compute it, skip it, or tombstone it.

An item's stored outcomes are its rows in the signal table (a value, or a tombstone once it left
the catalog) and its quarantine rows from trusted runs. Only the newest one counts:

- skip: an item whose current input hash equals the hash of its newest outcome is unchanged.
  Comparing with every stored hash would be wrong: an edit reverted (A → B → A) would keep B's
  value, and an item that comes back after its removal would keep its tombstone.
- tombstone: an item whose newest signal row is a value (`live`) and that is not in the
  snapshot left the catalog.

Both are decided on the cluster in one hash shuffle on `content_id`, so the driver never holds
the keys, and a rerun pays for one shuffle, not one per decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from features.signal import Signal
from features.standard import REMOVED_HASH, TIMESTAMP
from jobs.lake.parts import committed_runs
from jobs.lake.runs import list_runs
from jobs.lake.tables import latest_per_key, table_exists
from jobs.settings import Settings

if TYPE_CHECKING:
    import ray.data

INPUT_HASH = "input_hash"
LIVE = "live"
_VALUE, _TOMBSTONE, _QUARANTINED = "value", "tombstone", "quarantined"  # stored outcomes
KIND = "_kind"  # what a row of the plan is: a snapshot row, a stored outcome, a removal
SNAPSHOT = "snapshot"
GONE = "gone"  # a live item the snapshot no longer has: tombstone it
_ORDER = ("_at", "_created")
PLAN_COLUMNS = [KIND, *_ORDER]  # what the plan adds to a snapshot row
_TRUSTED_STATUSES = ("succeeded", "already-committed")
OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string()),
        pa.field(INPUT_HASH, pa.string()),
        pa.field("_at", TIMESTAMP),
        pa.field("_created", TIMESTAMP),
        pa.field(KIND, pa.string()),  # _VALUE, _TOMBSTONE or _QUARANTINED
    ]
)
NEWEST_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string()),
        pa.field(INPUT_HASH, pa.string()),
        pa.field(LIVE, pa.bool_()),
    ]
)


def trusted_run_ids(settings: Settings, signal: Signal) -> list[str]:
    """The signal's runs whose quarantine rows a rerun may trust (the same input would fail the
    same way): those that succeeded, and those that died after their signal commit landed (its
    app transaction is in the table's log) before they could record it.

    A run that failed as systematic is not trusted: a rerun judges its rows again rather than
    forgetting a systematic failure.
    """
    runs = list_runs(settings)
    mine = runs.filter(pc.equal(runs.column("signal"), signal.ref))
    trusted = pc.is_in(mine.column("status"), pa.array(_TRUSTED_STATUSES))
    ids = mine.filter(trusted).column("run_id").to_pylist()
    running = mine.filter(pc.equal(mine.column("status"), "running")).column("run_id").to_pylist()
    uri = settings.signal_uri(signal.storage_name)
    return ids + committed_runs(uri, running, settings.storage_options)


def _from_signal(batch: pa.Table) -> pa.Table:
    hashes = batch.column(INPUT_HASH)
    kind = pc.if_else(pc.equal(hashes, REMOVED_HASH), _TOMBSTONE, _VALUE)
    return _outcomes(
        batch, batch.column("event_timestamp"), batch.column("created_timestamp"), kind
    )


def _from_quarantine(batch: pa.Table, run_ids: list[str]) -> pa.Table:
    keep = pc.and_(
        pc.is_in(batch.column("run_id"), pa.array(run_ids, pa.string())),
        pc.is_valid(batch.column(INPUT_HASH)),
    )
    kept = batch.filter(keep)
    at = kept.column("quarantined_at")
    return _outcomes(kept, at, at, pa.array([_QUARANTINED] * kept.num_rows, pa.string()))


def _outcomes(
    batch: pa.Table,
    at: pa.ChunkedArray,
    created: pa.ChunkedArray,
    kind: pa.Array | pa.ChunkedArray,
) -> pa.Table:
    columns = [batch.column("content_id"), batch.column(INPUT_HASH), at, created, kind]
    return pa.table(columns, names=OUTCOME_SCHEMA.names).cast(OUTCOME_SCHEMA)


def newest(batch: pa.Table) -> pa.Table:
    """Every outcome of a set of items (all of an item's rows in this batch) → one row per item:
    the hash of its newest outcome, and whether its newest signal row is a value (`live`)."""
    batch = batch.cast(OUTCOME_SCHEMA)
    if batch.num_rows == 0:
        return NEWEST_SCHEMA.empty_table()
    latest = latest_per_key(batch, order=_ORDER)
    stored = batch.filter(pc.not_equal(batch.column(KIND), _QUARANTINED))
    latest_stored = latest_per_key(stored, order=_ORDER)
    live = latest_stored.select(["content_id"]).append_column(
        LIVE, pc.equal(latest_stored.column(KIND), _VALUE)
    )
    joined = latest.select(["content_id", INPUT_HASH]).join(
        live, "content_id", join_type="left outer"
    )
    return joined.set_column(2, LIVE, pc.fill_null(joined.column(LIVE), False)).cast(NEWEST_SCHEMA)


def plan_batch(batch: pa.Table, *, full: bool) -> pa.Table:
    """All rows of a set of items — their snapshot rows and their stored outcomes — → the work
    for them: the snapshot rows to compute, and one `GONE` row per live item that left.

    `full` computes every snapshot row, whatever is stored; removals are found all the same.
    """
    kinds = batch.column(KIND)
    is_snapshot = pc.equal(kinds, SNAPSHOT)
    snapshot = batch.filter(is_snapshot)
    stored = newest(batch.filter(pc.invert(is_snapshot)).select(OUTCOME_SCHEMA.names))
    todo = snapshot
    if not full:
        todo = snapshot.join(
            stored.select(["content_id", INPUT_HASH]),
            ["content_id", INPUT_HASH],
            join_type="left anti",
        )
    gone = stored.filter(stored.column(LIVE)).join(
        snapshot.select(["content_id"]), "content_id", join_type="left anti"
    )
    removed = pa.table(
        {
            "content_id": gone.column("content_id"),
            KIND: pa.array([GONE] * gone.num_rows, pa.string()),
        }
    )
    schema = batch.schema
    return pa.concat_tables([todo.select(schema.names), _widen(removed, schema)])


def _widen(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with every column of `schema`, the missing ones null."""
    n = table.num_rows
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


def _snapshot_side(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    return _widen(
        batch.append_column(KIND, pa.array([SNAPSHOT] * batch.num_rows, pa.string())), schema
    )


def _stored_side(batch: pa.Table, schema: pa.Schema, **kwargs: object) -> pa.Table:
    rows = (
        _from_quarantine(batch, **kwargs)
        if "quarantined_at" in batch.column_names
        else (_from_signal(batch))
    )
    return _widen(rows, schema)


def planned(
    settings: Settings,
    signal: Signal,
    snapshot: ray.data.Dataset,
    snapshot_schema: pa.Schema,
    partitions: int,
    *,
    full: bool,
) -> ray.data.Dataset:
    """The snapshot rows (hashed) → the rows to compute and the items to tombstone, on the cluster.

    One hash shuffle on `content_id` brings each item's snapshot row and stored outcomes into
    one block, where `plan_batch` decides; the driver never holds a key. Without a signal table
    there is nothing to compare with: every row is computed, no shuffle.
    """
    import ray

    signal_uri = settings.signal_uri(signal.storage_name)
    if not table_exists(signal_uri, settings.storage_options):
        return snapshot
    options = settings.storage_options or None
    fields = [*snapshot_schema, pa.field(INPUT_HASH, pa.string())]
    fields += [f for f in OUTCOME_SCHEMA if f.name not in ("content_id", INPUT_HASH)]
    schema = pa.schema([f.with_nullable(True) for f in fields])  # each side fills its own
    sides = [
        snapshot.map_batches(_snapshot_side, fn_kwargs={"schema": schema}, batch_format="pyarrow"),
        ray.data.read_delta(
            signal_uri,
            columns=["content_id", INPUT_HASH, "event_timestamp", "created_timestamp"],
            storage_options=options,
        ).map_batches(_stored_side, fn_kwargs={"schema": schema}, batch_format="pyarrow"),
    ]
    quarantine_uri = settings.quarantine_uri(signal.storage_name)
    trusted = trusted_run_ids(settings, signal)
    if trusted and table_exists(quarantine_uri, settings.storage_options):
        sides.append(
            ray.data.read_delta(
                quarantine_uri,
                columns=["content_id", INPUT_HASH, "quarantined_at", "run_id"],
                storage_options=options,
            ).map_batches(
                _stored_side,
                fn_kwargs={"schema": schema, "run_ids": trusted},
                batch_format="pyarrow",
            )
        )
    # A hash shuffle puts all of an item's rows in one block, and `batch_size=None` hands each
    # block whole to `plan_batch`: the guarantee Ray Data's own `map_groups` relies on.
    return (
        sides[0]
        .union(*sides[1:])
        .repartition(partitions, keys=["content_id"])
        .map_batches(plan_batch, fn_kwargs={"full": full}, batch_size=None, batch_format="pyarrow")
    )
