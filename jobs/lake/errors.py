"""Errors of the lake: tables that are not there, versions it does not have, commits it lost."""

from __future__ import annotations

from features.errors import SignalsError


class SnapshotNotFoundError(SignalsError):
    """No catalog snapshot at the given URI."""

    hint = "create one with `signals sample`, or pass --snapshot URI"


class MissingTableError(SignalsError):
    """A command aimed at a table that has never been written."""

    hint = "a signal's table is created by its first `signals extract`"


class RetentionTooShortError(SignalsError):
    """A vacuum retention the table's configured minimum forbids (or a negative one)."""


class AsOfError(SignalsError):
    """An `--as-of` value that is not a version or a time, or that the table's history lacks."""


class NoLineageError(SignalsError):
    """The item has no row in the signal's table (at that version)."""


class CommitConflictError(SignalsError):
    """Concurrent writers kept winning the race for a table's next version."""

    retryable = True  # a rerun with the same run id commits once, or finds its commit there
