"""Materialization in bounded batches, on real SQLite and real Redis: rows across several batches
all land with the newest value per item, tombstoned items still leave, and what the bulk writers
leave in each store is byte for byte what Feast's own write leaves."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from feast import FeatureStore, FeatureView
from feast.infra.common.materialization_job import MaterializationTask
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.types import Array, Bool, Float32, Int64, String
from feast.utils import _convert_arrow_to_proto
from feast.value_type import ValueType
from signal_rows import history

from features import get_signal
from jobs.serving.client import get_signals
from jobs.serving.materialize import materialize
from jobs.serving.online_writer import FeastWriter, join_key_types, writer_for
from jobs.serving.store import apply_repo, repo_config
from jobs.serving.value_encoding import encode_entity_keys, encode_values, naive_utc
from jobs.settings import Settings

EMBEDDING = get_signal("text_embedding@1")
ARTWORK = get_signal("artwork_quality@1")
NOW = datetime.now(UTC).replace(microsecond=0)
T1, T2 = NOW - timedelta(hours=2), NOW - timedelta(hours=1)


def _vectors(n: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 384), dtype=np.float32).tolist()


def _append(settings: Settings, signal_ref: str, rows: list, run_id: str) -> None:
    signal = get_signal(signal_ref)
    table = history(signal_ref, rows, run_id)
    write_deltalake(settings.signal_uri(signal.storage_name), table, mode="append")


def _newest_in_delta(settings: Settings) -> dict[str, list[float] | None]:
    """Each item's newest embedding in the Delta history, as the online store should serve it."""
    rows = DeltaTable(settings.signal_uri(EMBEDDING.storage_name)).to_pyarrow_table().to_pylist()
    newest: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: (r["event_timestamp"], r["created_timestamp"])):
        newest[row["content_id"]] = row
    return {cid: row["embedding"] for cid, row in newest.items()}


def _served(settings: Settings, ids: list[str]) -> list[list[float] | None]:
    table = get_signals(ids, signals=[EMBEDDING.ref], settings=settings)
    return table.column(f"{EMBEDDING.feature_view_name}__embedding").to_pylist()


def test_rows_across_batches_land_newest_per_item_and_tombstoned_items_leave(
    online_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALS_MATERIALIZE_BATCH_ROWS", "4")
    settings = Settings.from_env()
    ids = [f"track:{i:02d}" for i in range(11)]
    first, second = _vectors(11, 1), _vectors(5, 2)
    older = [(c, T1, {"embedding": v}) for c, v in zip(ids, first, strict=True)]
    _append(settings, EMBEDDING.ref, older, "r1")
    newer = [(c, T2, {"embedding": v}) for c, v in zip(ids[:5], second, strict=True)]
    _append(settings, EMBEDDING.ref, [*newer, (ids[10], T2, None)], "r2")  # ids[10] left

    # The engine's stream: batches of at most 4 rows, each item once, its newest row only.
    store = apply_repo(settings)
    view = store.get_feature_view(EMBEDDING.feature_view_name)
    task = MaterializationTask(store.project, view, T1 - timedelta(minutes=1), NOW)
    batches = list(store._get_provider().batch_engine.batches(store.registry, task))
    assert [b.num_rows <= 4 for b in batches] == [True] * len(batches) and len(batches) >= 3
    streamed = pa.Table.from_batches(batches).to_pylist()
    assert sorted(r["content_id"] for r in streamed) == sorted(ids)
    assert {r["content_id"]: r["embedding"] for r in streamed}[ids[0]] == second[0]

    done = materialize(settings, [EMBEDDING])
    assert done.deleted == {EMBEDDING.feature_view_name: 1}
    expected = _newest_in_delta(settings)
    served = _served(settings, [*ids, "track:unknown"])
    assert served == [*(expected[c] for c in ids[:10]), None, None]
    assert expected[ids[0]] == second[0] and expected[ids[7]] == first[7]

    # The next run loads only its own rows, in batches again.
    later = datetime.now(UTC)
    third = _vectors(1, 3)[0]
    _append(settings, EMBEDDING.ref, [(ids[7], later, {"embedding": third})], "r3")
    materialize(settings, [EMBEDDING])
    assert _served(settings, [ids[7], ids[0]]) == [third, second[0]]


def _artwork_batch() -> pa.RecordBatch:
    """Rows with every feature type artwork_quality@1 serves (nulls, NaN, -0.0, empty lists,
    non-ASCII text, negative and large ints among them), in the columns a batch has."""
    schema = ARTWORK.arrow_schema()
    values = {
        "format": ["jpeg", None, "", "png-é"],
        "width": [640, None, -1, 2**40],
        "aspect_ratio": [1.3333, float("nan"), None, -0.0],
        "palette_shares": [[0.5, 0.25, 0.25], None, [], [float("nan"), 1.0, 0.0]],
        "too_small": [True, False, None, True],
    }
    columns = {
        "content_id": pa.array([f"art:{i}" for i in range(4)]),
        "event_timestamp": pa.array([T1, T1, T2, T2], schema.field("event_timestamp").type),
        "created_timestamp": pa.array([T1, T2, T2, T2], schema.field("created_timestamp").type),
    }
    for name in ARTWORK.features:  # the other features: null throughout
        kind = schema.field(name).type
        columns[name] = pa.array(values[name], kind) if name in values else pa.nulls(4, kind)
    return pa.RecordBatch.from_pydict(columns)


def test_values_encode_to_the_bytes_feast_serializes() -> None:
    from feast.type_map import python_values_to_proto_values

    batch = _artwork_batch()
    types = {"format": String, "width": Int64, "aspect_ratio": Float32, "too_small": Bool,
             "palette_shares": Array(Float32)}  # fmt: skip
    for column, feast_type in types.items():
        value_type = feast_type.to_value_type()
        got = encode_values(batch.column(column), value_type)
        protos = python_values_to_proto_values(
            batch.column(column).to_numpy(zero_copy_only=False), value_type
        )
        assert got.values == [p.SerializeToString() for p in protos], column
        assert got.texts == [extract_text_and_num(p, False)[0] for p in protos], column
    assert math.isnan(batch.column("aspect_ratio")[1].as_py())  # the NaN case is really there
    embeddings = pa.array(_vectors(3, 4), pa.list_(pa.float32())).slice(1)  # one length: fast
    as_numpy = embeddings.to_numpy(zero_copy_only=False)
    protos = python_values_to_proto_values(as_numpy, ValueType.FLOAT_LIST)
    got = encode_values(embeddings, ValueType.FLOAT_LIST).values
    assert got == [p.SerializeToString() for p in protos]
    join_keys = {"content_id": ValueType.STRING}
    keys = encode_entity_keys({"content_id": batch.column("content_id")}, join_keys, 3)
    rows = _convert_arrow_to_proto(batch, _artwork_view(), join_keys)
    assert keys == [serialize_entity_key(row[0], 3) for row in rows]
    assert naive_utc(batch.column("event_timestamp")) == [row[2] for row in rows]
    assert naive_utc(batch.column("created_timestamp")) == [row[3] for row in rows]


def _artwork_view() -> FeatureView:
    """A Feast view of artwork_quality@1, as the repository defines it, without a registry."""
    from feast import Entity, Field, FileSource

    from feature_repo.definitions import feature_fields

    source = FileSource(
        path="/unused",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    )
    entity = Entity(name="content", join_keys=["content_id"], value_type=ValueType.STRING)
    fields = [Field(name="content_id", dtype=String), *feature_fields(ARTWORK)]
    return FeatureView(
        name=ARTWORK.feature_view_name, entities=[entity], schema=fields, source=source
    )


def _dump(store: FeatureStore, view: FeatureView) -> list[tuple[object, ...]]:
    """Everything the online store holds for the view, then emptied for the next write."""
    online = store._get_provider().online_store
    if store.config.online_store.type.endswith(("sqlite", "SqliteOnlineStore")):
        from feast.infra.online_stores.sqlite import _quote_id, _table_id

        table = _quote_id(_table_id(store.project, view, False))
        conn = online._get_conn(store.config)
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY entity_key, feature_name").fetchall()
        with conn:
            conn.execute(f"DELETE FROM {table}")
        return rows
    client = online._get_client(store.config.online_store)
    keys = sorted(client.keys("*"))
    rows = [(k, sorted(client.hgetall(k).items()), client.ttl(k) > 0) for k in keys]
    client.flushdb()
    return rows


def _older(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The same items an hour before `batch`, with other widths: a store's rule for a row older
    than the stored one decides what stays (Redis keeps the newer, SQLite takes the last)."""
    hour = pa.scalar(timedelta(hours=1), pa.duration("us"))
    columns = {name: batch.column(name) for name in batch.schema.names}
    for name in ("event_timestamp", "created_timestamp"):
        columns[name] = pc.subtract(columns[name], hour)
    columns["width"] = pa.array([1, 2, None, 4], pa.int64())
    return pa.RecordBatch.from_pydict(columns)


def test_the_bulk_writers_leave_exactly_what_feasts_own_write_leaves(
    online_store: Settings,
) -> None:
    store = apply_repo(online_store)
    view = store.get_feature_view(ARTWORK.feature_view_name)
    online = store._get_provider().online_store
    newer = _artwork_batch()
    writer = writer_for(online, store.config, view)
    assert type(writer) is not FeastWriter
    assert join_key_types(view) == {"content_id": ValueType.STRING}
    for sequence in ([newer], [newer, _older(newer)]):
        for batch in sequence:
            FeastWriter(online, store.config, view).write(batch)
        feasts = _dump(store, view)
        for batch in sequence:
            writer.write(batch)
        assert _dump(store, view) == feasts and len(feasts) > 0


@pytest.mark.usefixtures("ray_session")
def test_a_write_the_store_refuses_fails_the_ray_engines_load_and_moves_no_window(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feast's own Ray engine logs a refused write and reports success (the window is recorded,
    the rows are lost); the project's Ray engine fails the load, records nothing, and the CLI
    exits non-zero. A trigger in the SQLite file stands for a store that refuses writes."""
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.serving.errors import OnlineStoreError

    monkeypatch.setenv("SIGNALS_MATERIALIZE_ENGINE", "ray")
    settings = Settings.from_env()
    ids = [f"track:{i:02d}" for i in range(6)]
    rows = [(c, T1, {"embedding": v}) for c, v in zip(ids, _vectors(6, 3), strict=True)]
    _append(settings, EMBEDDING.ref, rows, "r1")
    view = EMBEDDING.feature_view_name

    def refuse_writes(store: FeatureStore) -> None:
        conn = store._get_provider().online_store._get_conn(store.config)
        with conn:
            conn.execute(
                f'CREATE TRIGGER IF NOT EXISTS refuse BEFORE INSERT ON "{store.project}_{view}" '
                "BEGIN SELECT RAISE(ABORT, 'the store refuses writes'); END"
            )

    refuse_writes(apply_repo(settings))
    with pytest.raises(OnlineStoreError, match="the store refuses writes"):
        materialize(settings, [EMBEDDING])
    assert apply_repo(settings).get_feature_view(view).most_recent_end_time is None
    result = CliRunner().invoke(app, ["materialize", EMBEDDING.ref])
    assert result.exit_code == 75, result.output  # retryable: nothing was half-done
    assert "the store refuses writes" in result.output

    config = repo_config(settings)  # the same repository on Feast's own `ray.engine`
    config.batch_engine_config = {**config.batch_engine_config, "type": "ray.engine"}
    feasts = FeatureStore(repo_path=str(settings.feast_repo), config=config)
    assert feasts.config.batch_engine.type == "ray.engine"
    refuse_writes(feasts)
    feasts.materialize_incremental(end_date=NOW, feature_views=[view])  # no error raised
    assert feasts.get_feature_view(view).most_recent_end_time is not None  # window recorded
    assert _served(settings, ids) == [None] * len(ids)  # and nothing served
