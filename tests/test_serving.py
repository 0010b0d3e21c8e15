"""Serving on both online stores (SQLite and a real Redis): the client, the CLI, incremental
materialization with removals, and point-in-time training sets from the same history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from signal_rows import history
from typer.testing import CliRunner

from features import get_signal
from jobs.cli import app
from jobs.serving.client import get_signals
from jobs.serving.materialize import materialize
from jobs.settings import Settings

LOUDNESS = get_signal("audio_loudness@1")
LUFS = f"{LOUDNESS.feature_view_name}__integrated_lufs"
NOW = datetime.now(UTC).replace(microsecond=0)
T1, T2 = NOW - timedelta(days=3), NOW - timedelta(days=2)


def _loudness(lufs: float) -> dict[str, float]:
    return {"integrated_lufs": lufs, "loudness_range_lu": 6.0, "true_peak_dbtp": -1.0}


def _append(settings: Settings, rows: list, run_id: str) -> None:
    write_deltalake(
        settings.signal_uri(LOUDNESS.storage_name),
        history(LOUDNESS.ref, rows, run_id),
        mode="append",
    )


@pytest.fixture
def served(online_store: Settings) -> Settings:
    """a: -14 at T1, -9 at T2; b: -20 at T1; materialized into the store under test."""
    _append(online_store, [("a", T1, _loudness(-14.0)), ("b", T1, _loudness(-20.0))], "r1")
    _append(online_store, [("a", T2, _loudness(-9.0))], "r2")
    materialize(online_store, [LOUDNESS])
    return online_store


def test_the_client_returns_the_latest_values_in_the_order_asked(served: Settings) -> None:
    table = get_signals(["b", "zzz", "a"], signals=[LOUDNESS.ref], settings=served)
    assert table.column_names == [
        "content_id",
        *(f"{LOUDNESS.feature_view_name}__{f}" for f in LOUDNESS.features),
    ]
    assert table.column("content_id").to_pylist() == ["b", "zzz", "a"]
    assert table.column(LUFS).to_pylist() == [-20.0, None, -9.0]  # unknown ID: nulls, no error
    frame = get_signals(["a"], service="playback", settings=served, output="pandas")
    assert isinstance(frame, pd.DataFrame) and frame.loc[0, LUFS] == -9.0
    [row] = get_signals(["a"], service="playback", settings=served, output="dicts")
    assert row["content_id"] == "a" and row[LUFS] == -9.0


def test_incremental_materialization_loads_only_new_history_and_deletes_removed_items(
    served: Settings,
) -> None:
    later = datetime.now(UTC)  # a run after the last materialization, as in production
    _append(served, [("a", later, _loudness(-5.0)), ("b", later, None)], "r3")  # b left
    done = materialize(served, [LOUDNESS])
    assert done.deleted == {LOUDNESS.feature_view_name: 1}
    table = get_signals(["a", "b"], signals=[LOUDNESS.ref], settings=served)
    assert table.column(LUFS).to_pylist() == [-5.0, None]
    # History older than the last window is not reloaded: rewriting it changes nothing served.
    _append(served, [("a", T1 + timedelta(minutes=1), _loudness(-30.0))], "late")
    materialize(served, [LOUDNESS])
    assert (
        get_signals(["a"], signals=[LOUDNESS.ref], settings=served).column(LUFS)[0].as_py() == -5.0
    )


def test_the_cli_serves_a_feature_service_as_json_and_says_what_is_missing(
    served: Settings,
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["get", "a", "--service", "playback", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["a"][LOUDNESS.ref]["integrated_lufs"] == -9.0
    missing = runner.invoke(app, ["get", "a", "nope:1", "--service", "playback"])
    assert missing.exit_code == 1 and "not found: nope:1" in missing.output
    unknown = runner.invoke(app, ["get", "a", "--service", "no-such-team"])
    assert unknown.exit_code == 1 and "unknown feature service 'no-such-team'" in unknown.output
    assert "Traceback" not in missing.output + unknown.output


def test_a_training_set_holds_what_was_served_at_each_row_timestamp(
    served: Settings, tmp_path: Path
) -> None:
    hour = timedelta(hours=1)
    entities = pd.DataFrame(
        {
            "content_id": ["a", "a", "a", "b", "zzz"],
            "event_timestamp": [T1 - hour, T1 + hour, T2 + hour, T2 + hour, T2 + hour],
            "label": [0, 1, 1, 0, 1],
        }
    )
    entities.to_parquet(tmp_path / "labels.parquet")
    out = tmp_path / "train.parquet"
    result = CliRunner().invoke(
        app,
        [
            "training-set",
            str(tmp_path / "labels.parquet"),
            "--service",
            "playback",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column("label").to_pylist() == [0, 1, 1, 0, 1]  # the entity file's order
    assert table.column(LUFS).to_pylist() == [None, -14.0, -9.0, -20.0, None]
    assert "3 of 5 rows have a value" in result.output
    # What the online store serves now is the training set's latest value.
    online = get_signals(["a"], signals=[LOUDNESS.ref], settings=served).column(LUFS)[0].as_py()
    assert online == table.column(LUFS)[2].as_py()


def test_a_bad_entity_file_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("content_id,when\na,2026-01-01\n")
    result = CliRunner().invoke(
        app, ["training-set", str(bad), "--service", "playback", "--out", str(tmp_path / "o.pq")]
    )
    assert result.exit_code == 1 and "lacks event_timestamp" in result.output
    assert "Traceback" not in result.output


def test_the_redis_key_ttl_is_the_longest_signal_ttl() -> None:
    """One Redis hash holds every signal of an item and each write renews it: a shorter TTL would
    expire values still valid, a longer one keeps removed items past any signal's TTL."""
    import yaml

    from features import all_signals
    from jobs.settings import PROJECT_ROOT

    config = yaml.safe_load(
        (PROJECT_ROOT / "feature_repo" / "feature_store.redis.yaml").read_text()
    )
    longest = max(s.ttl for s in all_signals())
    assert config["online_store"]["key_ttl_seconds"] == longest.total_seconds()


@pytest.mark.usefixtures("ray_session")
def test_the_ray_compute_engine_materializes_the_same_values(
    online_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALS_MATERIALIZE_ENGINE", "ray")
    settings = Settings.from_env()
    _append(settings, [("a", T1, _loudness(-14.0)), ("b", T1, _loudness(-20.0))], "r1")
    _append(settings, [("a", T2, _loudness(-9.0))], "r2")
    from jobs.serving.store import feature_store

    assert type(feature_store(settings)._get_provider().batch_engine).__name__ == "RayEngine"
    materialize(settings, [LOUDNESS])
    table = get_signals(["a", "b", "zzz"], signals=[LOUDNESS.ref], settings=settings)
    assert table.column(LUFS).to_pylist() == [-9.0, -20.0, None]
