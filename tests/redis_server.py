"""A local Redis server for the tests and the benchmarks: Debian's redis-server on a free port.

`make test` unpacks the package into `.venv/redis` (infra/redis/install-local.sh); a redis-server
on PATH is the fallback. No test skips for want of Redis: it is part of what `make test` installs.
Production runs its own Redis (infra/); this is test support, not part of the installed package
(benchmarks import it as `tests.redis_server`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

LOCAL = Path(__file__).resolve().parent.parent / ".venv" / "redis"


def _binary() -> tuple[Path, dict[str, str]]:
    env = dict(os.environ)
    local = LOCAL / "usr" / "bin" / "redis-server"
    if local.exists():
        libs = LOCAL / "usr" / "lib" / "x86_64-linux-gnu"
        env["LD_LIBRARY_PATH"] = f"{libs}:{env.get('LD_LIBRARY_PATH', '')}"
        return local, env
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: run `make test`, which installs Debian's into .venv")
    return Path(found), env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process; `stop()` and `start()` again on the same port (an outage)."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.persistent = persistent  # an append-only file: data survives stop() and start()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Feast's connection string for it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary, env = _binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes" if self.persistent else "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            [str(binary), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        """Empty every database: each test starts from an empty online store."""
        import redis

        redis.Redis(host="127.0.0.1", port=self.port).flushall()
