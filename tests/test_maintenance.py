"""Maintenance on real Delta tables written through the extract job's commit path (no Ray)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from features import get_signal
from features.errors import SignalsError
from features.standard import QUARANTINE_SCHEMA
from jobs.lake.errors import AsOfError, MissingTableError, RetentionTooShortError
from jobs.lake.maintenance import compact, history, open_as_of, resolve_as_of, vacuum
from jobs.lake.parts import commit_parts, write_part
from jobs.settings import Settings

SIGNAL = get_signal("audio_loudness@1")
# Three runs of two parts each: the table's versions 1, 2 and 3 (0: the empty CREATE TABLE).
RUNS = {
    "run-a": [["a1", "a2"], ["a3"]],
    "run-b": [["b1"], ["b2", "b3"]],
    "run-c": [["c1", "c2"], ["c3", "c4"]],
}
OPERATION = {"job": "extract", "signal": SIGNAL.ref, "snapshot_version": 4}
LONG_AGO = time.time() - 30 * 24 * 3600  # far beyond the default 168-hour retention


def _rows(ids: list[str], run_id: str) -> pa.Table:
    now = [datetime.now(UTC)] * len(ids)
    columns = {
        "content_id": ids,
        "event_timestamp": now,
        "created_timestamp": now,
        "input_updated_at": now,
        "input_hash": [f"hash-{i}" for i in ids],
        "extractor_version": ["loudness-1"] * len(ids),
        "run_id": [run_id] * len(ids),
        "integrated_lufs": [-14.0 - n for n in range(len(ids))],
        "loudness_range_lu": [6.5] * len(ids),
        "true_peak_dbtp": [-1.0] * len(ids),
    }
    return pa.table(columns, schema=SIGNAL.arrow_schema())


def _quarantine_row(run_id: str) -> pa.Table:
    row = {
        "content_id": "q1",
        "signal": SIGNAL.ref,
        "stage": "extract",
        "reason": "unreadable audio",
        "input_hash": None,
        "input_updated_at": None,
        "extractor_version": "loudness-1",
        "run_id": run_id,
        "quarantined_at": datetime.now(UTC),
    }
    return pa.Table.from_pylist([row], schema=QUARANTINE_SCHEMA)


def _signal_uri(settings: Settings) -> str:
    return settings.signal_uri(SIGNAL.storage_name)


def _contents(table: DeltaTable) -> list[dict[str, object]]:
    return pa.table(table.to_pyarrow_table()).sort_by("content_id").to_pylist()


def _ids(table: DeltaTable) -> list[str]:
    return sorted(r["content_id"] for r in _contents(table))


def _parquet_files(uri: str) -> set[str]:
    return {name for name in os.listdir(uri) if name.endswith(".parquet")}


def _orphan(uri: str, run_id: str, *, old: bool) -> str:
    """A part a crashed worker left behind: written, never committed."""
    part = write_part(uri, _rows(["orphan"], run_id), run_id)
    if old:
        os.utime(Path(uri) / part.path, (LONG_AGO, LONG_AGO))
    return part.path


@pytest.fixture
def signal_table(settings: Settings) -> str:
    """A signal table of three versions, six files, as three extract runs leave it."""
    uri = _signal_uri(settings)
    for run_id, batches in RUNS.items():
        parts = [write_part(uri, _rows(ids, run_id), run_id) for ids in batches]
        commit_parts(uri, SIGNAL.arrow_schema(), parts, run_id, operation=OPERATION)
        time.sleep(0.005)  # distinct commit timestamps (milliseconds) for the as-of tests
    return uri


def _ids_up_to(run_count: int) -> list[str]:
    runs = list(RUNS.values())[:run_count]
    return sorted(i for batches in runs for ids in batches for i in ids)


@pytest.mark.parametrize("z_order", [True, False])
def test_compact_rewrites_files_without_changing_rows(
    settings: Settings, signal_table: str, z_order: bool
) -> None:
    before = _contents(DeltaTable(signal_table))

    result = compact(settings, SIGNAL.ref, z_order=z_order)

    table = DeltaTable(signal_table)
    assert (result.files_removed, result.files_added) == (6, 1)
    assert (result.version_before, result.version_after) == (3, 4)
    assert _contents(table) == before
    assert len(table.file_uris()) == 1
    newest = history(settings, SIGNAL.ref, limit=1)[0]
    assert (newest["operation"], newest["job"], newest["signal"]) == (
        "OPTIMIZE",
        "compact",
        SIGNAL.ref,
    )
    # The replaced files stay until a vacuum: older versions still read.
    assert _ids(open_as_of(signal_table, 1)) == _ids_up_to(1)


def test_compact_of_a_signal_never_extracted_says_what_to_run(settings: Settings) -> None:
    with pytest.raises(MissingTableError) as raised:
        compact(settings, SIGNAL.ref)
    assert f"signals extract {SIGNAL.ref}" in raised.value.render()


def test_history_lists_commits_newest_first_with_run_metadata(
    settings: Settings, signal_table: str
) -> None:
    commits = history(settings, SIGNAL.ref)

    assert [c["version"] for c in commits] == [3, 2, 1, 0]
    assert [c["run_id"] for c in commits] == ["run-c", "run-b", "run-a", None]
    assert [c["operation"] for c in commits] == ["WRITE", "WRITE", "WRITE", "CREATE TABLE"]
    runs = commits[:3]
    assert all(c["job"] == "extract" and c["snapshot_version"] == 4 for c in runs)
    assert all(c["signal"] == SIGNAL.ref for c in runs)
    stamps = [c["timestamp"] for c in commits]
    assert all(t.utcoffset() == timedelta(0) for t in stamps)
    assert stamps == sorted(stamps, reverse=True)
    assert abs(datetime.now(UTC) - stamps[0]) < timedelta(minutes=1)
    assert [c["version"] for c in history(settings, SIGNAL.ref, limit=2)] == [3, 2]


@pytest.fixture
def orphans(settings: Settings, signal_table: str) -> dict[str, str]:
    """Uncommitted parts in the signal and quarantine tables: two old ones and one fresh one."""
    quarantine = settings.quarantine_uri(SIGNAL.storage_name)
    part = write_part(quarantine, _quarantine_row("run-a"), "run-a")
    commit_parts(quarantine, QUARANTINE_SCHEMA, [part], "run-a", operation=OPERATION)
    return {
        "old": _orphan(signal_table, "crashed-1", old=True),
        "fresh": _orphan(signal_table, "running-2", old=False),
        "old_quarantine": _orphan(quarantine, "crashed-1", old=True),
    }


def test_vacuum_dry_run_lists_only_old_orphans_and_deletes_nothing(
    settings: Settings, signal_table: str, orphans: dict[str, str]
) -> None:
    on_disk = _parquet_files(signal_table)

    result = vacuum(settings, SIGNAL.ref)

    quarantine = settings.quarantine_uri(SIGNAL.storage_name)
    assert result.dry_run
    assert result.files == {
        signal_table: (orphans["old"],),
        quarantine: (orphans["old_quarantine"],),
    }
    assert _parquet_files(signal_table) == on_disk
    assert orphans["old_quarantine"] in _parquet_files(quarantine)


def test_vacuum_removes_old_orphans_and_keeps_every_committed_file(
    settings: Settings, signal_table: str, orphans: dict[str, str]
) -> None:
    committed = {Path(u).name for u in DeltaTable(signal_table).file_uris()}

    result = vacuum(settings, SIGNAL.ref, dry_run=False)

    assert result.total == 2
    assert _parquet_files(signal_table) == committed | {orphans["fresh"]}
    assert orphans["old_quarantine"] not in _parquet_files(
        settings.quarantine_uri(SIGNAL.storage_name)
    )
    assert _ids(DeltaTable(signal_table)) == _ids_up_to(3)
    assert _ids(open_as_of(signal_table, 1)) == _ids_up_to(1)


def test_vacuum_refuses_a_retention_under_the_minimum_unless_forced(
    settings: Settings, signal_table: str, orphans: dict[str, str]
) -> None:
    with pytest.raises(RetentionTooShortError) as raised:
        vacuum(settings, SIGNAL.ref, retention_hours=0, dry_run=False)
    assert "168 hours" in raised.value.render()
    assert orphans["fresh"] in _parquet_files(signal_table)
    with pytest.raises(RetentionTooShortError):
        vacuum(settings, SIGNAL.ref, retention_hours=-1, force=True)

    forced = vacuum(settings, SIGNAL.ref, retention_hours=0, force=True)

    assert set(forced.files[signal_table]) == {orphans["old"], orphans["fresh"]}


def test_vacuum_of_a_signal_never_extracted_says_what_to_run(settings: Settings) -> None:
    with pytest.raises(MissingTableError, match=SIGNAL.ref):
        vacuum(settings, SIGNAL.ref)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (" 0 ", 0),
        ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-25T10:00:00Z", datetime(2026, 11, 25, 10, tzinfo=UTC)),
        ("2026-11-25 10:00+01:00", datetime(2026, 11, 25, 9, tzinfo=UTC)),
        ("2026-11-25T10:00:00.250", datetime(2026, 11, 25, 10, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_resolve_as_of_reads_versions_and_times_as_utc(
    value: str, expected: int | datetime
) -> None:
    resolved = resolve_as_of(value)
    assert resolved == expected
    assert type(resolved) is type(expected)
    if isinstance(resolved, datetime):
        assert resolved.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["", "yesterday", "-1", "1.5", "v3", "2026-13-01"])
def test_resolve_as_of_refuses_anything_else_and_shows_the_forms(value: str) -> None:
    with pytest.raises(SignalsError) as raised:
        resolve_as_of(value)
    assert "2026-11-25T10:00:00Z" in raised.value.hint


def test_open_as_of_a_version_reads_that_version(signal_table: str) -> None:
    assert _ids(open_as_of(signal_table, 0)) == []
    assert _ids(open_as_of(signal_table, 2)) == _ids_up_to(2)
    assert _ids(open_as_of(signal_table, None)) == _ids_up_to(3)


def test_open_as_of_a_time_reads_the_newest_version_committed_by_then(
    settings: Settings, signal_table: str
) -> None:
    stamps = {c["version"]: c["timestamp"] for c in history(settings, SIGNAL.ref)}

    assert _ids(open_as_of(signal_table, stamps[2])) == _ids_up_to(2)
    just_before = stamps[2] - timedelta(milliseconds=1)
    assert _ids(open_as_of(signal_table, just_before)) == _ids_up_to(1)
    later = resolve_as_of((stamps[3] + timedelta(days=1)).isoformat())
    assert _ids(open_as_of(signal_table, later)) == _ids_up_to(3)


@pytest.mark.parametrize("as_of", [4, -1, datetime(2000, 1, 1, tzinfo=UTC)])
def test_open_as_of_outside_the_history_names_the_range(
    signal_table: str, as_of: int | datetime
) -> None:
    with pytest.raises(AsOfError) as raised:
        open_as_of(signal_table, as_of)
    text = raised.value.render()
    assert "versions 0 to 3" in text
    assert "committed from" in text


def test_open_as_of_without_a_table_is_a_signals_error(settings: Settings) -> None:
    with pytest.raises(MissingTableError):
        open_as_of(_signal_uri(settings), 0)
