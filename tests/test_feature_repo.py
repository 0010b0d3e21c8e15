"""The Feast repository against real Feast and real Delta tables: point-in-time reads that follow
the Delta log, materialization into SQLite, and the objects derived from `features/`."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from feast import FeatureStore, FileSource
from feast.data_format import DeltaFormat
from feast.infra.offline_stores.dask import DaskOfflineStore
from feast.repo_config import RepoConfig, load_repo_config
from feast.repo_operations import apply_total
from feast.types import Array, Float32

from feature_repo import definitions
from feature_repo.delta_offline_store import (
    read_delta_source,
    resolve_lake_uri,
    resolve_table_uri,
    split_version,
)
from feature_repo.errors import LAKE_URI_ENV, DeltaTableNotFoundError, UnsupportedOperationError
from features import Bool, Embedding, Float, Int, String, all_signals, consumer_groups, get_signal

REPO_FILES = ("definitions.py", "feature_store.yaml", ".feastignore")
SIGNAL = get_signal("text_embedding@1")
VIEW = SIGNAL.feature_view_name
EMBEDDING = f"{VIEW}:embedding"
DIM = 384
NOW = datetime.now(UTC).replace(microsecond=0)
T1 = NOW - timedelta(days=3)
T2 = NOW - timedelta(days=2)
T3 = NOW - timedelta(days=1)


@dataclass
class Repo:
    path: Path
    lake: Path
    store: FeatureStore

    @property
    def table(self) -> Path:
        return self.lake / "signals" / SIGNAL.storage_name


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    """A copy of feature_repo/ applied the way `feast apply` does it, against an empty lake."""
    root = tmp_path_factory.mktemp("feast")
    path, lake = root / "repo", root / "lake"
    path.mkdir()
    lake.mkdir()
    source = Path(definitions.__file__).parent
    for name in REPO_FILES:
        shutil.copy(source / name, path / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(LAKE_URI_ENV, str(lake))
        # apply_total chdirs into the repo, imports `definitions` from it and turns bytecode off.
        mp.chdir(path)
        mp.syspath_prepend(str(path))
        mp.setattr(sys, "dont_write_bytecode", sys.dont_write_bytecode)
        shadowed = sys.modules.pop("definitions", None)
        try:
            apply_total(load_repo_config(path, path / "feature_store.yaml"), path, False)
        finally:
            sys.modules.pop("definitions", None)
            if shadowed is not None:
                sys.modules["definitions"] = shadowed
        yield Repo(path=path, lake=lake, store=FeatureStore(repo_path=str(path)))


def vector(k: int) -> list[float]:
    """A unit vector that names its value: 1.0 at index k."""
    v = np.zeros(DIM, dtype=np.float32)
    v[k] = 1.0
    return v.tolist()


def which(v: object) -> int | None:
    """The k of `vector(k)`, or None for a missing value."""
    return None if v is None else int(np.argmax(np.asarray(v)))


def signal_rows(rows: list[tuple[str, datetime, int]], run_id: str = "run-1") -> pa.Table:
    """Rows of the text_embedding@1 table: (content_id, event time, k of the vector)."""
    return pa.Table.from_pylist(
        [
            {
                "content_id": cid,
                "event_timestamp": ts,
                "created_timestamp": ts + timedelta(seconds=1),
                "input_updated_at": ts - timedelta(days=30),
                "input_hash": f"hash-{cid}-{k}",
                "extractor_version": "text_embedding@1+test",
                "run_id": run_id,
                "embedding": vector(k),
            }
            for cid, ts, k in rows
        ],
        schema=SIGNAL.arrow_schema(),
    )


def fresh_table(repo: Repo, *commits: pa.Table) -> None:
    """Replace the signal table by one commit per table given (append after the first)."""
    shutil.rmtree(repo.table, ignore_errors=True)
    for data in commits:
        write_deltalake(str(repo.table), data, mode="append")


def point_in_time(repo: Repo, when: dict[str, tuple[str, datetime]]) -> dict[str, int | None]:
    """label → k of the embedding served for (content_id, time)."""
    entity_df = pd.DataFrame(
        {
            "label": list(when),
            "content_id": [cid for cid, _ in when.values()],
            "event_timestamp": pd.to_datetime([ts for _, ts in when.values()], utc=True),
        }
    )
    df = repo.store.get_historical_features(entity_df=entity_df, features=[EMBEDDING]).to_df()
    return {row.label: which(row.embedding) for row in df.itertuples()}


HOUR = timedelta(hours=1)
QUERIES = {
    "before_t1": ("a", T1 - HOUR),
    "between": ("a", T1 + HOUR),
    "after_t2": ("a", T3 + HOUR),
    "other_item": ("b", T3 + HOUR),
    "unknown": ("zzz", T3 + HOUR),
}
EXPECTED = {"before_t1": None, "between": 1, "after_t2": 2, "other_item": 7, "unknown": None}
ROWS = [("a", T1, 1), ("a", T2, 2), ("b", T1, 7)]


def test_point_in_time_join_returns_the_value_servable_at_each_moment(repo: Repo) -> None:
    fresh_table(repo, signal_rows(ROWS[:1]), signal_rows(ROWS[1:], run_id="run-2"))
    assert point_in_time(repo, QUERIES) == EXPECTED


def test_reads_follow_the_delta_log_through_overwrite_compaction_and_vacuum(repo: Repo) -> None:
    fresh_table(repo, signal_rows(ROWS[:1]), signal_rows(ROWS[1:]))
    # The same logical rows in new files, then small appends merged away: files leave the log.
    write_deltalake(str(repo.table), signal_rows(ROWS[:2]), mode="overwrite")
    write_deltalake(str(repo.table), signal_rows(ROWS[2:]), mode="append")
    table = DeltaTable(str(repo.table))
    table.optimize.compact()
    assert point_in_time(repo, QUERIES) == EXPECTED

    table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    on_disk = {p.name for p in repo.table.glob("*.parquet")}
    assert on_disk == {Path(u).name for u in DeltaTable(str(repo.table)).file_uris()}
    assert point_in_time(repo, QUERIES) == EXPECTED


def test_stale_files_left_on_disk_are_never_read(repo: Repo) -> None:
    # A bad run at T3 gave "a" and "b" wrong vectors; the correction rewrites the table without it
    # and fixes b's value. Until vacuum, the bad run's files stay in the folder.
    bad_run = signal_rows([("a", T3, 99), ("b", T3, 98)], run_id="bad")
    fresh_table(repo, signal_rows(ROWS), bad_run)
    corrected = signal_rows([*ROWS[:2], ("b", T1, 8)], run_id="fix")
    write_deltalake(str(repo.table), corrected, mode="overwrite")
    assert len(list(repo.table.glob("*.parquet"))) > len(DeltaTable(str(repo.table)).file_uris())

    assert point_in_time(repo, QUERIES) == {**EXPECTED, "other_item": 8}

    # The trap this store exists for: Feast's `file` store reads the folder, stale files included.
    config = RepoConfig(
        project="contrast", registry=str(repo.path / "unused.db"), offline_store={"type": "file"}
    )
    folder = FileSource(
        path=str(repo.table),
        file_format=DeltaFormat(),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    )
    stale = DaskOfflineStore.pull_all_from_table_or_query(
        config, folder, ["content_id"], ["embedding"], "event_timestamp", "created_timestamp"
    ).to_df()
    assert {which(v) for v in stale["embedding"]} >= {99, 98, 7}


def test_materialized_online_values_are_the_latest_per_item(repo: Repo) -> None:
    fresh_table(repo, signal_rows(ROWS))
    repo.store.materialize(start_date=T1 - HOUR, end_date=NOW, feature_views=[VIEW])
    online = repo.store.get_online_features(
        features=[EMBEDDING],
        entity_rows=[{"content_id": "a"}, {"content_id": "b"}, {"content_id": "nope"}],
    ).to_dict()
    assert [which(v) for v in online["embedding"]] == [2, 7, None]
    assert np.asarray(online["embedding"][0], dtype=np.float32).shape == (DIM,)


def test_time_travel_reads_a_pinned_version(repo: Repo) -> None:
    fresh_table(repo, signal_rows(ROWS[:1]))
    write_deltalake(str(repo.table), signal_rows([("a", T1, 5)]), mode="overwrite")

    def k_at(path: str) -> list[int | None]:
        source = FileSource(path=path, file_format=DeltaFormat(), timestamp_field="event_timestamp")
        table = read_delta_source(repo.store.config, source, ["content_id", "embedding"])
        return [which(v) for v in table.column("embedding").to_pylist()]

    rel = f"signals/{SIGNAL.storage_name}"
    assert (k_at(rel), k_at(f"{rel}@0"), k_at(f"{rel}@1")) == ([5], [1], [5])


def test_a_missing_table_is_empty_to_materialize_and_an_error_to_train_on(repo: Repo) -> None:
    shutil.rmtree(repo.table, ignore_errors=True)
    repo.store.materialize(start_date=T1, end_date=NOW, feature_views=[VIEW])
    with pytest.raises(DeltaTableNotFoundError, match=str(repo.table)):
        point_in_time(repo, {"x": ("a", NOW)})


def test_writes_are_refused_with_a_clear_error(repo: Repo) -> None:
    fresh_table(repo, signal_rows(ROWS[:1]))
    df = signal_rows(ROWS[1:]).to_pandas()
    with pytest.raises(NotImplementedError, match="read-only") as raised:
        repo.store.write_to_offline_store(VIEW, df)
    assert isinstance(raised.value, UnsupportedOperationError)


def test_lake_uri_comes_from_env_then_config_then_beside_the_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def config(lake_uri: str | None) -> RepoConfig:
        offline = {"type": "feature_repo.delta_offline_store.DeltaOfflineStore"}
        if lake_uri:
            offline["lake_uri"] = lake_uri
        c = RepoConfig(project="p", registry="r.db", offline_store=offline)
        c.repo_path = tmp_path / "repo"
        return c

    monkeypatch.setenv(LAKE_URI_ENV, "s3://bucket/lake")
    assert resolve_table_uri(config("elsewhere"), "signals/x/v1@3") == (
        "s3://bucket/lake/signals/x/v1",
        3,
    )
    monkeypatch.delenv(LAKE_URI_ENV)
    assert resolve_lake_uri(config("../data-lake")) == str(tmp_path / "data-lake")
    assert resolve_lake_uri(config(None)) == str(tmp_path / "lake")
    assert resolve_table_uri(config(None), "file:///abs/t") == ("file:///abs/t", None)
    assert split_version("abfss://c@account.dfs.core.windows.net/t") == (
        "abfss://c@account.dfs.core.windows.net/t",
        None,
    )


def test_definitions_are_derived_from_the_declared_signals(repo: Repo) -> None:
    signals = all_signals()
    views = {fv.name: fv for fv in repo.store.list_feature_views()}
    assert set(views) == {f"{s.name}_v{s.version}" for s in signals}
    for signal in signals:
        view = views[signal.feature_view_name]
        assert [f.name for f in view.features] == list(signal.features)
        assert view.ttl == signal.ttl
        assert view.tags["signal"] == signal.ref
        assert view.batch_source.path == f"signals/{signal.storage_name}"
        for field in view.features:
            if signal.features[field.name].kind == "embedding":
                assert field.dtype == Array(Float32)
    assert views[VIEW].features[0].vector_length == DIM

    services = {fs.name: fs for fs in repo.store.list_feature_services()}
    assert set(services) == set(consumer_groups())
    for group, members in consumer_groups().items():
        served = {p.name for p in services[group].feature_view_projections}
        assert served == {s.feature_view_name for s in members}

    assert {type(o).__name__ for o in definitions.repo_objects()} >= {
        "Entity",
        "FeatureView",
        "FeatureService",
    }


@pytest.mark.parametrize(
    ("declared", "feast_name"),
    [
        (Float(), "Float32"),
        (Int(), "Int64"),
        (Bool(), "Bool"),
        (String(), "String"),
        (Embedding(dim=3), "Array(Float32)"),
    ],
)
def test_feature_types_map_to_feast_types(declared: object, feast_name: str) -> None:
    assert str(definitions.feast_type(declared)) == feast_name
