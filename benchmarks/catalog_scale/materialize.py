"""Catalog-scale step `materialize`: a 384-d `text_embedding@1` history into SQLite and Redis.

    .venv/bin/python -m benchmarks.catalog_scale --step materialize --small 100000

`prepare` writes the history in the signal's own schema, a run (commit) per 50k items, row groups
of 10k rows, then a later run that recomputes 5% of the items: the newest row per item is what
materialization must serve, so the dedup path runs too. It writes a chunk at a time (bounded
memory). `measure` runs the real `jobs.serving.materialize.materialize()` (feast apply, Feast's
incremental materialization through the streaming engine and the Delta offline store, the removal
check) into each store, and in the same run the raw bulk write of the same rows into the same
store, as `benchmarks/materialize.py` defines it: per row Feast's entity-key serialization and a
`Value` proto built from the values already in memory (Python lists), then one `executemany`
into a table with Feast's DDL and index, or pipelined HSETs of Feast's hash layout; only the
write is timed, the reading of the rows is not. Rows/s of each and their ratio are returned.

Redis runs daemonized, outside the measured process tree: its memory is the online store's
data (about 1.7 KB per row here), not the job's; it is reported on its own (`redis_peak_mib`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import WriterProperties, write_deltalake

from benchmarks.serving_data import REPO_FILES
from features import get_signal
from jobs.settings import PROJECT_ROOT, Settings
from tests.signal_rows import standard_columns

SIGNAL = get_signal("text_embedding@1")
DIM = 384
RUN_ITEMS = 50_000  # items per run (commit)
ROW_GROUP = 10_000
RECOMPUTED = 0.05  # share of items a later run recomputes
RAW_CHUNK = 10_000  # rows the raw write holds as Python values at a time


def _ids(start: int, stop: int) -> list[str]:
    return [f"track:{i:09d}" for i in range(start, stop)]


def _rows(ids: list[str], at: datetime, rng: np.random.Generator) -> pa.Table:
    n = len(ids)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    offsets = pa.array(np.arange(0, n * DIM + 1, DIM, dtype=np.int32))
    return pa.table(
        {
            **standard_columns(ids, at, run_id=f"run-{at:%s}"),
            "embedding": pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel())),
        }
    ).cast(SIGNAL.arrow_schema())


def _settings(workdir: Path, kind: str, redis_url: str = "127.0.0.1:6379") -> Settings:
    """Settings for one store: a private Feast repository copy, the shared lake."""
    repo = workdir / kind / "feature_repo"
    if not repo.exists():
        repo.mkdir(parents=True)
        for name in REPO_FILES:
            shutil.copy(PROJECT_ROOT / "feature_repo" / name, repo / name)
    env = {
        "SIGNALS_LAKE_URI": str(workdir / "lake"),
        "SIGNALS_FEAST_REPO": str(repo),
        "SIGNALS_ONLINE_STORE": kind,
        "SIGNALS_REDIS_URL": redis_url,
    }
    os.environ.update(env)
    return Settings.from_env({**os.environ, **env})


def prepare(workdir: Path, items: int) -> None:
    """The history: a run per 50k items an hour ago, then a run recomputing 5% of them."""
    uri = _settings(workdir, "sqlite").signal_uri(SIGNAL.storage_name)
    rng = np.random.default_rng(0)
    start = datetime.now(UTC) - timedelta(hours=1)
    props = WriterProperties(max_row_group_size=ROW_GROUP)
    for run, first in enumerate(range(0, items, RUN_ITEMS)):
        at = start + timedelta(seconds=run)
        table = _rows(_ids(first, min(items, first + RUN_ITEMS)), at, rng)
        write_deltalake(uri, table, mode="append", writer_properties=props)
    recomputed = np.sort(rng.choice(items, int(items * RECOMPUTED), replace=False))
    later = start + timedelta(minutes=30)
    for first in range(0, len(recomputed), RUN_ITEMS):
        ids = [f"track:{i:09d}" for i in recomputed[first : first + RUN_ITEMS].tolist()]
        write_deltalake(uri, _rows(ids, later, rng), mode="append", writer_properties=props)


class _Redis:
    """A daemonized redis-server (re-parented, so outside the measured tree)."""

    def __init__(self, workdir: Path) -> None:
        from tests.redis_server import _binary, free_port

        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        binary, env = _binary()
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--dir", str(self.dir), "--daemonize", "yes"]  # fmt: skip
        subprocess.run([str(binary), *args], env=env, check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        import redis

        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        while not self._ping() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def peak_mib(self) -> float:
        return round(int(self.client.info("memory")["used_memory_peak"]) / 2**20, 1)

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # the connection drops as it shuts down
            self.client.shutdown(nosave=True)


def _newest_rows(settings: Settings) -> Iterator[pa.RecordBatch]:
    """The rows materialization writes (newest per item), read through the same offline store."""
    from feature_repo.delta_offline_store import DeltaOfflineStore
    from jobs.serving.store import feature_store

    store = feature_store(settings)
    view = store.get_feature_view(SIGNAL.feature_view_name)
    job = DeltaOfflineStore.pull_latest_from_table_or_query(
        store.config, view.batch_source, ["content_id"], ["embedding"], "event_timestamp",
        "created_timestamp", datetime.now(UTC) - timedelta(days=1), datetime.now(UTC),
    )  # fmt: skip
    yield from job.iter_batches(RAW_CHUNK)


def _raw_sqlite(settings: Settings) -> tuple[float, int]:
    """Seconds of the raw write (timed parts only) and rows written."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.Value_pb2 import FloatList, Value

    from jobs.serving.online_removal import _entity_key
    from jobs.serving.store import feature_store

    store = feature_store(settings)
    conn = store._get_provider().online_store._get_conn(store.config)
    version = store.config.entity_key_serialization_version
    conn.execute("DROP TABLE IF EXISTS bench_raw")
    conn.execute("CREATE TABLE bench_raw (entity_key BLOB, feature_name TEXT, value BLOB, "
                 "value_text TEXT, vector_value BLOB, event_ts timestamp, created_ts timestamp, "
                 "PRIMARY KEY(entity_key, feature_name))")  # fmt: skip
    conn.execute("CREATE INDEX bench_raw_ek ON bench_raw (entity_key)")
    seconds, written = 0.0, 0
    for batch in _newest_rows(settings):
        ids = batch.column("content_id").to_pylist()
        vectors = batch.column("embedding").to_pylist()
        stamp = batch.column("event_timestamp")[0].as_py().replace(tzinfo=None)
        start = time.perf_counter()
        rows = [
            (serialize_entity_key(_entity_key(cid), version), "embedding",
             Value(float_list_val=FloatList(val=vec)).SerializeToString(), None, None, stamp,
             stamp)
            for cid, vec in zip(ids, vectors, strict=True)
        ]  # fmt: skip
        with conn:
            conn.executemany("INSERT OR REPLACE INTO bench_raw VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        seconds += time.perf_counter() - start
        written += len(rows)
    conn.execute("DROP TABLE bench_raw")
    return seconds, written


def _raw_redis(settings: Settings) -> tuple[float, int]:
    """Seconds of the raw write (timed parts only) and rows written: HSETs pipelined by 1000."""
    from feast.infra.online_stores.redis import _mmh3, _redis_key
    from feast.protos.feast.types.Value_pb2 import FloatList, Value

    from jobs.serving.online_removal import _entity_key
    from jobs.serving.store import feature_store

    store = feature_store(settings)
    config = store.config
    client = store._get_provider().online_store._get_client(config.online_store)
    version = config.entity_key_serialization_version
    field = _mmh3(f"{SIGNAL.feature_view_name}:embedding")
    ts_field = f"_ts:{SIGNAL.feature_view_name}"
    seconds, written = 0.0, 0
    for batch in _newest_rows(settings):
        ids = batch.column("content_id").to_pylist()
        vectors = batch.column("embedding").to_pylist()
        start = time.perf_counter()
        with client.pipeline(transaction=False) as pipe:
            for i, (cid, vec) in enumerate(zip(ids, vectors, strict=True)):
                key = _redis_key(config.project, _entity_key(cid), version)
                value = Value(float_list_val=FloatList(val=vec)).SerializeToString()
                pipe.hset(key, mapping={field: value, ts_field: b"0"})
                if i % 1000 == 999:
                    pipe.execute()
            pipe.execute()
        seconds += time.perf_counter() - start
        written += len(ids)
    return seconds, written


def _timed_materialize(settings: Settings) -> float:
    from jobs.serving.materialize import materialize
    from jobs.serving.store import feature_store

    feature_store(settings)  # opened once before timing: the registry file exists
    start = time.perf_counter()
    materialize(settings, [SIGNAL])
    return time.perf_counter() - start


def measure(workdir: Path, items: int) -> dict[str, object]:
    """Materialize into SQLite, then Redis, each beside its raw bulk write of the same rows."""
    figures: dict[str, object] = {"rows": items}
    sqlite = _settings(workdir, "sqlite")
    pipeline_s = _timed_materialize(sqlite)
    raw_s, raw_rows = _raw_sqlite(sqlite)
    assert raw_rows == items, (raw_rows, items)
    figures |= {"sqlite_materialize_s": round(pipeline_s, 2),
                "sqlite_rows_per_s": round(items / pipeline_s),
                "sqlite_raw_rows_per_s": round(items / raw_s),
                "sqlite_ratio": round(raw_s / pipeline_s, 2)}  # fmt: skip
    server = _Redis(workdir)
    try:
        redis = _settings(workdir, "redis", server.url)
        pipeline_s = _timed_materialize(redis)
        server.client.flushall()
        raw_s, raw_rows = _raw_redis(redis)
        assert raw_rows == items, (raw_rows, items)
        figures |= {"redis_materialize_s": round(pipeline_s, 2),
                    "redis_rows_per_s": round(items / pipeline_s),
                    "redis_raw_rows_per_s": round(items / raw_s),
                    "redis_ratio": round(raw_s / pipeline_s, 2),
                    "redis_peak_mib": server.peak_mib()}  # fmt: skip
    finally:
        server.stop()
    return figures
