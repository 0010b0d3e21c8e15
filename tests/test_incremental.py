"""Incremental and idempotent extraction: what is stored is not recomputed, what changed is."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from features import get_signal
from jobs.lake.tables import latest_per_key
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.sample import iter_catalog_batches
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")
SIGNAL = get_signal("text_language@1")


def _catalog(items: int, seed: int = 5) -> pa.Table:
    """Sample rows with their planted problems (an empty text, a content type not allowed)."""
    return pa.Table.from_batches(list(iter_catalog_batches(items, seed)))


def _edit(catalog: pa.Table, every: int) -> tuple[pa.Table, set[str]]:
    """Every `every`-th item gets a new title: a catalog where 1/every of the items changed."""
    rows = catalog.to_pylist()
    changed = set()
    for row in rows[::every]:
        row["title"] = f"{row['title'] or ''} — edición remasterizada"
        row["updated_at"] = datetime.now(UTC)
        changed.add(row["content_id"])
    return pa.Table.from_pylist(rows, schema=catalog.schema), changed


def _signal_rows(settings: Settings) -> pa.Table:
    table = DeltaTable(settings.signal_uri(SIGNAL.storage_name))
    return pa.table(table.to_pyarrow_table())


def _served(rows: pa.Table) -> dict[str, tuple[str, str]]:
    """content_id → (input hash, language) of the newest row: what serving would return."""
    latest = latest_per_key(rows, order=("event_timestamp", "created_timestamp"))
    return {
        r["content_id"]: (r["input_hash"], r["language"])
        for r in latest.select(["content_id", "input_hash", "language"]).to_pylist()
    }


def test_a_rerun_with_nothing_changed_computes_nothing_and_commits_nothing(
    settings: Settings,
) -> None:
    catalog = _catalog(400)
    write_deltalake(settings.default_snapshot_uri, catalog)
    first = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert first.unchanged == 0 and first.extracted > 380
    version = DeltaTable(settings.signal_uri(SIGNAL.storage_name)).version()

    again = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    assert again.status == "succeeded"
    assert again.read == 400
    assert again.extracted == 0
    # Stored values and the rows a succeeded run quarantined are both outcomes of these inputs.
    assert first.quarantined == 1  # the content type that is not allowed
    assert (again.unchanged, again.computed, again.quarantined) == (400, 0, 0)
    assert DeltaTable(settings.signal_uri(SIGNAL.storage_name)).version() == version


def test_only_changed_items_are_recomputed_and_serving_sees_the_new_values(
    settings: Settings,
) -> None:
    catalog = _catalog(300)
    write_deltalake(settings.default_snapshot_uri, catalog)
    run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    before = _served(_signal_rows(settings))

    edited, changed = _edit(catalog, every=10)
    write_deltalake(settings.default_snapshot_uri, edited, mode="overwrite")
    second = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))

    stored_before = {cid for cid in changed if cid in before}
    assert second.extracted == len(stored_before)
    assert second.unchanged == catalog.num_rows - len(changed)
    rows = _signal_rows(settings)
    new_rows = rows.filter(pc.equal(rows.column("run_id"), second.run_id))
    assert set(new_rows.column("content_id").to_pylist()) == stored_before
    after = _served(rows)
    for cid in stored_before:
        assert after[cid][0] != before[cid][0]  # a new input hash for the new title
    untouched = set(before) - changed
    assert {cid: after[cid] for cid in untouched} == {cid: before[cid] for cid in untouched}


def test_full_recomputes_everything_and_two_runs_serve_the_same_contents(
    settings: Settings,
) -> None:
    write_deltalake(settings.default_snapshot_uri, _catalog(200))
    first = run_extract(settings, ExtractRequest(signal=SIGNAL.ref))
    served = _served(_signal_rows(settings))
    full = run_extract(settings, ExtractRequest(signal=SIGNAL.ref, full=True))
    assert full.unchanged == 0
    assert full.extracted == first.extracted
    assert _served(_signal_rows(settings)) == served
    assert _signal_rows(settings).num_rows == 2 * first.extracted  # history keeps both
