"""A local server that speaks OpenAI's chat-completions protocol, for the tests of LLM extractors.

Hosted LLMs, vLLM, Ollama and llama.cpp's server all answer `POST /v1/chat/completions` with the
same JSON shapes, so an extractor written against that protocol is tested here against a real
HTTP server on 127.0.0.1 (the boundary mocked is the hosted model, not the client or the wire).
It runs in a background thread of the test process (uvicorn serving a small Starlette app, one
event loop, so slow answers never block the others) and is reached from the Ray actors that run
the extractor like any remote endpoint; the test scripts it and inspects what it received.

Scripting is per item: a request's `content_id` is the first `content_id: <ID>` line found in its
messages' string contents (in message order). `server.script(content_id, *behaviours)` queues
behaviours for that id, one consumed per call, the last one repeating; unscripted items get
`server.default`, which is `Answer()` (its payload built by `server.answer_for`).

Token usage is deterministic: `prompt_tokens` is the number of whitespace-separated words in all
messages' string contents (text parts of list contents included), `completion_tokens` the number
of words in the answer's content (for a tool call: in its JSON `arguments` string), and
`total_tokens` their sum.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from redis_server import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = [
    "Answer",
    "Behaviour",
    "CallRecord",
    "CallTool",
    "ChatServer",
    "Raw",
    "Slow",
    "Status",
    "content_id_of",
    "count_words",
]

CONTENT_ID = re.compile(r"^[ \t]*content_id:[ \t]*(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Answer:
    """200; the content is `json.dumps(payload)` (None: the payload of `server.answer_for`)."""

    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class Raw:
    """200 with exactly this content: malformed JSON, prose, markdown-fenced JSON, …"""

    text: str


@dataclass(frozen=True)
class Slow:
    """Wait `seconds` (without blocking other requests), then behave as `then`."""

    seconds: float
    then: Behaviour = field(default_factory=Answer)


@dataclass(frozen=True)
class Status:
    """This HTTP status with an OpenAI-style error body; `Retry-After` when `retry_after` is set."""

    code: int
    retry_after: float | None = None
    message: str = "scripted failure"


@dataclass(frozen=True)
class CallTool:
    """200 with `finish_reason: "tool_calls"`: one call of the tool `name`, content null."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


Behaviour = Answer | Raw | Slow | Status | CallTool


@dataclass
class CallRecord:
    """One request to `/v1/chat/completions`, recorded on arrival.

    `behaviour` is the class name of the scripted behaviour that answered it (the outer one:
    "Slow" for a `Slow`), or "Rejected" for a request refused before scripting (400, 401).
    `status` is 0 while the request is still in flight. `at` is `time.monotonic()` on arrival.
    """

    content_id: str | None
    request: dict[str, Any] | None
    behaviour: str
    status: int
    at: float
    response: dict[str, Any] | None = None


def count_words(text: str | None) -> int:
    """The token count this server reports for `text`: its whitespace-separated words."""
    return len(text.split()) if text else 0


def _texts(message: Any) -> list[str]:
    """The string contents of one message (a string, or the text parts of a list of parts)."""
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
    return []


def content_id_of(messages: list[Any]) -> str | None:
    """The first `content_id: <ID>` line in the messages' string contents, in message order."""
    for message in messages:
        for text in _texts(message):
            match = CONTENT_ID.search(text)
            if match:
                return match.group(1)
    return None


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    """An OpenAI-style error: `{"error": {"message", "type", "param", "code"}}`."""
    if status == 429:
        kind, code = "requests", code or "rate_limit_exceeded"
    else:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


class ChatServer:
    """An OpenAI-compatible chat-completions server on a free loopback port, scripted per item.

    `start()` (or `with ChatServer() as server:`) serves `url` = `http://127.0.0.1:PORT/v1` from a
    background thread; `stop()` shuts it down and releases the port (a later `start()` reuses the
    port: an outage and a recovery). With `api_key`, every request needs `Authorization: Bearer
    <api_key>` (401 otherwise).
    """

    def __init__(self, *, model: str = "test-model", api_key: str | None = None) -> None:
        self.model = model
        self.api_key = api_key
        self.port = free_port()
        self.default: Behaviour = Answer()
        self.answer_for: Callable[[str | None, dict[str, Any]], dict[str, Any]] = (
            lambda content_id, request: {}
        )
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Behaviour]] = {}
        self._calls: list[CallRecord] = []
        self._in_flight = 0
        self._max_concurrency = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._started_once = False
        self._closing = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The OpenAI base URL: `http://127.0.0.1:PORT/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _bind(self) -> socket.socket:
        for _ in range(20):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
                return sock
            except OSError:
                sock.close()
                if self._started_once:  # a restart keeps its port: the clients know it
                    raise
                self.port = free_port()  # lost the race for the first free port
        raise RuntimeError("ChatServer: no free port to bind")

    def start(self, timeout_s: float = 10.0) -> ChatServer:
        """Serve from a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("ChatServer is already running")
        self._socket = self._bind()
        self._started_once = True
        self._closing.clear()
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"chat-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ChatServer did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down and release the port; `Slow` requests in flight get a 503 at once."""
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("ChatServer thread did not stop")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting and inspection ------------------------------------------------------------

    def script(self, content_id: str, *behaviours: Behaviour) -> None:
        """Answer `content_id`'s next calls with these behaviours, one per call; the last repeats.

        A second `script` for the same id replaces its queue.
        """
        if not behaviours:
            raise ValueError("script() needs at least one behaviour")
        with self._lock:
            self._scripts[content_id] = list(behaviours)

    def reset(self) -> None:
        """Forget the scripts, the recorded calls and `max_concurrency` (not `default`)."""
        with self._lock:
            self._scripts.clear()
            self._calls.clear()
            self._max_concurrency = self._in_flight

    @property
    def calls(self) -> list[CallRecord]:
        """A snapshot of the recorded calls, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_for(self, content_id: str | None) -> list[CallRecord]:
        """The recorded calls for one content id, in arrival order."""
        return [call for call in self.calls if call.content_id == content_id]

    @property
    def max_concurrency(self) -> int:
        """The most chat-completion requests in flight at once (since start or `reset()`).

        Only requests that overlap in the server count: fast answers are handled one after the
        other, so a test of a client's concurrency bound scripts `Slow` answers.
        """
        with self._lock:
            return self._max_concurrency

    @property
    def in_flight(self) -> int:
        """Chat-completion requests being handled now."""
        with self._lock:
            return self._in_flight

    def _next_behaviour(self, content_id: str | None) -> Behaviour:
        with self._lock:
            queue = self._scripts.get(content_id) if content_id is not None else None
            if not queue:
                return self.default
            return queue.pop(0) if len(queue) > 1 else queue[0]

    # -- the app -----------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def _unauthorized(self, request: Request) -> JSONResponse | None:
        if self.api_key is None:
            return None
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_api_key")

    async def _models(self, request: Request) -> JSONResponse:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "chat-server"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat_completions(self, request: Request) -> JSONResponse:
        record = CallRecord(None, None, "Rejected", 0, time.monotonic())
        with self._lock:
            self._calls.append(record)
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)
        try:
            response = await self._handle(request, record)
            record.status = response.status_code
            record.response = json.loads(response.body)
            return response
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _handle(self, request: Request, record: CallRecord) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        record.request = body if isinstance(body, dict) else None
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return _error(400, "The request body is not a JSON object.", "invalid_json")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return _error(400, "You must provide a model parameter.", "missing_required_parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(
                400, "'messages' must be a non-empty array.", "missing_required_parameter"
            )
        if body.get("stream"):
            return _error(400, "This server does not stream.", "unsupported_parameter")
        record.content_id = content_id_of(messages)
        behaviour = self._next_behaviour(record.content_id)
        record.behaviour = type(behaviour).__name__
        prompt_tokens = sum(count_words(text) for message in messages for text in _texts(message))
        while isinstance(behaviour, Slow):
            deadline = time.monotonic() + behaviour.seconds
            while (left := deadline - time.monotonic()) > 0:
                if self._closing.is_set():  # stop(): answer now rather than be cancelled
                    return _error(503, "The server is shutting down.")
                await asyncio.sleep(min(left, 0.05))
            behaviour = behaviour.then
        return self._respond(behaviour, body, record.content_id, prompt_tokens)

    def _respond(
        self, behaviour: Behaviour, body: dict[str, Any], content_id: str | None, prompt_tokens: int
    ) -> JSONResponse:
        if isinstance(behaviour, Status):
            response = _error(behaviour.code, behaviour.message)
            if behaviour.retry_after is not None:
                seconds = behaviour.retry_after
                text = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
                response.headers["Retry-After"] = text
                response.headers["retry-after-ms"] = str(int(seconds * 1000))
            return response
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish_reason = "stop"
        if isinstance(behaviour, CallTool):
            arguments = json.dumps(behaviour.arguments)
            call = {"name": behaviour.name, "arguments": arguments}
            message["tool_calls"] = [
                {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": call}
            ]
            finish_reason = "tool_calls"
            completion_tokens = count_words(arguments)
        else:
            if isinstance(behaviour, Raw):
                message["content"] = behaviour.text
            else:
                payload = behaviour.payload
                if payload is None:
                    try:
                        payload = self.answer_for(content_id, body)
                    except Exception as exc:  # a broken test hook: the client sees a 500
                        return _error(500, f"answer_for raised {exc!r}")
                message["content"] = json.dumps(payload)
            completion_tokens = count_words(message["content"])
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )
