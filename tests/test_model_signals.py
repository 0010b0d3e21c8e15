"""A signal declared from a model file alone: no extractor class, extracted, served, recomputed.

A team's declaration lives in its own file (`SIGNALS_DECLARATIONS`), its model in a temporary
folder as TorchScript; the extract job runs it on Ray like any signal, and replacing the file is
a new extractor version, so every item is computed again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from features import CATALOG_SCHEMA, all_signals, get_signal
from features.registry import DECLARATIONS_ENV
from jobs.cli import app
from jobs.sample import iter_catalog_batches
from jobs.serving.client import online_values
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")

DECLARATION = """
from datetime import timedelta

from features import Float, Signal
from features.model import DECLARED_MODEL_EXTRACTOR, Model

team_minutes = Signal(
    name="team_minutes",
    version=1,
    description="A team's model of how long an item plays, in minutes.",
    owner="team-x",
    extractor=DECLARED_MODEL_EXTRACTOR,
    features={"minutes": Float(ge=0)},
    model=Model(uri={uri!r}, inputs=("duration_ms",), required=("duration_ms",)),
    ttl=timedelta(days=30),
)
"""


class Minutes(torch.nn.Module):
    """duration_ms → minutes × scale: the scale is the model's one weight."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def forward(self, duration_ms: torch.Tensor) -> torch.Tensor:
        return duration_ms / 60000.0 * self.scale


def _save(path: Path, scale: float) -> None:
    torch.jit.script(Minutes(scale)).save(str(path))


@pytest.fixture
def declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    model = tmp_path / "team" / "minutes.pt"
    model.parent.mkdir()
    _save(model, 1.0)
    declarations = tmp_path / "team" / "signals.py"
    declarations.write_text(DECLARATION.replace("{uri!r}", repr(str(model))))
    monkeypatch.setenv(DECLARATIONS_ENV, str(declarations))
    all_signals.cache_clear()
    yield model
    monkeypatch.delenv(DECLARATIONS_ENV)
    all_signals.cache_clear()


def _minutes(settings: Settings) -> dict[str, float]:
    signal = get_signal("team_minutes@1")
    rows = DeltaTable(settings.signal_uri(signal.storage_name)).to_pyarrow_table().to_pylist()
    latest: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["created_timestamp"]):
        latest[row["content_id"]] = row
    return {cid: row["minutes"] for cid, row in latest.items()}


def test_a_signal_declared_from_a_model_file_is_extracted_served_and_recomputed(
    settings: Settings, declared: Path
) -> None:
    catalog = pa.Table.from_batches(list(iter_catalog_batches(12, 4, with_broken=False)))
    write_deltalake(settings.default_snapshot_uri, catalog.cast(CATALOG_SCHEMA), mode="overwrite")
    durations = dict(zip(catalog.column("content_id").to_pylist(),
                         catalog.column("duration_ms").to_pylist(), strict=True))  # fmt: skip
    runner = CliRunner()

    listed = runner.invoke(app, ["list"])
    assert "team_minutes " in listed.output and "team-x" in listed.output

    first = runner.invoke(app, ["extract", "team_minutes@1"])
    assert first.exit_code == 0, first.output
    minutes = _minutes(settings)
    assert set(minutes) == set(durations)
    for cid, value in minutes.items():
        assert value == pytest.approx(durations[cid] / 60000, rel=1e-5)

    assert runner.invoke(app, ["materialize", "team_minutes@1"]).exit_code == 0
    some = sorted(durations)[:3]
    served = online_values(settings, some, [get_signal("team_minutes@1")])
    assert [s["team_minutes@1"]["minutes"] for s in served] == pytest.approx(
        [durations[c] / 60000 for c in some], rel=1e-5
    )

    table = DeltaTable(settings.signal_uri(get_signal("team_minutes@1").storage_name))
    unchanged = runner.invoke(app, ["extract", "team_minutes@1"])
    assert unchanged.exit_code == 0, unchanged.output
    assert DeltaTable(table.table_uri).version() == table.version()  # nothing to recompute

    _save(declared, 2.0)  # a new model file: a new version of the extractor
    again = runner.invoke(app, ["extract", "team_minutes@1"])
    assert again.exit_code == 0, again.output
    for cid, value in _minutes(settings).items():
        assert value == pytest.approx(2 * durations[cid] / 60000, rel=1e-5)
    assert runner.invoke(app, ["materialize", "team_minutes@1"]).exit_code == 0
    served = online_values(settings, some, [get_signal("team_minutes@1")])
    assert [s["team_minutes@1"]["minutes"] for s in served] == pytest.approx(
        [2 * durations[c] / 60000 for c in some], rel=1e-5
    )


def test_a_missing_model_file_is_a_clear_error(settings: Settings, declared: Path) -> None:
    catalog = pa.Table.from_batches(list(iter_catalog_batches(4, 4, with_broken=False)))
    write_deltalake(settings.default_snapshot_uri, catalog.cast(CATALOG_SCHEMA), mode="overwrite")
    declared.unlink()

    result = CliRunner().invoke(app, ["extract", "team_minutes@1"])

    assert result.exit_code != 0
    assert "no such model file" in result.output and "Traceback" not in result.output
