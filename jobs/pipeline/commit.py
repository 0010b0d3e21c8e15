"""The driver's end of a run: gather the workers' part metadata, commit each table once, profile
what landed, record the run.

The quarantine table is committed before the signal table, and the run record last, each at a
named failpoint (`failpoints`), so that a driver killed anywhere leaves the lake consistent and a
rerun with the same run id finishes the job without landing anything twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import pyarrow as pa

from features.signal import Signal
from features.standard import QUARANTINE_SCHEMA
from jobs.lake.parts import Part, commit_parts
from jobs.lake.profiles import append_profile, profile_parts
from jobs.lake.runs import RunRecord, record_run
from jobs.pipeline.errors import QuarantineThresholdError
from jobs.pipeline.failpoints import BEFORE_COMMIT, BEFORE_RUN_RECORD, BETWEEN_COMMITS, failpoint
from jobs.quality.annotation import enqueue
from jobs.settings import Settings


def commit_run(
    settings: Settings,
    signal: Signal,
    record: RunRecord,
    parts_meta: Iterable[pa.Table],
    *,
    threshold: float | None = None,
    min_rows: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    total: int | None = None,
) -> RunRecord:
    """Gather the workers' part metadata, commit each table once, record the run.

    `total` is the rows of the input; those that never reached a worker were unchanged (their
    input hash already stored). A quarantine rate over the threshold, with at least `min_rows`
    rows quarantined, is a systematic failure: the quarantine rows
    and the run record are written (so the reasons can be read), the signal table is left as it
    was. The minimum count is why a small daily run with one bad file (one row in three) still
    lands its good rows, while a broken extractor, failing many rows, fails.
    """
    signal_parts: list[Part] = []
    quarantine_parts: list[Part] = []
    reasons: Counter[str] = Counter()
    usage: Counter[str] = Counter()
    for meta in parts_meta:
        for row in meta.to_pylist():
            record.read += row["read"]
            record.skipped += row["skipped"]
            record.extracted += row["extracted"]
            record.quarantined += row["quarantined"]
            record.removed += row["removed"]
            record.extractor_version = row["extractor_version"]
            reasons.update(json.loads(row["reasons"]))
            usage.update(json.loads(row["usage"]))
            if row["signal_part"]:
                signal_parts.append(Part(**json.loads(row["signal_part"])))
            if row["quarantine_part"]:
                quarantine_parts.append(Part(**json.loads(row["quarantine_part"])))
            if on_progress:
                on_progress(row["read"])
    record.reasons = dict(reasons.most_common())
    record.usage = dict(usage)
    if total is not None:
        record.unchanged = total - record.read
        record.read = total
        if on_progress and record.unchanged:
            on_progress(record.unchanged)

    threshold = settings.quarantine_threshold if threshold is None else threshold
    min_rows = settings.quarantine_min_rows if min_rows is None else min_rows
    systematic = record.quarantine_rate > threshold and record.quarantined >= min_rows
    operation = {
        "job": record.job,
        "signal": signal.ref,
        "snapshot_version": record.snapshot_version,
    }
    quarantine_uri = settings.quarantine_uri(signal.storage_name)
    failpoint(BEFORE_COMMIT)
    if quarantine_parts:
        commit_parts(
            quarantine_uri,
            QUARANTINE_SCHEMA,
            quarantine_parts,
            record.run_id,
            operation=operation,
            storage_options=settings.storage_options,
        )
    failpoint(BETWEEN_COMMITS)
    if signal_parts and not systematic:
        record.signal_table_version = commit_parts(
            settings.signal_uri(signal.storage_name),
            signal.arrow_schema(),
            signal_parts,
            record.run_id,
            operation=operation,
            storage_options=settings.storage_options,
        )
    if record.signal_table_version is not None:
        # What was committed, summarised for drift checks (`signals profile`).
        store_profile(settings, signal, record.run_id, record.signal_table_version, signal_parts)
    failpoint(BEFORE_RUN_RECORD)
    record.finished_at = datetime.now(UTC)
    if systematic:
        record.status = "failed"
        record.error = (
            f"{record.quarantined} of {record.computed} rows quarantined "
            f"({record.quarantine_rate:.1%} > threshold {threshold:.1%}, "
            f"count {record.quarantined} >= minimum {min_rows})"
        )
        record_run(settings, record)
        raise QuarantineThresholdError(
            f"{signal.ref}: {record.error}; nothing was written to the signal table",
            details=[f"{count} × {reason}" for reason, count in reasons.most_common(5)],
            hint=f"the rows and their reasons are in {quarantine_uri}",
        )
    record.status = "succeeded"
    record_run(settings, record)
    # The parts this call committed (none when the same run id had committed them first).
    committed = signal_parts if record.signal_table_version is not None else []
    record.queued_for_review = enqueue(settings, signal, record.run_id, [p.path for p in committed])
    return record


def store_profile(
    settings: Settings,
    signal: Signal,
    run_id: str,
    table_version: int | None,
    parts: list[Part],
) -> None:
    """Profile the parts a run committed in a Ray task beside the data (the driver receives only
    the small profile) and append the profile row."""
    import ray

    kinds = {name: feature.kind for name, feature in signal.features.items()}
    task = ray.remote(profile_parts).options(num_cpus=0.5)
    profile = ray.get(
        task.remote(
            settings.signal_uri(signal.storage_name),
            [p.path for p in parts],
            kinds,
            settings.storage_options,
        )
    )
    append_profile(settings, signal, run_id, table_version, profile)
