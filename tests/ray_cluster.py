"""A real two-node Ray cluster on this machine for the tests: `ray start --head`, then
`ray start --address` for a second node with its own resources, as on two hosts.

Each node runs `ray start --block` in its own process group, so stopping the cluster stops exactly
its processes: `ray stop` would also stop the test session's own Ray. The head writes under its
own `--temp-dir`, so a later `ray.init()` elsewhere on the machine never finds it and joins it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis_server import free_port

BIN = Path(sys.executable).parent


class LocalRayCluster:
    """Two Ray nodes on loopback: a head (`head` resource) and a worker (`worker` resource)."""

    def __init__(self, cpus_per_node: int = 3, object_store_mb: int = 300) -> None:
        self.cpus = cpus_per_node
        self.object_store = object_store_mb * 1024**2
        # Short: Ray's Unix sockets live below it and socket paths are limited to 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.nodes: list[subprocess.Popen[bytes]] = []

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def env(self) -> dict[str, str]:
        """What every process of the cluster and its clients sees: this venv first on PATH (the
        job's `python -m …` is this interpreter) and Ray's auth mode (STACK-NOTES token trap)."""
        return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                "RAY_AUTH_MODE": "disabled"}  # fmt: skip

    def _node(self, *args: str, resource: str) -> None:
        ports = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--metrics-export-port", "--runtime-env-agent-port")  # fmt: skip
        command = [str(BIN / "ray"), "start", "--block", "--node-ip-address=127.0.0.1",
                   f"--num-cpus={self.cpus}", f"--resources={{\"{resource}\": 1}}",
                   f"--object-store-memory={self.object_store}", "--disable-usage-stats",
                   *(f"{flag}={free_port()}" for flag in ports), *args]  # fmt: skip
        log = (self.temp_dir / f"{resource}.log").open("wb")
        self.nodes.append(
            subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def start(self, timeout_s: float = 90) -> LocalRayCluster:
        self._node("--head", f"--port={self.gcs_port}", "--include-dashboard=true",
                   "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                   f"--temp-dir={self.temp_dir}", resource="head")  # fmt: skip
        self._wait(lambda: len(self.alive_nodes()) >= 1, timeout_s, "the head")
        self._node(f"--address=127.0.0.1:{self.gcs_port}", resource="worker")
        self._wait(lambda: len(self.alive_nodes()) >= 2, timeout_s, "the second node")
        return self

    def alive_nodes(self) -> list[object]:
        """The cluster's live nodes, as its state API lists them ([] while it is starting)."""
        from ray.util.state import list_nodes

        try:
            nodes = list_nodes(address=self.dashboard_url, timeout=5)
        except Exception:
            return []
        return [n for n in nodes if n.state == "ALIVE"]

    def _wait(self, ready: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            if any(p.poll() is not None for p in self.nodes):
                break
            time.sleep(1)
        self.stop()
        logs = "\n".join(p.read_text()[-2000:] for p in self.temp_dir.glob("*.log"))
        raise RuntimeError(f"{what} of the Ray cluster did not start:\n{logs}")

    def stop(self) -> None:
        """SIGTERM each node's process group (its raylet, GCS, workers), then SIGKILL leftovers."""
        for process in reversed(self.nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.nodes.clear()
