"""What the point-in-time join reads: each view's columns, and each source's snapshot as lazy
DuckDB views over exactly the snapshot's files.

The join carries locators instead of each history row's features: the row's timestamps and the
index of its file in the snapshot. With the join keys they find the row again afterwards, one
file at a time, so the join, its window and anything that spills stay a few dozen bytes wide
whatever the features (a 384-d embedding is 1.5 KB).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse
from urllib.request import url2pathname

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.repo_config import RepoConfig
from ibis.backends import BaseBackend
from ibis.expr.types import Table

from feature_repo.delta_offline.tables import (
    PinnedTable,
    checked_columns,
    open_delta_table,
    pinned,
    quoted,
)
from feature_repo.errors import DeltaSourceError

PIT_TIMESTAMP = "__pit_event_timestamp"
PIT_CREATED = "__pit_created_timestamp"
PIT_FILE = "__pit_file"

Reader = Callable[[DataSource, str], Table]


@dataclass(frozen=True)
class ViewColumns:
    """One feature view's part of a point-in-time join, in Feast's names (after field mapping)."""

    view: FeatureView
    keys: dict[str, str]  # history column → entity column
    features: dict[str, str]  # feature → its column in the result
    timestamp: str
    created: str | None

    @classmethod
    def of(cls, view: FeatureView, refs: list[str], full_names: bool) -> ViewColumns:
        """The columns `refs` ask of `view`, named as Feast's ibis join names them."""
        source = view.batch_source
        if source is None:
            raise DeltaSourceError(f"feature view '{view.name}' has no batch source")
        prefix = f"{view.projection.name_to_use()}:"
        names = [ref.removeprefix(prefix) for ref in refs if ref.startswith(prefix)]
        keys = view.projection.join_key_map or {e.name: e.name for e in view.entity_columns}
        return cls(
            view,
            dict(keys),
            {n: f"{cls._base(view)}__{n}" if full_names else n for n in names},
            source.timestamp_field,
            source.created_timestamp_column or None,
        )

    @staticmethod
    def _base(view: FeatureView) -> str:
        # The prefix of a full name: the alias, else the view's name (without a version).
        return view.projection.name_alias or view.name

    @property
    def source(self) -> DataSource:
        """The view's batch source (checked to exist in `of`)."""
        assert self.view.batch_source is not None
        return self.view.batch_source

    def to_source(self, name: str) -> str:
        """A column's name in the source, where the view's field mapping renames it."""
        reverse = {f: c for c, f in self.source.field_mapping.items()}
        return reverse.get(name, name)

    @property
    def stamps(self) -> list[str]:
        """The history's timestamp columns: event time, and write time where there is one."""
        return [self.timestamp, *([self.created] if self.created else [])]

    @property
    def locators(self) -> dict[str, str]:
        """Locator column of the history → its column in the narrow join (a full name)."""
        own = [PIT_TIMESTAMP, *([PIT_CREATED] if self.created else []), PIT_FILE]
        return {c: f"{self._base(self.view)}__{c}" for c in own}

    @property
    def locator_refs(self) -> list[str]:
        """The feature references that make Feast's join carry the locators."""
        return [f"{self.view.projection.name_to_use()}:{c}" for c in self.locators]

    def source_columns(self) -> list[str]:
        """Everything either step reads of the source, in the source's names."""
        return [self.to_source(c) for c in [*self.keys, *self.stamps, *self.features]]


def as_utc(value: ir.Value) -> ir.TimestampValue:
    """A timestamp column as UTC, whatever zone (or none) the file stored."""
    return value.cast(dt.Timestamp(timezone="UTC"))


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class Snapshot:
    """One source's snapshot, opened once per join so both steps read the same files, as lazy
    DuckDB views: the whole history (with each row's file index) or one file of it.

    Why two readers: DuckDB's own Parquet reader is the fast, memory-accounted one, but reads
    plain local files only; a table on object storage, or one whose files do not hold its rows
    as they are (partition columns, column mapping, deletion vectors), is read through
    delta-rs's Arrow dataset with little read-ahead. Either way only the snapshot's files are
    read: a Delta table's log (`of_delta`), or a partition's files (`of_parquet`).
    """

    def __init__(
        self,
        backend: BaseBackend,
        dataset: ds.Dataset,
        columns: list[str],
        local: list[str] | None,
        table: PinnedTable | None = None,
    ) -> None:
        self.backend, self.dataset, self.columns, self.local = backend, dataset, columns, local
        self.table = table  # the Delta table at the version read, when it is one
        self.fragments = list(dataset.get_fragments())

    @classmethod
    def of_delta(
        cls, backend: BaseBackend, config: RepoConfig, source: DataSource, columns: list[str]
    ) -> Snapshot:
        """The source's Delta table at its current (or pinned) version."""
        table = open_delta_table(config, source)
        checked = checked_columns(table, source, columns)
        dataset = table.to_pyarrow_dataset()
        local = _plain_local_files(table, list(dataset.get_fragments()), checked)
        return cls(backend, dataset, checked, local, pinned(config, source, table))

    @classmethod
    def of_parquet(
        cls, backend: BaseBackend, paths: list[str], schema: pa.Schema, columns: list[str]
    ) -> Snapshot:
        """Plain local Parquet files that each hold all of `columns` (a partition's history)."""
        return cls(backend, ds.dataset(paths, schema=schema, format="parquet"), columns, paths)

    def whole(self) -> Table:
        """Every row of the snapshot: the needed columns (source names) and `PIT_FILE`."""
        listed = ", ".join(quoted(c) for c in self.columns)
        name = f"delta_{uuid.uuid4().hex}"
        if self.local is not None:
            self.backend.raw_sql(
                f"CREATE TEMP VIEW {quoted(name)} AS SELECT {listed}, "
                f"CAST(file_index AS INTEGER) AS {PIT_FILE} "
                f"FROM read_parquet({_sql_list(self.local)}, union_by_name = true)"
            )
            return self.backend.table(name)
        scanner = self.dataset.scanner(
            columns=[*self.columns, "__fragment_index"],
            batch_size=8_192,
            batch_readahead=2,
            fragment_readahead=1,
        )
        self.backend.con.register(name, scanner)
        return self.backend.table(name).rename({PIT_FILE: "__fragment_index"})

    def file(self, index: int) -> Table | None:
        """The rows of the snapshot's file `index` alone as a DuckDB view (the needed columns,
        source names), or None where DuckDB cannot read it as plain Parquet holding them."""
        if self.local is None:
            return None
        path = self.local[index]
        if not set(self.columns) <= set(pq.read_schema(path).names):
            return None  # written before a column was added: the dataset fills it in
        listed = ", ".join(quoted(c) for c in self.columns)
        name = f"delta_{uuid.uuid4().hex}"
        self.backend.raw_sql(
            f"CREATE TEMP VIEW {quoted(name)} AS SELECT {listed} "
            f"FROM read_parquet({_sql_list([path])})"
        )
        return self.backend.table(name)

    def file_batches(self, index: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of the snapshot's file `index` alone through the dataset, a batch at a time."""
        data = ds.FileSystemDataset(
            [self.fragments[index]],
            self.dataset.schema,
            self.dataset.format,
            self.dataset.filesystem,
        )
        yield from data.to_batches(
            columns=self.columns, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1
        )


def _plain_local_files(
    table: DeltaTable, fragments: list[ds.Fragment], columns: list[str]
) -> list[str] | None:
    # The snapshot's files as local paths, in the dataset's fragment order, when DuckDB may read
    # them as plain Parquet holding every needed column; None otherwise.
    metadata = table.metadata()
    mapping = metadata.configuration.get("delta.columnMapping.mode", "none")
    features = set(table.protocol().reader_features or ())
    if metadata.partition_columns or mapping != "none" or "deletionVectors" in features:
        return None
    root = urlparse(table.table_uri)
    if len(root.scheme) > 1 and root.scheme != "file":
        return None
    base = url2pathname(root.path) if root.scheme == "file" else table.table_uri
    paths = [os.path.join(base, f.path) for f in fragments]
    if not paths or any(c in p for p in paths for c in "*?[{"):  # DuckDB would glob them
        return None
    # Read by name across files (`union_by_name`): a column the first file holds is in the
    # union; one it lacks may be missing from every file, which the dataset fills in instead.
    return paths if set(columns) <= set(pq.read_schema(paths[0]).names) else None


def historical_reader(views: list[ViewColumns], snapshots: dict[int, Snapshot]) -> Reader:
    """What Feast's join reads of each source: the whole history lazily, with the locators.

    The columns keep the source's names: Feast applies the field mapping itself.
    """
    by_source = {id(v.source): v for v in views}

    def read(data_source: DataSource, _repo_path: str) -> Table:
        cols, table = by_source[id(data_source)], snapshots[id(data_source)].whole()
        locators = {PIT_TIMESTAMP: as_utc(table[cols.to_source(cols.timestamp)])}
        if cols.created:
            locators[PIT_CREATED] = as_utc(table[cols.to_source(cols.created)])
        return table.mutate(**locators)

    return read


def feature_rows(table: Table, cols: ViewColumns) -> Table:
    """History rows (source names) as the second step joins them: the join keys and locators,
    and the features under their result names."""

    def column(name: str) -> ir.Value:
        return table[cols.to_source(name)]

    locators = {PIT_TIMESTAMP: as_utc(column(cols.timestamp))}
    if cols.created:
        locators[PIT_CREATED] = as_utc(column(cols.created))
    if PIT_FILE in table.columns:
        locators[PIT_FILE] = table[PIT_FILE]
    return table.select(
        **{k: column(k) for k in cols.keys},
        **locators,
        **{out: column(f) for f, out in cols.features.items()},
    )


def found(narrow: Table, rows: Table, cols: ViewColumns) -> list[ir.BooleanValue]:
    """The history row the join picked: the same entity, the same timestamps (the same file)."""
    same = [rows[k] == narrow[e] for k, e in cols.keys.items()]
    return same + [rows[c] == narrow[n] for c, n in cols.locators.items() if c in rows.columns]
