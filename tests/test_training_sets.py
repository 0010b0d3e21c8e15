"""Training sets of any size, on real Delta tables and real Feast: the point-in-time join is
checked against ground truth computed here row by row, the result is a folder of parts in the
entity file's order, and files an overwrite or compaction removed from the Delta log are never
read. The parts are forced small so that a few dozen rows span many of them."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from s3_server import S3Server

import jobs.serving.training_set as training_set
from features import get_signal
from features.signal import Signal
from features.standard import REMOVED_HASH
from jobs.serving.errors import TrainingSetOutputError
from jobs.serving.training_set import ORDER_COLUMN, Buckets, build_training_set
from jobs.settings import Settings

LOUDNESS = get_signal("audio_loudness@1")  # 365-day TTL
DUPLICATES = get_signal("near_duplicates@1")  # 30-day TTL
EMBEDDING = get_signal("text_embedding@1")  # a 384-d list
SIGNALS = (LOUDNESS, DUPLICATES, EMBEDDING)
NOW = datetime.now(UTC).replace(microsecond=0)
T1, T2 = NOW - timedelta(days=40), NOW - timedelta(days=20)
US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Row:
    """One history row: a value (or a tombstone, `value is None`) of one signal for one item."""

    content_id: str
    at: datetime
    created: datetime
    value: float | None


def _features(signal: Signal, value: float) -> dict[str, object]:
    # Every feature of the signal derived from one number, so a cell names the row it came from.
    out: dict[str, object] = {}
    for name, feature in signal.features.items():
        kind = feature.kind
        if kind == "embedding":
            out[name] = [value] * getattr(feature, "dim", 4)
        elif kind == "string":
            out[name] = f"v{value}"
        elif kind == "int":
            out[name] = int(value * 4)
        elif kind == "bool":
            out[name] = value > 0
        else:
            out[name] = value
    return out


def _table(signal: Signal, rows: list[Row], run_id: str) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "content_id": r.content_id,
                "event_timestamp": r.at,
                "created_timestamp": r.created,
                "input_updated_at": r.at,
                "input_hash": REMOVED_HASH if r.value is None else f"{r.content_id}@{r.created}",
                "extractor_version": "test",
                "run_id": run_id,
                **({} if r.value is None else _features(signal, r.value)),
            }
            for r in rows
        ],
        schema=signal.arrow_schema(),
    )


def _write(
    settings: Settings, signal: Signal, rows: list[Row], mode: str = "append", **options: object
) -> None:
    write_deltalake(
        settings.signal_uri(signal.storage_name),
        _table(signal, rows, "r"),
        mode=mode,
        storage_options=settings.storage_options or None,
        **options,
    )


def _truth(history: list[Row], ttl: timedelta, content_id: str, at: datetime) -> Row | None:
    """What serving returned at `at`: the newest row at or before it within the TTL, the newest
    `created_timestamp` breaking a tie."""
    seen = [r for r in history if r.content_id == content_id and r.at <= at <= r.at + ttl]
    return max(seen, key=lambda r: (r.at, r.created), default=None)


def _expected(signal: Signal, row: Row | None) -> dict[str, object]:
    names = [f"{signal.feature_view_name}__{f}" for f in signal.features]
    if row is None or row.value is None:
        return dict.fromkeys(names)
    values = _features(signal, row.value)
    return {n: values[f] for n, f in zip(names, signal.features, strict=True)}


def _entities(path: Path, queries: list[tuple[str, datetime]]) -> Path:
    frame = pd.DataFrame(
        {
            "content_id": [c for c, _ in queries],
            "event_timestamp": pd.to_datetime([t for _, t in queries], utc=True),
            "label": range(len(queries)),
        }
    )
    frame.to_parquet(path)
    return path


def _check(out: Path, queries: list[tuple[str, datetime]], history: dict[str, list[Row]]) -> None:
    """Every cell of the training set at `out` against the ground truth, in the entity order."""
    parts = sorted(p.name for p in out.iterdir())
    assert parts == [f"part-{i:06d}.parquet" for i in range(len(parts))]
    table = pq.read_table(out)  # a directory read: part by part, in name order
    assert table.column("label").to_pylist() == list(range(len(queries)))
    assert table.column("content_id").to_pylist() == [c for c, _ in queries]
    got = table.to_pylist()
    for (content_id, at), row in zip(queries, got, strict=True):
        assert row["event_timestamp"] == at
        for signal in SIGNALS:
            want = _expected(signal, _truth(history[signal.ref], signal.ttl, content_id, at))
            have = {k: row[k] for k in want}
            assert have == want, (signal.ref, content_id, at)


def _cases() -> tuple[dict[str, list[Row]], list[tuple[str, datetime]]]:
    """Named cases (before the first value, a change, a tie, a tombstone, TTL edges) plus
    random histories and random query times, some exactly on a row's timestamp."""
    minute = timedelta(minutes=1)
    loudness = [
        Row("a", T1, T1, -14.0),
        Row("a", T2, T2, -9.0),  # the value changes
        Row("tie", T1, T1 + minute, -31.0),  # same event time: the later write wins
        Row("tie", T1, T1, -30.0),
        Row("gone", T1, T1, -5.0),
        Row("gone", T2, T2, None),  # left the catalog: nothing after T2
        Row("old", T1, T1, -1.0),
    ]
    duplicates = [Row("a", T1, T1, 0.5), Row("ttl", T1, T1, 0.25)]
    embedding = [Row("a", T2, T2, 0.75), Row("tie", T2, T2, 1.5)]
    queries = [
        ("a", T1 - US),  # before the first value
        ("a", T1),  # exactly at it
        ("a", T2 - US),
        ("a", T2 + minute),
        ("tie", T1 + minute),
        ("gone", T2 - US),
        ("gone", T2),
        ("ttl", T1 + DUPLICATES.ttl),  # the last moment within the 30-day TTL
        ("ttl", T1 + DUPLICATES.ttl + US),  # expired
        ("old", T1 + LOUDNESS.ttl),  # the last moment within the 365-day TTL
        ("old", T1 + LOUDNESS.ttl + US),  # expired
        ("a", T1 + LOUDNESS.ttl + US),  # T1's value expired, T2's still valid
        ("unknown", NOW),
        ("a", T2 + minute),  # the same entity row twice
    ]
    rng = random.Random(16)
    ids = [f"track:{i}" for i in range(12)]
    for rows in (loudness, duplicates):
        for content_id in ids:
            for _ in range(rng.randint(0, 4)):
                at = T1 + timedelta(hours=rng.randint(0, 24 * 30))
                created = at + timedelta(seconds=rng.randint(0, 10_000), microseconds=len(rows))
                value = None if rng.random() < 0.1 else float(rng.randint(-40, 40)) / 4
                rows.append(Row(content_id, at, created, value))
    stamps = [r.at for r in loudness if r.content_id.startswith("track:")]
    for _ in range(60):
        at = (
            rng.choice(stamps)
            if rng.random() < 0.3
            else T1 + timedelta(hours=rng.randint(-48, 24 * 50))
        )
        queries.append((rng.choice(ids), at))
    rng.shuffle(queries)
    history = {LOUDNESS.ref: loudness, DUPLICATES.ref: duplicates, EMBEDDING.ref: embedding}
    return history, queries


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log").start()
    server.create_bucket("lake")
    yield server
    server.stop()


@pytest.fixture(params=["local", "partitioned", "s3"])
def lake_layout(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, dict[str, object]]:
    """The lake as DuckDB reads it directly (plain local files), and as it reads it through
    delta-rs's dataset: a partitioned table, and a table on object storage (a local S3)."""
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3")
        monkeypatch.setenv("SIGNALS_LAKE_URI", f"s3://lake/{uuid.uuid4().hex}")
        monkeypatch.setenv("SIGNALS_STORAGE_OPTIONS", json.dumps(server.storage_options))
        return Settings.from_env(), {}
    return settings, {"partition_by": ["run_id"]} if request.param == "partitioned" else {}


def test_a_training_set_in_parts_is_the_point_in_time_truth_in_entity_order(
    lake_layout: tuple[Settings, dict[str, object]], tmp_path: Path
) -> None:
    settings, options = lake_layout
    history, queries = _cases()
    for signal in SIGNALS:
        rows = history[signal.ref]
        # Several commits, the newer write of a tie first: file order must not decide.
        for chunk in (rows[1::2], rows[0::2]):
            _write(settings, signal, chunk, **options)
    entities = _entities(tmp_path / "labels.parquet", queries)
    out = tmp_path / "train"
    done = build_training_set(
        settings, entities, out, signals=[s.ref for s in SIGNALS], part_rows=7
    )
    assert done.rows == len(queries) and done.path == out
    assert len(list(out.iterdir())) == -(-len(queries) // 7)
    _check(out, queries, history)
    for signal in SIGNALS:
        name = f"{signal.feature_view_name}__{next(iter(signal.features))}"
        truths = [_truth(history[signal.ref], signal.ttl, c, t) for c, t in queries]
        assert done.filled[name] == sum(1 for r in truths if r and r.value is not None), name

    # Built again into the same folder with larger parts: the earlier training set is replaced.
    again = build_training_set(
        settings, entities, out, signals=[s.ref for s in SIGNALS], part_rows=50
    )
    assert again.filled == done.filled
    _check(out, queries, history)
    assert len(list(out.iterdir())) == -(-len(queries) // 50)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.usefixtures("ray_session")
def test_the_ray_engine_writes_the_local_engines_rows_in_parts_per_key_partition(
    lake_layout: tuple[Settings, dict[str, object]], tmp_path: Path
) -> None:
    """The same point-in-time truth from Ray tasks, a partition of the keys each: every row
    and cell equals the local engine's, each part holds one partition's rows in entity order."""
    settings, options = lake_layout
    history, queries = _cases()
    for signal in SIGNALS:
        rows = history[signal.ref]
        for chunk in (rows[1::2], rows[0::2]):
            _write(settings, signal, chunk, **options)
    entities = _entities(tmp_path / "labels.parquet", queries)
    refs = [s.ref for s in SIGNALS]
    local = build_training_set(settings, entities, tmp_path / "local", signals=refs, part_rows=7)
    on_ray = build_training_set(
        settings, entities, tmp_path / "ray", signals=refs, part_rows=7, engine="ray"
    )
    assert (on_ray.rows, on_ray.filled) == (local.rows, local.filled)
    parts = sorted(p.name for p in (tmp_path / "ray").iterdir())
    assert parts == [f"part-{i:06d}.parquet" for i in range(len(parts))]
    expected = pq.read_table(tmp_path / "local").to_pylist()
    got = pq.read_table(tmp_path / "ray").to_pylist()
    assert sorted(got, key=lambda r: r["label"]) == expected
    for part in parts:  # a part: one partition's rows, in the entity file's order
        labels = pq.read_table(tmp_path / "ray" / part).column("label").to_pylist()
        assert labels == sorted(labels)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_rows_removed_from_the_delta_log_are_never_read(
    lake_layout: tuple[Settings, dict[str, object]], tmp_path: Path
) -> None:
    settings, options = lake_layout
    uri = settings.signal_uri(LOUDNESS.storage_name)
    bad = [Row("a", T2, T2, 99.0), Row("b", T2, T2, 98.0)]
    kept = [Row("a", T1, T1, -14.0), Row("b", T1, T1, -20.0)]
    _write(settings, LOUDNESS, kept, **options)
    _write(settings, LOUDNESS, bad, **options)
    _write(settings, LOUDNESS, kept, mode="overwrite", **options)  # bad files stay on disk
    later = [Row("a", T2 + timedelta(days=1), T2 + timedelta(days=1), -7.0)]
    _write(settings, LOUDNESS, later, **options)
    table = DeltaTable(uri, storage_options=settings.storage_options or None)
    table.optimize.compact()  # more files leave the log, none is vacuumed
    if not uri.startswith("s3://"):
        on_disk = list(Path(uri).rglob("*.parquet"))
        assert len(on_disk) > len(DeltaTable(uri).file_uris())

    queries = [("a", T2), ("b", T2), ("a", NOW), ("b", NOW), ("a", T1 - US)]
    out = tmp_path / "train"
    build_training_set(
        settings,
        _entities(tmp_path / "e.parquet", queries),
        out,
        signals=[LOUDNESS.ref],
        part_rows=2,
    )
    assert len(list(out.iterdir())) == 3
    lufs = pq.read_table(out).column(f"{LOUDNESS.feature_view_name}__integrated_lufs")
    assert lufs.to_pylist() == [-14.0, -20.0, -7.0, -20.0, None]


def test_buckets_place_each_row_by_entity_row_even_when_a_bucket_holds_several_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The distribution sort alone, with real Arrow streams: rows arrive shuffled across
    batches and views, some entity rows have no value, one arrives twice."""
    monkeypatch.setattr(training_set, "MAX_BUCKETS", 3)  # 23 rows, parts of 2: buckets of 8
    rows = 23
    rng = np.random.default_rng(0)
    found = rng.permutation([r for r in range(rows) if r % 5])  # every fifth row: no value

    def reader(values: dict[int, float], name: str, width: int) -> pa.RecordBatchReader:
        ids = np.array(list(values))
        schema = pa.schema([(ORDER_COLUMN, pa.int64()), (name, pa.list_(pa.float32()))])
        batches = [
            pa.record_batch(
                [pa.array(chunk), pa.array([[values[i]] * width for i in chunk], schema[1].type)],
                schema=schema,
            )
            for chunk in np.array_split(ids, 4)
        ]
        return pa.RecordBatchReader.from_batches(schema, batches)

    first = {int(r): float(r) for r in found}
    second = {int(r): -float(r) for r in found[:10]} | {int(found[0]): -float(found[0])}
    buckets = Buckets(tmp_path / ".buckets", rows, part_rows=2)
    assert (buckets.span, buckets.count) == (8, 3)
    buckets.distribute([reader(first, "x", 3), reader(second, "y", 1)])
    frame = pd.DataFrame({"label": range(rows)})
    out = tmp_path / "out"
    out.mkdir()
    written, filled = buckets.assemble(frame, out, ["x", "y"])
    assert written == rows and filled == {"x": len(first), "y": len(second)}
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:06d}.parquet" for i in range(12)]
    table = pq.read_table(out)
    assert table.column_names == ["label", "x", "y"]
    assert table.column("label").to_pylist() == list(range(rows))
    assert table.column("x").to_pylist() == [
        [float(r)] * 3 if r in first else None for r in range(rows)
    ]
    assert table.column("y").to_pylist() == [
        [-float(r)] if r in second else None for r in range(rows)
    ]


def test_a_folder_that_is_not_a_training_set_is_never_replaced(
    settings: Settings, tmp_path: Path
) -> None:
    entities = _entities(tmp_path / "e.parquet", [("a", NOW)])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(TrainingSetOutputError, match="not a training set"):
        build_training_set(settings, entities, tmp_path / "notes", signals=[LOUDNESS.ref])
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_ordered_batches_from_another_offline_store_are_written_in_parts(tmp_path: Path) -> None:
    """The path for an offline store without `feature_readers`: its sorted result in parts."""
    schema = pa.schema([(ORDER_COLUMN, pa.int64()), ("label", pa.int64()), ("x", pa.float64())])
    table = pa.table(
        {ORDER_COLUMN: range(10), "label": range(10), "x": [None, *map(float, range(9))]},
        schema=schema,
    )
    rows, filled = training_set.write_parts(table.to_batches(max_chunksize=3), tmp_path, ["x"], 4)
    assert (rows, filled) == (10, {"x": 9})
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"part-{i:06d}.parquet" for i in range(3)]
    back = pq.read_table(tmp_path)
    assert back.column_names == ["label", "x"] and back.column("label").to_pylist() == list(
        range(10)
    )
