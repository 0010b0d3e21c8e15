"""`signals serve` under many concurrent keep-alive connections: 1 worker against 2.

    .venv/bin/python -m benchmarks.serving_load                        # 200 connections × 60 s
    .venv/bin/python -m benchmarks.serving_load --connections 100 --duration 15

The server runs on loopback on a SQLite store of `--items` materialized `audio_loudness@1` rows,
once with `--workers 1` and once with `--workers 2`. The load comes from separate processes
(`--generators`, spawned interpreters: no tool such as wrk or oha is installed here), each an
asyncio loop (uvloop) holding its share of the connections open, every connection with one
request in flight at a time, as wrk does: a closed loop, so latency includes queueing at the
server. A minimal HTTP/1.1 client on raw sockets keeps the generator's own CPU small, since it
shares the machine's cores with the server. Each connection asks `POST /get-online-features`
for one random item's three features; `GET /health` under the same load is the floor (no
lookup). Timed: completions inside the `--duration` window after a `--warmup`.

Per run: requests/s, p50 / p99 latency, errors (non-200 answers, wrong bodies, dropped
connections); the cores the server's process tree, the generators and the whole machine kept
busy (on a shared machine, the difference is other people's work: compare speed-ups only where
it is small); and how the connections split between the workers. Targets: 0 errors; 2 workers
≥ 1.4× the requests/s of 1. Prints a table; writes `--out` (JSON).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import typer

TARGET_SPEEDUP = 1.4
PATHS = ("/get-online-features", "/health")
START_DELAY_S = 2.0  # for the generators' interpreters to start and connect before the clock
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


@dataclass
class Load:
    """One generator process's share of a run, and what it saw."""

    host: str
    port: int
    requests: list[bytes]  # whole HTTP requests, sent in turn
    expect: bytes  # must be in every 200 body; b"" for none
    connections: int
    start_at: float  # time.time() at which the warm-up begins, shared by every generator
    warmup_s: float
    duration_s: float
    completed: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, read its answer, send the next."""

    def __init__(self, load: Load, window: tuple[float, float], done: asyncio.Event) -> None:
        self.load, self.window, self.done = load, window, done
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.next = random.randrange(len(load.requests))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.next = (self.next + 1) % len(self.load.requests)
        self.sent_at = time.perf_counter()
        self.transport.write(self.load.requests[self.next])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = CONTENT_LENGTH.search(self.buffer, 0, end + 2)
        if length is None:
            self._error(f"no content-length: {bytes(self.buffer[:200])!r}")
            return
        total = end + 4 + int(length.group(1))
        if len(self.buffer) < total:
            return
        now = time.perf_counter()
        status, body = bytes(self.buffer[9:12]), self.buffer[end + 4 : total]
        del self.buffer[:total]
        in_window = self.window[0] <= now < self.window[1]
        if in_window:
            if status != b"200" or self.load.expect not in body:
                self.load.errors += 1
                if len(self.load.error_samples) < 5:
                    self.load.error_samples.append(f"{status.decode()} {bytes(body[:200])!r}")
            else:
                self.load.completed += 1
                self.load.latencies_ms.append((now - self.sent_at) * 1000)
        if now >= self.window[1]:
            self.done.set()
            return
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and not self.done.is_set():  # not closed by `_error`
            self._error(f"connection lost: {exc}")

    def _error(self, what: str) -> None:
        """Count a failure inside the window, drop this connection and open another."""
        if self.window[0] <= time.perf_counter() < self.window[1]:
            self.load.errors += 1
            if len(self.load.error_samples) < 5:
                self.load.error_samples.append(what)
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close()
        if not self.done.is_set():
            _reconnect(self.load, self.window, self.done)


async def _connect(load: Load, window: tuple[float, float], done: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not done.is_set():
        try:
            await loop.create_connection(
                lambda: _Connection(load, window, done), load.host, load.port
            )
            return
        except OSError as exc:
            if window[0] <= time.perf_counter() < window[1]:
                load.errors += 1
                if len(load.error_samples) < 5:
                    load.error_samples.append(f"connect: {exc}")
            await asyncio.sleep(0.1)


_RECONNECTS: set[asyncio.Task[None]] = set()  # held until done: the loop keeps weak references


def _reconnect(load: Load, window: tuple[float, float], done: asyncio.Event) -> None:
    task = asyncio.get_running_loop().create_task(_connect(load, window, done))
    _RECONNECTS.add(task)
    task.add_done_callback(_RECONNECTS.discard)


async def _drive(load: Load) -> None:
    await asyncio.sleep(max(0.0, load.start_at - time.time()))
    begin = time.perf_counter() + load.warmup_s
    window = (begin, begin + load.duration_s)
    done = asyncio.Event()
    for _ in range(load.connections):
        await _connect(load, window, done)
    await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
    done.set()


def generate(load: Load, results: Any) -> None:
    """A generator process: drive `load` and send it back, with the CPU this process used.

    Runs in a spawned interpreter, so that the load's Python is neither the server's nor the
    driver's (which holds Feast, Ray and Delta in memory).
    """
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.process_time()
    uvloop.run(_drive(load))
    load.cpu_s = time.process_time() - started
    results.put(load)


def _post(host: str, port: int, path: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def requests_for(path: str, host: str, port: int, ids: list[str]) -> tuple[list[bytes], bytes]:
    """The requests one run sends in turn, and the bytes every good answer holds."""
    from benchmarks.serving_data import SIGNAL

    if path == "/health":
        return [f"GET /health HTTP/1.1\r\nhost: {host}:{port}\r\n\r\n".encode()], b""
    refs = [f"{SIGNAL.feature_view_name}:{f}" for f in SIGNAL.features]
    rng = random.Random(0)
    chosen = [ids[rng.randrange(len(ids))] for _ in range(1000)]
    bodies = [_post(host, port, path, {"features": refs, "entities": {"content_id": [cid]}})
              for cid in chosen]  # fmt: skip
    return bodies, b'"PRESENT"'


def run_load(url: str, path: str, ids: list[str], connections: int, generators: int,
             warmup_s: float, duration_s: float, server_pid: int) -> dict[str, Any]:  # fmt: skip
    """One run against a started server: spawn the generators, merge what they measured."""
    import numpy as np
    import psutil

    host, port = url.removeprefix("http://").split(":")
    requests, expect = requests_for(path, host, int(port), ids)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + START_DELAY_S
    shares = [connections // generators + (i < connections % generators) for i in range(generators)]
    loads = [Load(host, int(port), requests, expect, n, start_at, warmup_s, duration_s)
             for n in shares]  # fmt: skip
    server = psutil.Process(server_pid)

    def server_cpu() -> float:
        tree = [server, *server.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())

    def busy_cpu() -> float:  # every process's, this machine's other users included
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    processes = [context.Process(target=generate, args=(load, results)) for load in loads]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start_at + warmup_s - time.time()))
    cpu_before, busy_before = server_cpu(), busy_cpu()
    time.sleep(duration_s / 2)
    per_worker = connections_per_worker(server, int(port))
    time.sleep(duration_s / 2)
    cpu_after, busy_after = server_cpu(), busy_cpu()
    done = [results.get(timeout=duration_s + 120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    latencies = np.array([x for load in done for x in load.latencies_ms])
    completed = sum(load.completed for load in done)
    return {
        "path": path,
        "connections": connections,
        "duration_s": duration_s,
        "requests": completed,
        "requests_per_s": completed / duration_s,
        "p50_ms": float(np.percentile(latencies, 50)) if completed else None,
        "p99_ms": float(np.percentile(latencies, 99)) if completed else None,
        "errors": sum(load.errors for load in done),
        "error_samples": [s for load in done for s in load.error_samples][:5],
        "connections_per_worker": per_worker,
        "busy_cpu_cores": (busy_after - busy_before) / duration_s,
        "server_cpu_cores": (cpu_after - cpu_before) / duration_s,
        "generator_cpu_cores": sum(load.cpu_s for load in done) / (warmup_s + duration_s),
    }


def connections_per_worker(server: Any, port: int) -> list[int]:
    """Open connections to `port` held by each serving process, most first.

    Workers share one listening socket and a connection stays with the worker that accepted
    it, so the split is whatever the accept races gave; a lopsided one shows in the p99.
    """
    children = server.children()
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())] or [server]
    counts = [
        sum(
            1
            for c in w.net_connections("tcp")
            if c.status == "ESTABLISHED" and c.laddr.port == port
        )
        for w in workers
    ]
    return sorted(counts, reverse=True)


def wait_for_workers(log: Path, workers: int, timeout_s: float = 180) -> None:
    """Until every worker has started: `/health` answers once the first one has."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Application startup complete.") >= workers:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{workers} workers did not all start in {timeout_s} s; see {log}")


def main(
    connections: int = typer.Option(200, help="Concurrent keep-alive connections."),
    duration: float = typer.Option(60.0, help="Seconds timed per run."),
    warmup: float = typer.Option(3.0, help="Seconds of load before the clock starts."),
    generators: int = typer.Option(1, help="Load generator processes sharing the connections."),
    items: int = typer.Option(10_000, help="Items materialized in the store."),
    workers: list[int] = typer.Option([1, 2], "--workers", help="Server workers (repeatable)."),
    out: Path = typer.Option(Path("benchmarks/out/serving_load.json"), help="JSON result."),
) -> None:
    """Load `signals serve` with 1 and with 2 workers; print and write what each sustained."""
    import tempfile

    from benchmarks.online_latency import http_server
    from benchmarks.serving_data import SIGNAL, content_ids, store_settings, write_history
    from jobs.serving.materialize import materialize

    root = Path(tempfile.mkdtemp(prefix="serving-load-"))
    settings = store_settings(root, "sqlite")
    write_history(settings, items)
    materialize(settings, [SIGNAL])
    ids = content_ids(items)
    env = {k: v for k, v in os.environ.items() if k.startswith("SIGNALS_")}
    rows: list[dict[str, Any]] = []
    for n in workers:
        log = root / f"serve-{n}.log"
        process, url = http_server({**env, "SIGNALS_SERVE_WORKERS": str(n)}, log)
        try:
            wait_for_workers(log, n)
            for path in PATHS:
                row = run_load(url, path, ids, connections, generators, warmup, duration,
                               process.pid)  # fmt: skip
                rows.append({"workers": n, **row})
        finally:
            process.terminate()
            process.wait(timeout=60)
    speedups = _speedups(rows)
    _print(rows, speedups)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"connections": connections, "duration_s": duration, "warmup_s": warmup,
               "generators": generators, "items": items, "cpus": os.cpu_count(),
               "target_speedup": TARGET_SPEEDUP, "rows": rows, "speedups": speedups}  # fmt: skip
    out.write_text(json.dumps(summary, indent=2))


def _speedups(rows: list[dict[str, Any]]) -> dict[str, float]:
    """requests/s of the most workers over that of one, per path."""
    by = {(r["workers"], r["path"]): r["requests_per_s"] for r in rows}
    counts = sorted({r["workers"] for r in rows})
    if len(counts) < 2 or counts[0] != 1:
        return {}
    return {p: by[(counts[-1], p)] / by[(1, p)] for p in PATHS if by.get((1, p))}


def _print(rows: list[dict[str, Any]], speedups: dict[str, float]) -> None:
    print(f"{'workers':>7} {'path':21} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'server cores':>12} {'load cores':>10} {'busy cores':>10} "
          f"{'conns/worker':>12}")  # fmt: skip
    for r in rows:
        p50 = f"{r['p50_ms']:8.1f}" if r["p50_ms"] is not None else f"{'-':>8}"
        p99 = f"{r['p99_ms']:8.1f}" if r["p99_ms"] is not None else f"{'-':>8}"
        print(f"{r['workers']:>7} {r['path']:21} {r['connections']:>5} "
              f"{r['requests_per_s']:8.0f} {p50} {p99} {r['errors']:>6} "
              f"{r['server_cpu_cores']:12.2f} {r['generator_cpu_cores']:10.2f} "
              f"{r['busy_cpu_cores']:10.2f} {'/'.join(map(str, r['connections_per_worker'])):>12}")  # fmt: skip
        for sample in r["error_samples"]:
            print(f"{'':>9}error: {sample}")
    for path, ratio in speedups.items():
        ok = "ok" if ratio >= TARGET_SPEEDUP else "MISS"
        print(f"speed-up {path}: {ratio:.2f}× (target ≥ {TARGET_SPEEDUP}×) {ok}")


if __name__ == "__main__":
    typer.run(main)
