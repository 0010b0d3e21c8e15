"""Errors of the extractors: why one item could not be computed.

None of them leaves an extractor: each is caught per row and its message becomes the row's
quarantine reason, so one bad item never fails a batch. Only `BadAnswerError` is worth a retry,
and the LLM client makes it itself, within its budget; the others fail the same way again.
"""

from __future__ import annotations


class ExtractorError(Exception):
    """Base of the per-item errors; the message is what a person reads in the quarantine."""


class MediaError(ExtractorError):
    """A problem with one item's media (missing, empty, truncated, undecodable, too small)."""


class AnswerError(ExtractorError):
    """The item could not be answered (every try failed, or the endpoint refused it)."""


class BadAnswerError(ExtractorError):
    """An answer that was received but not usable (not JSON, not the contract's shape): worth
    asking again."""


class ModelFileError(Exception):
    """A model URI that names no readable model file, or a file nothing knows how to load: a
    configuration error of the whole signal, not of one item, so it fails the run."""
