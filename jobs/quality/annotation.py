"""Human review of model answers: the annotation queue, the decisions and the gold set
(`agreement` judges signals by it).

The queue (`<lake>/_review/queue`) and the gold set (`<lake>/_review/gold`) are append-only Delta
tables: a decision appends its gold labels, then the queue row's new status. The newest row per
key wins, so a review that stops between the two writes is shown again and deciding it twice
changes nothing. Which rows are queued is the signal's policy (`features/annotation.py`): an
unsure or disagreeing answer, or a flag the model raised (a possibly unsafe picture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from features import CATALOG_SCHEMA, get_signal
from features.annotation import AnnotationPolicy, policy_for
from features.signal import Signal
from features.standard import TIMESTAMP
from jobs.lake.parts import commit_parts, has_committed, write_part
from jobs.lake.tables import (
    iter_part_files,
    latest_per_key,
    latest_signal_values,
    read_items,
    read_table,
    write_table,
)
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


REVIEW_BATCH_ROWS = 50_000  # a run's answers judged per look-up of the compared signal


def enqueue(settings: Settings, signal: Signal, run_id: str, paths: Sequence[str]) -> int:
    """Queue the run's answers that its signal's policy says a person should check: a confidence
    under the threshold, labels that disagree with the compared signal's, or a raised flag. Items
    whose labels are already in the gold set are not asked again. Returns how many were queued.

    `paths` are the data files the run committed (`commit_run` knows them): only those are read,
    one at a time, and the compared signal only for the items of each batch of answers; each
    batch's queue rows are written as a part and all land in one commit tagged with the run id.
    So a run over the whole catalog is never in memory at once, other runs' files are never
    opened, and a second enqueue of the same run queues nothing.
    """
    policy = policy_for(signal.name)
    uri = queue_uri(settings)
    if policy is None or not paths or has_committed(uri, run_id, settings.storage_options):
        return 0
    now = datetime.now(UTC)
    batches = _answers(settings, signal, policy, run_id, paths)
    queued = (_queued(settings, signal, policy, run_id, answers, now) for answers in batches)
    parts = [write_part(uri, q, run_id, settings.storage_options) for q in queued if q.num_rows]
    if parts:
        commit_parts(uri, QUEUE_SCHEMA, parts, run_id, operation={"job": "enqueue"},
                     storage_options=settings.storage_options)  # fmt: skip
    return sum(p.rows for p in parts)


def _answers(
    settings: Settings, signal: Signal, policy: AnnotationPolicy, run_id: str, paths: Sequence[str]
) -> Iterator[pa.Table]:
    """The run's answers with a confidence, of items whose labels are not yet decided (unless
    the policy asks again; another signal's decision, e.g. a genre, never clears a safety flag),
    in batches of about `REVIEW_BATCH_ROWS`, read file by file from its own parts."""
    decisions = gold(settings)
    ours = decisions.filter(pc.is_in(decisions["field"], pa.array(policy.labels, pa.string())))
    decided = pa.array(
        [] if policy.ask_again else sorted(set(ours["content_id"].to_pylist())), pa.string()
    )
    flags = [policy.flag] if policy.flag else []
    columns = ["content_id", "run_id", *policy.labels, policy.confidence, *flags, *policy.context]
    uri = settings.signal_uri(signal.storage_name)
    pending: list[pa.Table] = []
    for part in iter_part_files(uri, paths, columns, settings.storage_options):
        ours = pc.and_(pc.equal(part["run_id"], run_id), pc.is_valid(part[policy.confidence]))
        pending.append(part.filter(pc.and_(ours, pc.invert(pc.is_in(part["content_id"], decided)))))
        if sum(t.num_rows for t in pending) >= REVIEW_BATCH_ROWS:
            yield pa.concat_tables(pending)
            pending = []
    if pending:
        yield pa.concat_tables(pending)


def _compared(
    settings: Settings, policy: AnnotationPolicy, content_ids: pa.ChunkedArray
) -> dict[str, dict[str, Any]]:
    """The compared signal's newest shared labels of these items only, by content_id."""
    if not policy.compare_with or len(content_ids) == 0:
        return {}
    compared = get_signal(policy.compare_with)
    shared = [label for label in policy.labels if label in compared.features]
    values = latest_signal_values(
        settings.signal_uri(compared.storage_name), compared.arrow_schema(), shared,
        settings.storage_options, content_ids=content_ids.to_pylist(),
    )  # fmt: skip
    return {r.pop("content_id"): r for r in values.to_pylist()}


def _reasons(policy: AnnotationPolicy, row: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Why a person should check this answer; none when it is sure and agrees."""
    reasons = []
    if policy.below is not None and row[policy.confidence] < policy.below:
        reasons.append(f"confidence {row[policy.confidence]:.2f} < {policy.below:g}")
    if policy.flag and row[policy.flag]:
        quoted = ", ".join(f"{c} {row[c]:g}" for c in policy.context if row[c] is not None)
        where = f" ({quoted})" if quoted else ""
        reasons.append(f"{policy.flag}: {policy.confidence} {row[policy.confidence]:.3f}{where}")
    for label, value in theirs.items():
        if value is not None and row[label] is not None and value != row[label]:
            reasons.append(f"{label}: {row[label]} here, {value} in {policy.compare_with}")
    return reasons


def _queued(
    settings: Settings,
    signal: Signal,
    policy: AnnotationPolicy,
    run_id: str,
    answers: pa.Table,
    now: datetime,
) -> pa.Table:
    """The queue rows of a batch of answers: those with a reason to be checked."""
    other = _compared(settings, policy, answers["content_id"])
    queued = []
    for row in answers.to_pylist():
        theirs = other.get(row["content_id"], {})
        if reasons := _reasons(policy, row, theirs):
            proposed = {k: row[k] for k in (*policy.labels, policy.confidence)}
            queued.append({
                "content_id": row["content_id"], "signal": signal.ref, "run_id": run_id,
                "proposed": json.dumps(proposed), "compared": json.dumps(theirs) if theirs else None,
                "reason": "; ".join(reasons), "status": "open", "at": now, "annotator": None,
            })  # fmt: skip
    return pa.Table.from_pylist(queued, schema=QUEUE_SCHEMA)


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
    """Type, title, description and media URIs of the items under review (a person judging a
    picture opens it), from the current snapshot: only their rows are read (the snapshot's
    statistics skip the files that hold none of them)."""
    rows = read_items(
        settings.default_snapshot_uri,
        content_ids,
        ["content_id", "content_type", "title", "description", "artwork_uri", "video_uri"],
        CATALOG_SCHEMA,
        settings.storage_options,
    )
    return {r["content_id"]: r for r in rows.to_pylist()}


def label_fields(signal_ref: str) -> dict[str, tuple[str, ...]]:
    """The label features a person decides for a signal, with their allowed values (the
    contract's): what `signals annotate` shows and asks for."""
    signal = get_signal(signal_ref)
    policy = policy_for(signal.name)
    labels = policy.labels if policy else ()
    return {f: tuple(getattr(signal.features[f], "isin", None) or ()) for f in labels}
