"""Errors of the extractors: why one item could not be computed.

None of them leaves an extractor: each is caught per row and its message becomes the row's
quarantine reason, so one bad item never fails a batch. `retryable` says whether asking again can
give a different answer (the LLM client retries those itself, within its budget).
"""

from __future__ import annotations


class ExtractorError(Exception):
    """Base of the per-item errors; the message is what a person reads in the quarantine."""

    retryable: bool = False


class MediaError(ExtractorError):
    """A problem with one item's media (missing, empty, truncated, undecodable, too small)."""


class AnswerError(ExtractorError):
    """The item could not be answered (every try failed, or the endpoint refused it)."""


class BadAnswerError(ExtractorError):
    """An answer that was received but not usable (not JSON, not the contract's shape)."""

    retryable = True
