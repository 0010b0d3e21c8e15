"""Items leaving the catalog, lineage of served values, time travel and maintenance from the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from features import get_signal
from features.standard import REMOVED_HASH
from jobs.cli import app
from jobs.lake.lineage import item_history
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.sample import iter_catalog_batches
from jobs.serving.client import online_values
from jobs.serving.materialize import materialize
from jobs.serving.store import feature_store
from jobs.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]
SIGNAL = get_signal("text_language@1")


def _catalog(items: int) -> pa.Table:
    return pa.Table.from_batches(list(iter_catalog_batches(items, 8, with_broken=False)))


def _without(catalog: pa.Table, ids: list[str]) -> pa.Table:
    return catalog.filter(pc.invert(pc.is_in(catalog.column("content_id"), pa.array(ids))))


def _historical(settings: Settings, content_id: str, at: datetime) -> str | None:
    entity = pd.DataFrame({"content_id": [content_id], "event_timestamp": [at]})
    frame = (
        feature_store(settings)
        .get_historical_features(
            entity_df=entity, features=[f"{SIGNAL.feature_view_name}:language"]
        )
        .to_df()
    )
    value = frame["language"].iloc[0]
    return None if pd.isna(value) else str(value)


def test_removed_items_get_a_tombstone_leave_the_online_store_and_keep_their_history(
    settings: Settings,
) -> None:
    catalog = _catalog(40)
    ids = catalog.column("content_id").to_pylist()
    gone, kept = ids[:3], ids[3]
    write_deltalake(settings.default_snapshot_uri, catalog)
    first = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    materialize(settings, [SIGNAL])
    assert all(online_values(settings, gone, [SIGNAL]))

    write_deltalake(settings.default_snapshot_uri, _without(catalog, gone), mode="overwrite")
    second = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert (second.removed, second.unchanged, second.extracted) == (3, 37, 0)
    rows = pa.table(DeltaTable(settings.signal_uri(SIGNAL.storage_name)).to_pyarrow_table())
    tombs = rows.filter(pc.equal(rows.column("input_hash"), REMOVED_HASH))
    assert sorted(tombs.column("content_id").to_pylist()) == sorted(gone)
    assert tombs.column("language").null_count == 3
    assert set(tombs.column("run_id").to_pylist()) == {second.run_id}

    third = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert third.removed == 0  # already tombstoned: not again

    done = materialize(settings, [SIGNAL])
    assert done.deleted == {SIGNAL.feature_view_name: 3}
    served = online_values(settings, [*gone, kept], [SIGNAL])
    assert served[:3] == [{}, {}, {}] and served[3]

    # History stays: before the removal the value, after it nothing.
    between = first.finished_at + (second.started_at - first.finished_at) / 2
    assert _historical(settings, gone[0], between) is not None
    assert _historical(settings, gone[0], second.finished_at + timedelta(seconds=1)) is None

    # An item that comes back is computed again and served again.
    write_deltalake(settings.default_snapshot_uri, catalog, mode="overwrite")
    back = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert (back.extracted, back.removed) == (3, 0)
    materialize(settings, [SIGNAL])
    assert all(online_values(settings, gone, [SIGNAL]))
    origins = item_history(settings, gone[0], SIGNAL.ref)
    assert [o.removed for o in origins] == [False, True, False]
    assert [o.run_id for o in origins] == [back.run_id, second.run_id, first.run_id]


def test_lineage_history_as_of_and_maintenance_from_the_cli(settings: Settings) -> None:
    catalog = _catalog(30)
    item = catalog.column("content_id")[0].as_py()
    write_deltalake(settings.default_snapshot_uri, catalog)
    first = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    rows = catalog.to_pylist()
    rows[0].update(title="Une chanson d'amour", description="Une chanson française sur la mer.")
    write_deltalake(
        settings.default_snapshot_uri, pa.Table.from_pylist(rows, catalog.schema), mode="overwrite"
    )
    second = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert second.extracted == 1
    runner = CliRunner()

    lineage = runner.invoke(app, ["lineage", item, SIGNAL.ref])
    assert lineage.exit_code == 0, lineage.output
    served, older = lineage.output.splitlines()[1:3]
    assert served.split()[0] == "served" and f"run={second.run_id}" in served
    assert f"snapshot={settings.default_snapshot_uri}@1" in served  # the edited snapshot
    assert older.split()[0] == "earlier" and f"run={first.run_id}" in older
    assert f"snapshot={settings.default_snapshot_uri}@0" in older

    # Version 0 is the empty table, 1 the first run's commit, 2 the second's.
    as_of = runner.invoke(app, ["get", item, "--signal", SIGNAL.ref, "--as-of", "1", "--json"])
    assert as_of.exit_code == 0, as_of.output
    now = runner.invoke(app, ["get", item, "--signal", SIGNAL.ref, "--as-of", "2", "--json"])
    assert '"language": "fr"' in now.output and '"language": "fr"' not in as_of.output

    history = runner.invoke(app, ["history", SIGNAL.ref])
    assert history.exit_code == 0
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["2", "1", "0"]
    assert second.run_id in history.output.splitlines()[1]

    compact = runner.invoke(app, ["compact", SIGNAL.ref])
    assert compact.exit_code == 0 and "version 2 → 3" in compact.output
    vacuum = runner.invoke(app, ["vacuum", SIGNAL.ref])
    assert vacuum.exit_code == 0 and "dry run: nothing deleted" in vacuum.output

    for args, message in (
        (["get", item, "--as-of", "yesterday"], "neither a table version nor a time"),
        (["get", item, "--signal", SIGNAL.ref, "--as-of", "99"], "has no version 99"),
        (["lineage", "track:nope", SIGNAL.ref], "has no text_language@1 value"),
        (["vacuum", SIGNAL.ref, "--retention-hours", "0"], "under the table's minimum"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
