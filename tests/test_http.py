"""The HTTP interface: Feast's feature server (`signals serve`) in a real process, a real client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import copy_repo
from redis_server import RedisServer, free_port
from serve_process import running, signals_command, wait_healthy
from test_serving import LOUDNESS, LUFS, T1, T2, _append, _loudness

from jobs.serving.client import get_signals
from jobs.settings import Settings

REF = f"{LOUDNESS.feature_view_name}:integrated_lufs"


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A materialized store and `signals serve` on it; yields the server's URL."""
    root = tmp_path_factory.mktemp(f"http-{request.param}")
    repo = copy_repo(root)
    env = {"SIGNALS_LAKE_URI": str(root / "lake"), "SIGNALS_FEAST_REPO": str(repo),
           "SIGNALS_ONLINE_STORE": request.param}  # fmt: skip
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis.flush()
        env["SIGNALS_REDIS_URL"] = redis.url
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = Settings.from_env()
        _append(settings, [("a", T1, _loudness(-14.0)), ("b", T1, _loudness(-20.0))], "r1")
        _append(settings, [("a", T2, _loudness(-9.0))], "r2")
        from jobs.serving.materialize import materialize

        materialize(settings, [LOUDNESS])
        with running(["serve", "--no-access-log"], root / "serve.log") as url:
            yield url


def _post(url: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}/get-online-features", json=body, timeout=10)


def test_one_id_a_batch_and_unknown_ids(server: str) -> None:
    one = _post(server, {"features": [REF], "entities": {"content_id": ["a"]}})
    assert one.status_code == 200
    results = one.json()["results"]
    assert results[1]["values"] == [-9.0] and results[1]["statuses"] == ["PRESENT"]
    assert results[1]["event_timestamps"] == [f"{T2:%Y-%m-%dT%H:%M:%S}Z"]  # the run's time

    batch = _post(server, {"features": [REF], "entities": {"content_id": ["a", "b", "zzz"]}})
    values = batch.json()["results"][1]
    assert values["values"] == [-9.0, -20.0, None]
    assert values["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]


def test_a_feature_service(server: str) -> None:
    reply = _post(server, {"feature_service": "playback", "entities": {"content_id": ["b"]},
                           "full_feature_names": True})  # fmt: skip
    assert reply.status_code == 200
    body = reply.json()
    by_name = dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))
    assert by_name[LUFS]["values"] == [-20.0]


@pytest.mark.parametrize(
    "body",
    [
        {"features": [REF]},  # no entities
        {"features": "not a list", "entities": {"content_id": ["a"]}},
        {"features": ["no_such_view:x"], "entities": {"content_id": ["a"]}},
        {"feature_service": "no-such-service", "entities": {"content_id": ["a"]}},
        {"features": [REF], "entities": {"wrong_key": ["a"]}},
        {"features": ["no colon"], "entities": {"content_id": ["a"]}},
    ],
)
def test_malformed_requests_get_a_4xx_with_a_message(server: str, body: object) -> None:
    reply = _post(server, body)
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text)
    assert reply.text


def test_invalid_json_is_a_4xx(server: str) -> None:
    reply = httpx.post(f"{server}/get-online-features", content=b"{not json", timeout=10)
    assert 400 <= reply.status_code < 500


def test_the_python_client_reads_the_server_as_it_reads_the_store(server: str) -> None:
    table = get_signals(["a", "zzz", "b"], signals=[LOUDNESS.ref], url=server)
    assert table.column(LUFS).to_pylist() == [-9.0, None, -20.0]
    [row] = get_signals(["b"], service="playback", url=server, output="dicts")
    assert row[LUFS] == -20.0


def test_two_workers_share_the_port_and_stop_together(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--workers 2`: two worker processes answer on one port; SIGTERM stops both, exit 0."""
    from jobs.serving.materialize import materialize

    monkeypatch.setenv("SIGNALS_ONLINE_STORE", "sqlite")  # not the module server's Redis
    settings = Settings.from_env()
    _append(settings, [("a", T1, _loudness(-14.0)), ("b", T1, _loudness(-20.0))], "r1")
    materialize(settings, [LOUDNESS])
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        command = [signals_command(), "serve", "--port", str(port), "--workers", "2",
                   "--no-access-log"]  # fmt: skip
        process = subprocess.Popen(command, env=dict(os.environ), stdout=log, stderr=log)
    children: list[psutil.Process] = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log_path)
        children = psutil.Process(process.pid).children()
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in children]

        body = json.dumps({"features": [REF], "entities": {"content_id": ["a", "b", "zzz"]}})
        served_by: dict[int, int] = {}
        deadline = time.monotonic() + 90  # the second worker may still be importing Feast
        while (len(served_by) < 2 or sum(served_by.values()) < 40) and time.monotonic() < deadline:
            connection = HTTPConnection("127.0.0.1", port, timeout=10)
            connection.connect()  # a fresh connection: each is accepted by one worker
            client_port = connection.sock.getsockname()[1]
            connection.request("POST", "/get-online-features", body,
                               {"content-type": "application/json"})  # fmt: skip
            reply = connection.getresponse()
            values = json.loads(reply.read())["results"][1]
            assert reply.status == 200 and values["values"] == [-14.0, -20.0, None]
            [owner] = [w.pid for w in workers
                       if any(c.raddr and c.raddr.port == client_port
                              for c in w.net_connections("tcp"))]  # fmt: skip
            served_by[owner] = served_by.get(owner, 0) + 1
            connection.close()
        assert set(served_by) == {w.pid for w in workers}, served_by

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, alive
    finally:
        if process.poll() is None:
            for leftover in [*children, psutil.Process(process.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    leftover.kill()
        process.wait()
    log_text = log_path.read_text(errors="replace")
    assert "terminate called without an active exception" not in log_text
    assert "Traceback" not in log_text, log_text[-3000:]
