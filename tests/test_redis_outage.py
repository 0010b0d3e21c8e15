"""Redis stopped mid-run: reads and materialization fail clearly, nothing is half-done, and all
works again once Redis is back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis_server import RedisServer
from test_serving import LOUDNESS, LUFS, T1, _append, _loudness
from typer.testing import CliRunner

from jobs.cli import app
from jobs.serving.client import get_signals
from jobs.serving.materialize import materialize
from jobs.serving.store import feature_store
from jobs.settings import Settings


@pytest.fixture
def redis_settings(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    monkeypatch.setenv("SIGNALS_ONLINE_STORE", "redis")
    monkeypatch.setenv("SIGNALS_REDIS_URL", server.url)
    yield Settings.from_env(), server
    server.stop()


def _window_end(settings: Settings) -> datetime | None:
    view = feature_store(settings).get_feature_view(LOUDNESS.feature_view_name)
    return view.most_recent_end_time


def test_an_outage_fails_clearly_leaves_the_registry_alone_and_recovers(
    redis_settings: tuple[Settings, RedisServer],
) -> None:
    settings, server = redis_settings
    runner = CliRunner()
    _append(settings, [("a", T1, _loudness(-14.0)), ("b", T1, None)], "r1")
    materialize(settings, [LOUDNESS])
    materialized_until = _window_end(settings)

    server.stop()
    got = runner.invoke(app, ["get", "a", "--signal", LOUDNESS.ref])
    assert got.exit_code == 75  # transient: the same command succeeds once Redis is back
    assert f"reading signals: Redis at {server.url} failed" in got.output
    assert "Connection refused" in got.output and "Traceback" not in got.output

    later = datetime.now(UTC)
    _append(settings, [("a", later, _loudness(-7.0)), ("c", later, _loudness(-11.0))], "r2")
    loaded = runner.invoke(app, ["materialize", LOUDNESS.ref])
    assert loaded.exit_code == 75
    assert f"materializing: Redis at {server.url} failed" in loaded.output
    assert "Traceback" not in loaded.output
    assert _window_end(settings) == materialized_until  # the registry did not move

    server.start()  # the same data, from its append-only file
    assert runner.invoke(app, ["materialize", LOUDNESS.ref]).exit_code == 0
    assert _window_end(settings) > materialized_until
    table = get_signals(["a", "b", "c"], signals=[LOUDNESS.ref], settings=settings)
    assert table.column(LUFS).to_pylist() == [-7.0, None, -11.0]


def test_a_failure_between_loading_and_deleting_deletes_the_same_items_next_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.serving.materialize

    _append(settings, [("a", T1, _loudness(-14.0)), ("b", T1, _loudness(-20.0))], "r1")
    materialize(settings, [LOUDNESS])
    _append(settings, [("b", datetime.now(UTC), None)], "r2")  # b left the catalog

    class Down:
        def delete(self, *args: object) -> int:
            raise ConnectionError("the store went away")

    with monkeypatch.context() as patched:
        patched.setattr(jobs.serving.materialize, "remover_for", lambda store: Down())
        with pytest.raises(Exception, match="deleting removed items: SQLite failed"):
            materialize(settings, [LOUDNESS])
    # The load went through (Feast moved its window); the deletion is still owed, and paid now.
    assert materialize(settings, [LOUDNESS]).deleted == {LOUDNESS.feature_view_name: 1}
    table = get_signals(["a", "b"], signals=[LOUDNESS.ref], settings=settings)
    assert table.column(LUFS).to_pylist() == [-14.0, None]
