"""Every run that commits values stores a profile; `signals profile` flags drift between runs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from features import get_signal
from jobs.cli import app
from jobs.lake.profiles import profiles_of
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.sample import iter_catalog_batches
from jobs.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]
SIGNAL = get_signal("text_quality@1")


def _catalog(items: int, *, padding: str = "") -> pa.Table:
    catalog = pa.Table.from_batches(list(iter_catalog_batches(items, 3, with_broken=False)))
    rows = catalog.to_pylist()
    for row in rows:
        row["description"] = f"{row['description'] or ''}{padding}"
    return pa.Table.from_pylist(rows, schema=catalog.schema)


def _drifted(output: str) -> set[str]:
    """The features the `signals profile` table marks as drifted."""
    return {line.split()[0] for line in output.splitlines()[2:] if line.rstrip().endswith("yes")}


def test_each_run_profiles_what_it_committed_and_the_cli_flags_the_drifted_feature(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_deltalake(settings.default_snapshot_uri, _catalog(200))
    first = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    # Every description grows by 400 characters: only the length moves.
    padding = " " + "a longer description " * 19
    write_deltalake(settings.default_snapshot_uri, _catalog(200, padding=padding), mode="overwrite")
    second = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))

    stored = profiles_of(settings, SIGNAL.ref)
    assert [p.run_id for p in stored] == [second.run_id, first.run_id]
    assert stored[0].profile["rows"] == second.extracted
    assert stored[0].signal_table_version == second.signal_table_version
    lengths = stored[0].profile["features"]["length_chars"]["quantiles"]
    assert lengths[0] >= 400  # every committed row is at least the padding long

    html, md = tmp_path / "drift.html", tmp_path / "drift.md"
    result = CliRunner().invoke(
        app, ["profile", SIGNAL.ref, "--html", str(html), "--markdown", str(md)]
    )
    assert result.exit_code == 0, result.output
    drifted = _drifted(result.output)
    # Longer texts, so none is too short any more; the other flags did not move.
    assert drifted == {"length_chars", "is_too_short"}
    assert "<svg" in html.read_text() and "| `length_chars` |" in md.read_text()

    gate = CliRunner().invoke(app, ["profile", SIGNAL.ref, "--fail-on-drift"])
    assert gate.exit_code == 1 and "drifted in length_chars, is_too_short" in gate.output
    # Thresholds are settings: a team that tolerates more sets them once, not per call.
    monkeypatch.setenv("SIGNALS_DRIFT_PSI", "100")
    monkeypatch.setenv("SIGNALS_DRIFT_KS", "1")
    monkeypatch.setenv("SIGNALS_DRIFT_NULL_RATE", "1")
    tolerant = CliRunner().invoke(app, ["profile", SIGNAL.ref, "--fail-on-drift"])
    assert tolerant.exit_code == 0 and " yes" not in tolerant.output
    strict = CliRunner().invoke(app, ["profile", SIGNAL.ref, "--psi-threshold", "0.2"])
    assert _drifted(strict.output) == {"length_chars", "is_too_short"}  # both by PSI
    monkeypatch.delenv("SIGNALS_DRIFT_PSI")

    same = CliRunner().invoke(app, ["profile", SIGNAL.ref, "--base", second.run_id])
    assert same.exit_code == 0 and " yes" not in same.output
    missing = CliRunner().invoke(app, ["profile", "text_tags@1"])
    assert missing.exit_code == 1 and "has no profile yet" in missing.output
