"""Training sets: a point-in-time join of entity rows against the signal tables' Delta history.

    signals training-set labels.parquet --service recommendations --out train/ [--engine ray]

Each entity row (`content_id`, `event_timestamp`, any label columns) gets the values that serving
returned at that moment: the newest row at or before the timestamp, within the signal's TTL, the
newest `created_timestamp` breaking ties. Feast's `get_historical_features` builds the join; the
offline store reads the tables through their Delta log, so compaction and vacuum never change a
training set.

Of any size: the offline store joins narrow rows on a memory-bounded DuckDB that spills to disk,
then streams each view's features one history file at a time (`feature_readers`); here those
unordered batches are put back in the entity file's order by an external distribution sort
(`Buckets`) and written as Parquet parts (`part-000000.parquet`, ...) that a directory read
returns in that order. On Ray (`write_partitioned`) each task does the same for one partition of
the entity keys. The history and the result are never held in one process.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import JOIN_KEY, get_signal
from features.registry import service_signals
from jobs.serving.errors import (
    EntityFileError,
    FeatureRequestError,
    ServingConfigError,
    TrainingSetOutputError,
)
from jobs.serving.store import apply_repo
from jobs.settings import Settings

ENGINES = ("local", "ray")  # where the point-in-time join runs: one process, or Ray tasks
TIME_COLUMN = "event_timestamp"
ARROW_STRING = pd.StringDtype("pyarrow")
ORDER_COLUMN = "__entity_row__"  # the entity file's row number, dropped before writing
PART_ROWS = 100_000  # rows per part file: ≈ 150 MB of 384-d embeddings; what pass two holds
BATCH_ROWS = 16_384  # rows fetched from the join at a time
RAY_MIN_PARTITIONS = 4  # key partitions of the Ray join at least: work for every node
MAX_BUCKETS = 1_000  # open streams while distributing; beyond it buckets hold several parts
PART_NAME = "part-{:06d}.parquet"  # zero-padded: name order is row order
_PART = re.compile(r"part-\d{6}\.parquet")


@dataclass(frozen=True)
class TrainingSet:
    """Where a training set was written and what it holds."""

    path: Path
    rows: int
    features: list[str]  # full names, `view__feature`
    filled: dict[str, int]  # feature → rows with a value at their timestamp


def read_entities(path: Path) -> pd.DataFrame:
    """Entity rows from Parquet or CSV, with `event_timestamp` as UTC; a clear error otherwise.

    Why Arrow-backed strings: the entity rows are what the training set holds in memory, and a
    Python object per content ID costs ≈ 70 bytes where Arrow's buffers cost ≈ 20.
    """
    if not path.exists():
        raise EntityFileError(f"no entity file at {path}")
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            strings = {pa.string(): ARROW_STRING, pa.large_string(): ARROW_STRING}
            frame = pq.read_table(path).to_pandas(
                types_mapper=strings.get, self_destruct=True, split_blocks=True
            )
    except Exception as exc:  # pyarrow / pandas parse errors: the file is not what it says
        raise EntityFileError(f"cannot read {path} as {path.suffix or 'parquet'}: {exc}") from exc
    missing = [c for c in (JOIN_KEY, TIME_COLUMN) if c not in frame.columns]
    if missing:
        raise EntityFileError(
            f"{path} lacks {', '.join(missing)}",
            hint=f"an entity file has one row per example: {JOIN_KEY}, {TIME_COLUMN}, any labels",
        )
    try:
        frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    except (ValueError, TypeError) as exc:
        raise EntityFileError(f"{path}: {TIME_COLUMN} is not a timestamp: {exc}") from exc
    if frame[JOIN_KEY].dtype != ARROW_STRING:
        frame[JOIN_KEY] = frame[JOIN_KEY].astype(str).astype(ARROW_STRING)
    return frame


def build_training_set(
    settings: Settings,
    entities: Path,
    out: Path,
    *,
    service: str | None = None,
    signals: Sequence[str] | None = None,
    part_rows: int = PART_ROWS,
    engine: str | None = None,
) -> TrainingSet:
    """Join `entities` point-in-time against a feature service's (or some signals') history and
    write a Parquet dataset of parts to the folder `out`.

    Why parts and a stream: a training set is as large as the entity file times the features
    (≈ 1.5 KB a row for a 384-d embedding), so one file built in memory caps it at what one
    process holds. The `local` engine (the settings' `training_set_engine` unless `engine` says
    otherwise) returns the rows in the entity file's order, within a part and across parts; the
    `ray` engine joins a partition of the entity keys per Ray task and writes each partition's
    parts, each in the entity file's order. An earlier training set at `out` (a folder of parts
    or a Parquet file) is replaced once the new one is complete; anything else there is refused.
    """
    engine = engine or settings.training_set_engine
    if engine not in ENGINES:
        raise ServingConfigError(
            f"unknown training-set engine {engine!r}",
            hint=f"set SIGNALS_TRAINING_SET_ENGINE (or --engine) to one of: {', '.join(ENGINES)}",
        )
    if (service is None) == (not signals):
        raise FeatureRequestError(
            "name a feature service (--service) or signals (--signal), not both"
        )
    if part_rows < 1:
        raise FeatureRequestError(f"part_rows must be at least 1, not {part_rows}")
    chosen = service_signals(service) if service else tuple(get_signal(s) for s in signals or ())
    _check_replaceable(out)
    frame = read_entities(entities)
    frame[ORDER_COLUMN] = range(len(frame))
    store = apply_repo(settings)
    features = (
        store.get_feature_service(service)
        if service
        else [f"{s.feature_view_name}:{f}" for s in chosen for f in s.features]
    )
    job = store.get_historical_features(entity_df=frame, features=features, full_feature_names=True)
    names = [f"{s.feature_view_name}__{f}" for s in chosen for f in s.features]
    with _replacing(out) as folder:
        partitioned = getattr(job, "write_partitioned", None)
        readers = getattr(job, "feature_readers", None)
        if engine == "ray" and len(frame):
            if not callable(partitioned):
                raise ServingConfigError("the configured offline store cannot join on Ray")
            written = partitioned(
                ORDER_COLUMN,
                folder / ".exchange",
                PartitionWriter(str(folder), names, part_rows),
                min_partitions=max(RAY_MIN_PARTITIONS, -(-len(frame) // part_rows)),
                ray_address=settings.ray_address,
            )
            shutil.rmtree(folder / ".exchange")
            rows, filled = _gather(folder, written)
        elif callable(readers):
            entity_rows = frame.drop(columns=[ORDER_COLUMN])
            stream = readers(ORDER_COLUMN, BATCH_ROWS)
            rows, filled = write_joined(stream, entity_rows, folder, names, part_rows)
        else:  # another offline store: collected, then written in parts
            ordered = job.to_arrow().sort_by(ORDER_COLUMN).to_reader(max_chunksize=BATCH_ROWS)
            rows, filled = write_parts(ordered, folder, names, part_rows)
    return TrainingSet(out, rows, names, filled)


def write_joined(
    readers: Iterable[pa.RecordBatchReader],
    frame: pd.DataFrame,
    folder: Path,
    features: Sequence[str],
    part_rows: int,
) -> tuple[int, dict[str, int]]:
    """The offline store's streamed features for the entity rows of `frame` (`ORDER_COLUMN` in
    the batches numbers them from 0), beside those rows in their order, as parts in `folder`;
    returns the rows written and each feature's rows with a value.

    Why one function: the local engine writes the whole training set with it, and every
    partition of the Ray engine writes its share with it.
    """
    buckets = Buckets(folder / ".buckets", len(frame), part_rows)
    buckets.distribute(readers)
    written = buckets.assemble(frame, folder, features)
    shutil.rmtree(folder / ".buckets")
    return written


@dataclass(frozen=True)
class PartitionWriter:
    """What each Ray join task calls with its partition's features (plain values: it travels
    to the task): its parts into a hidden folder of its own, which `_gather` then moves."""

    folder: str
    features: list[str]
    part_rows: int

    def __call__(
        self, readers: Iterator[pa.RecordBatchReader], frame: pd.DataFrame, partition: int
    ) -> tuple[int, int, dict[str, int]]:
        """Write the partition's parts; returns the partition, its rows and filled counts."""
        target = Path(self.folder) / f".partition-{partition:06d}"
        target.mkdir()
        rows, filled = write_joined(readers, frame, target, self.features, self.part_rows)
        return partition, rows, filled


def _gather(
    folder: Path, written: list[tuple[int, int, dict[str, int]]]
) -> tuple[int, dict[str, int]]:
    # Each partition's parts, in partition order, renamed into one run of part names.
    hidden = [folder / f".partition-{partition:06d}" for partition, _, _ in sorted(written)]
    for part, path in enumerate([p for h in hidden for p in sorted(h.iterdir())]):
        path.rename(folder / PART_NAME.format(part))
    filled: dict[str, int] = {}
    for h, (_, _, counts) in zip(hidden, sorted(written), strict=True):
        h.rmdir()
        filled.update({name: filled.get(name, 0) + n for name, n in counts.items()})
    return sum(rows for _, rows, _ in written), filled


class Buckets:
    """An external distribution sort of the joined features by entity row, in two passes.

    Why not one sort: the features arrive in the history's order, and the wide rows are what
    must not be held or sorted in memory. Pass one appends each batch's rows to the bucket of
    their entity rows (an Arrow IPC stream per bucket and feature view, written as it comes);
    pass two reads one bucket at a time, places its rows by entity row beside the entity
    columns and writes its parts. Memory is one bucket: `part_rows` rows until there would be
    more than `MAX_BUCKETS` buckets, then `rows / MAX_BUCKETS` (each bucket several parts).
    """

    def __init__(self, folder: Path, rows: int, part_rows: int) -> None:
        self.folder, self.rows, self.part_rows = folder, rows, part_rows
        per_bucket = -(-rows // MAX_BUCKETS)
        self.span = part_rows * max(1, -(-per_bucket // part_rows))  # whole parts per bucket
        self.count = max(1, -(-rows // self.span))
        self.schemas: list[pa.Schema] = []  # each view's feature columns
        folder.mkdir()

    def _path(self, view: int, bucket: int) -> Path:
        return self.folder / f"{view:03d}-{bucket:06d}.arrows"

    def distribute(self, readers: Iterable[pa.RecordBatchReader]) -> None:
        """Pass one: every view's batches into their buckets, one open stream per bucket."""
        for view, reader in enumerate(readers):
            self.schemas.append(reader.schema.remove(reader.schema.get_field_index(ORDER_COLUMN)))
            with contextlib.ExitStack() as files:
                writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
                for batch in reader:
                    for bucket, piece in self._split(batch):
                        if bucket not in writers:
                            sink = files.enter_context(
                                pa.OSFile(str(self._path(view, bucket)), "wb")
                            )
                            writers[bucket] = files.enter_context(
                                pa.ipc.new_stream(sink, batch.schema)
                            )
                        writers[bucket].write_batch(piece)

    def _split(self, batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
        buckets = batch.column(ORDER_COLUMN).to_numpy() // self.span
        if len(buckets) and buckets.min() == buckets.max():
            yield int(buckets[0]), batch
            return
        order = np.argsort(buckets, kind="stable")
        batch, buckets = batch.take(pa.array(order)), buckets[order]
        edges = np.flatnonzero(np.diff(buckets)) + 1
        for start, stop in zip([0, *edges], [*edges, len(buckets)], strict=True):
            yield int(buckets[start]), batch.slice(start, stop - start)

    def assemble(
        self, frame: pd.DataFrame, folder: Path, features: Sequence[str]
    ) -> tuple[int, dict[str, int]]:
        """Pass two: each bucket's rows in entity order, written as parts; rows and counts."""
        filled: dict[str, int] = {}
        part = 0
        for bucket in range(self.count):
            start = bucket * self.span
            table = _entity_table(frame.iloc[start : start + self.span])
            for view, schema in enumerate(self.schemas):
                for name, column in zip(
                    schema.names, self._placed(view, bucket, start, table.num_rows), strict=True
                ):
                    table = table.append_column(schema.field(name), column)
            _count_filled(table, features, filled)
            for offset in range(0, max(table.num_rows, 1), self.part_rows):
                piece = table.slice(offset, self.part_rows)
                pq.write_table(piece, folder / PART_NAME.format(part), row_group_size=BATCH_ROWS)
                part += 1
            del table
            pa.default_memory_pool().release_unused()  # hand the bucket's memory back
        return self.rows, filled

    def _placed(self, view: int, bucket: int, start: int, rows: int) -> list[pa.ChunkedArray]:
        # The view's feature columns for entity rows start … start + rows, null where the join
        # found no history row; a row found twice (a duplicated history row) keeps one value.
        schema, path = self.schemas[view], self._path(view, bucket)
        if not path.exists():
            return [pa.chunked_array([pa.nulls(rows, f.type)], f.type) for f in schema]
        with pa.memory_map(str(path)) as source:
            found = pa.ipc.open_stream(source).read_all()
        where = np.full(rows, -1, dtype=np.int64)
        where[found.column(ORDER_COLUMN).to_numpy() - start] = np.arange(found.num_rows)
        take = pa.array(where, mask=where < 0)
        return [found.column(f.name).take(take) for f in schema]


def _entity_table(frame: pd.DataFrame) -> pa.Table:
    # The entity columns as the join returned them: timestamps in microseconds, as Delta has.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            us = pa.timestamp("us", tz=field.type.tz)
            table = table.set_column(i, field.with_type(us), table.column(i).cast(us))
    return table


def write_parts(
    batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader,
    folder: Path,
    features: Sequence[str],
    part_rows: int = PART_ROWS,
) -> tuple[int, dict[str, int]]:
    """Write ordered batches as `part-NNNNNN.parquet` files of at most `part_rows` rows; returns
    the rows written and, for each of `features` present, the rows with a value.

    Why here and not `COPY ... TO`: the counts come from the same pass that writes, so nothing is
    read twice, and the part names (hence a directory read's order) are ours, not the engine's.
    """
    writer: pq.ParquetWriter | None = None
    parts = rows = in_part = 0
    filled: dict[str, int] = {}
    schema: pa.Schema | None = None
    for batch in batches:
        if ORDER_COLUMN in batch.schema.names:
            batch = batch.drop_columns([ORDER_COLUMN])
        schema = schema or batch.schema
        _count_filled(batch, features, filled)
        offset = 0
        while offset < batch.num_rows:
            if writer is None:
                writer = pq.ParquetWriter(folder / PART_NAME.format(parts), schema)
            piece = batch.slice(offset, min(part_rows - in_part, batch.num_rows - offset))
            writer.write_batch(piece)
            offset += piece.num_rows
            in_part += piece.num_rows
            rows += piece.num_rows
            if in_part == part_rows:
                writer.close()
                writer, parts, in_part = None, parts + 1, 0
    if writer is not None:
        writer.close()
    elif rows == 0 and schema is not None:  # no rows: one empty part keeps the columns
        pq.write_table(schema.empty_table(), folder / PART_NAME.format(0))
    return rows, filled


def _count_filled(
    rows: pa.Table | pa.RecordBatch, features: Sequence[str], filled: dict[str, int]
) -> None:
    # Add to `filled` each feature's rows with a value (the features `rows` holds).
    for name in features:
        if name in rows.schema.names:
            filled[name] = filled.get(name, 0) + rows.num_rows - rows.column(name).null_count


def _check_replaceable(out: Path) -> None:
    # Only an earlier training set is replaced: a Parquet file (the old one-file form) or a
    # folder of parts. A typo must not delete someone's folder.
    if not out.exists() or (out.is_file() and out.suffix == ".parquet"):
        return
    if out.is_dir() and all(_PART.fullmatch(p.name) for p in out.iterdir()):
        return
    raise TrainingSetOutputError(
        f"{out} exists and is not a training set: not replacing it",
        hint="name a new folder, or an earlier training set's folder to replace it",
    )


@contextlib.contextmanager
def _replacing(out: Path) -> Iterator[Path]:
    # Parts go to a hidden sibling folder that takes `out`'s place only once complete, so a
    # failed or interrupted build never leaves half a training set where a reader looks.
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _check_replaceable(out)
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    staging.rename(out)
