"""The point-in-time join on a Ray cluster: entity rows and history hash-partitioned by entity
key, each partition joined by `plan_join` (the local engine's code) in its own task.

Two stages of Ray Data tasks, which Ray Data spreads over the nodes (its default strategy).
Split: a task per history file reads the file's needed columns at the driver's pinned version and appends each row to its partition's
Parquet file in a scratch folder (the driver writes the entity rows' partitions the same way).
Join: a task per partition replays the join on its entity rows against its history files and
hands the streamed features to the caller's `write_part`, which writes that partition's part of
the result. No process holds the history or the result: a task holds one history file while
splitting, one partition while joining. The scratch folder is the exchange, so it must be a
folder every node reaches (as the training set's output folder must be).

Ray comes through Feast's Ray initializer and wrapper, as Feast's own Ray engine uses it.
"""

from __future__ import annotations

import math
import pickle
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import dill
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from feast.feature_view import FeatureView
from feast.infra.registry.base_registry import BaseRegistry
from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FeatureViewProto
from ibis.backends import BaseBackend

from feature_repo.delta_offline.retrieval import DeltaRetrievalJob, JoinRequest, plan_join
from feature_repo.delta_offline.snapshots import Snapshot, ViewColumns
from feature_repo.delta_offline.tables import PinnedTable
from feature_repo.errors import UnsupportedOperationError

T = TypeVar("T")
# A partition's part of the result: (feature readers, the partition's entity rows, partition).
PartWriter = Callable[[Iterator[pa.RecordBatchReader], pd.DataFrame, int], T]
HISTORY_ROWS_PER_PARTITION = 2_000_000  # ≈ 100 MB of narrow rows a join task works on
SPLIT_BATCH_ROWS = 65_536


def partition_of(keys: list[pa.Array | pa.ChunkedArray], partitions: int) -> np.ndarray:
    """Each row's partition from its key columns: a stable hash, the same in every process, for
    entity rows and history rows alike."""
    hashed = np.zeros(len(keys[0]), dtype=np.uint64)
    for column in keys:
        values = np.asarray(column.to_pylist(), dtype=object)
        hashed = hashed * np.uint64(1_000_003) + pd.util.hash_array(values)
    return (hashed % np.uint64(partitions)).astype(np.int64)


@dataclass(frozen=True)
class _Source:
    """One source's snapshot as the tasks read it."""

    table: PinnedTable
    columns: list[str]  # source names
    keys: list[str]  # its join-key columns, source names, in the entity key's order
    schema: pa.Schema  # of `columns`
    files: int


@dataclass(frozen=True)
class _Plan:
    """Everything a task needs, in plain values: the request (the config pickled with dill and
    the views as protos, as Feast's Ray engine ships them), the sources and the folder."""

    config: bytes
    views: list[bytes]
    projections: bytes  # a proto leaves a view's projection out (a feature service's aliases)
    view_sources: list[int]  # each view's source index
    feature_refs: list[str]
    project: str
    full_feature_names: bool
    filter_by_created_timestamp: bool
    sources: list[_Source]
    partitions: int
    scratch: str

    def history_folder(self, source: int, partition: int) -> Path:
        """Where partition `partition` of source `source`'s history lies."""
        return Path(self.scratch) / f"source-{source:03d}" / f"part-{partition:06d}"

    def entities_file(self, partition: int) -> Path:
        """Where partition `partition` of the entity rows lies."""
        return Path(self.scratch) / "entities" / f"part-{partition:06d}.parquet"

    def request(self) -> JoinRequest:
        """The join request, rebuilt in the task."""
        views = []
        for raw, projection in zip(self.views, dill.loads(self.projections), strict=True):
            proto = FeatureViewProto()
            proto.ParseFromString(raw)
            view = FeatureView.from_proto(proto)
            view.projection = projection
            views.append(view)
        return JoinRequest(
            dill.loads(self.config),
            views,
            self.feature_refs,
            self.project,
            self.full_feature_names,
            self.filter_by_created_timestamp,
        )


class _NoOnDemandViews:
    """The registry a partition's join asks for on-demand views: there are none (the driver
    refused them), so no task opens the real registry."""

    def list_on_demand_feature_views(self, *_args: Any, **_kwargs: Any) -> list[Any]:
        return []


class PartitionableJob(DeltaRetrievalJob):
    """A point-in-time join that can also run partitioned on Ray (`write_partitioned`)."""

    def write_partitioned(
        self,
        row_id: str,
        scratch: Path,
        write_part: PartWriter[T],
        min_partitions: int = 2,
        ray_address: str | None = None,
    ) -> list[T]:
        """Join in Ray tasks, a partition of the entity keys each, and return what `write_part`
        returned for each non-empty partition, in partition order.

        Why: one machine's join streams but is one process; on a cluster the history and the
        entity rows are cut by key so that every node joins its share with the same code. Each
        partition's entity rows reach `write_part` in the entity frame's order, numbered again
        from 0 in `row_id`, the column the readers' batches carry.
        """
        if not isinstance(self.entity_df, pd.DataFrame) or self.on_demand_feature_views:
            raise UnsupportedOperationError(
                "the Ray join takes an entity DataFrame and feature views only",
                hint="use the local engine for a SQL entity query or on-demand views",
            )
        from feast.infra.compute_engines.ray.config import RayComputeEngineConfig
        from feast.infra.ray_initializer import ensure_ray_initialized, get_ray_wrapper

        ensure_ray_initialized(RayComputeEngineConfig(ray_address=ray_address))
        plan = self._plan(scratch, min_partitions)
        _write_entity_partitions(plan, self.entity_df, self._entity_keys())
        ray_data = get_ray_wrapper()
        files = [(s, f) for s, source in enumerate(plan.sources) for f in range(source.files)]
        if files:
            split = ray_data.from_pandas([pd.DataFrame({"s": [s], "f": [f]}) for s, f in files])
            split.map_batches(
                _split_history, fn_kwargs={"plan": plan}, batch_size=1,
                batch_format="pyarrow", num_cpus=1,
            ).take_all()  # fmt: skip
        listing = [pd.DataFrame({"p": [p]}) for p in range(plan.partitions)]
        joined = ray_data.from_pandas(listing).map_batches(
            _join_partition, fn_kwargs={"plan": plan, "row_id": row_id, "write_part": write_part},
            batch_size=1, batch_format="pyarrow", num_cpus=1,
        ).take_all()  # fmt: skip
        done = sorted((row["p"], pickle.loads(row["result"])) for row in joined if row["result"])
        return [result for _, result in done]

    def _entity_keys(self) -> list[str]:
        # The entity columns every view joins on: what the rows are partitioned by.
        keys = {tuple(cols.keys.values()) for cols in self.views}
        if len(keys) != 1:
            raise UnsupportedOperationError(
                "the Ray join partitions by one entity key, and these views join on several",
                details=[", ".join(k) for k in sorted(keys)],
                hint="join views of one entity at a time, or use the local engine",
            )
        return list(next(iter(keys)))

    def _plan(self, scratch: Path, min_partitions: int) -> _Plan:
        order: dict[int, int] = {}
        sources: list[_Source] = []
        for cols in self.views:
            if id(cols.source) in order:
                continue
            snapshot = self.snapshots[id(cols.source)]
            assert snapshot.table is not None  # the driver's snapshots are Delta tables
            order[id(cols.source)] = len(sources)
            schema = pa.schema([snapshot.dataset.schema.field(c) for c in snapshot.columns])
            keys = [cols.to_source(k) for k in cols.keys]
            sources.append(
                _Source(snapshot.table, snapshot.columns, keys, schema, len(snapshot.fragments))
            )
        history = max(self.snapshots[i].dataset.count_rows() for i in order)
        partitions = max(min_partitions, math.ceil(history / HISTORY_ROWS_PER_PARTITION))
        request = self.request
        return _Plan(
            config=dill.dumps(request.config),
            views=[v.to_proto().SerializeToString() for v in request.feature_views],
            projections=dill.dumps([v.projection for v in request.feature_views]),
            view_sources=[order[id(cols.source)] for cols in self.views],
            feature_refs=request.feature_refs,
            project=request.project,
            full_feature_names=request.full_feature_names,
            filter_by_created_timestamp=request.filter_by_created_timestamp,
            sources=sources,
            partitions=partitions,
            scratch=str(scratch),
        )


def _write_entity_partitions(plan: _Plan, frame: pd.DataFrame, keys: list[str]) -> None:
    # The driver holds the entity rows anyway (≈ 100 bytes a row): each partition's rows, in
    # the frame's order, to its file.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    where = partition_of([table.column(k) for k in keys], plan.partitions)
    plan.entities_file(0).parent.mkdir(parents=True, exist_ok=True)
    for p in range(plan.partitions):
        pq.write_table(table.filter(pa.array(where == p)), plan.entities_file(p))


def _split_history(batch: pa.Table, plan: _Plan) -> pa.Table:
    """In a Ray task: one history file's rows, each appended to its partition's Parquet file."""
    (index,), (file,) = batch.column("s").to_pylist(), batch.column("f").to_pylist()
    source = plan.sources[index]
    dataset = source.table.dataset()
    scan = ds.Scanner.from_fragment(
        list(dataset.get_fragments())[file],
        schema=dataset.schema,
        columns=source.columns,
        batch_size=SPLIT_BATCH_ROWS,
    )
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for rows in scan.to_batches():
            where = partition_of([rows.column(k) for k in source.keys], plan.partitions)
            for p in np.unique(where).tolist():
                if p not in writers:
                    folder = plan.history_folder(index, p)
                    folder.mkdir(parents=True, exist_ok=True)
                    path = folder / f"file-{file:06d}.parquet"
                    writers[p] = pq.ParquetWriter(path, source.schema)
                piece = pa.Table.from_batches([rows.filter(pa.array(where == p))])
                writers[p].write_table(piece.cast(source.schema))
    finally:
        for writer in writers.values():
            writer.close()
    return pa.table({"s": [index], "f": [file], "partitions": [len(writers)]})


def _join_partition(
    batch: pa.Table, plan: _Plan, row_id: str, write_part: PartWriter[T]
) -> pa.Table:
    """In a Ray task: the local engine's join of one partition's entity rows against its
    history, its result handed to `write_part`; returns what that returned, pickled."""
    (partition,) = batch.column("p").to_pylist()
    frame = pq.read_table(plan.entities_file(partition)).to_pandas()
    if frame.empty:
        return pa.table({"p": [partition], "result": pa.array([None], pa.binary())})
    frame[row_id] = np.arange(len(frame), dtype=np.int64)
    request = plan.request()
    sources = dict(
        zip((id(v.batch_source) for v in request.feature_views), plan.view_sources, strict=True)
    )

    def partition_snapshot(backend: BaseBackend, cols: ViewColumns, columns: list[str]) -> Snapshot:
        index = sources[id(cols.source)]
        source, folder = plan.sources[index], plan.history_folder(index, partition)
        paths = sorted(str(p) for p in folder.glob("*.parquet")) if folder.exists() else []
        if not paths:  # no history row of this partition: one empty file keeps the columns
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(source.schema.empty_table(), folder / "empty.parquet")
            paths = [str(folder / "empty.parquet")]
        return Snapshot.of_parquet(backend, paths, source.schema, columns)

    registry: BaseRegistry = _NoOnDemandViews()  # type: ignore[assignment]
    job = plan_join(request, frame, registry, partition_snapshot)
    result = write_part(job.feature_readers(row_id), frame.drop(columns=[row_id]), partition)
    for index in range(len(plan.sources)):
        shutil.rmtree(plan.history_folder(index, partition), ignore_errors=True)
    return pa.table({"p": [partition], "result": [pickle.dumps(result)]})
