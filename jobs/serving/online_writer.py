"""Writing record batches of a feature view into the online store, one bulk write per batch.

Feast's `online_write_batch` takes a list of protos per row and, in SQLite, runs one INSERT per
feature value. Materialization instead hands each record batch to a writer for its store that
writes Feast's own layout (table, key and field names, value bytes, timestamps) with the store's
bulk path: one `executemany` per batch in SQLite; in Redis two short Lua scripts per thousand
keys (read their timestamps, then HSET and EXPIRE them), or pipelines on a Redis Cluster. The
rules are Feast's (SQLite upserts; Redis keeps a newer stored value, renews the key's TTL). What
`get_online_features` reads is therefore exactly what Feast's own write would have left. A store
without a writer here, or a configuration the fast path does not cover (SQLite's vector or
OpenAI-compatible columns), is written through Feast's conversion and `online_write_batch`, a
batch at a time all the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from feast import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.online_store import OnlineStore
from feast.repo_config import RepoConfig
from feast.utils import _convert_arrow_to_proto
from feast.value_type import ValueType

from jobs.serving.errors import OnlineEncodingError
from jobs.serving.value_encoding import Encoded, encode_entity_keys, encode_values, naive_utc


@dataclass(frozen=True)
class Rows:
    """A batch encoded for the online store: each row's entity key and timestamps, and each
    feature's serialized values."""

    keys: list[bytes]
    features: dict[str, Encoded]
    event_ts: list[datetime | None]
    created_ts: list[datetime | None]


def join_key_types(view: FeatureView) -> dict[str, ValueType]:
    """The view's join keys and their value types, as Feast's materialization derives them."""
    return {e.name: e.dtype.to_value_type() for e in view.entity_columns}


class OnlineWriter(ABC):
    """Writes record batches of one feature view (columns named as the view names them)."""

    def __init__(self, online_store: OnlineStore, config: RepoConfig, view: FeatureView) -> None:
        self.online_store = online_store
        self.config = config
        self.view = view
        self.join_keys = join_key_types(view)

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> int:
        """Write the batch's rows; returns how many rows the store took."""

    def encode(self, batch: pa.RecordBatch) -> Rows:
        """The batch in Feast's bytes, checked against Feast's own conversion on its first row.

        Why the check: a value Feast's online read parses differently would be served wrong
        without any error; comparing one row per batch costs microseconds and stops the load
        before such a batch is written.
        """
        source = self.view.batch_source
        columns = {name: batch.column(name) for name in batch.schema.names}
        rows = Rows(
            keys=encode_entity_keys(
                columns, self.join_keys, self.config.entity_key_serialization_version
            ),
            features={
                f.name: encode_values(columns[f.name], f.dtype.to_value_type())
                for f in self.view.features
            },
            event_ts=naive_utc(columns[source.timestamp_field]),
            created_ts=(
                naive_utc(columns[source.created_timestamp_column])
                if source.created_timestamp_column
                else [None] * batch.num_rows
            ),
        )
        if batch.num_rows:
            self._check_first_row(batch, rows)
        return rows

    def _check_first_row(self, batch: pa.RecordBatch, rows: Rows) -> None:
        ((key, values, event_ts, _),) = _convert_arrow_to_proto(
            batch.slice(0, 1), self.view, self.join_keys
        )
        version = self.config.entity_key_serialization_version
        expected = {name: value.SerializeToString() for name, value in values.items()}
        got = {name: encoded.values[0] for name, encoded in rows.features.items()}
        if serialize_entity_key(key, version) != rows.keys[0] or expected != got:
            raise OnlineEncodingError(
                f"the online encoding of {self.view.name} disagrees with Feast's",
                details=[f"Feast: {expected}", f"here: {got}"],
                hint="a bug in jobs/serving/value_encoding.py: nothing of this batch was written",
            )
        if event_ts.replace(tzinfo=None) != rows.event_ts[0]:
            raise OnlineEncodingError(
                f"the event time of {self.view.name} disagrees with Feast's",
                details=[f"Feast: {event_ts}", f"here: {rows.event_ts[0]}"],
            )


class FeastWriter(OnlineWriter):
    """Any online store: Feast's conversion to protos and the store's `online_write_batch`."""

    def write(self, batch: pa.RecordBatch) -> int:
        """One `online_write_batch` call per batch, so memory stays that of a batch."""
        data = _convert_arrow_to_proto(batch, self.view, self.join_keys)
        if data:
            self.online_store.online_write_batch(self.config, self.view, data, None)
        return len(data)


class SqliteWriter(OnlineWriter):
    """Feast's SQLite table `<project>_<view>`: a row per entity key and feature, upserted."""

    def write(self, batch: pa.RecordBatch) -> int:
        """One `executemany` of Feast's upsert per batch, in one transaction."""
        from feast.infra.online_stores.sqlite import _quote_id, _table_id

        rows = self.encode(batch)
        config = self.config
        table = _table_id(
            config.project, self.view, config.registry.enable_online_feature_view_versioning
        )
        upsert = (
            f"INSERT INTO {_quote_id(table)} "
            "(entity_key, feature_name, value, value_text, event_ts, created_ts) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, "
            "event_ts = excluded.event_ts, created_ts = excluded.created_ts;"
        )
        params = (
            (key, name, value, text, event, created)
            for name, encoded in rows.features.items()
            for key, value, text, event, created in zip(
                rows.keys, encoded.values, encoded.texts, rows.event_ts, rows.created_ts,
                strict=True,
            )
        )  # fmt: skip
        conn = self.online_store._get_conn(config)  # type: ignore[attr-defined]
        with conn:  # the timestamps go through the datetime adapter Feast registers
            conn.executemany(upsert, params)
        return batch.num_rows


# One call per chunk of keys instead of a command per key: redis-py spends ~15 µs of Python on
# every command, which for three commands a row (read the timestamp, HSET, EXPIRE) was most of
# the write. Each script touches only its chunk's keys and runs in a few milliseconds.
_READ_STAMPS = """
local stamps = {}
for i, key in ipairs(KEYS) do stamps[i] = redis.call('HGET', key, ARGV[1]) end
return stamps
"""
_WRITE_HASHES = """
local ttl, width = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = 3 + width
for _, key in ipairs(KEYS) do
  local fields = {}
  for j = 1, width do
    fields[2 * j - 1] = ARGV[2 + j]
    fields[2 * j] = ARGV[at]
    at = at + 1
  end
  redis.call('HSET', key, unpack(fields))
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
return #KEYS
"""
_CHUNK_KEYS = 1_000


class RedisWriter(OnlineWriter):
    """Feast's Redis layout: a hash per entity, a field per feature, `_ts:<view>`, key TTL."""

    def write(self, batch: pa.RecordBatch) -> int:
        """Feast's rule, a chunk of keys at a time: a row no newer than the stored one (or than
        an earlier row of the batch) for its entity is skipped, unless the store is configured
        with `skip_dedup`; the others are written with `_ts:<view>` and their key's TTL renewed.
        """
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import _versioned_fv_name
        from google.protobuf.timestamp_pb2 import Timestamp

        rows = self.encode(batch)
        store_config = self.config.online_store
        client = self.online_store._get_client(store_config)  # type: ignore[attr-defined]
        view = _versioned_fv_name(self.view, self.config)
        ts_field = f"_ts:{view}"
        names = [ts_field, *(_mmh3(f"{view}:{name}") for name in rows.features)]
        project = self.config.project.encode("utf-8")
        keys = [key + project for key in rows.keys]
        stamps: dict[datetime | None, tuple[bytes, int]] = {}
        for moment in dict.fromkeys(rows.event_ts):
            ts = Timestamp()
            ts.FromDatetime(moment)  # naive: read as UTC, as Feast's make_tzaware does
            stamps[moment] = (ts.SerializeToString(), ts.seconds * 1_000_000_000 + ts.nanos)
        commands = _Commands(client, store_config)
        latest: dict[bytes, int] = {}
        written = 0
        for start in range(0, len(keys), _CHUNK_KEYS):
            chunk = range(start, min(len(keys), start + _CHUNK_KEYS))
            stored = commands.stored_nanos([keys[i] for i in chunk], ts_field)
            chosen: list[int] = []
            for i, before in zip(chunk, stored, strict=True):
                nanos = stamps[rows.event_ts[i]][1]
                seen = max(before, latest.get(keys[i], 0))
                if seen and nanos <= seen:
                    continue
                latest[keys[i]] = nanos
                chosen.append(i)
            values = [
                [stamps[rows.event_ts[i]][0], *(e.values[i] for e in rows.features.values())]
                for i in chosen
            ]
            commands.write([keys[i] for i in chosen], names, values)
            written += len(chosen)
        return written


class _Commands:
    """The Redis commands of a write: scripts on one server, pipelines on a cluster (whose
    scripts may only touch keys of one slot)."""

    def __init__(self, client: Any, store_config: Any) -> None:
        from feast.infra.online_stores.redis import RedisType

        self.client = client
        self.ttl = int(store_config.key_ttl_seconds or 0)
        self.check = not getattr(store_config, "skip_dedup", False)
        self.scripted = store_config.redis_type != RedisType.redis_cluster
        if self.scripted:
            self.read_stamps = client.register_script(_READ_STAMPS)
            self.write_hashes = client.register_script(_WRITE_HASHES)

    def stored_nanos(self, keys: list[bytes], ts_field: str) -> list[int]:
        """The event time each entity has in the store now, 0 where none (or not checked)."""
        from google.protobuf.timestamp_pb2 import Timestamp

        if not self.check or not keys:
            return [0] * len(keys)
        if self.scripted:
            replies = self.read_stamps(keys=keys, args=[ts_field])
        else:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, ts_field)
                replies = pipe.execute()
        parsed: dict[bytes, int] = {}
        for raw in replies:
            if raw and raw not in parsed:
                ts = Timestamp()
                ts.ParseFromString(raw)
                parsed[raw] = ts.seconds * 1_000_000_000 + ts.nanos
        return [parsed[raw] if raw else 0 for raw in replies]

    def write(self, keys: list[bytes], names: list[Any], values: list[list[bytes]]) -> None:
        """HSET each key's fields (`names`, in order, to its `values`), then renew its TTL."""
        if not keys:
            return
        if self.scripted:
            flat = [v for row in values for v in row]
            self.write_hashes(keys=keys, args=[self.ttl, len(names), *names, *flat])
            return
        with self.client.pipeline(transaction=False) as pipe:
            for key, row in zip(keys, values, strict=True):
                pipe.hset(key, mapping=dict(zip(names, row, strict=True)))
                if self.ttl:
                    pipe.expire(name=key, time=self.ttl)
            pipe.execute()


class IndexedWriter(OnlineWriter):
    """A searchable view: the store's own writer, then the same rows into its vector index."""

    def __init__(self, inner: OnlineWriter) -> None:
        super().__init__(inner.online_store, inner.config, inner.view)
        self.inner = inner

    def write(self, batch: pa.RecordBatch) -> int:
        """The online write first: a search answers with values read from the online store."""
        written = self.inner.write(batch)
        data = _convert_arrow_to_proto(batch, self.view, self.join_keys)
        self.online_store.index_rows(self.config, self.view, data)  # type: ignore[attr-defined]
        return written


WRITERS: dict[str, type[OnlineWriter]] = {
    "sqlite": SqliteWriter,
    "feature_repo.sqlite_online_store.SqliteOnlineStore": SqliteWriter,  # Feast's, same layout
    "redis": RedisWriter,
    "feature_repo.redis_online_store.RedisOnlineStore": RedisWriter,  # Feast's, same layout
}


def writer_for(online_store: OnlineStore, config: RepoConfig, view: FeatureView) -> OnlineWriter:
    """The bulk writer of the configured store, or Feast's own path where there is none."""
    store = config.online_store
    kind = WRITERS.get(store.type, FeastWriter)
    extra_sqlite_columns = getattr(store, "vector_enabled", False) or getattr(
        store, "enable_openai_compatible_store", False
    )
    if kind is SqliteWriter and extra_sqlite_columns:
        kind = FeastWriter
    if kind is RedisWriter and getattr(store, "client", "redis") != "redis":
        kind = FeastWriter  # valkey-glide: another client API
    writer = kind(online_store, config, view)
    indexed = hasattr(online_store, "index_rows") and any(f.vector_index for f in view.features)
    if indexed and kind is not FeastWriter:  # Feast's own path goes through `online_write_batch`
        return IndexedWriter(writer)
    return writer
