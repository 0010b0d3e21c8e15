"""The LLM extractor against a local server speaking the chat-completions protocol: well-formed,
malformed, contract-breaking, slow, rate-limited and failing answers, the cache, the concurrency
bound and the agentic tool loop. No Ray here: the job path is in test_llm_job.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from chat_server import Answer, CallTool, ChatServer, Raw, Slow, Status

from extractors.llm import LLMConfig, LLMEnrichment
from features import get_signal
from jobs.pipeline.extractors import extractor_options

SIGNAL = get_signal("llm_metadata@1")
GOOD = {
    "genre": "jazz",
    "mood": None,
    "topic": None,
    "warning_violence": False,
    "warning_strong_language": False,
    "warning_substance_use": False,
    "warning_sexual_content": False,
    "summary": "A jazz trio plays late-night standards.",
    "confidence": 0.8,
}


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with ChatServer(api_key="sk-test") as chat:
        yield chat


@pytest.fixture
def chat(server: ChatServer) -> ChatServer:
    deadline = time.monotonic() + 10
    while server.in_flight and time.monotonic() < deadline:  # an earlier test's timed-out Slow
        time.sleep(0.05)
    server.reset()
    server.answer_for = lambda content_id, request: GOOD
    return server


def extractor(chat: ChatServer, tmp_path: Path, **overrides: Any) -> LLMEnrichment:
    """The extractor as an actor configures it: the job's options, this server, fast backoff."""
    env = {
        "SIGNALS_LLM_BASE_URL": chat.url,
        "SIGNALS_LLM_API_KEY": "sk-test",
        "SIGNALS_LLM_MODEL": "test-model",
        "SIGNALS_LLM_BACKOFF_S": "0.05",
        "SIGNALS_LLM_TIMEOUT_S": "2",
        "SIGNALS_LLM_CACHE_URI": str(tmp_path / "cache"),
        **{f"SIGNALS_LLM_{k.upper()}": str(v) for k, v in overrides.items()},
    }
    llm = LLMEnrichment()
    llm.configure(extractor_options(SIGNAL, env))
    return llm


def items(n: int) -> pa.Table:
    ids = [f"track:{i:04d}" for i in range(n)]
    return pa.table({
        "content_id": ids,
        "content_type": ["track"] * n,
        "language": ["en"] * n,
        "title": [f"Blue Note Session {i}" for i in range(n)],
        "description": ["A jazz trio with piano, saxophone and upright bass."] * n,
    })  # fmt: skip


def test_well_formed_answers_become_rows_and_their_cost_is_counted(
    chat: ChatServer, tmp_path: Path
) -> None:
    llm = extractor(chat, tmp_path)
    out = llm.extract(items(3))
    assert out["error"].to_pylist() == [None] * 3
    assert out["genre"].to_pylist() == ["jazz"] * 3
    assert out["confidence"].type == pa.float32()
    request = chat.calls_for("track:0000")[0].request
    # The contract is the response format: its enums are the taxonomy's, the fields the signal's.
    schema = request["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == set(SIGNAL.features)
    assert "jazz" in json.dumps(schema["properties"]["genre"])
    assert "content_id: track:0000" in request["messages"][1]["content"]
    usage = llm.take_usage()
    assert usage["calls"] == 3 and usage.get("cache_hits", 0) == 0
    expected_in = sum(c.response["usage"]["prompt_tokens"] for c in chat.calls)
    assert usage["prompt_tokens"] == expected_in > 0
    assert usage["completion_tokens"] == sum(
        c.response["usage"]["completion_tokens"] for c in chat.calls
    )
    assert llm.take_usage() == {}  # taken once, per batch


def test_a_rerun_is_answered_from_the_cache(chat: ChatServer, tmp_path: Path) -> None:
    extractor(chat, tmp_path).extract(items(4))
    calls = len(chat.calls)
    again = extractor(chat, tmp_path)  # a new actor, the same cache
    out = again.extract(items(4))
    assert len(chat.calls) == calls  # nothing asked again
    assert out["genre"].to_pylist() == ["jazz"] * 4
    assert again.take_usage() == {"cache_hits": 4}
    # Another model is another key: asked again.
    extractor(chat, tmp_path, model="other-model").extract(items(1))
    assert len(chat.calls) == calls + 1


def test_malformed_and_contract_breaking_answers_are_asked_again_then_quarantined(
    chat: ChatServer, tmp_path: Path
) -> None:
    chat.script("track:0000", Raw("Sure! Here is the JSON: {genre: jazz"), Answer(GOOD))
    chat.script("track:0001", Answer({**GOOD, "genre": "polka"}))  # not in the taxonomy
    chat.script("track:0002", Answer({**GOOD, "confidence": 1.7}))
    llm = extractor(chat, tmp_path, attempts=3)
    out = llm.extract(items(3)).to_pylist()
    assert out[0]["error"] is None and out[0]["genre"] == "jazz"
    assert len(chat.calls_for("track:0000")) == 2
    assert out[1]["genre"] is None
    assert out[1]["error"].startswith("llm: answer breaks the contract: genre: 'polka' is not")
    assert out[1]["error"].endswith("(3 answers, none usable)")
    assert "confidence: 1.7 is greater than the maximum of 1" in out[2]["error"]
    assert len(chat.calls_for("track:0001")) == 3
    assert llm.take_usage()["bad_answers"] == 1 + 3 + 3


def test_rate_limits_back_off_as_the_server_says_and_timeouts_retry(
    chat: ChatServer, tmp_path: Path
) -> None:
    chat.script("track:0000", Status(429, retry_after=0.4), Answer(GOOD))
    chat.script("track:0001", Slow(5, Answer(GOOD)), Answer(GOOD))  # past the 2 s timeout
    llm = extractor(chat, tmp_path)
    out = llm.extract(items(2)).to_pylist()
    assert [r["error"] for r in out] == [None, None]
    limited = chat.calls_for("track:0000")
    assert [c.status for c in limited] == [429, 200]
    assert limited[1].at - limited[0].at >= 0.4  # waited as told, not the 0.05 s backoff
    assert len(chat.calls_for("track:0001")) == 2
    usage = llm.take_usage()
    assert usage["rate_limited"] == 1 and usage["retries"] == 2


def test_failures_end_as_reasons_not_exceptions(chat: ChatServer, tmp_path: Path) -> None:
    chat.script("track:0000", Status(500, message="model crashed"))
    chat.script("track:0001", Status(400, message="context too long"))
    out = extractor(chat, tmp_path, attempts=3).extract(items(3)).to_pylist()
    assert out[0]["error"] == "llm: no answer after 3 attempts: HTTP 500: model crashed"
    assert len(chat.calls_for("track:0000")) == 3
    # A 4xx other than 408/409/429 is the request's fault: asking again cannot help.
    assert out[1]["error"] == (
        "llm: the LLM endpoint refused the request: HTTP 400: context too long"
    )
    assert len(chat.calls_for("track:0001")) == 1
    assert out[2]["error"] is None


def test_an_unreachable_endpoint_is_a_reason_per_item(tmp_path: Path) -> None:
    llm = LLMEnrichment()
    llm.configure(extractor_options(SIGNAL, {
        "SIGNALS_LLM_BASE_URL": "http://127.0.0.1:1/v1", "SIGNALS_LLM_ATTEMPTS": "2",
        "SIGNALS_LLM_BACKOFF_S": "0.01"}))  # fmt: skip
    (row,) = llm.extract(items(1)).to_pylist()
    assert row["error"].startswith(
        "llm: no answer after 2 attempts: cannot reach http://127.0.0.1:1/v1"
    )


def test_requests_in_flight_are_bounded(chat: ChatServer, tmp_path: Path) -> None:
    chat.default = Slow(0.3, Answer())
    llm = extractor(chat, tmp_path, concurrency=3)
    llm.extract(items(9))
    assert chat.max_concurrency == 3
    chat.default = Answer()


def test_the_agent_looks_things_up_before_it_answers(chat: ChatServer, tmp_path: Path) -> None:
    looked_up: list[tuple[str, dict]] = []

    def item_signals(content_id: str, arguments: dict) -> dict:
        looked_up.append((content_id, arguments))
        return {"text_tags_v1__genre": "jazz", "audio_features_v1__tempo_bpm": 92.0}

    chat.script("track:0000", CallTool("item_signals", {"signals": ["text_tags"]}), Answer(GOOD))
    llm = extractor(chat, tmp_path, agentic="true")
    llm.bind_tools({"item_signals": ({"type": "object"}, item_signals)})
    (row,) = llm.extract(items(1)).to_pylist()
    assert row["error"] is None and row["genre"] == "jazz"
    assert looked_up == [("track:0000", {"signals": ["text_tags"]})]
    first, second = chat.calls_for("track:0000")
    assert first.request["tools"][0]["function"]["name"] == "item_signals"
    tool_message = second.request["messages"][-1]
    assert tool_message["role"] == "tool" and "text_tags_v1__genre" in tool_message["content"]
    assert llm.take_usage()["tool_calls"] == 1
    # The steps are kept with the answer: the item's audit trail.
    (entry,) = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("*.json")]
    assert entry["steps"][0]["tool"] == "item_signals"
    assert entry["steps"][0]["result"]["text_tags_v1__genre"] == "jazz"


def test_the_agent_loop_is_bounded(chat: ChatServer, tmp_path: Path) -> None:
    chat.script("track:0000", CallTool("item_signals", {}))  # never answers
    llm = extractor(chat, tmp_path, agentic="true", max_steps=3, attempts=1)
    llm.bind_tools({"item_signals": ({"type": "object"}, lambda cid, args: {})})
    (row,) = llm.extract(items(1)).to_pylist()
    assert row["error"] == "llm: no answer within 3 steps (1 answers, none usable)"
    calls = chat.calls_for("track:0000")
    assert len(calls) == 3 and calls[-1].request["tool_choice"] == "none"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="SIGNALS_LLM_MODLE: no such LLM setting"):
        LLMConfig.from_options({"SIGNALS_LLM_MODLE": "x"})
    assert LLMConfig.from_options({"SIGNALS_LLM_CONCURRENCY": "3"}).concurrency == 3
