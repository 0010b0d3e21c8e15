"""`signals serve`: Feast's own feature server (`feast serve`'s app, same read endpoints and
protocol) on this repository, with the online store the settings choose.

Differences from `feast serve`:

- **Read-only, and a malformed request gets a 4xx with the reason, never a 5xx**
  (`jobs.serving.request_guard`): a client can tell "fix your request" from "retry later".
- **`--workers N`**: N processes on one port (uvicorn's supervisor, `spawn`ed), each its own
  Feast store, registry refresh and caches.
"""

from __future__ import annotations

import gc
import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from jobs.serving.client import shared_store
from jobs.serving.request_guard import (
    MAX_BODY_BYTES,
    BodyLimit,
    add_error_handlers,
    guard_routes,
    make_read_only,
)
from jobs.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

REGISTRY_TTL_S = 5  # how soon a `feast apply` elsewhere reaches a running server

# A worker answers the supervisor's liveness ping from a thread that needs the GIL; a missed
# ping kills the worker and drops its connections, and uvicorn's 5 s leave little margin on
# busy cores. The cost: a worker that dies while a ping waits is replaced this much later.
WORKER_HEALTHCHECK_S = 20


def serving_app(settings: Settings, registry_ttl_sec: int = REGISTRY_TTL_S) -> FastAPI:
    """Feast's FastAPI feature server for these settings, initialised as `feast serve` does, with
    the write endpoints removed and malformed requests refused before Feast sees them."""
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
    make_read_only(app)
    add_similar_route(app, settings)
    guard_routes(app)
    add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    # The registry, protobufs and FastAPI's models are long-lived: out of the collector's way,
    # so that full collections stop pausing requests (a p99 effect).
    gc.collect()
    gc.freeze()
    return app


def worker_app() -> FastAPI:
    """The app of one `signals serve --workers N` process.

    uvicorn starts each worker as a fresh (`spawn`ed) interpreter that imports this factory by
    name, so the settings come from the environment the workers inherit, as the CLI's do.
    A worker that cannot build its app exits with uvicorn's start-up failure status, which stops
    the supervisor; any other exit would have it start the worker again, in a loop.
    """
    from uvicorn.config import STARTUP_FAILURE

    from features.errors import SignalsError

    _stop_with_the_supervisor()
    try:
        return serving_app(Settings.from_env())
    except SignalsError as exc:
        logging.getLogger("uvicorn.error").error("error: %s", exc.render())
        raise SystemExit(STARTUP_FAILURE) from None
    except Exception:
        logging.getLogger("uvicorn.error").exception("the worker could not build its app")
        raise SystemExit(STARTUP_FAILURE) from None


def _stop_with_the_supervisor() -> None:
    """Have Linux send this worker SIGTERM when its supervisor dies.

    The supervisor stops its workers when it is terminated, but one that is killed (SIGKILL, the
    OOM killer) cannot, and its workers would go on serving the port unsupervised, unseen by
    whatever restarts the server.
    """
    import ctypes
    import multiprocessing
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    supervisor = multiprocessing.parent_process()
    if supervisor is not None and os.getppid() != supervisor.pid:  # it died before the prctl
        raise SystemExit(0)


def run_server(
    settings: Settings, host: str, port: int, *, access_log: bool = True, workers: int = 1
) -> None:
    """Serve until interrupted or terminated.

    One worker serves in this process. More share one listening socket under uvicorn's
    supervisor, which restarts a worker that dies and, on SIGTERM or SIGINT, stops them all
    before it exits; a Python process computes on about one core, so N ≈ the cores a replica
    has. A worker that fails to start stops the server with
    uvicorn's start-up failure status (3) and its reason in the log.
    """
    import uvicorn

    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers == 1:
        uvicorn.run(serving_app(settings), host=host, port=port, access_log=access_log)
        return
    if settings != Settings.from_env():
        raise ValueError("with workers > 1 each worker reads its settings from the environment")
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        f"{__name__}:{worker_app.__name__}",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise SystemExit(STARTUP_FAILURE)


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
