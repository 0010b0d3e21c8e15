"""The extract job on real Ray and real Delta: what lands, what is quarantined, what never starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from features import CATALOG_SCHEMA, SchemaMismatchError, get_signal
from features.standard import STAGE_CATALOG, STAGE_EXTRACT
from jobs.cli import app
from jobs.lake.runs import list_runs
from jobs.pipeline.errors import QuarantineThresholdError
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.sample import iter_catalog_batches
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")
SIGNAL = get_signal("text_embedding@1")
LOUDNESS = get_signal("audio_loudness@1")


def _clean_rows(items: int, seed: int) -> pa.Table:
    """Sample-catalog rows without the planted broken ones: each test plants its own."""
    return pa.Table.from_batches(list(iter_catalog_batches(items, seed, with_broken=False)))


def _catalog(items: int = 60) -> pa.Table:
    """Generated rows plus two planted problems: an empty text and a content type not allowed."""
    rows = _clean_rows(items, seed=3).to_pylist()
    rows[4].update(title="  ", description=None)
    rows[9].update(content_type="podcast")
    return pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)


def _write_snapshot(settings: Settings, table: pa.Table) -> None:
    write_deltalake(settings.default_snapshot_uri, table, mode="overwrite")


def _daily_run(settings: Settings) -> tuple[list[str], str]:
    """A small daily run: a snapshot of 3 tracks with their audio, the second file cut in half.
    Returns the content IDs and the corrupt one's."""
    media = Path(settings.media_dir)
    media.mkdir(parents=True)
    rate = 16_000
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)
    rows = _clean_rows(3, seed=3).to_pylist()
    for row in rows:
        path = media / f"{row['content_id'].replace(':', '_')}.wav"
        sf.write(path, tone, rate)
        row["audio_uri"] = str(path)
    cut = Path(rows[1]["audio_uri"])
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    _write_snapshot(settings, pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA))
    return [row["content_id"] for row in rows], rows[1]["content_id"]


def test_extract_commits_good_rows_once_and_quarantines_bad_ones_with_reasons(
    settings: Settings,
) -> None:
    catalog = _catalog()
    _write_snapshot(settings, catalog)
    record = run_extract(settings, ExtractRequest(signal=SIGNAL.ref, batch_size=16))

    ids = catalog.column("content_id").to_pylist()
    empty_id, bad_type_id = ids[4], ids[9]
    assert (record.read, record.extracted, record.quarantined) == (60, 58, 2)
    assert record.status == "succeeded"

    table = DeltaTable(settings.signal_uri(SIGNAL.storage_name))
    assert table.version() == 1  # created empty, then one commit for the whole run
    rows = pa.table(table.to_pyarrow_table())
    assert sorted(rows.column("content_id").to_pylist()) == sorted(
        set(ids) - {empty_id, bad_type_id}
    )
    assert set(rows.column("run_id").to_pylist()) == {record.run_id}
    assert len(set(rows.column("event_timestamp").to_pylist())) == 1
    vectors = np.array(rows.column("embedding").to_pylist(), dtype=np.float32)
    assert vectors.shape == (58, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    quarantine = pa.table(
        DeltaTable(settings.quarantine_uri(SIGNAL.storage_name)).to_pyarrow_table()
    ).to_pylist()
    by_id = {q["content_id"]: q for q in quarantine}
    assert by_id[empty_id]["stage"] == STAGE_EXTRACT
    assert by_id[empty_id]["reason"] == "empty text: title and description are both empty"
    assert by_id[bad_type_id]["stage"] == STAGE_CATALOG
    assert "content_type" in by_id[bad_type_id]["reason"]

    run = list_runs(settings).to_pylist()[0]
    assert (run["run_id"], run["read"], run["extracted"], run["quarantined"]) == (
        record.run_id,
        60,
        58,
        2,
    )
    assert run["snapshot_version"] == 0


def test_a_retried_run_id_that_already_committed_writes_nothing(settings: Settings) -> None:
    _write_snapshot(settings, _catalog(20))
    request = ExtractRequest(signal=SIGNAL.ref, run_id="nightly-1", quarantine_threshold=0.5)
    first = run_extract(settings, request)
    again = run_extract(settings, request)
    assert first.status == "succeeded"
    assert again.status == "already-committed"
    table = DeltaTable(settings.signal_uri(SIGNAL.storage_name))
    assert table.version() == 1
    assert table.to_pyarrow_table().num_rows == first.extracted


def test_a_small_run_with_one_corrupt_file_lands_its_good_rows(settings: Settings) -> None:
    ids, corrupt = _daily_run(settings)
    record = run_extract(settings, ExtractRequest(signal=LOUDNESS.ref))  # 1 of 3 is over 5 %
    assert (record.read, record.extracted, record.quarantined) == (3, 2, 1)
    assert record.status == "succeeded"
    rows = DeltaTable(settings.signal_uri(LOUDNESS.storage_name)).to_pyarrow_table()
    assert sorted(rows.column("content_id").to_pylist()) == sorted(set(ids) - {corrupt})
    quarantine = DeltaTable(settings.quarantine_uri(LOUDNESS.storage_name)).to_pyarrow_table()
    assert quarantine.column("content_id").to_pylist() == [corrupt]
    assert quarantine.column("reason").to_pylist()[0].startswith("truncated audio: ")


@pytest.mark.parametrize("lowered_by", ["setting", "flag"])
def test_a_systematic_failure_lands_nothing_in_the_signal_table(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, lowered_by: str
) -> None:
    _, corrupt = _daily_run(settings)
    if lowered_by == "setting":
        monkeypatch.setenv("SIGNALS_QUARANTINE_MIN_ROWS", "1")
        with pytest.raises(QuarantineThresholdError) as info:
            run_extract(Settings.from_env(), ExtractRequest(signal=LOUDNESS.ref))
        message = info.value.render()
    else:
        result = CliRunner().invoke(app, ["extract", LOUDNESS.ref, "--quarantine-min-rows", "1"])
        assert result.exit_code == 1, result.output
        message = " ".join(result.output.split())  # as one line, whatever the terminal wraps
    assert "1 of 3 rows quarantined (33.3% > threshold 5.0%, count 1 >= minimum 1)" in message
    assert "truncated audio" in message
    assert not Path(settings.signal_uri(LOUDNESS.storage_name), "_delta_log").exists()
    quarantine = DeltaTable(settings.quarantine_uri(LOUDNESS.storage_name)).to_pyarrow_table()
    assert quarantine.column("content_id").to_pylist() == [corrupt]
    assert list_runs(settings).column("status").to_pylist() == ["failed"]


def test_a_snapshot_with_a_wrong_column_type_fails_before_any_work(settings: Settings) -> None:
    table = _clean_rows(5, seed=3)
    table = table.set_column(
        table.schema.get_field_index("updated_at"),
        "updated_at",
        pa.array([str(v) for v in table.column("updated_at").to_pylist()]),
    )
    _write_snapshot(settings, table)
    with pytest.raises(SchemaMismatchError) as info:
        run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert "column 'updated_at': expected timestamp[us, tz=UTC], found string" in info.value.details
    assert not Path(settings.lake_uri, "signals").exists()
    assert not Path(settings.lake_uri, "_runs").exists()


def test_the_cli_names_a_missing_column_and_exits_non_zero_without_a_traceback(
    settings: Settings,
) -> None:
    _write_snapshot(settings, _clean_rows(5, seed=3).drop(["description"]))
    result = CliRunner().invoke(app, ["extract", SIGNAL.ref])
    assert result.exit_code == 1
    assert "column 'description': missing" in result.output
    assert "Traceback" not in result.output
    assert not Path(settings.lake_uri, "signals").exists()


def test_the_cli_says_when_there_is_no_snapshot(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["extract", SIGNAL.ref])
    assert result.exit_code == 1
    assert "no catalog snapshot at" in result.output
    assert "signals sample" in result.output
