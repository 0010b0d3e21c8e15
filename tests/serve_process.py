"""How the tests run a `signals` server command (`serve`, `ui`) in a real process: on a free
port, answering `/health` before the test goes on, stopped however the test ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
from redis_server import free_port

START_TIMEOUT_S = 60


def signals_command() -> str:
    """The virtualenv's `signals` console script."""
    return str(Path(sys.executable).with_name("signals"))


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> None:  # fmt: skip
    """Return once `url/health` answers 200; raise with the server's log if it exits or stalls."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer /health in {timeout_s:.0f} s:\n{_tail(log)}")


@contextmanager
def running(
    args: list[str], log: Path, env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[str]:  # fmt: skip
    """`signals ARGS --port P` running until the block ends; yields its URL."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [signals_command(), *args, "--port", str(port)],
            env=dict(os.environ if env is None else env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, timeout_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
