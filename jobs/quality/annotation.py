"""Human review of model answers: the annotation queue, the decisions and the gold set
(`agreement` judges signals by it).

The queue (`<lake>/_review/queue`) and the gold set (`<lake>/_review/gold`) are append-only Delta
tables: a decision appends its gold labels, then the queue row's new status. The newest row per
key wins, so a review that stops between the two writes is shown again and deciding it twice
changes nothing. Which rows are queued is the signal's policy (`features/annotation.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from features import CATALOG_SCHEMA, get_signal
from features.annotation import policy_for
from features.signal import Signal
from features.standard import TIMESTAMP
from jobs.lake.tables import latest_per_key, latest_signal_values, read_table, write_table
from jobs.settings import Settings

QUEUE_SCHEMA = pa.schema([
    pa.field("content_id", pa.string(), nullable=False),
    pa.field("signal", pa.string(), nullable=False),  # NAME@VERSION whose answer is reviewed
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("proposed", pa.string(), nullable=False),  # JSON: the labels and the confidence
    pa.field("compared", pa.string(), nullable=True),  # JSON: the other signal's labels
    pa.field("reason", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),  # open, accepted, corrected, skipped
    pa.field("at", TIMESTAMP, nullable=False),
    pa.field("annotator", pa.string(), nullable=True),
])  # fmt: skip
GOLD_SCHEMA = pa.schema([
    pa.field("content_id", pa.string(), nullable=False),
    pa.field("field", pa.string(), nullable=False),  # genre, mood, topic
    pa.field("label", pa.string(), nullable=True),  # null: the item has none (a valid answer)
    pa.field("decision", pa.string(), nullable=False),  # accepted or corrected
    pa.field("signal", pa.string(), nullable=False),  # whose answer was reviewed
    pa.field("annotator", pa.string(), nullable=False),
    pa.field("decided_at", TIMESTAMP, nullable=False),
])  # fmt: skip


def queue_uri(settings: Settings) -> str:
    return settings.lake_path("_review", "queue")


def gold_uri(settings: Settings) -> str:
    return settings.lake_path("_review", "gold")


@dataclass(frozen=True)
class QueueItem:
    """One answer waiting for a person."""

    content_id: str
    signal: str
    run_id: str
    proposed: dict[str, Any]
    compared: dict[str, Any]
    reason: str


def _read(uri: str, settings: Settings, schema: pa.Schema) -> pa.Table:
    return read_table(uri, storage_options=settings.storage_options, if_missing=schema)


def gold(settings: Settings) -> pa.Table:
    """The gold set: the newest decided label per (content_id, field)."""
    table = _read(gold_uri(settings), settings, GOLD_SCHEMA)
    keyed = table.append_column(
        "key", pc.binary_join_element_wise(table["content_id"], table["field"], "\x1f")
    )
    return latest_per_key(keyed, key="key", order=("decided_at",)).drop_columns(["key"])


def enqueue(settings: Settings, signal: Signal, run_id: str) -> int:
    """Queue the run's answers that its signal's policy says a person should check: a confidence
    under the threshold, or labels that disagree with the compared signal's. Items already in the
    gold set are not asked again. Returns how many were queued."""
    policy = policy_for(signal.name)
    if policy is None:
        return 0
    columns = ["content_id", "run_id", *policy.labels, policy.confidence]
    rows = read_table(
        settings.signal_uri(signal.storage_name),
        columns=columns,
        storage_options=settings.storage_options,
        if_missing=signal.arrow_schema(),
    )
    if rows.num_rows == 0:
        return 0
    rows = rows.filter(
        pc.and_(pc.equal(rows["run_id"], run_id), pc.is_valid(rows[policy.confidence]))
    )
    decided = set(gold(settings)["content_id"].to_pylist())
    other: dict[str, dict[str, Any]] = {}
    if policy.compare_with:
        compared = get_signal(policy.compare_with)
        shared = [label for label in policy.labels if label in compared.features]
        values = latest_signal_values(
            settings.signal_uri(compared.storage_name), compared.arrow_schema(), shared,
            settings.storage_options,
        )  # fmt: skip
        other = {r.pop("content_id"): r for r in values.to_pylist()}
    now = datetime.now(UTC)
    queued = []
    for row in rows.to_pylist():
        if row["content_id"] in decided:
            continue
        reasons = []
        if row[policy.confidence] < policy.below:
            reasons.append(f"confidence {row[policy.confidence]:.2f} < {policy.below:g}")
        theirs = other.get(row["content_id"], {})
        for label, value in theirs.items():
            if value is not None and row[label] is not None and value != row[label]:
                reasons.append(f"{label}: {row[label]} here, {value} in {policy.compare_with}")
        if reasons:
            proposed = {k: row[k] for k in (*policy.labels, policy.confidence)}
            queued.append({
                "content_id": row["content_id"], "signal": signal.ref, "run_id": run_id,
                "proposed": json.dumps(proposed), "compared": json.dumps(theirs) if theirs else None,
                "reason": "; ".join(reasons), "status": "open", "at": now, "annotator": None,
            })  # fmt: skip
    if queued:
        write_table(
            queue_uri(settings),
            pa.Table.from_pylist(queued, schema=QUEUE_SCHEMA),
            storage_options=settings.storage_options,
        )
    return len(queued)


def open_items(settings: Settings, signal: str | None = None) -> list[QueueItem]:
    """The answers still waiting, oldest first (`signal`: only those of NAME@VERSION)."""
    table = _read(queue_uri(settings), settings, QUEUE_SCHEMA)
    keyed = table.append_column(
        "key", pc.binary_join_element_wise(table["signal"], table["content_id"], "\x1f")
    )
    latest = latest_per_key(keyed, key="key", order=("at",)).sort_by(
        [("at", "ascending"), ("content_id", "ascending")]
    )
    return [
        QueueItem(
            r["content_id"],
            r["signal"],
            r["run_id"],
            json.loads(r["proposed"]),
            json.loads(r["compared"] or "{}"),
            r["reason"],
        )
        for r in latest.to_pylist()
        if r["status"] == "open" and signal in (None, r["signal"])
    ]


def decide(
    settings: Settings, item: QueueItem, labels: dict[str, str | None] | None, annotator: str
) -> str:
    """Record a person's decision: `labels` accepted or corrected (they join the gold set), or
    None to skip the item. Returns the decision."""
    now = datetime.now(UTC)
    if labels is None:
        decision = "skipped"
    else:
        decision = (
            "accepted" if all(item.proposed.get(k) == v for k, v in labels.items()) else "corrected"
        )
        rows = [
            {"content_id": item.content_id, "field": field, "label": label, "decision": decision,
             "signal": item.signal, "annotator": annotator, "decided_at": now}
            for field, label in labels.items()
        ]  # fmt: skip
        write_table(gold_uri(settings), pa.Table.from_pylist(rows, schema=GOLD_SCHEMA),
                     storage_options=settings.storage_options)  # fmt: skip
    status = {
        "content_id": item.content_id, "signal": item.signal, "run_id": item.run_id,
        "proposed": json.dumps(item.proposed), "compared": json.dumps(item.compared) if item.compared else None,
        "reason": item.reason, "status": decision, "at": now, "annotator": annotator,
    }  # fmt: skip
    write_table(queue_uri(settings), pa.Table.from_pylist([status], schema=QUEUE_SCHEMA),
                 storage_options=settings.storage_options)  # fmt: skip
    return decision


def gold_fields(settings: Settings) -> set[str]:
    """The labels the gold set has decisions for."""
    return set(gold(settings)["field"].to_pylist())


def catalog_texts(settings: Settings, content_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Type, title and description of the items under review, from the current snapshot."""
    rows = read_table(
        settings.default_snapshot_uri,
        columns=["content_id", "content_type", "title", "description"],
        storage_options=settings.storage_options,
        if_missing=CATALOG_SCHEMA,
    )
    rows = rows.filter(pc.is_in(rows["content_id"], pa.array(content_ids, pa.string())))
    return {r["content_id"]: r for r in rows.to_pylist()}


def label_fields(signal_ref: str) -> dict[str, tuple[str, ...]]:
    """The label features a person decides for a signal, with their allowed values (the
    contract's): what `signals annotate` shows and asks for."""
    signal = get_signal(signal_ref)
    policy = policy_for(signal.name)
    labels = policy.labels if policy else ()
    return {f: tuple(getattr(signal.features[f], "isin", None) or ()) for f in labels}
