"""Errors of the quality room: review sides it cannot read, baselines and truth it does not have."""

from __future__ import annotations

from features.errors import SignalsError


class ContractSourceError(SignalsError):
    """A review side that is neither a git revision, the working tree nor a contracts file."""

    hint = "pass a git revision (main, HEAD~1, a tag), WORKTREE, or a file from `contracts export`"


class NoBaselineError(SignalsError):
    """A drift comparison without two profiles to compare."""


class NoGroundTruthError(SignalsError):
    """An evaluation without the truth it is judged against (no sample catalog, no gold set)."""


class ContractSelectionError(SignalsError):
    """A contract lookup or export that names no declared contract, or an unknown format."""
