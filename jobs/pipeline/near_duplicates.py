"""The near-duplicates job: compare every item's artwork hash and audio fingerprint, write groups.

    python -m jobs near-duplicates

It reads the latest value per item from the hash and fingerprint signals' Delta tables, runs the
`near_duplicates` extractor over the whole catalog at once, and commits its rows through the same
contract check, quarantine and atomic commit as every other signal.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from features import get_signal
from features.standard import TIMESTAMP
from jobs.lake.runs import RunRecord, new_run_id
from jobs.lake.tables import latest_signal_values
from jobs.pipeline.commit import commit_run
from jobs.pipeline.worker import ExtractBatches
from jobs.settings import Settings

SIGNAL = "near_duplicates@1"
# Extractor input column → (signal, feature) whose latest value feeds it.
SOURCES: dict[str, tuple[str, str]] = {
    "artwork_phash": ("artwork_hash@1", "phash"),
    "artwork_layout": ("artwork_hash@1", "colour_layout"),
    "audio_fingerprint": ("audio_fingerprint@1", "fingerprint"),
}


def _latest(settings: Settings, signal_ref: str, feature: str, column: str) -> pa.Table:
    signal = get_signal(signal_ref)
    latest = latest_signal_values(
        settings.signal_uri(signal.storage_name),
        signal.arrow_schema(),
        [feature],
        settings.storage_options,
    )
    return latest.rename_columns(["content_id", column])


def near_duplicate_inputs(settings: Settings) -> pa.Table:
    """One row per item that has a hash or a fingerprint (a full outer join of the sources)."""
    columns: dict[str, dict[str, object]] = {}
    types: dict[str, pa.DataType] = {}
    for column, (signal_ref, feature) in SOURCES.items():
        latest = _latest(settings, signal_ref, feature, column)
        types[column] = latest.schema.field(column).type
        columns[column] = dict(
            zip(
                latest.column("content_id").to_pylist(),
                latest.column(column).to_pylist(),
                strict=True,
            )
        )
    ids = sorted(set().union(*columns.values()))
    return pa.table(
        {
            "content_id": pa.array(ids, pa.string()),
            **{
                c: pa.array([values.get(i) for i in ids], types[c]) for c, values in columns.items()
            },
            "updated_at": pa.nulls(len(ids), TIMESTAMP),
        }
    )


def run_near_duplicates(settings: Settings, run_id: str | None = None) -> RunRecord:
    """Recompute the near-duplicate groups of the whole catalog as one run and one commit."""
    signal = get_signal(SIGNAL)
    started = datetime.now(UTC)
    run_id = run_id or new_run_id(started)
    inputs = near_duplicate_inputs(settings)
    worker = ExtractBatches(
        signal_ref=signal.ref,
        run_id=run_id,
        event_timestamp=started,
        signal_uri=settings.signal_uri(signal.storage_name),
        quarantine_uri=settings.quarantine_uri(signal.storage_name),
        storage_options=settings.storage_options,
        device=None,
        threads=None,
    )
    record = RunRecord(
        run_id=run_id,
        job="near_duplicates",
        started_at=started,
        finished_at=started,
        status="running",
        signal=signal.ref,
        snapshot_uri=", ".join(ref for ref, _ in SOURCES.values()),
    )
    meta = worker.process(inputs, read=inputs.num_rows) if inputs.num_rows else None
    return commit_run(settings, signal, record, [meta] if meta is not None else [])
