"""The materialize job: incremental Feast materialization of signal history into the online store.

python -m jobs.materialize [SIGNAL@V ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from features import Signal, all_signals
from jobs.feast_ops import apply_repo, quiet_stdout
from jobs.online_removal import remover_for
from jobs.removals import tombstoned_since
from jobs.settings import Settings


@dataclass(frozen=True)
class Materialized:
    """What one materialization did: the views loaded and the removed items deleted."""

    views: list[str]
    deleted: dict[str, int]  # feature view -> items deleted from the online store


def materialize(settings: Settings, signals: list[Signal] | None = None) -> Materialized:
    """Incrementally load new history into the online store, then delete the items whose newest
    row in the window is a tombstone (they left the catalog)."""
    store = apply_repo(settings)
    chosen = [s for s in (signals or all_signals())]
    known = {fv.name: fv for fv in store.list_feature_views()}
    chosen = [s for s in chosen if s.feature_view_name in known]
    views = [s.feature_view_name for s in chosen]
    # Where each view's window starts: the end of its last materialization (None: never).
    starts = {v: known[v].most_recent_end_time for v in views}
    end = datetime.now(UTC)
    with quiet_stdout():
        store.materialize_incremental(end_date=end, feature_views=views)
    deleted: dict[str, int] = {}
    for signal in chosen:
        view = signal.feature_view_name
        removed = tombstoned_since(settings, signal.ref, starts[view], end)
        if removed:
            deleted[view] = remover_for(store).delete(store, known[view], removed)
    return Materialized(views, deleted)


if __name__ == "__main__":
    import sys

    from jobs.cli import app

    app(["materialize", *sys.argv[1:]], prog_name="python -m jobs.materialize")
