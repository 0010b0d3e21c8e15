"""Errors the jobs raise on purpose; all are `SignalsError`, so the CLI prints them plainly."""

from __future__ import annotations

from features.errors import SignalsError


class SnapshotNotFoundError(SignalsError):
    """No catalog snapshot at the given URI."""

    hint = "create one with `signals sample`, or pass --snapshot URI"


class QuarantineThresholdError(SignalsError):
    """Too many rows failed: a systematic failure lands nothing in the signal table."""


class NotServedError(SignalsError):
    """A content ID the online store has no values for."""


class OnlineStoreError(SignalsError):
    """The online store or the Feast registry could not be reached or read."""


class CommitConflictError(SignalsError):
    """Concurrent writers kept winning the race for a table's next version."""
