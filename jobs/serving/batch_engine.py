"""This project's Feast batch engines: materialization in bounded record batches, one bulk
online write per batch, on one machine (`StreamingEngine`) or on a Ray cluster (`RayEngine`).

Feast's local engine collects a view's whole window into one Arrow table, converts every row to
protos and writes them in one call (about 26 KB of memory per 384-float row). The streaming
engine asks the offline store for the newest row per entity of the window, reads it as a stream
of record batches (`DeltaPullJob.iter_batches`: the Delta files a few batches at a time) and
hands each batch to the online store's bulk writer (`jobs.serving.online_writer`). Memory is that
of a batch (`materialization.online_write_batch_size` rows), whatever the size of the window.
The Ray engine does the same in Ray tasks, a task per Delta file (`DeltaPullJob.to_ray_dataset`).

Everything around the writes stays Feast's: `FeatureStore.materialize_incremental` picks the
window, calls the engine per view and records the window in the registry only once the engine
reports success, so a load that fails part-way (a batch refused, the store down) moves nothing
and is redone whole by the next run. An offline store whose jobs cannot stream is read with
`to_arrow()` and written in batches all the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import pyarrow as pa
from feast import Entity, FeatureView
from feast.infra.common.materialization_job import (
    MaterializationJob,
    MaterializationJobStatus,
    MaterializationTask,
)
from feast.infra.common.serde import SerializedArtifacts
from feast.infra.compute_engines.base import ComputeEngine
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import FeastConfigBaseModel
from feast.utils import _get_column_names

from jobs.serving.online_writer import writer_for

TYPE = "jobs.serving.batch_engine.StreamingEngine"
RAY_TYPE = "jobs.serving.batch_engine.RayEngine"
DEFAULT_BATCH_ROWS = 10_000


class StreamingEngineConfig(FeastConfigBaseModel):
    """`batch_engine:` settings of this engine; the batch size is Feast's own
    `materialization.online_write_batch_size`."""

    type: Literal["jobs.serving.batch_engine.StreamingEngine"] = TYPE


class StreamingEngine(ComputeEngine):
    """Materializes each view as a stream of record batches, one bulk online write per batch."""

    def update(
        self,
        project: str,
        views_to_delete: Sequence[Any],
        views_to_keep: Sequence[Any],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
    ) -> None:
        """Nothing to prepare: the engine runs in the materializing process."""

    def teardown_infra(self, project: str, fvs: Sequence[Any], entities: Sequence[Entity]) -> None:
        """Nothing to tear down."""

    def _materialize_one(
        self, registry: BaseRegistry, task: MaterializationTask, **kwargs: Any
    ) -> MaterializationJob:
        """Load one view's window; any failure comes back as the job's error, which Feast
        raises before it records the window."""
        view = task.feature_view
        job_id = f"{view.name}-{task.start_time}-{task.end_time}"
        try:
            self.write_window(registry, task)
        except Exception as exc:
            return LocalMaterializationJob(job_id, MaterializationJobStatus.ERROR, exc)
        return LocalMaterializationJob(job_id, MaterializationJobStatus.SUCCEEDED)

    def write_window(self, registry: BaseRegistry, task: MaterializationTask) -> int:
        """Write the newest row per entity of the task's window; returns the rows written."""
        view = task.feature_view
        if not isinstance(view, FeatureView) or not view.online or view.batch_source is None:
            return 0
        writer = writer_for(self.online_store, self.repo_config, view)
        written = 0
        for batch in self.batches(registry, task):
            written += writer.write(batch)
        self.finish(view)
        return written

    def finish(self, view: FeatureView) -> None:
        """Once a view's window is written: its vector index folds the new rows in (once, not
        per batch, since an index build is the costly part)."""
        finish = getattr(self.online_store, "finish_index", None)
        if finish is not None:
            finish(self.repo_config, view)

    def batches(
        self, registry: BaseRegistry, task: MaterializationTask
    ) -> Iterator[pa.RecordBatch]:
        """The window's newest rows per entity as record batches, columns named as the view
        names them (the source's field mapping applied)."""
        job, rows = self.pull(registry, task), self.batch_rows
        if hasattr(job, "iter_batches"):
            stream: Iterator[pa.RecordBatch] = job.iter_batches(rows)
        else:
            stream = iter(job.to_arrow().to_batches(max_chunksize=rows))
        mapping = task.feature_view.batch_source.field_mapping
        for batch in stream:
            if batch.num_rows:
                yield _renamed(batch, mapping)

    @property
    def batch_rows(self) -> int:
        """Rows per online write: Feast's `materialization.online_write_batch_size`."""
        rows = self.repo_config.materialization_config.online_write_batch_size
        return rows or DEFAULT_BATCH_ROWS

    def pull(self, registry: BaseRegistry, task: MaterializationTask) -> RetrievalJob:
        """The offline store's job for the newest row per entity of the task's window."""
        view = task.feature_view
        entities = [registry.get_entity(name, task.project) for name in view.entities]
        join_keys, features, timestamp, created = _get_column_names(view, entities)
        return self.offline_store.pull_latest_from_table_or_query(
            config=self.repo_config,
            data_source=view.batch_source,
            join_key_columns=join_keys,
            feature_name_columns=features,
            timestamp_field=timestamp,
            created_timestamp_column=created,
            start_date=task.start_time,
            end_date=task.end_time,
        )


def _renamed(batch: pa.RecordBatch, mapping: dict[str, str]) -> pa.RecordBatch:
    # The source's columns under the view's names.
    if not mapping:
        return batch
    return batch.rename_columns([mapping.get(name, name) for name in batch.schema.names])


class RayEngineConfig(FeastConfigBaseModel):
    """`batch_engine:` settings of the Ray engine, named as Feast's Ray engine names them."""

    type: Literal["jobs.serving.batch_engine.RayEngine"] = RAY_TYPE
    ray_address: str | None = None  # None: `$RAY_ADDRESS`, else a local Ray
    write_concurrency: int = 1  # concurrent write tasks: 1 for a SQLite file


class RayEngine(StreamingEngine):
    """Materializes each view in Ray tasks, a task per Delta file, one bulk online write per
    batch; a write that fails fails the view's load.

    Why not Feast's Ray engine: in Feast 0.67 its write step swallows every online-write error
    (`write_to_online_store` and `safe_batch_processor` in `compute_engines/ray/utils.py` catch
    `Exception`, log it in the worker and go on), so the job reports success, Feast records the
    window, and the rows never reach the store — for good, since the next run starts after it.
    """

    def __init__(self, **kwargs: Any) -> None:
        from feast.infra.ray_initializer import ensure_ray_initialized  # imports Ray: only here

        super().__init__(**kwargs)
        ensure_ray_initialized(self.repo_config.batch_engine)

    def write_window(self, registry: BaseRegistry, task: MaterializationTask) -> int:
        """Write the newest row per entity of the window from Ray tasks; returns the rows
        written. Any task's error is raised here, after Ray Data's retries."""
        view = task.feature_view
        if not isinstance(view, FeatureView) or not view.online or view.batch_source is None:
            return 0
        job = self.pull(registry, task)
        if not hasattr(job, "to_ray_dataset"):
            return super().write_window(registry, task)
        written = job.to_ray_dataset().map_batches(
            _write_rows,
            fn_kwargs={
                "artifacts": SerializedArtifacts.serialize(view, self.repo_config),
                "mapping": view.batch_source.field_mapping,
            },
            batch_size=self.batch_rows,
            batch_format="pyarrow",
            concurrency=self.repo_config.batch_engine.write_concurrency,
        )
        rows = sum(int(row["rows"]) for row in written.take_all())
        self.finish(view)
        return rows


def _write_rows(
    table: pa.Table, artifacts: SerializedArtifacts, mapping: dict[str, str]
) -> pa.Table:
    """In a Ray task: one batch of the window written with the store's bulk writer; returns the
    rows the store took. Errors propagate, so Ray Data fails the job with them."""
    if not table.num_rows:
        return pa.table({"rows": [0]})
    view, online_store, _, config = artifacts.unserialize()
    writer = writer_for(online_store, config, view)
    rows = sum(writer.write(_renamed(b, mapping)) for b in table.to_batches() if b.num_rows)
    return pa.table({"rows": [rows]})
