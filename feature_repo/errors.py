"""Errors of the Feast repository's plugins: Delta sources the offline store cannot read."""

from __future__ import annotations

from features.errors import SignalsError

LAKE_URI_ENV = "SIGNALS_LAKE_URI"  # where relative Delta source paths are resolved


class DeltaSourceError(SignalsError):
    """A Delta source that cannot be read: not a Delta `FileSource`, a missing version or column."""


class DeltaTableNotFoundError(DeltaSourceError):
    """No Delta table at the path a source resolves to."""

    hint = (
        f"check ${LAKE_URI_ENV} / offline_store.lake_uri, "
        "or run the extract job for this signal first"
    )


class UnsupportedOperationError(SignalsError, NotImplementedError):
    """An offline-store operation this read-only store does not offer."""
