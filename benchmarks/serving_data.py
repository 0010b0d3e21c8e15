"""Shared set-up of the serving benchmarks: a lake of loudness rows and settings per online store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from features import get_signal
from jobs.settings import PROJECT_ROOT, Settings

SIGNAL = get_signal("audio_loudness@1")
REPO_FILES = ("definitions.py", "feature_store.yaml", "feature_store.redis.yaml", ".feastignore")


def content_ids(items: int) -> list[str]:
    return [f"track:{i:07d}" for i in range(items)]


def write_history(settings: Settings, items: int, seed: int = 0) -> int:
    """One committed run of `audio_loudness@1` values for `items` items; returns the rows."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ids = content_ids(items)
    stamps = pa.array([now] * items, pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {
            "content_id": ids,
            "event_timestamp": stamps,
            "created_timestamp": stamps,
            "input_updated_at": stamps,
            "input_hash": [f"h{i}" for i in range(items)],
            "extractor_version": ["bench"] * items,
            "run_id": ["bench"] * items,
            "integrated_lufs": rng.uniform(-30, -6, items),
            "loudness_range_lu": rng.uniform(2, 20, items),
            "true_peak_dbtp": rng.uniform(-6, 0, items),
        }
    ).cast(SIGNAL.arrow_schema())
    write_deltalake(settings.signal_uri(SIGNAL.storage_name), table)
    return items


def store_settings(root: Path, online_store: str, redis_url: str | None = None) -> Settings:
    """Settings for a private lake and repository copy under `root`, serving from `online_store`."""
    import shutil

    repo = root / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        shutil.copy(PROJECT_ROOT / "feature_repo" / name, repo / name)
    env = {
        "SIGNALS_LAKE_URI": str(root / "lake"),
        "SIGNALS_FEAST_REPO": str(repo),
        "SIGNALS_ONLINE_STORE": online_store,
        "SIGNALS_REDIS_URL": redis_url or "localhost:6379",
    }
    os.environ.update(env)
    return Settings.from_env(env)


def each_store(prefix: str, items: int) -> Iterator[tuple[str, Settings]]:
    """SQLite, then Redis (a local server for the run), each with `items` rows in a fresh lake.

    The Redis server stops when the loop ends, however it ends.
    """
    from tests.redis_server import RedisServer

    root = Path(tempfile.mkdtemp(prefix=prefix))
    redis = RedisServer(root / "redis")
    redis.start()
    try:
        for kind in ("sqlite", "redis"):
            settings = store_settings(root / kind, kind, redis.url)
            write_history(settings, items)
            yield kind, settings
    finally:
        redis.stop()
