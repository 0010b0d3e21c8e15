"""Versions side by side: a backfill fills the new major while the old one keeps serving."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from features import CATALOG_SCHEMA, get_signal
from jobs.cli import app
from jobs.sample import iter_catalog_batches
from jobs.serving.client import online_values
from jobs.serving.store import feature_store
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")
V1, V2 = get_signal("text_quality@1"), get_signal("text_quality@2")


def _snapshot(settings: Settings) -> pa.Table:
    """40 sample items; the first has a long title and no description, which only v2 shows."""
    rows = pa.Table.from_batches(list(iter_catalog_batches(40, 11, with_broken=False))).to_pylist()
    rows[0].update(title="Midnight Ferry (Extended Harbour Mix)", description=None)
    table = pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
    write_deltalake(settings.default_snapshot_uri, table, mode="overwrite")
    return table


def test_backfill_serves_the_new_major_beside_the_old_one_and_names_who_still_reads_it(
    settings: Settings,
) -> None:
    catalog = _snapshot(settings)
    ids = catalog.column("content_id").to_pylist()
    runner = CliRunner()
    assert runner.invoke(app, ["extract", V1.ref]).exit_code == 0
    v1_version = DeltaTable(settings.signal_uri(V1.storage_name)).version()

    result = runner.invoke(app, ["backfill", V2.ref])
    assert result.exit_code == 0, result.output
    # The report: v2's run, and the feature service that still pins v1.
    assert "catalog-quality still reads text_quality@1" in " ".join(result.output.split())
    assert "no feature service includes text_quality@2 yet" in " ".join(result.output.split())

    v2_rows = {r["content_id"]: r for r in DeltaTable(settings.signal_uri(V2.storage_name))
               .to_pyarrow_table().to_pylist()}  # fmt: skip
    assert sorted(v2_rows) == sorted(ids)  # every item of the catalog, in one run
    first = v2_rows[ids[0]]
    assert (first["title_chars"], first["description_chars"]) == (37, 0)
    assert (first["title_missing"], first["description_missing"]) == (False, True)
    # The old version's table is untouched and both are online side by side.
    assert DeltaTable(settings.signal_uri(V1.storage_name)).version() == v1_version
    runner.invoke(app, ["materialize", V1.ref])
    [served] = online_values(settings, [ids[0]], [V1, V2])
    assert served[V1.ref]["length_chars"] == 37 and served[V1.ref]["is_empty"] is False
    assert served[V2.ref]["description_missing"] is True
    # The feature service pins v1 explicitly: its features are v1's, not v2's.
    service = feature_store(settings).get_feature_service("catalog-quality")
    views = {p.name for p in service.feature_view_projections}
    assert V1.feature_view_name in views and V2.feature_view_name not in views

    rerun = runner.invoke(app, ["backfill", V2.ref, "--no-online"])
    assert rerun.exit_code == 0, rerun.output
    assert DeltaTable(settings.signal_uri(V2.storage_name)).to_pyarrow_table().num_rows == 40


def test_backfill_of_a_catalog_wide_signal_says_which_job_computes_it(settings: Settings) -> None:
    _snapshot(settings)
    result = CliRunner().invoke(app, ["backfill", "near_duplicates@1"])
    assert result.exit_code != 0
    assert "computed across the whole catalog" in result.output
    assert "signals near-duplicates" in result.output
    assert "Traceback" not in result.output
