"""Rows/s from Delta into each online store, beside a raw bulk write of the same rows.

    .venv/bin/python -m benchmarks.materialize --items 50000

The pipeline figure is `jobs.serving.materialize` as a user runs it (feast apply, Feast's incremental
materialization over the Delta history through the offline store, the removal check). The
baseline writes the same rows in the same store layout with the store's own bulk path: one
`executemany` INSERT into Feast's SQLite table, or pipelined HSETs of Feast's Redis hashes, built
from values already in memory. The ratio says what the Feast machinery costs over the bare write.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from benchmarks.serving_data import SIGNAL, content_ids, each_store


def raw_sqlite_write(store, items: int) -> float:
    """Seconds to INSERT `items` × features rows into a copy of Feast's table layout."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.Value_pb2 import Value

    from jobs.serving.online_removal import _entity_key

    conn = store._get_provider().online_store._get_conn(store.config)
    version = store.config.entity_key_serialization_version
    conn.execute("DROP TABLE IF EXISTS bench_raw")
    conn.execute("CREATE TABLE bench_raw (entity_key BLOB, feature_name TEXT, value BLOB, "
                 "vector_value BLOB, event_ts timestamp, created_ts timestamp, "
                 "PRIMARY KEY(entity_key, feature_name))")  # fmt: skip
    start = time.perf_counter()
    rows = []
    for i, cid in enumerate(content_ids(items)):
        key = serialize_entity_key(_entity_key(cid), version)
        for name in SIGNAL.features:
            value = Value(double_val=float(i)).SerializeToString()
            rows.append((key, name, value, None, "2026-01-01", "2026-01-01"))
    with conn:
        conn.executemany("INSERT OR REPLACE INTO bench_raw VALUES (?, ?, ?, ?, ?, ?)", rows)
    return time.perf_counter() - start


def raw_redis_write(store, items: int) -> float:
    """Seconds to HSET `items` hashes with Feast's field names, pipelined in chunks."""
    from feast.infra.online_stores.redis import _mmh3, _redis_key
    from feast.protos.feast.types.Value_pb2 import Value

    from jobs.serving.online_removal import _entity_key

    config = store.config
    client = store._get_provider().online_store._get_client(config.online_store)
    version = config.entity_key_serialization_version
    fields = [_mmh3(f"bench:{name}") for name in SIGNAL.features]
    start = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for i, cid in enumerate(content_ids(items)):
            key = _redis_key(config.project, _entity_key(cid), version)
            value = Value(double_val=float(i)).SerializeToString()
            pipe.hset(key, mapping={f: value for f in fields} | {"_ts:bench": b"0"})
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
    return time.perf_counter() - start


def main(
    items: int = typer.Option(50_000, help="Items (rows) to materialize into each store."),
    out: Path = typer.Option(Path("benchmarks/out/materialize.json"), help="JSON result."),
) -> None:
    """Materialize into SQLite and into Redis, each beside its raw bulk write, in one run."""
    from jobs.serving.materialize import materialize
    from jobs.serving.store import feature_store

    results = []
    for kind, settings in each_store("materialize-bench-", items):
        feature_store(settings)  # opened once before timing: the registry file exists
        start = time.perf_counter()
        materialize(settings, [SIGNAL])
        pipeline_s = time.perf_counter() - start
        store = feature_store(settings)
        raw_s = (raw_sqlite_write if kind == "sqlite" else raw_redis_write)(store, items)
        results.append({
            "store": kind, "rows": items, "materialize_s": pipeline_s,
            "materialize_rows_per_s": items / pipeline_s, "raw_s": raw_s,
            "raw_rows_per_s": items / raw_s, "ratio": raw_s / pipeline_s,
        })  # fmt: skip
    print(f"{'store':7} {'rows':>7} {'materialize rows/s':>19} {'raw rows/s':>11} {'ratio':>6}")
    for r in results:
        print(f"{r['store']:7} {r['rows']:>7} {r['materialize_rows_per_s']:>19,.0f} "
              f"{r['raw_rows_per_s']:>11,.0f} {r['ratio']:>6.2f}")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    typer.run(main)
