"""`signals serve`: Feast's own feature server (`feast serve`'s app, same endpoints and protocol) on
this repository, with the online store the settings choose.

One difference from `feast serve`: Feast answers 500 when a request names a join key it does
not have or a feature reference without a colon (it raises `KeyError` / `ValueError` from request
parsing). Those are the caller's mistakes, so this server answers them 400 with Feast's message;
a client can then tell "fix your request" from "retry later".
"""

from __future__ import annotations

import gc
import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from jobs.serving.client import shared_store
from jobs.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

REGISTRY_TTL_S = 5  # how soon a `feast apply` elsewhere reaches a running server


def serving_app(settings: Settings, registry_ttl_sec: int = REGISTRY_TTL_S) -> FastAPI:
    """Feast's FastAPI feature server for these settings, initialised as `feast serve` does."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from feast.feature_server import get_app
    from feast.permissions.server.utils import (
        ServerType,
        init_auth_manager,
        init_security_manager,
        str_to_auth_manager_type,
    )

    from jobs.serving.similar_route import add_similar_route

    store = shared_store(settings)
    auth_type = str_to_auth_manager_type(store.config.auth_config.type)
    init_security_manager(auth_type=auth_type, fs=store)
    init_auth_manager(
        auth_type=auth_type, server_type=ServerType.REST, auth_config=store.config.auth_config
    )
    _cache_timestamp_strings()
    app = get_app(store, registry_ttl_sec)

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        message = exc.args[0] if exc.args else str(exc)
        logging.getLogger(__name__).info("400 %s: %s", request.url.path, message)
        return JSONResponse(status_code=400, content={"error": str(message)})

    app.add_exception_handler(ValueError, bad_request)
    app.add_exception_handler(KeyError, bad_request)
    add_similar_route(app, settings)
    # The registry, protobufs and FastAPI's models are long-lived: out of the collector's way,
    # so that full collections stop pausing requests (a p99 effect).
    gc.collect()
    gc.freeze()
    return app


def _cache_timestamp_strings() -> None:
    """Memoize Feast's protobuf-timestamp-to-RFC-3339 conversion in its response encoder.

    It runs once per value (a `strftime` each), an eighth of a 100-ID request's time under
    py-spy. Every row of one run shares one event time, so a response holds a handful of distinct
    timestamps: the cache turns the rest into lookups. Same strings, same protocol.
    """
    import feast.feature_server_utils as encoder

    original = encoder._timestamp_to_str
    if getattr(original, "cache_info", None):
        return

    @lru_cache(maxsize=4096)
    def by_value(seconds: int, nanos: int) -> str:
        return original(Timestamp(seconds=seconds, nanos=nanos))

    def timestamp_to_str(ts: Timestamp) -> str:
        return by_value(ts.seconds, ts.nanos)

    timestamp_to_str.cache_info = by_value.cache_info  # type: ignore[attr-defined]
    encoder._timestamp_to_str = timestamp_to_str


def run_server(settings: Settings, host: str, port: int, *, access_log: bool = True) -> None:
    """Serve until interrupted (one process; scale out with more replicas behind a Service)."""
    import uvicorn

    uvicorn.run(serving_app(settings), host=host, port=port, access_log=access_log)
