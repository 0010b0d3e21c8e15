"""Errors of serving: an online store or feature server that failed, and requests it cannot answer."""

from __future__ import annotations

from features.errors import SignalsError


class OnlineStoreError(SignalsError):
    """The online store, the Feast registry or a feature server could not be reached or read."""

    retryable = True  # nothing was half-done: the same call succeeds once the store is back


class ServingConfigError(SignalsError):
    """Settings that name an online store or engine this project does not have, or a Feast
    repository that cannot be read."""


class FeatureRequestError(SignalsError):
    """A request for features that is the caller's mistake: it names neither signals nor a
    feature service (or both), or a feature server refused it (4xx)."""


class AccessDeniedError(SignalsError):
    """A feature server that refused the caller: no token or a bad one (401), or a token
    without a role the feature service needs (403)."""

    hint = "send a bearer token (token=…, SIGNALS_TOKEN) holding a role of the feature service"


class NotServedError(SignalsError):
    """A content ID the online store has no values for."""


class EntityFileError(SignalsError):
    """An entity file for a training set that is missing, unreadable or lacks its columns."""


class NotRegisteredError(SignalsError):
    """Features or a feature service that the Feast registry does not know."""


class TrainingSetOutputError(SignalsError):
    """A training-set output path that holds something other than an earlier training set (a
    file that is not Parquet, a folder with other files): it is never overwritten."""


class OnlineEncodingError(SignalsError):
    """Materialization's fast encoding of a batch disagrees with Feast's own conversion: the
    batch is not written, since the online read would parse its values differently."""


class RequestRefused(Exception):
    """A request this server will not pass to Feast: the status and the reason to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
