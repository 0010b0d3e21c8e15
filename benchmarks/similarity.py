"""Similarity search at two catalog sizes: recall@10, index build, and query latency over HTTP.

    .venv/bin/python -m benchmarks.similarity --items 100000 --items 1000000

For each size, in a fresh lake and repository: synthetic clustered unit vectors (384-d; 2,000
cluster centres plus noise, as sentence embeddings cluster by topic) are committed as
`text_embedding@2` history and materialized — into the SQLite online store and the vector index
beside it (embedded LanceDB by default; `--vector-store milvus` for Milvus Lite). Printed:
- the materialization's wall time (SQLite write, index write, index build) and the peak RSS of
  this process tree while it ran;
- recall@10 of `similar` by vector against exact cosine search (numpy) over `--queries` items;
- p50 / p99 of one `similar(ID)` over HTTP to `signals serve` (`POST /similar`: the item's
  vector looked up and searched for in the server), beside a plain `get-online-features` of the same item on the same
  server in the same run, and their ratio. Targets: recall@10 ≥ 0.95; p99 ≤ 3× the lookup.
  Also the same search kept to one content type (`where={"content_type": "track"}`).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import typer
from deltalake import write_deltalake

from benchmarks.catalog_scale.measure import TreeSampler
from benchmarks.online_latency import http_server
from benchmarks.serving_data import store_settings
from features import get_signal

SIGNAL = get_signal("text_embedding@2")
DIM, CENTRES, CHUNK = 384, 2000, 100_000


def vectors(items: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors; the same seed gives the same catalog."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    out = np.empty((items, DIM), np.float32)
    for start in range(0, items, CHUNK):
        n = min(CHUNK, items - start)
        block = centres[rng.integers(0, CENTRES, n)] + 0.7 * rng.standard_normal((n, DIM))
        out[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def ids(items: int) -> list[str]:
    return [f"{('track', 'episode')[i % 2]}:{i:07d}" for i in range(items)]


def commit(settings, matrix: np.ndarray) -> None:
    """One run's rows, committed a chunk at a time (a real run writes many files too)."""
    when = datetime.now(UTC) - timedelta(minutes=5)
    names = ids(len(matrix))
    for start in range(0, len(matrix), CHUNK):
        part = matrix[start : start + CHUNK]
        n = len(part)
        stamps = pa.array([when] * n, pa.timestamp("us", tz="UTC"))
        table = pa.table({
            "content_id": names[start : start + n], "event_timestamp": stamps,
            "created_timestamp": stamps, "input_updated_at": stamps,
            "input_hash": [f"h{start + i}" for i in range(n)],
            "extractor_version": ["bench"] * n, "run_id": ["bench"] * n,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), DIM).cast(
                pa.list_(pa.float32())),
        }).cast(SIGNAL.arrow_schema())  # fmt: skip
        write_deltalake(settings.signal_uri(SIGNAL.storage_name), table, mode="append")


def exact_top(matrix: np.ndarray, query: np.ndarray, k: int) -> set[int]:
    scores = matrix @ query
    top = np.argpartition(-scores, k)[:k]
    return set(int(i) for i in top)


def pct(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def run(items: int, queries: int, calls: int, vector_store: str) -> dict:
    from jobs.serving.client import get_signals
    from jobs.serving.materialize import materialize
    from jobs.serving.similarity import similar

    root = Path(tempfile.mkdtemp(prefix=f"similarity-{items}-"))
    settings = store_settings(root, "sqlite")
    os.environ["SIGNALS_VECTOR_STORE"] = vector_store
    from jobs.settings import Settings

    settings = Settings.from_env()
    commit(settings, vectors(items))
    sampler = TreeSampler(os.getpid())  # the catalog's vectors are not held meanwhile
    started = time.perf_counter()
    materialize(settings, [SIGNAL])
    build_s = time.perf_counter() - started
    peak = sampler.stop()
    matrix = vectors(items)  # the same seed: the same catalog, for exact search

    rng = random.Random(1)
    chosen = rng.sample(range(items), queries)
    names = ids(items)
    hits = 0
    for q in chosen:
        found = similar(vector=matrix[q].tolist(), signal=SIGNAL.ref, k=10, settings=settings,
                        output="dicts")  # fmt: skip
        got = {int(r["content_id"][-7:]) for r in found}
        hits += len(got & exact_top(matrix, matrix[q], 10))
    recall = hits / (10 * queries)
    del matrix

    env = {k: v for k, v in os.environ.items() if k.startswith("SIGNALS_")}
    process, url = http_server(env, root / "serve.log")
    try:
        targets = [names[rng.randrange(items)] for _ in range(calls)]
        for cid in targets[:20]:  # warm-up: the registry, the index's first open
            similar(cid, signal=SIGNAL.ref, k=10, url=url)
            get_signals([cid], signals=[SIGNAL.ref], url=url)
        plain, search, same_type = [], [], []
        for cid in targets:
            t = time.perf_counter()
            get_signals([cid], signals=[SIGNAL.ref], url=url)
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            similar(cid, signal=SIGNAL.ref, k=10, url=url)
            search.append(time.perf_counter() - t)
            t = time.perf_counter()
            similar(cid, signal=SIGNAL.ref, k=10, url=url, where={"content_type": "track"})
            same_type.append(time.perf_counter() - t)
    finally:
        process.terminate()
        process.wait(timeout=30)
    (p50, p99), (b50, b99), (f50, f99) = pct(search), pct(plain), pct(same_type)
    return {"items": items, "vector_store": vector_store, "build_s": round(build_s, 1),
            "peak_rss_mib": peak.rss_mib, "recall_at_10": round(recall, 4),
            "similar_p50_ms": round(p50, 2), "similar_p99_ms": round(p99, 2),
            "lookup_p50_ms": round(b50, 2), "lookup_p99_ms": round(b99, 2),
            "same_type_p50_ms": round(f50, 2), "same_type_p99_ms": round(f99, 2),
            "p99_ratio": round(p99 / b99, 2)}  # fmt: skip


def main(
    items: list[int] = typer.Option([100_000, 1_000_000], help="Catalog sizes (10× apart)."),
    queries: int = typer.Option(200, help="Queries for recall@10."),
    calls: int = typer.Option(300, help="Timed HTTP calls per path."),
    vector_store: str = typer.Option("lance", help="lance (embedded) or milvus (Milvus Lite)."),
    out: Path = typer.Option(Path("benchmarks/out/similarity.json"), help="JSON result."),
) -> None:
    """Print each size's figures, then the growth between the first two sizes."""
    results = []
    for n in items:
        result = run(n, queries, calls, vector_store)
        results.append(result)
        print(json.dumps(result), flush=True)
    for r in results:
        print(f"{r['items']:>9,} items  build {r['build_s']:7.1f} s  RSS {r['peak_rss_mib']:8.0f} "
              f"MiB  recall@10 {r['recall_at_10']:.3f} (target ≥ 0.95)  similar p50/p99 "
              f"{r['similar_p50_ms']:.1f}/{r['similar_p99_ms']:.1f} ms  lookup "
              f"{r['lookup_p50_ms']:.1f}/{r['lookup_p99_ms']:.1f} ms  p99 ratio "
              f"{r['p99_ratio']:.2f} (target ≤ 3)  same type p50/p99 {r['same_type_p50_ms']:.1f}/"
              f"{r['same_type_p99_ms']:.1f} ms")  # fmt: skip
    if len(results) > 1:
        a, b = results[0], results[1]
        print(
            f"growth ×{b['items'] / a['items']:.0f} items: build ×{b['build_s'] / a['build_s']:.1f}"
            f", RSS ×{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    typer.run(main)
