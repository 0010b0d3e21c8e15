"""p50 / p99 online latency for 1 and 100 content IDs, beside the raw lookup of the same keys.

    .venv/bin/python -m benchmarks.online_latency --items 10000

Paths, each timed in this one run against the same materialized `audio_loudness@1` values:
(a) the Python API on SQLite, (b) the Python API on Redis — Feast's `get_online_features` and the
project client `get_signals` (which adds Arrow typing) — and (c) HTTP to `signals serve` (Feast's
feature server) on each store, over one keep-alive connection (`http.client`). Baselines are the
raw lookups of the same keys in the same store: a plain SQLite SELECT on Feast's table, and a
Redis pipeline of HGETALL. `GET /health` on the same server and connection is printed as the HTTP
floor: what a round trip costs before any lookup. Targets: 1 ID p99 ≤ 2 ms (Python API), ≤ 5 ms
(HTTP); 100 IDs p99 ≤ 20 ms. Feast's published Redis figures, for reference: about 4–7 ms p99
for one row, 114–125 ms for 100.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import typer

from benchmarks.serving_data import SIGNAL, content_ids, each_store

REFS = [f"{SIGNAL.feature_view_name}:{f}" for f in SIGNAL.features]
TARGETS_MS = {("python", 1): 2.0, ("http", 1): 5.0, ("python", 100): 20.0, ("http", 100): 20.0}


def percentiles(
    call: Callable[[list[str]], object], ids: list[str], size: int, n: int
) -> tuple[float, float]:
    """p50 and p99 in ms of `call` on `n` random ID sets of `size` (after 20 warm-up calls).

    The set-up (Feast, Ray, pyarrow, a materialization) leaves this process a large heap; it is
    frozen out of the collector first, as the server does at start-up, so that a full collection
    of the benchmark's own heap is not timed as the path's latency.
    """
    gc.collect()
    gc.freeze()
    rng = random.Random(size)
    batches = [rng.sample(ids, size) for _ in range(n + 20)]
    times = []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        call(batch)
        if i >= 20:
            times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def raw_sqlite(store) -> Callable[[list[str]], object]:
    """SELECT the keys' rows from Feast's own SQLite table, nothing else."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import _quote_id, _table_id

    from jobs.serving.online_removal import _entity_key

    config = store.config
    conn = store._get_provider().online_store._get_conn(config)
    view = store.get_feature_view(SIGNAL.feature_view_name)
    table = _quote_id(_table_id(config.project, view, False))
    version = config.entity_key_serialization_version

    def lookup(ids: list[str]) -> object:
        keys = [serialize_entity_key(_entity_key(i), version) for i in ids]
        marks = ",".join("?" * len(keys))
        sql = f"SELECT entity_key, feature_name, value, event_ts FROM {table} WHERE entity_key IN ({marks})"
        return conn.execute(sql, keys).fetchall()

    return lookup


def raw_redis(store) -> Callable[[list[str]], object]:
    """One pipeline of HGETALL over the keys Feast wrote."""
    from feast.infra.online_stores.redis import _redis_key

    from jobs.serving.online_removal import _entity_key

    config = store.config
    client = store._get_provider().online_store._get_client(config.online_store)
    version = config.entity_key_serialization_version

    def lookup(ids: list[str]) -> object:
        with client.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(_redis_key(config.project, _entity_key(i), version))
            return pipe.execute()

    return lookup


class KeepAlive:
    """One persistent HTTP/1.1 connection with the standard library: the leanest Python client,
    so that the HTTP figures are the server's and the wire's, not a client library's."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def request(self, method: str, path: str, body: object | None = None) -> object:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if payload else {}
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            reply = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the idle connection (uvicorn's 5 s keep-alive): reconnect, as a
            # pooled client does; the warm-up calls absorb it.
            self.conn.close()
            self.conn.request(method, path, body=payload, headers=headers)
            reply = self.conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{method} {path}: {reply.status} {data[:200]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


def http_server(settings_env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    from tests.redis_server import free_port

    port = free_port()
    signals = str(Path(sys.executable).with_name("signals"))
    process = subprocess.Popen(
        [signals, "serve", "--port", str(port), "--no-access-log"],
        env={**os.environ, **settings_env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"signals serve did not start; see {log}")


def main(
    items: int = typer.Option(10_000, help="Items materialized in each store."),
    calls: int = typer.Option(1000, help="Timed calls per path and size."),
    out: Path = typer.Option(Path("benchmarks/out/online_latency.json"), help="JSON result."),
) -> None:
    """Materialize the same rows into SQLite and Redis, then time every path beside its raw lookup."""
    from jobs.serving.client import get_signals
    from jobs.serving.materialize import materialize
    from jobs.serving.store import feature_store

    ids = content_ids(items)
    rows: list[dict[str, object]] = []
    for kind, settings in each_store("online-latency-", items):
        root = Path(settings.lake_uri).parent
        materialize(settings, [SIGNAL])
        store = feature_store(settings)
        raw = raw_sqlite(store) if kind == "sqlite" else raw_redis(store)

        def feast_api(batch: list[str], store=store) -> object:
            rows_ = [{"content_id": i} for i in batch]
            return store.get_online_features(features=REFS, entity_rows=rows_).to_dict()

        def client(batch: list[str], settings=settings) -> object:
            return get_signals(batch, signals=[SIGNAL.ref], settings=settings)

        env = {k: v for k, v in os.environ.items() if k.startswith("SIGNALS_")}
        process, url = http_server(env, root / f"serve-{kind}.log")
        http = KeepAlive(url)

        def over_http(batch: list[str], http=http) -> object:
            body = {"features": REFS, "entities": {"content_id": batch}}
            return http.request("POST", "/get-online-features", body)

        def health(batch: list[str], http=http) -> object:
            return http.request("GET", "/health")

        try:
            floor = percentiles(health, ids, 1, calls)  # HTTP round trip, no lookup
            rows.append({"store": kind, "path": "HTTP GET /health (floor)", "ids": 0,
                         "p50_ms": floor[0], "p99_ms": floor[1]})  # fmt: skip
            for size in (1, 100):
                base = percentiles(raw, ids, size, calls)
                for path, call, kind_of in (
                    ("feast get_online_features", feast_api, "python"),
                    ("client get_signals", client, "python"),
                    ("HTTP signals serve", over_http, "http"),
                ):
                    p50, p99 = percentiles(call, ids, size, calls)
                    rows.append({
                        "store": kind, "path": path, "ids": size, "p50_ms": p50, "p99_ms": p99,
                        "raw_p50_ms": base[0], "raw_p99_ms": base[1],
                        "p99_ratio_to_raw": p99 / base[1],
                        "target_p99_ms": TARGETS_MS[(kind_of, size)],
                    })  # fmt: skip
        finally:
            http.close()
            process.terminate()
            process.wait(timeout=20)
    print(f"{'store':7} {'path':27} {'ids':>4} {'p50 ms':>8} {'p99 ms':>8} {'raw p50':>8} "
          f"{'raw p99':>8} {'p99/raw':>8} {'target':>7}")  # fmt: skip
    for r in rows:
        if not r["ids"]:
            print(f"{r['store']:7} {r['path']:27} {'':>4} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
            continue
        ok = "ok" if r["p99_ms"] <= r["target_p99_ms"] else "MISS"
        print(f"{r['store']:7} {r['path']:27} {r['ids']:>4} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['raw_p50_ms']:8.3f} {r['raw_p99_ms']:8.3f} {r['p99_ratio_to_raw']:8.1f} "
              f"{r['target_p99_ms']:>5.0f}ms {ok}")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"items": items, "calls": calls, "rows": rows}, indent=2))


if __name__ == "__main__":
    typer.run(main)
