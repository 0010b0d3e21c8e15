"""Errors of the pipeline: runs that failed as a whole, extractors refused, clusters unreachable."""

from __future__ import annotations

from features.errors import SignalsError


class QuarantineThresholdError(SignalsError):
    """Too many rows failed (over the share threshold, and at least the minimum count): a
    systematic failure lands nothing in the signal table.

    Not retryable: the same inputs fail the same way until their producer or the extractor is
    fixed (the quarantine table holds every row's reason).
    """


class ExtractorSettingsError(SignalsError):
    """A setting an extractor refuses (a misspelt `SIGNALS_LLM_*` name, a bad value)."""


class NotItemSignalError(SignalsError):
    """An item-by-item job asked for a signal that is computed across the whole catalog."""


class SubmitError(SignalsError):
    """The Ray job API could not be reached, or refused the job."""

    retryable = True  # the usual cause is a cluster still starting or a dashboard restarting


class JobRequestError(SignalsError):
    """`signals submit` named a job that cannot run on a cluster, or a malformed `--env`."""
