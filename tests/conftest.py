"""Shared fixtures: one real local Ray per test session, a lake and a Feast repository per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from redis_server import RedisServer

from jobs.settings import PROJECT_ROOT, Settings

REPO_FILES = ("definitions.py", "feature_store.yaml", "feature_store.redis.yaml", ".feastignore")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """The one Ray instance of the session, with explicit resources (auto-detection is flaky)."""
    import ray

    ray.init(
        num_cpus=2,
        object_store_memory=512 * 1024**2,
        include_dashboard=False,
        runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's Redis server, stopped when the session ends."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def online_store(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """`settings` serving from each online store in turn: SQLite, then an empty Redis."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        monkeypatch.setenv("SIGNALS_REDIS_URL", server.url)
    monkeypatch.setenv("SIGNALS_ONLINE_STORE", request.param)
    return Settings.from_env()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty lake folder for one test."""
    path = tmp_path / "lake"
    path.mkdir()
    return path


def copy_repo(root: Path) -> Path:
    """A private copy of the project's Feast repository under `root` (its own registry and
    SQLite store); returns its path."""
    repo = root / "feature_repo"
    repo.mkdir()
    for name in REPO_FILES:
        source = PROJECT_ROOT / "feature_repo" / name
        if source.exists():
            shutil.copy(source, repo / name)
    return repo


@pytest.fixture
def feast_repo(tmp_path: Path) -> Path:
    """A private copy of the project's Feast repository for one test."""
    return copy_repo(tmp_path)


@pytest.fixture
def settings(lake: Path, feast_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for one test, also exported to the environment so that the CLI sees them."""
    monkeypatch.setenv("SIGNALS_LAKE_URI", str(lake))
    monkeypatch.setenv("SIGNALS_FEAST_REPO", str(feast_repo))
    return Settings.from_env()
