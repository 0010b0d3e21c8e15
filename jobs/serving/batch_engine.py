"""Feast's batch engine for one machine, streaming: materialization in bounded record batches.

Feast's local engine collects a view's whole window into one Arrow table, converts every row to
protos and writes them in one call (about 26 KB of memory per 384-float row). This engine is
what `repo_config` names as `batch_engine` when the settings say `local`: it asks the offline
store for the newest row per entity of the window, reads it as a stream of record batches
(`DeltaPullJob.iter_batches`: the Delta files a few batches at a time) and hands each batch to
the online store's bulk writer (`jobs.serving.online_writer`). Memory is that of a batch
(`materialization.online_write_batch_size` rows), whatever the size of the window.

Everything around the writes stays Feast's: `FeatureStore.materialize_incremental` picks the
window, calls this engine per view and records the window in the registry only once the engine
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
from feast.infra.compute_engines.base import ComputeEngine
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import FeastConfigBaseModel
from feast.utils import _get_column_names

from jobs.serving.online_writer import writer_for

TYPE = "jobs.serving.batch_engine.StreamingEngine"
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
        return written

    def batches(
        self, registry: BaseRegistry, task: MaterializationTask
    ) -> Iterator[pa.RecordBatch]:
        """The window's newest rows per entity as record batches, columns named as the view
        names them (the source's field mapping applied)."""
        view = task.feature_view
        source = view.batch_source
        entities = [registry.get_entity(name, task.project) for name in view.entities]
        join_keys, features, timestamp, created = _get_column_names(view, entities)
        job = self.offline_store.pull_latest_from_table_or_query(
            config=self.repo_config,
            data_source=source,
            join_key_columns=join_keys,
            feature_name_columns=features,
            timestamp_field=timestamp,
            created_timestamp_column=created,
            start_date=task.start_time,
            end_date=task.end_time,
        )
        rows = self.repo_config.materialization_config.online_write_batch_size
        rows = rows or DEFAULT_BATCH_ROWS
        if hasattr(job, "iter_batches"):
            stream: Iterator[pa.RecordBatch] = job.iter_batches(rows)
        else:
            stream = iter(job.to_arrow().to_batches(max_chunksize=rows))
        mapping = source.field_mapping or {}
        for batch in stream:
            if mapping:
                names = [mapping.get(name, name) for name in batch.schema.names]
                batch = batch.rename_columns(names)
            if batch.num_rows:
                yield batch
