"""The materialize job: incremental Feast materialization of signal history into the online store.

python -m jobs materialize [SIGNAL@V ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from features import Signal, all_signals
from jobs.lake.removals import tombstoned_since
from jobs.lake.runs import RunRecord, list_runs, new_run_id, record_run
from jobs.serving.online_removal import remover_for
from jobs.serving.store import apply_repo, online_store_errors, quiet_stdout
from jobs.settings import Settings

JOB = "materialize"


@dataclass(frozen=True)
class Materialized:
    """What one materialization did: the views loaded and the removed items deleted."""

    views: list[str]
    deleted: dict[str, int]  # feature view -> items deleted from the online store


def materialize(settings: Settings, signals: list[Signal] | None = None) -> Materialized:
    """Incrementally load new history into the online store, then delete the items whose newest
    row in the window is a tombstone (they left the catalog).

    The rows stream from the Delta history in batches of `settings.materialize_batch_rows`
    (`jobs.serving.batch_engine`: in this process, or in Ray tasks on a cluster), so memory does
    not grow with the window; a batch the online store refuses fails the run. Feast records a
    view's window in the registry only after all its batches are written, so a failed load
    leaves the registry as it was and is redone whole. Deletions
    keep their own watermark, a `materialize` run per signal in the runs table, recorded only
    once its deletions succeeded: a run that fails between the load and the deletions deletes
    the same items next time.
    """
    store = apply_repo(settings)
    chosen = list(signals or all_signals())
    known = {fv.name: fv for fv in store.list_feature_views()}
    chosen = [s for s in chosen if s.feature_view_name in known]
    views = [s.feature_view_name for s in chosen]
    deleted_up_to = _deletion_watermarks(settings)
    starts = {
        s.feature_view_name: deleted_up_to.get(
            s.ref, known[s.feature_view_name].most_recent_end_time
        )
        for s in chosen
    }
    started = end = datetime.now(UTC)
    with quiet_stdout(), online_store_errors(settings, "materializing"):
        store.materialize_incremental(end_date=end, feature_views=views)
    deleted: dict[str, int] = {}
    records = []
    for signal in chosen:
        view = signal.feature_view_name
        removed = tombstoned_since(settings, signal.ref, starts[view], end)
        if removed:
            with online_store_errors(settings, "deleting removed items"):
                deleted[view] = remover_for(store).delete(store, known[view], removed)
        records.append(
            RunRecord(
                run_id=new_run_id(started),
                job=JOB,
                started_at=started,
                finished_at=end,
                status="succeeded",
                signal=signal.ref,
                removed=deleted.get(view, 0),
            )
        )
    if records:
        record_run(settings, *records)
    return Materialized(views, deleted)


def _deletion_watermarks(settings: Settings) -> dict[str, datetime]:
    """Signal → the end of its last materialization whose deletions succeeded."""
    runs = list_runs(settings).to_pylist()
    marks: dict[str, datetime] = {}
    for run in runs:  # newest first
        if run["job"] == JOB and run["status"] == "succeeded" and run["signal"] not in marks:
            marks[run["signal"]] = run["finished_at"]
    return marks
