"""The backfill job: compute a signal version over the whole catalog and serve it beside the others.

    python -m jobs backfill SIGNAL@VERSION

A new major version is a new Delta table and a new feature view; the versions before it keep
serving the feature services that pin them. A backfill fills the new table (incrementally: a
first run computes every item, a rerun after a failure only what is missing), loads it into the
online store, and says which feature services still read an older version, so that moving them,
and then retiring the old version, is a decision someone makes with the facts in front of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from features import all_signals, get_signal
from features.signal import Signal
from jobs.lake.runs import RunRecord
from jobs.lake.tables import table_exists
from jobs.pipeline.errors import NotItemSignalError
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.pipeline.extractors import extractor_class
from jobs.serving.materialize import Materialized, materialize
from jobs.settings import Settings


@dataclass(frozen=True)
class VersionReaders:
    """One declared version of a signal and the feature services that pin it."""

    signal: str  # name@version
    consumers: tuple[str, ...]
    has_table: bool  # whether any run has created its Delta table


@dataclass(frozen=True)
class Backfill:
    """What a backfill did, and where each version of the signal stands after it."""

    run: RunRecord
    materialized: Materialized | None
    versions: list[VersionReaders]  # every declared version of the signal, newest first

    @property
    def still_on_older(self) -> list[VersionReaders]:
        """Older versions that a feature service still pins: the migrations left to do."""
        return [v for v in self.versions if v.signal != self.run.signal and v.consumers]


def versions_of(settings: Settings, signal: Signal) -> list[VersionReaders]:
    """Every declared version of `signal`'s name, newest first, with who pins it."""
    return [
        VersionReaders(
            s.ref,
            s.consumers,
            table_exists(settings.signal_uri(s.storage_name), settings.storage_options),
        )
        for s in sorted(all_signals(), key=lambda s: -s.version)
        if s.name == signal.name
    ]


def run_backfill(
    settings: Settings,
    request: ExtractRequest,
    *,
    load_online: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> Backfill:
    """Compute `request.signal` over the snapshot, load it into the online store, and report the
    feature services still pinned to older versions."""
    signal = get_signal(request.signal)
    if extractor_class(signal).scope != "item":
        raise NotItemSignalError(
            f"{signal.ref} is computed across the whole catalog, not item by item",
            hint="run `signals near-duplicates` after its inputs are backfilled",
        )
    run = run_extract(settings, request, on_progress=on_progress)
    done = materialize(settings, [signal]) if load_online else None
    return Backfill(run, done, versions_of(settings, signal))
