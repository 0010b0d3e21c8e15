"""LLM enrichment: structured metadata written by a language model behind any OpenAI-compatible
chat-completions endpoint (vLLM, Ollama, llama.cpp's server, hosted APIs).

For each item the model reads what is known (type, language, title, description) and answers one
JSON object. The answer is constrained twice by the signal's contract: the request carries it as
the `response_format` JSON schema (servers that support structured output decode to it), and every
answer is validated against the same schema before it is accepted. A malformed or
contract-breaking answer is asked again; after the last attempt the item carries the reason and
the job quarantines it. One slow, failing or rate-limited request never fails a batch.

Costs are bounded and visible: requests in flight per actor are capped, a token bucket caps the
request rate, 429s and 5xx back off (the server's `Retry-After` wins over exponential backoff),
each request has a timeout, and every answer is cached under the hash of (model, prompt version,
the exact messages) — so a rerun, or a new signal version with the same prompt, calls nothing.
Calls, tokens in and out, cache hits and retries are counted for the run record.

In agentic mode the model may call tools (the item's other signals, its nearest neighbours by
embedding) before it answers, in a loop bounded by `max_steps`; every step is logged, and kept
with the answer in the cache (the item's audit trail). The tools
are given by the job (`bind_tools`): an extractor never reaches the lake or the online store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from string import Template
from typing import Any, ClassVar

import fsspec
import httpx
import jsonschema
import pyarrow as pa
from jsonschema.exceptions import best_match

from extractors.base import ERROR_COLUMN, Extractor
from extractors.errors import AnswerError, BadAnswerError

log = logging.getLogger(__name__)
PROMPTS = Path(__file__).with_name("prompts")
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
Tool = Callable[[str, dict[str, Any]], Any]  # (content_id, arguments) -> JSON-able result


@dataclass(frozen=True)
class LLMConfig:
    """Where the model is and how hard to push it; read from `SIGNALS_LLM_*` options."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen2.5-7B-Instruct"
    api_key: str = ""
    timeout_s: float = 60.0
    attempts: int = 4  # per item, for transport errors, 429/5xx and bad answers alike
    backoff_s: float = 1.0  # first backoff; doubles per attempt, with full jitter
    max_backoff_s: float = 30.0
    concurrency: int = 8  # requests in flight per actor
    requests_per_s: float = 0.0  # per actor; 0: unlimited
    temperature: float = 0.0
    max_tokens: int = 400
    agentic: bool = False
    max_steps: int = 4  # model turns in agentic mode, the last one must answer
    cache_uri: str = ""  # "" disables the cache

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LLMConfig:
        """`SIGNALS_LLM_BASE_URL=…` → `base_url`, typed as the field is; unknown keys refused."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in options.items():
            if not key.startswith("SIGNALS_LLM_"):
                continue
            name = key.removeprefix("SIGNALS_LLM_").lower()
            if name not in known:
                raise ValueError(f"{key}: no such LLM setting ({', '.join(sorted(known))})")
            kind = type(getattr(cls, name))
            if kind is bool:
                values[name] = str(raw).strip().lower() in ("1", "true", "yes", "on")
            else:
                values[name] = kind(raw)
        return cls(**values)


class RateLimiter:
    """A token bucket shared by an actor's request threads."""

    def __init__(self, per_s: float) -> None:
        self.per_s = per_s
        self.lock = threading.Lock()
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if self.per_s <= 0:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + 1.0 / self.per_s
        time.sleep(max(0.0, start - now))


class AnswerCache:
    """One small JSON object per answer under `uri` (local disk or object storage, via fsspec).

    Writes are idempotent (same key, same answer), so concurrent actors need no coordination.
    """

    def __init__(self, uri: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(uri.rstrip("/")) if uri else (None, "")

    def _path(self, key: str) -> str:
        return f"{self.root}/{key[:2]}/{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.fs is None:
            return None
        try:
            with self.fs.open(self._path(key), "rb") as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        if self.fs is None:
            return
        path = self._path(key)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "wb") as handle:
            handle.write(json.dumps(entry).encode())


class ChatClient:
    """The chat-completions calls of one actor: timeouts, retries with backoff, a rate limit."""

    def __init__(self, config: LLMConfig, usage: Counter[str], lock: threading.Lock) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=config.timeout_s,
            limits=httpx.Limits(max_connections=config.concurrency),
        )
        self.limiter = RateLimiter(config.requests_per_s)
        self.usage = usage
        self.lock = lock

    def _count(self, **counts: int) -> None:
        with self.lock:
            self.usage.update(counts)

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        if retry_after:
            try:
                time.sleep(min(float(retry_after), self.config.max_backoff_s))
                return
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        cap = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempt)
        time.sleep(random.uniform(0, cap))

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One request, retried on transport errors, timeouts, 429 and 5xx up to `attempts`
        times; raises `AnswerError` with the last reason when they run out."""
        reason = ""
        for n in range(self.config.attempts):
            if n:
                self._count(retries=1)
            self.limiter.wait()
            self._count(calls=1)
            try:
                response = self.http.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                reason = f"timed out after {self.config.timeout_s:g} s"
                self._backoff(n, None)
                continue
            except httpx.TransportError as exc:
                reason = f"cannot reach {self.config.base_url}: {exc}"
                self._backoff(n, None)
                continue
            if response.status_code == 200:
                reply = response.json()
                usage = reply.get("usage") or {}
                self._count(
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                )
                return reply
            reason = f"HTTP {response.status_code}: {_error_message(response)}"
            if response.status_code == 429:
                self._count(rate_limited=1)
            if response.status_code not in RETRY_STATUSES:
                raise AnswerError(f"the LLM endpoint refused the request: {reason}")
            self._backoff(n, response.headers.get("retry-after"))
        raise AnswerError(f"no answer after {self.config.attempts} attempts: {reason}")

    def close(self) -> None:
        self.http.close()


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def parse_answer(content: str | None, validator: jsonschema.Draft202012Validator) -> dict:
    """The answer as a dict that passes the contract's schema, or `AnswerError` saying why not."""
    if not content:
        raise AnswerError("empty answer")
    text = content.strip()
    if text.startswith("```"):  # a fenced block despite the instructions: take what it holds
        text = text.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"answer is not JSON ({exc.msg} at {exc.pos}): {text[:80]!r}") from None
    # best_match looks inside anyOf (a nullable label), so the reason names the allowed values.
    error = best_match(validator.iter_errors(answer))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "answer"
        raise AnswerError(f"answer breaks the contract: {where}: {error.message}")
    return answer


class LLMEnrichment(Extractor):
    """Genre, mood, topic, content warnings and a one-line summary, written by a language model."""

    inputs = ("content_type", "language", "title", "description")
    version = "1"
    batch_size = 32
    on_demand = True
    tools_wanted = ("item_signals", "nearest_items")
    prompt_name: ClassVar[str] = "llm_metadata.v1"

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.config = LLMConfig()
        self.schema: dict[str, Any] = {"type": "object"}
        self.fields: dict[str, pa.DataType] = {}
        self.tools: dict[str, tuple[dict[str, Any], Tool]] = {}
        self.usage: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.system = (PROMPTS / f"{self.prompt_name}.system.txt").read_text(encoding="utf-8")
        self.user = Template((PROMPTS / f"{self.prompt_name}.user.txt").read_text("utf-8"))
        self.tools_prompt = (PROMPTS / f"{self.prompt_name}.tools.txt").read_text("utf-8")

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take the endpoint settings and the contract's answer schema from the job."""
        self.config = LLMConfig.from_options(options)
        self.schema = options.get("answer_schema", self.schema)
        self.fields = {n: _arrow(spec) for n, spec in self.schema.get("properties", {}).items()}

    def bind_tools(self, tools: Mapping[str, tuple[dict[str, Any], Tool]]) -> None:
        """The functions the model may call in agentic mode, with their JSON-schema parameters."""
        self.tools = dict(tools)

    @property
    def prompt_version(self) -> str:
        """The template name plus a hash of the templates and schema: an edit is a new version."""
        text = self.system + self.user.template + json.dumps(self.schema, sort_keys=True)
        if self.config.agentic:
            text += self.tools_prompt + json.dumps(self.tools_wanted)
        return f"{self.prompt_name}+{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    @property
    def full_version(self) -> str:
        return f"{self.version}+{self.config.model}+{self.prompt_version}"

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, t, nullable=True) for n, t in self.fields.items()])

    def take_usage(self) -> dict[str, int]:
        with self.lock:
            usage, self.usage = dict(self.usage), Counter()
        return usage

    def messages(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The system and user messages for one item (its prompt, rendered from the templates)."""
        values = {
            k: "" if row.get(k) is None else str(row[k]) for k in ("content_id", *self.inputs)
        }
        system = self.system + ("\n" + self.tools_prompt if self.config.agentic else "")
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": self.user.substitute(values)},
        ]

    def extract(self, batch: pa.Table) -> pa.Table:
        rows = batch.select(["content_id", *self.inputs]).to_pylist()
        validator = jsonschema.Draft202012Validator(self.schema)
        cache = AnswerCache(self.config.cache_uri)
        client = ChatClient(self.config, self.usage, self.lock)
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
                answers = list(pool.map(lambda r: self._answer(r, client, cache, validator), rows))
        finally:
            client.close()
        columns: dict[str, list[Any]] = {name: [] for name in self.fields}
        errors: list[str | None] = []
        for answer in answers:
            error = answer if isinstance(answer, str) else None
            errors.append(error)
            for name in self.fields:
                columns[name].append(None if error else answer.get(name))
        return pa.table(
            {
                "content_id": batch.column("content_id"),
                **{n: pa.array(v, self.fields[n]) for n, v in columns.items()},
                ERROR_COLUMN: pa.array(errors, pa.string()),
            }
        )

    def _answer(
        self,
        row: dict[str, Any],
        client: ChatClient,
        cache: AnswerCache,
        validator: jsonschema.Draft202012Validator,
    ) -> dict[str, Any] | str:
        """The item's validated answer, from the cache or the model; a reason string if none."""
        messages = self.messages(row)
        key = hashlib.sha256(
            json.dumps([self.config.model, self.prompt_version, messages]).encode()
        ).hexdigest()
        cached = cache.get(key)
        if cached is not None:
            with self.lock:
                self.usage.update(cache_hits=1)
            return cached["answer"]
        reason = ""
        for _ in range(self.config.attempts):
            try:
                answer, steps = self._converse(row["content_id"], messages, client, validator)
            except AnswerError as exc:
                return f"llm: {exc}"
            except BadAnswerError as bad:
                reason = str(bad)
                with self.lock:
                    self.usage.update(bad_answers=1)
                continue
            cache.put(key, {"answer": answer, "model": self.config.model, "steps": steps})
            return answer
        return f"llm: {reason} ({self.config.attempts} answers, none usable)"

    def _converse(
        self,
        content_id: str,
        messages: list[dict[str, Any]],
        client: ChatClient,
        validator: jsonschema.Draft202012Validator,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One answer and the tool steps that led to it: a plain request, or the bounded tool
        loop in agentic mode."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": list(messages),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": self.schema, "strict": True},
            },
        }
        agentic = self.config.agentic and self.tools
        if agentic:
            body["tools"] = [
                {"type": "function", "function": {"name": n, "parameters": spec}}
                for n, (spec, _) in self.tools.items()
            ]
        steps: list[dict[str, Any]] = []
        for step in range(1, self.config.max_steps + 1):
            if agentic:
                body["tool_choice"] = "auto" if step < self.config.max_steps else "none"
            reply = client.complete(body)
            message = reply["choices"][0]["message"]
            calls = message.get("tool_calls") or []
            if not calls:
                try:
                    return parse_answer(message.get("content"), validator), steps
                except AnswerError as exc:
                    raise BadAnswerError(str(exc)) from None
            if not agentic:
                raise BadAnswerError("answer called a tool, but no tools were offered")
            if step == self.config.max_steps:
                break
            body["messages"].append(
                {"role": "assistant", "content": message.get("content"), "tool_calls": calls}
            )
            for call in calls:
                result = self._call_tool(content_id, call)
                function = call.get("function", {})
                steps.append({"step": step, "tool": function.get("name"),
                              "arguments": function.get("arguments"), "result": result})  # fmt: skip
                log.info("llm %s step %d: %s(%s) -> %s", content_id, step, function.get("name"),
                         function.get("arguments"), json.dumps(result)[:200])  # fmt: skip
                body["messages"].append(
                    {
                        "role": "tool",
                        "tool_call_id": call.get("id", ""),
                        "content": json.dumps(result),
                    }
                )
            with self.lock:
                self.usage.update(tool_calls=len(calls))
        raise BadAnswerError(f"no answer within {self.config.max_steps} steps")

    def _call_tool(self, content_id: str, call: dict[str, Any]) -> Any:
        name = call.get("function", {}).get("name", "")
        if name not in self.tools:
            return {"error": f"no tool {name!r}; tools: {', '.join(self.tools)}"}
        try:
            arguments = json.loads(call["function"].get("arguments") or "{}")
        except json.JSONDecodeError:
            return {"error": "arguments are not JSON"}
        try:
            return self.tools[name][1](content_id, arguments)
        except Exception as exc:  # a tool's failure is the model's information, not the job's
            return {"error": f"{name} failed: {exc}"}


def _arrow(spec: dict[str, Any]) -> pa.DataType:
    """The Arrow type of one answer field's JSON schema (`anyOf` with null for nullable ones)."""
    kinds = {s.get("type") for s in spec.get("anyOf", [spec])} - {"null"}
    kind = next(iter(kinds), "string")
    return {"number": pa.float32(), "integer": pa.int64(), "boolean": pa.bool_()}.get(
        kind, pa.string()
    )
