"""The point-in-time join: Feast's ibis join over narrow rows, then each view's features fetched
by locator, one history file at a time.

Point-in-time joins never load a table: each source is a lazy view in a private DuckDB with a
memory limit and a spill folder (`out_of_core_backend`), read from exactly the snapshot's files.
Feast's ibis join runs over narrow rows (keys, timestamps, and locators of the chosen history
row: its timestamps and its file); the features are fetched afterwards, one history file at a
time, so nothing wide is windowed, sorted or held. `DeltaRetrievalJob.feature_readers` streams
them for training sets of any size; `to_df()`/`to_arrow()` still collect the whole result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
from feast.feature_view import FeatureView
from feast.infra.offline_stores.ibis import IbisRetrievalJob, get_historical_features_ibis
from feast.infra.offline_stores.offline_store import RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from ibis.backends import BaseBackend
from ibis.expr.types import Table

from feature_repo.delta_offline.snapshots import (
    PIT_CREATED,
    PIT_FILE,
    PIT_TIMESTAMP,
    Snapshot,
    ViewColumns,
    feature_rows,
    found,
    historical_reader,
)
from feature_repo.delta_offline.tables import out_of_core_backend, quoted, refuse_write
from feature_repo.errors import UnsupportedOperationError

# How a join opens a view's snapshot: the Delta table on the driver, a partition's files in a
# Ray task.
SnapshotOpener = Callable[[BaseBackend, ViewColumns, list[str]], Snapshot]


@dataclass(frozen=True)
class JoinRequest:
    """What `get_historical_features` was asked, kept so that the same join can be replayed
    over a part of the entity rows and of the history (`ray_join`)."""

    config: RepoConfig
    feature_views: list[FeatureView]
    feature_refs: list[str]
    project: str
    full_feature_names: bool
    filter_by_created_timestamp: bool


class DeltaRetrievalJob(IbisRetrievalJob):
    """A point-in-time join in two steps: Feast's ibis join over narrow rows (keys, timestamps,
    locators), then each view's features fetched by locator. Both run lazily on the job's own
    memory-bounded DuckDB; `table` is the whole result as one ibis expression (for `to_df()` and
    `to_arrow()`), `feature_readers` the same features streamed one history file at a time."""

    def __init__(
        self,
        narrow: Table,
        views: list[ViewColumns],
        snapshots: dict[int, Snapshot],
        entity_columns: list[str],
        request: JoinRequest,
        entity_df: pd.DataFrame | str,
        **job: Any,
    ) -> None:
        self._narrow, self._views, self._snapshots = narrow, views, snapshots
        self.request, self.entity_df = request, entity_df
        result = narrow
        for cols in views:
            rows = feature_rows(snapshots[id(cols.source)].whole(), cols)
            joined = result.left_join(rows, found(result, rows, cols))
            result = joined.select(
                *[result[c] for c in result.columns], *[rows[c] for c in cols.features.values()]
            )
        features = [c for cols in views for c in cols.features.values()]
        super().__init__(table=result.select(*entity_columns, *features), **job)

    @property
    def views(self) -> list[ViewColumns]:
        """Each view's part of the join, in request order."""
        return self._views

    @property
    def snapshots(self) -> dict[int, Snapshot]:
        """Each source's snapshot (by `id` of the source), as the join reads it."""
        return self._snapshots

    def feature_readers(
        self, row_id: str, batch_rows: int = 16_384
    ) -> Iterator[pa.RecordBatchReader]:
        """One stream per feature view, in order: batches of `row_id` (an entity column) beside
        that view's feature columns, for the entity rows the join found a history row for, in
        no particular order. Start each stream after the previous one is consumed.

        Why this way: the features are the wide part (a 384-d embedding is 1.5 KB a row). The
        narrow join is computed once into a temporary table (DuckDB may spill it), sorted by
        history file; then each file's chosen rows are fetched by a join of that file alone with
        its few locators. Memory is one history file and one batch, whatever the history or the
        entity rows; nothing wide is sorted. A caller that wants the entity order places each row
        by `row_id` (the training set writes buckets by it).
        """
        if self.on_demand_feature_views:
            raise UnsupportedOperationError(
                "on-demand feature views cannot be streamed",
                hint="request the feature views and derive the columns from the batches",
            )
        backend = self._narrow.get_backend()
        wanted = [row_id]
        wanted += [c for v in self._views for c in (*v.keys.values(), *v.locators.values())]
        narrow_name = f"pit_{uuid.uuid4().hex}"
        # Stored by file, so that each file's rows are a few of the table's row groups.
        by_file = self._narrow.select(*dict.fromkeys(wanted)).order_by(
            *[v.locators[PIT_FILE] for v in self._views]
        )
        backend.raw_sql("SET preserve_insertion_order = true")
        narrow = backend.create_table(narrow_name, by_file, temp=True)
        backend.raw_sql("SET preserve_insertion_order = false")
        try:
            for cols in self._views:
                yield _ViewReader(narrow, cols, self._snapshots[id(cols.source)], row_id).read(
                    batch_rows
                )
        finally:  # DuckDB gives the narrow join's memory back before the caller goes on
            backend.raw_sql(f"DROP TABLE IF EXISTS {quoted(narrow_name)}")


class _ViewReader:
    """One view's features for the narrow join's rows, file by file: only the files the join
    chose a row from are read."""

    def __init__(self, narrow: Table, cols: ViewColumns, snapshot: Snapshot, row_id: str) -> None:
        self.narrow, self.cols, self.snapshot, self.row_id = narrow, cols, snapshot, row_id
        history = snapshot.dataset.schema
        self.schema = pa.schema(
            [pa.field(row_id, pa.int64())]
            + [
                pa.field(out, history.field(cols.to_source(f)).type)
                for f, out in cols.features.items()
            ]
        )
        self.file_column = narrow[cols.locators[PIT_FILE]]

    def read(self, batch_rows: int) -> pa.RecordBatchReader:
        """The view's `row_id` and feature columns, a file's chosen rows after another."""
        chosen = self.narrow.select(f=self.file_column).filter(self.file_column.notnull())
        files = sorted(chosen.distinct().to_pyarrow().column("f").to_pylist())

        def batches() -> Iterator[pa.RecordBatch]:
            for index in files:
                history_file = self.snapshot.file(index)
                if history_file is None:
                    yield from self._in_arrow(index, batch_rows)
                else:
                    yield from self._in_duckdb(index, history_file, batch_rows)

        return pa.RecordBatchReader.from_batches(self.schema, batches())

    def _in_duckdb(
        self, index: int, history_file: Table, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        # DuckDB's join builds on the file's few chosen rows and streams the file past them.
        backend, cols = self.narrow.get_backend(), self.cols
        chosen = self.narrow.filter(self.file_column == index)
        rows = feature_rows(history_file, cols)
        hits = chosen.inner_join(rows, found(chosen, rows, cols))
        hits = hits.select(chosen[self.row_id], *[rows[c] for c in cols.features.values()])
        name = f"pit_{uuid.uuid4().hex}"
        backend.create_view(name, hits)
        sql = f"SELECT * FROM {quoted(name)}"
        for batch in backend.con.sql(sql).to_arrow_reader(batch_rows):
            yield batch.cast(self.schema)
        for view in (name, history_file.get_name()):
            backend.raw_sql(f"DROP VIEW IF EXISTS {quoted(view)}")

    def _in_arrow(self, index: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
        # DuckDB cannot tell an Arrow scan's size and would build its join on the file's wide
        # rows: join each batch's keys with the chosen rows in Arrow instead, and take.
        cols = self.cols
        keys = {e: cols.to_source(k) for k, e in cols.keys.items()}
        stamps = {cols.locators[PIT_TIMESTAMP]: cols.to_source(cols.timestamp)}
        if cols.created:
            stamps[cols.locators[PIT_CREATED]] = cols.to_source(cols.created)
        chosen = self.narrow.filter(self.file_column == index).select(self.row_id, *keys, *stamps)
        names = [self.row_id, *keys.values(), *stamps.values()]
        chosen_rows = chosen.to_pyarrow().rename_columns(names)
        on = [*keys.values(), *stamps.values()]
        for batch in self.snapshot.file_batches(index, batch_rows):
            probe = pa.table(
                [*(batch.column(c) for c in on), pa.array(range(batch.num_rows), pa.int64())],
                names=[*on, "__row"],
            )
            typed = pa.schema([pa.field(self.row_id, pa.int64()), *(probe.field(c) for c in on)])
            matched = probe.join(chosen_rows.cast(typed), keys=on, join_type="inner")
            rows = matched.column("__row").combine_chunks()
            features = [batch.column(cols.to_source(f)).take(rows) for f in cols.features]
            yield pa.RecordBatch.from_arrays(
                [matched.column(self.row_id).combine_chunks(), *features], schema=self.schema
            )


def plan_join(
    request: JoinRequest,
    entity_df: pd.DataFrame | str,
    registry: BaseRegistry,
    open_snapshot: SnapshotOpener,
    job_type: type[DeltaRetrievalJob] = DeltaRetrievalJob,
) -> DeltaRetrievalJob:
    """The point-in-time join of `entity_df` against the request's views, planned lazily on a
    private, memory-bounded DuckDB over the snapshots `open_snapshot` gives.

    Why one function for every engine: the local join and each partition of the Ray join run
    this very code, so the semantics (TTL, ties, field mapping) cannot drift apart.
    """
    config, refs = request.config, request.feature_refs
    views = [ViewColumns.of(v, refs, request.full_feature_names) for v in request.feature_views]
    odfvs = OnDemandFeatureView.get_requested_odfvs(refs, request.project, registry)
    if any(o.mode == "substrait" for o in odfvs):
        raise UnsupportedOperationError("DeltaOfflineStore does not run substrait transforms")
    entity_columns = list(entity_df.columns) if isinstance(entity_df, pd.DataFrame) else []
    backend = out_of_core_backend()
    # Nothing here needs DuckDB's row order (the caller orders): let it stream and spill.
    backend.raw_sql("SET preserve_insertion_order = false")
    needed: dict[int, list[str]] = {}
    for cols in views:
        needed.setdefault(id(cols.source), []).extend(cols.source_columns())
    snapshots = {
        id(cols.source): open_snapshot(backend, cols, needed[id(cols.source)]) for cols in views
    }
    narrow = get_historical_features_ibis(
        config=config,
        feature_views=request.feature_views,
        feature_refs=[ref for cols in views for ref in cols.locator_refs],
        entity_df=entity_df,
        registry=registry,
        project=request.project,
        full_feature_names=True,
        data_source_reader=historical_reader(views, snapshots),
        data_source_writer=refuse_write,
        filter_by_created_timestamp=request.filter_by_created_timestamp,
    )
    metadata = narrow.metadata
    return job_type(
        narrow.table,
        views,
        snapshots,
        entity_columns or [c for c in narrow.table.columns if "____pit_" not in c],
        request,
        entity_df,
        on_demand_feature_views=odfvs,
        full_feature_names=request.full_feature_names,
        metadata=RetrievalMetadata(
            features=refs,
            keys=metadata.keys if metadata else [],
            min_event_timestamp=metadata.min_event_timestamp if metadata else None,
            max_event_timestamp=metadata.max_event_timestamp if metadata else None,
        ),
        data_source_writer=refuse_write,
        staging_location=config.offline_store.staging_location,
        staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
        repo_path=str(config.repo_path),
    )
