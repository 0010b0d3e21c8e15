"""LLM enrichment through the same Ray pipeline as every other extractor: the extract job against a
local chat-completions server, with a contract-breaking item quarantined with its reason, the
run's cost recorded, and a full rerun answered from the cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chat_server import Answer, CallTool, ChatServer
from deltalake import DeltaTable, write_deltalake
from signal_rows import history
from typer.testing import CliRunner

from features import SignalsError, get_signal
from jobs.cli import app
from jobs.lake.runs import list_runs
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.pipeline.extractors import item_signals
from jobs.sample import write_sample_catalog
from jobs.serving.materialize import materialize
from jobs.settings import Settings

pytestmark = pytest.mark.slow
SIGNAL = get_signal("llm_metadata@1")
ITEMS = 20


def answer(content_id: str, request: dict) -> dict:
    """A well-formed answer that says which item it is about (the summary), so rows can be
    matched to the prompts they came from."""
    return {
        "genre": None, "mood": "calm", "topic": None, "warning_violence": False,
        "warning_strong_language": False, "warning_substance_use": False,
        "warning_sexual_content": False, "summary": f"About {content_id}.", "confidence": 0.9,
    }  # fmt: skip


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        server.answer_for = answer
        yield server


@pytest.fixture
def llm_settings(
    settings: Settings, chat: ChatServer, monkeypatch: pytest.MonkeyPatch, ray_session: None
) -> Settings:
    monkeypatch.setenv("SIGNALS_LLM_BASE_URL", chat.url)
    monkeypatch.setenv("SIGNALS_LLM_MODEL", "test-model")
    monkeypatch.setenv("SIGNALS_LLM_ATTEMPTS", "2")
    monkeypatch.setenv("SIGNALS_LLM_BACKOFF_S", "0.01")
    return Settings.from_env()


def test_the_extract_job_enriches_quarantines_and_counts_the_cost(
    llm_settings: Settings, chat: ChatServer, tmp_path: Path
) -> None:
    settings = llm_settings
    catalog = write_sample_catalog(
        settings.default_snapshot_uri, tmp_path / "media", ITEMS, with_media=False
    )
    ids = DeltaTable(catalog.snapshot_uri).to_pyarrow_table()["content_id"].to_pylist()
    bad = ids[3]
    chat.reset()
    chat.script(bad, Answer({**answer(bad, {}), "mood": "gloomy-ish"}))  # not a taxonomy mood

    record = run_extract(settings, ExtractRequest(SIGNAL.ref, quarantine_threshold=0.5))
    assert record.status == "succeeded"
    assert (record.extracted, record.quarantined) == (ITEMS - 1, 1)
    stored = DeltaTable(settings.signal_uri(SIGNAL.storage_name)).to_pyarrow_table().to_pylist()
    assert {r["content_id"] for r in stored} == set(ids) - {bad}
    assert all(r["summary"] == f"About {r['content_id']}." for r in stored)
    assert stored[0]["extractor_version"].startswith("1+test-model+llm_metadata.v1+")
    quarantined = DeltaTable(settings.quarantine_uri(SIGNAL.storage_name)).to_pyarrow_table()
    (reason,) = quarantined["reason"].to_pylist()
    assert quarantined["content_id"].to_pylist() == [bad]
    assert "answer breaks the contract: mood: 'gloomy-ish' is not one of" in reason

    # The run's cost, as counted by the actors and kept with the run record.
    calls = chat.calls
    assert record.usage["calls"] == len(calls) == ITEMS - 1 + 2
    assert record.usage["prompt_tokens"] == sum(c.response["usage"]["prompt_tokens"] for c in calls)
    assert record.usage["bad_answers"] == 2
    stored_run = next(r for r in list_runs(settings).to_pylist() if r["run_id"] == record.run_id)
    assert json.loads(stored_run["usage"]) == record.usage
    shown = CliRunner().invoke(app, ["runs"])
    assert f"{ITEMS + 1} calls, " in shown.output and "cache hits" in shown.output

    # A full recompute asks only what it could not answer before: the rest is in the cache.
    chat.reset()
    chat.script(bad, Answer({**answer(bad, {}), "mood": "gloomy-ish"}))
    again = run_extract(settings, ExtractRequest(SIGNAL.ref, quarantine_threshold=0.5, full=True))
    assert again.usage["cache_hits"] == ITEMS - 1
    assert [c.content_id for c in chat.calls] == [bad, bad]


def test_paid_signals_run_only_when_named() -> None:
    assert SIGNAL.ref not in {s.ref for s in item_signals()}


def test_a_misspelt_setting_is_a_clear_error(
    llm_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALS_LLM_TIMEOUT", "5")  # the setting is SIGNALS_LLM_TIMEOUT_S
    settings = Settings.from_env()
    write_sample_catalog(settings.default_snapshot_uri, settings.media_dir, 2, with_media=False)
    with pytest.raises(SignalsError, match="SIGNALS_LLM_TIMEOUT: no such LLM setting"):
        run_extract(settings, ExtractRequest(SIGNAL.ref))


def test_the_agent_in_the_job_looks_up_served_signals(
    llm_settings: Settings, chat: ChatServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Agentic mode through Ray: each actor builds the tools from the job's settings, and the
    model's lookup is answered from the Feast online store."""
    monkeypatch.setenv("SIGNALS_LLM_AGENTIC", "true")
    settings = Settings.from_env()
    catalog = write_sample_catalog(
        settings.default_snapshot_uri, tmp_path / "media", 3, with_media=False
    )
    first = DeltaTable(catalog.snapshot_uri).to_pyarrow_table()["content_id"][0].as_py()
    tags = get_signal("text_tags@2")
    zero_shot = {"genre": "jazz", "genre_score": 0.6, "mood": None, "mood_score": None,
                 "topic": None, "topic_score": None}  # fmt: skip
    at = datetime.now(UTC) - timedelta(minutes=1)
    write_deltalake(settings.signal_uri(tags.storage_name),
                    history(tags.ref, [(first, at, zero_shot)], "tags"))  # fmt: skip
    materialize(settings, [tags])
    chat.reset()
    chat.script(first, CallTool("item_signals", {"signals": ["text_tags"]}), Answer())

    record = run_extract(settings, ExtractRequest(SIGNAL.ref))
    assert record.status == "succeeded" and record.extracted == 3
    assert record.usage["tool_calls"] == 1
    asked, answered = chat.calls_for(first)
    assert {t["function"]["name"] for t in asked.request["tools"]} == {"item_signals",
                                                                        "nearest_items"}  # fmt: skip
    result = json.loads(answered.request["messages"][-1]["content"])
    assert result == {"text_tags_v2__genre": "jazz", "text_tags_v2__genre_score": 0.6}
