"""The whole loop on real parts: snapshot → Ray → Delta → Feast → lookup by content ID."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from features import get_signal
from jobs.cli import app
from jobs.lake.tables import read_table
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.sample import iter_catalog_batches
from jobs.serving.client import online_values
from jobs.serving.materialize import materialize
from jobs.serving.store import feature_store
from jobs.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]
SIGNAL = get_signal("text_embedding@1")


def _clean_rows(items: int, seed: int) -> pa.Table:
    """Sample-catalog rows without the planted broken ones: each test plants its own."""
    return pa.Table.from_batches(list(iter_catalog_batches(items, seed, with_broken=False)))


FEATURE = f"{SIGNAL.feature_view_name}:embedding"


def _historical(settings: Settings, content_id: str, at: datetime) -> list[float] | None:
    entity = pd.DataFrame({"content_id": [content_id], "event_timestamp": [at]})
    frame = (
        feature_store(settings)
        .get_historical_features(entity_df=entity, features=[FEATURE])
        .to_df()
    )
    value = frame["embedding"].iloc[0]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else list(value)


def test_cli_sample_extract_materialize_get(settings: Settings) -> None:
    runner = CliRunner()
    sampled = runner.invoke(app, ["sample", "--items", "40", "--no-media"])
    assert sampled.exit_code == 0, sampled.output
    extracted = runner.invoke(app, ["extract", SIGNAL.ref])
    assert extracted.exit_code == 0, extracted.output
    assert runner.invoke(app, ["materialize"]).exit_code == 0

    served = read_table(settings.signal_uri(SIGNAL.storage_name)).column("content_id")
    some_id = served[0].as_py()
    got = runner.invoke(app, ["get", some_id, "--json"])
    assert got.exit_code == 0, got.output
    assert '"text_embedding@1"' in got.output

    table = runner.invoke(app, ["get", some_id])
    assert f"{some_id} — served from the online store" in table.output
    assert "(384)" in table.output

    missing = runner.invoke(app, ["get", "track:999999"])
    assert missing.exit_code == 1
    assert "not found: track:999999" in missing.output
    assert "Traceback" not in missing.output


def test_rerun_after_a_text_edit_serves_the_new_vector_and_keeps_the_old_one_in_history(
    settings: Settings,
) -> None:
    catalog = _clean_rows(12, seed=11)
    edited_id = catalog.column("content_id")[0].as_py()
    write_deltalake(settings.default_snapshot_uri, catalog)

    first = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    materialize(settings)
    [before] = online_values(settings, [edited_id])
    old_vector = np.array(before[SIGNAL.ref]["embedding"])

    rows = catalog.to_pylist()
    rows[0]["title"] = "A completely different title about volcanoes and geology"
    rows[0]["updated_at"] = datetime.now(UTC)
    write_deltalake(
        settings.default_snapshot_uri,
        pa.Table.from_pylist(rows, schema=catalog.schema),
        mode="overwrite",
    )
    second = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    materialize(settings)
    [after] = online_values(settings, [edited_id])
    new_vector = np.array(after[SIGNAL.ref]["embedding"])
    assert float(old_vector @ new_vector) < 0.9  # the served value moved to the new text

    between = first.finished_at + (second.started_at - first.finished_at) / 2
    later = second.finished_at + timedelta(seconds=1)
    assert np.allclose(_historical(settings, edited_id, between), old_vector, atol=1e-5)
    assert np.allclose(_historical(settings, edited_id, later), new_vector, atol=1e-5)
    assert _historical(settings, edited_id, first.started_at - timedelta(days=1)) is None

    # Compact and vacuum: the rows move to new files and the old ones leave the log and the disk.
    uri = settings.signal_uri(SIGNAL.storage_name)
    table = DeltaTable(uri)
    files_before = set(table.file_uris())
    table.optimize.compact()
    table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    table = DeltaTable(uri)
    assert files_before.isdisjoint(table.file_uris())
    assert np.allclose(_historical(settings, edited_id, between), old_vector, atol=1e-5)
    assert np.allclose(_historical(settings, edited_id, later), new_vector, atol=1e-5)
