"""The materialize job: incremental Feast materialization of signal history into the online store.

python -m jobs.materialize [SIGNAL@V ...]
"""

from __future__ import annotations

from datetime import UTC, datetime

from features import Signal, all_signals
from jobs.feast_ops import apply_repo, quiet_stdout
from jobs.settings import Settings


def materialize(settings: Settings, signals: list[Signal] | None = None) -> list[str]:
    """Incrementally load new history into the online store; returns the feature views done."""
    store = apply_repo(settings)
    views = [s.feature_view_name for s in (signals or all_signals())]
    known = {fv.name for fv in store.list_feature_views()}
    views = [v for v in views if v in known]
    with quiet_stdout():
        store.materialize_incremental(end_date=datetime.now(UTC), feature_views=views)
    return views


if __name__ == "__main__":
    import sys

    from jobs.cli import app

    app(["materialize", *sys.argv[1:]], prog_name="python -m jobs.materialize")
