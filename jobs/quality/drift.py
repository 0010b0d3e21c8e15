"""Drift of a signal's latest committed values: which baseline it is measured against, and how far
each feature moved (`features.profile.compare` over two stored profiles).

The baseline is the signal's previous profiled run unless the caller names one: a run id of the
same signal, or NAME@VERSION (that version's latest run), so a new major version can be compared
with the one it replaces before consumers move.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from features import get_signal
from features.profile import Drift, compare
from jobs.lake.profiles import StoredProfile, profiles_of
from jobs.quality.errors import NoBaselineError
from jobs.settings import Settings


@dataclass(frozen=True)
class DriftComparison:
    """Two profiles of a signal and the drift of each feature between them."""

    signal: str  # NAME@VERSION whose latest run is measured
    base: StoredProfile
    new: StoredProfile
    drifts: list[Drift]

    @property
    def base_label(self) -> str:
        return f"{self.base.signal} {self.base.run_id}"

    @property
    def new_label(self) -> str:
        return f"{self.new.signal} {self.new.run_id}"

    @property
    def drifted(self) -> list[str]:
        """The features that drifted beyond the thresholds."""
        return [d.feature for d in self.drifts if d.drifted]


def _baseline(
    settings: Settings, ref: str, found: list[StoredProfile], base: str | None
) -> StoredProfile:
    if base is None:
        if len(found) < 2:
            raise NoBaselineError(f"{ref} has one profiled run: nothing to compare it with",
                                  hint="pass --base NAME@VERSION to compare two versions")  # fmt: skip
        return found[1]
    if "@" in base:
        others = profiles_of(settings, get_signal(base).ref)
        if not others:
            raise NoBaselineError(f"{base} has no profile yet")
        return others[0]
    matching = [p for p in found if p.run_id == base]
    if not matching:
        raise NoBaselineError(f"{ref} has no profiled run {base!r}",
                              details=[p.run_id for p in found[:5]])  # fmt: skip
    return matching[0]


def drift_of(
    settings: Settings,
    signal_ref: str,
    base: str | None = None,
    *,
    psi: float | None = None,
    ks: float | None = None,
) -> DriftComparison:
    """The drift of `signal_ref`'s latest profiled run against `base` (default: the previous run),
    with the settings' thresholds unless `psi` / `ks` override them."""
    ref = get_signal(signal_ref).ref
    found = profiles_of(settings, ref)
    if not found:
        raise NoBaselineError(f"{ref} has no profile yet", hint=f"run `signals extract {ref}`")
    old = _baseline(settings, ref, found, base)
    thresholds = replace(
        settings.drift,
        psi=settings.drift.psi if psi is None else psi,
        ks=settings.drift.ks if ks is None else ks,
    )
    return DriftComparison(ref, old, found[0], compare(old.profile, found[0].profile, thresholds))
