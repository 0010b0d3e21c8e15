"""`signals lineage CONTENT_ID SIGNAL`: which run, snapshot and extractor produced a served value.

A signal table is an append-only history, one row per computed value, each carrying the run id,
the input hash and the extractor version. The value being served is the newest row of the item;
the runs table ties that row's run to the snapshot (URI and Delta version) it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, QueryBuilder

from features import get_signal
from features.standard import REMOVED_HASH, SERVED_AT
from jobs.lake.errors import NoLineageError
from jobs.lake.maintenance import open_as_of
from jobs.lake.runs import list_runs
from jobs.lake.tables import latest_per_key, table_exists
from jobs.settings import Settings

_LINEAGE_COLUMNS = (
    "content_id",
    "event_timestamp",
    "created_timestamp",
    "input_updated_at",
    "input_hash",
    "extractor_version",
    "run_id",
)


@dataclass(frozen=True)
class ValueOrigin:
    """Where one stored value of an item came from."""

    content_id: str
    signal: str
    event_timestamp: datetime
    created_timestamp: datetime
    input_updated_at: datetime | None
    input_hash: str
    extractor_version: str
    run_id: str
    snapshot_uri: str | None
    snapshot_version: int | None
    run_status: str | None
    signal_table_version: int | None

    @property
    def removed(self) -> bool:
        """A tombstone: the item had left the catalog when this run read it."""
        return self.input_hash == REMOVED_HASH


def _item_rows(table: DeltaTable, content_ids: list[str], columns: list[str]) -> pa.Table:
    """Rows of some items, newest first per item.

    Why SQL rather than a pyarrow filter: delta-rs prunes files by their `content_id` statistics
    (tight after `signals compact`), so a few items do not cost a scan of the whole table.
    """
    ids = ", ".join("'" + cid.replace("'", "''") + "'" for cid in content_ids)
    sql = (
        f"SELECT {', '.join(columns)} FROM signal WHERE content_id IN ({ids}) "
        "ORDER BY content_id, event_timestamp DESC, created_timestamp DESC"
    )
    reader = QueryBuilder().register("signal", table).execute(sql)
    rows = pa.RecordBatchReader.from_stream(reader).read_all()
    return rows.cast(pa.schema([_without_views(f) for f in rows.schema]))


def _without_views(field: pa.Field) -> pa.Field:
    """DataFusion hands back string/binary *views*; pyarrow cannot sort those yet."""
    if pa.types.is_string_view(field.type) or pa.types.is_large_string(field.type):
        return field.with_type(pa.string())
    if pa.types.is_binary_view(field.type) or pa.types.is_large_binary(field.type):
        return field.with_type(pa.binary())
    return field


def values_as_of(
    settings: Settings, content_ids: list[str], signal_refs: list[str], as_of: int | datetime
) -> list[dict[str, dict[str, Any]]]:
    """What serving returned at a table version or a moment, read from the lake's history.

    Same shape as `jobs.serving.client.online_values` (per item, per signal, features plus `SERVED_AT`),
    so `signals get --as-of` prints exactly like `signals get`. Removed items have no values.
    """
    out: list[dict[str, dict[str, Any]]] = [{} for _ in content_ids]
    position = {cid: i for i, cid in enumerate(content_ids)}
    for ref in signal_refs:
        signal = get_signal(ref)
        uri = settings.signal_uri(signal.storage_name)
        if not table_exists(uri, settings.storage_options):
            continue
        table = open_as_of(uri, as_of, settings.storage_options)
        features = list(signal.features)
        columns = ["content_id", "event_timestamp", "created_timestamp", "input_hash", *features]
        rows = latest_per_key(_item_rows(table, content_ids, columns))
        for row in rows.to_pylist():
            if row["input_hash"] != REMOVED_HASH:
                values = {name: row[name] for name in features}
                out[position[row["content_id"]]][ref] = {
                    **values,
                    SERVED_AT: row["event_timestamp"],
                }
    return out


def item_history(
    settings: Settings, content_id: str, signal_ref: str, as_of: int | datetime | None = None
) -> list[ValueOrigin]:
    """Every stored value of one item, newest first; the first is the one being served."""
    signal = get_signal(signal_ref)
    table = open_as_of(settings.signal_uri(signal.storage_name), as_of, settings.storage_options)
    rows = _item_rows(table, [content_id], list(_LINEAGE_COLUMNS)).to_pylist()
    if not rows:
        raise NoLineageError(
            f"{content_id} has no {signal.ref} value"
            + (f" as of {as_of}" if as_of is not None else ""),
            hint="`signals runs` lists what has run; is the item in the catalog snapshot?",
        )
    runs = list_runs(settings)
    wanted = runs.filter(pc.is_in(runs.column("run_id"), pa.array({r["run_id"] for r in rows})))
    by_run = {r["run_id"]: r for r in wanted.to_pylist()}
    origins = []
    for row in rows:
        run = by_run.get(row["run_id"], {})
        origins.append(
            ValueOrigin(
                signal=signal.ref,
                snapshot_uri=run.get("snapshot_uri"),
                snapshot_version=run.get("snapshot_version"),
                run_status=run.get("status"),
                signal_table_version=run.get("signal_table_version"),
                **row,
            )
        )
    return origins
