"""`DeltaPullJob`: a materialization pull as streamed batches, a Ray dataset, or one table."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from feast.data_source import DataSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.repo_config import RepoConfig

from feature_repo.delta_offline.pulls import (
    KEYS_BATCH_ROWS,
    Pull,
    drop_superseded,
    stream,
    superseded_per_file,
)
from feature_repo.delta_offline.tables import (
    PinnedTable,
    checked_columns,
    empty_table,
    open_delta_table,
    pinned,
    refuse_write,
)
from feature_repo.errors import DeltaTableNotFoundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FileRead:
    """What a Ray task needs to read some of a table's files on any node: plain values only."""

    table: PinnedTable
    pull: Pull
    superseded: dict[str, pa.Table]  # file path → its rows to drop (join keys and timestamps)


def _read_delta_files(files: pa.Table, read: _FileRead) -> pa.Table:
    """In a Ray task: the pull's rows of the files named in `files`, superseded rows dropped.

    The task opens the table at the driver's version, so it reads the very snapshot the driver
    planned.
    """
    wanted = set(files.column("path").to_pylist())
    dataset = read.table.dataset()
    parts = [
        drop_superseded(
            pa.Table.from_batches(
                read.pull.read_file(dataset, fragment, read.pull.columns, KEYS_BATCH_ROWS),
                schema=pa.schema([dataset.schema.field(c) for c in read.pull.columns]),
            ),
            read.superseded.get(fragment.path),
            read.pull,
        )
        for fragment in dataset.get_fragments()
        if fragment.path in wanted
    ]
    schema = pa.schema([dataset.schema.field(c) for c in read.pull.columns])
    return pa.concat_tables(parts) if parts else schema.empty_table()


class DeltaPullJob(RetrievalJob):
    """A materialization pull from a Delta table, in three shapes: streamed record batches
    (`iter_batches`, what the streaming engine writes from), a Ray dataset (`to_ray_dataset`,
    what the Ray engine writes from, read by tasks on every node), and Feast's `to_arrow`
    (the whole window in one table, for callers that want that)."""

    def __init__(self, config: RepoConfig, data_source: DataSource, pull: Pull) -> None:
        super().__init__()
        self._config = config
        self._source = data_source
        self._pull = pull

    def iter_batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of at most `rows`; memory does not grow with the table."""
        return stream(self._config, self._source, self._pull, rows)

    def _empty(self) -> pa.Table:
        return empty_table(self._pull.columns, self._pull.order)

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        batches = list(self.iter_batches(KEYS_BATCH_ROWS))
        return pa.Table.from_batches(batches) if batches else self._empty()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def to_ray_dataset(self) -> Any:
        """The rows as a Ray dataset whose blocks Ray tasks read from the Delta files, one task
        per file: what the Ray engines hand to their distributed online writes.

        Feast's default would collect `to_arrow()` on the driver. Here the driver reads only the
        log and, for the newest row per entity, pass one over keys and timestamps (bounded by
        DuckDB's memory limit); the superseded rows it finds travel with the tasks, which drop
        them, so every entity arrives once and a per-block dedup has nothing left to get wrong
        across blocks.
        """
        from feast.infra.ray_initializer import get_ray_wrapper

        ray_data = get_ray_wrapper()
        try:
            table = open_delta_table(self._config, self._source)  # one snapshot for all tasks
        except DeltaTableNotFoundError as e:
            logger.warning("%s; nothing to materialize from it yet", e.message)
            return ray_data.from_arrow(self._empty())
        checked_columns(table, self._source, self._pull.columns)
        dataset = table.to_pyarrow_dataset()
        files = list(dataset.get_fragments())
        if not files:
            return ray_data.from_arrow(self._empty())
        paths = [fragment.path for fragment in files]
        superseded: dict[str, pa.Table] = {}
        with superseded_per_file(dataset, files, self._pull) as per_file:
            if per_file is not None:
                pairs = zip(paths, per_file, strict=True)
                superseded = {path: rows for path, rows in pairs if rows.num_rows}
        read = _FileRead(pinned(self._config, self._source, table), self._pull, superseded)
        listing = ray_data.from_pandas([pd.DataFrame({"path": [path]}) for path in paths])
        return listing.map_batches(
            _read_delta_files, fn_kwargs={"read": read}, batch_size=1, batch_format="pyarrow"
        )

    @property
    def full_feature_names(self) -> bool:
        """Materialization names features as the view does."""
        return False

    @property
    def on_demand_feature_views(self) -> list[Any]:
        """None: a pull reads one source."""
        return []

    @property
    def metadata(self) -> RetrievalMetadata | None:
        """None: Feast asks it of training sets, not of pulls."""
        return None

    def persist(self, *args: Any, **kwargs: Any) -> None:
        """Refused: this store writes nothing."""
        refuse_write()


def pull_job(
    config: RepoConfig,
    data_source: DataSource,
    join_key_columns: list[str],
    feature_name_columns: list[str],
    timestamp_field: str,
    created_timestamp_column: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
    *,
    latest: bool,
) -> DeltaPullJob:
    """Both materialization pulls: the columns once each, named as in the table."""
    timestamps = [c for c in (timestamp_field, created_timestamp_column) if c]
    columns = tuple(dict.fromkeys([*join_key_columns, *feature_name_columns, *timestamps]))
    pull = Pull(
        join_keys=tuple(join_key_columns),
        columns=columns,
        timestamp_field=timestamp_field,
        created_timestamp_column=created_timestamp_column,
        start=start_date,
        end=end_date,
        latest=latest,
    )
    return DeltaPullJob(config, data_source, pull)
