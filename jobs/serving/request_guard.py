"""What `signals serve` refuses before Feast sees a request, and what it does not serve.

- **Read-only.** Feast's write endpoints (`/push`, `/write-to-online-store`, `/materialize`,
  `/materialize-incremental`) answer 404 with the reason: the online store is loaded by
  `signals materialize`, which also keeps the vector index, removals and lineage in step. Feast's
  placeholder chat (`/chat`, `/ws/chat`, `/static`) is not served either.
- **A malformed request gets a 4xx with the reason, never a 5xx.** The read endpoints check
  their request before Feast's handler runs, parsing errors answer 400, Feast's own errors keep
  Feast's status and body on an open connection, and bodies over `MAX_BODY_BYTES` or requests
  for over `MAX_ENTITY_ROWS` IDs answer 413.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from jobs.serving.errors import RequestRefused

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.types import ASGIApp, Receive, Scope, Send

# What one request may ask. 10,000 IDs take about 1 s of a worker on SQLite (0.12 ms an ID);
# a 384-d query vector is 8 kB of JSON, the largest vector `/similar` takes (65,536) 1.5 MB.
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_ENTITY_ROWS = 10_000
MAX_ID_CHARS = 1_000
MAX_FEATURES = 1_000
MAX_NAME_CHARS = 300  # a feature reference, service, join key or metric name
MAX_QUERY_CHARS = 10_000
MAX_TOP_K = 1_000
INT64 = 2**63

WRITE_PATHS = ("/push", "/write-to-online-store", "/materialize", "/materialize-incremental")
PLACEHOLDER_PATHS = ("/chat", "/ws/chat", "/static")


def make_read_only(app: FastAPI) -> None:
    """Drop Feast's write and placeholder routes; a write path answers 404 with the reason."""
    dropped = (*WRITE_PATHS, *PLACEHOLDER_PATHS)
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in dropped]
    for path in WRITE_PATHS:
        app.add_api_route(
            path, _not_served(path), methods=["POST"], response_model=None, include_in_schema=False
        )


def _not_served(path: str) -> Callable[[], Awaitable[JSONResponse]]:
    from fastapi.responses import JSONResponse

    reason = (
        f"{path} is not served: this feature server is read-only; the online store is loaded by"
        " `signals materialize`"
    )

    async def answer() -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": reason})

    return answer


def add_error_handlers(app: FastAPI) -> None:
    """Answer the caller's mistakes 4xx, each with its reason.

    Handlers for specific classes run inside Starlette's exception middleware and leave the
    connection open. Feast's own catch-all (`Exception`) runs in the outermost middleware, which
    re-raises after answering, and uvicorn then drops the keep-alive connection: the client's
    next request on it fails. So Feast's errors get their own handler here, with Feast's status
    and body, and only real faults reach the catch-all (500).
    """
    from fastapi.responses import JSONResponse
    from feast.errors import (
        FeastError,
        FeatureNameCollisionError,
        InvalidFeaturesParameterType,
        SpecifiedFeaturesNotPresentError,
        VersionedOnlineReadNotSupported,
    )

    from features.errors import SignalsError

    # Feast raises these for a request's content but gives them the default status, 500.
    callers_mistakes = (
        FeatureNameCollisionError,
        InvalidFeaturesParameterType,
        SpecifiedFeaturesNotPresentError,
        VersionedOnlineReadNotSupported,
    )
    log = logging.getLogger(__name__)

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestRefused)
        log.info("%s %s: %s", exc.status, request.url.path, exc.message)
        return JSONResponse(status_code=exc.status, content={"error": exc.message})

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        message = exc.args[0] if exc.args else str(exc)
        log.info("400 %s: %s", request.url.path, message)
        return JSONResponse(status_code=400, content={"error": str(message)})

    async def feast_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FeastError)
        status = 400 if isinstance(exc, callers_mistakes) else exc.http_status_code()
        log.info("%s %s: %s", status, request.url.path, exc)
        return JSONResponse(status_code=status, content=exc.to_error_detail())

    async def signals_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SignalsError)
        status = 503 if exc.retryable else 400
        log.info("%s %s: %s", status, request.url.path, exc)
        return JSONResponse(status_code=status, content={"error": exc.render()})

    app.add_exception_handler(RequestRefused, refused)
    app.add_exception_handler(ValueError, bad_request)
    app.add_exception_handler(KeyError, bad_request)
    app.add_exception_handler(FeastError, feast_error)
    app.add_exception_handler(SignalsError, signals_error)


def guard_routes(app: FastAPI) -> None:
    """Check each read endpoint's parsed request before Feast's handler runs.

    Each route is rebuilt around its own endpoint (same path, methods, dependencies — the auth
    check included — and request model, so FastAPI still parses and documents it as Feast
    does); the check raises `RequestRefused`.
    """
    from fastapi.routing import APIRoute

    checks: dict[str, Callable[..., None]] = {
        "/get-online-features": _check_online_features,
        "/search": _check_documents,
        "/retrieve-online-documents": _check_documents,
        "/v1/vector_stores/{vector_store_id}/search": _check_openai_search,
        "/similar": _check_similar,
    }
    for i, route in enumerate(app.router.routes):
        if not isinstance(route, APIRoute) or route.path not in checks:
            continue
        app.router.routes[i] = APIRoute(
            route.path,
            _checked(route.endpoint, checks[route.path]),
            methods=route.methods,
            dependencies=route.dependencies,
            response_model=route.response_model,
            response_class=route.response_class,
            include_in_schema=route.include_in_schema,
            name=route.name,
            summary=route.summary,
            description=route.description,
            dependency_overrides_provider=route.dependency_overrides_provider,
        )


def _checked(
    endpoint: Callable[..., Awaitable[Any]], check: Callable[..., None]
) -> Callable[..., Awaitable[Any]]:
    # `wraps` keeps the endpoint's signature, from which FastAPI builds the request parsing.
    @functools.wraps(endpoint)
    async def checked(**kwargs: Any) -> Any:
        check(**kwargs)
        return await endpoint(**kwargs)

    return checked


def _check_online_features(request: Any) -> None:
    _check_features(request.features, request.feature_service)
    entities: dict[str, list[Any]] = request.entities
    if not entities:
        raise RequestRefused(400, 'entities names no join key: {"content_id": ["track:…", …]}')
    rows = {len(values) for values in entities.values()}
    if len(rows) > 1:
        raise RequestRefused(400, "every entities list must have one value per row (same length)")
    if max(rows) > MAX_ENTITY_ROWS:
        raise RequestRefused(
            413, f"at most {MAX_ENTITY_ROWS} IDs per request, not {max(rows)}: split the request"
        )
    for key, values in entities.items():
        _check_name("join key", key)
        for i, value in enumerate(values):
            problem = _entity_value_problem(value)
            if problem:
                raise RequestRefused(400, f"entities[{key!r}][{i}] {problem}")


def _entity_value_problem(value: object) -> str | None:
    if isinstance(value, str):
        return None if len(value) <= MAX_ID_CHARS else f"is over {MAX_ID_CHARS} characters"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -INT64 <= value < INT64 else "is out of the 64-bit integer range"
    if isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    return f"is {type(value).__name__ if value is not None else 'null'}: IDs are strings"


def _check_documents(request: Any) -> None:
    if request.feature_service is not None:
        # Feast hands the service to `retrieve_online_documents*`, which take references only.
        raise RequestRefused(400, 'a search names its features (["view:feature"]), not a service')
    _check_features(request.features, None)
    if request.api_version not in (1, 2):
        raise RequestRefused(400, f"api_version is 1 or 2, not {request.api_version}")
    if request.query is None and request.query_string is None:
        raise RequestRefused(400, "a search needs a query vector or a query_string")
    if request.top_k is None or not 1 <= request.top_k <= MAX_TOP_K:
        raise RequestRefused(400, f"top_k must be from 1 to {MAX_TOP_K}, not {request.top_k}")
    if request.query is not None:
        _check_vector("query", request.query)
    if request.query_string is not None and len(request.query_string) > MAX_QUERY_CHARS:
        raise RequestRefused(400, f"query_string is over {MAX_QUERY_CHARS} characters")
    if request.distance_metric is not None:
        _check_name("distance_metric", request.distance_metric)


def _check_openai_search(vector_store_id: str, request: Any) -> None:
    _check_name("vector store ID", vector_store_id)
    queries = [request.query] if isinstance(request.query, str) else request.query
    if not queries or any(len(q) > MAX_QUERY_CHARS for q in queries) or len(queries) > 100:
        raise RequestRefused(
            400, f"query is one to 100 strings of at most {MAX_QUERY_CHARS} characters"
        )
    limit = request.max_num_results
    if limit is not None and not 1 <= limit <= MAX_TOP_K:
        raise RequestRefused(400, f"max_num_results must be from 1 to {MAX_TOP_K}, not {limit}")


def _check_similar(request: Any) -> None:
    if request.vector is not None:
        _check_vector("vector", request.vector)


def _check_features(features: Sequence[str], service: str | None) -> None:
    if service is not None:
        _check_name("feature_service", service)
    elif not features:
        raise RequestRefused(400, 'name features (["view:feature", …]) or a feature_service')
    if len(features) > MAX_FEATURES:
        raise RequestRefused(413, f"at most {MAX_FEATURES} features per request")
    for ref in features:
        _check_name("feature reference", ref)
        view, _, name = ref.partition(":")
        if not view or not name or ":" in name:
            raise RequestRefused(400, f"a feature reference is view:feature, not {ref!r}")


def _check_name(what: str, name: str) -> None:
    if not name or len(name) > MAX_NAME_CHARS:
        raise RequestRefused(400, f"{what} must be 1 to {MAX_NAME_CHARS} characters")


def _check_vector(what: str, vector: Sequence[float]) -> None:
    if not vector:
        raise RequestRefused(400, f"{what} is an empty vector")
    if not all(math.isfinite(x) for x in vector):
        raise RequestRefused(400, f"{what} holds a number that is not finite")


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is answered 413 before anyone reads it.

    uvicorn reads whatever body a client sends; without a limit, one request can take a worker's
    memory. A declared `Content-Length` is checked up front; a chunked body is read up to the
    limit here and then handed on.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "Content-Length is not a number of bytes")
            elif int(declared) > self.max_bytes:
                await _answer(send, 413, self.too_large)
            else:
                await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b""):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await _answer(send, 413, self.too_large)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @property
    def too_large(self) -> str:
        return f"the request body is over {self.max_bytes} bytes"


async def _answer(send: Send, status: int, reason: str) -> None:
    from fastapi.responses import JSONResponse

    await JSONResponse(status_code=status, content={"error": reason})(
        {"type": "http"}, _no_body, send
    )


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
