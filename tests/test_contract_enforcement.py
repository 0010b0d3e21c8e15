"""Rows that break a signal's contract never land, on every job path: they are quarantined with the
name of the check they failed, and the rows that pass are committed.

The contracts are tightened in the test (`length_chars ≤ 60`, `group_size ≤ 1`) so that real
extractor output breaks them; the job code is unchanged. The extract path runs `ExtractBatches`
(what each Ray actor runs) and `commit_run` (what the driver runs) in this process, because a
patched contract cannot reach actor processes; the near-duplicates path runs whole.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pandera.pandas as pa_schema
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from extractors.text import item_text
from features import get_signal
from features.signal import Signal
from features.standard import STAGE_SIGNAL
from jobs.lake.runs import RunRecord, new_run_id
from jobs.pipeline import duplicate_tasks as tasks
from jobs.pipeline.commit import commit_run
from jobs.pipeline.extractors import extractor_version, hash_batch
from jobs.pipeline.near_duplicates import pinned_sources, plan_layout, writer_arguments
from jobs.pipeline.worker import ExtractBatches
from jobs.sample import iter_catalog_batches
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")


def _tighten(
    monkeypatch: pytest.MonkeyPatch, ref: str, column: str, check: pa_schema.Check
) -> None:
    """Add `check` to one column of one signal's contract, wherever this process builds it."""
    original = Signal.contract

    def contract(self: Signal) -> pa_schema.DataFrameSchema:
        schema = original(self)
        if self.ref != ref:
            return schema
        return schema.update_column(column, checks=[*schema.columns[column].checks, check])

    monkeypatch.setattr(Signal, "contract", contract)


def _rows(settings: Settings, signal: Signal) -> dict[str, dict[str, object]]:
    table = DeltaTable(settings.signal_uri(signal.storage_name)).to_pyarrow_table()
    return {r["content_id"]: r for r in table.to_pylist()}


def _quarantined(settings: Settings, signal: Signal) -> dict[str, dict[str, object]]:
    table = DeltaTable(settings.quarantine_uri(signal.storage_name)).to_pyarrow_table()
    return {r["content_id"]: r for r in table.to_pylist()}


def test_the_extract_path_quarantines_contract_violations_with_the_check_name(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    signal = get_signal("text_quality@1")
    _tighten(monkeypatch, signal.ref, "length_chars", pa_schema.Check.le(60))
    catalog = pa.Table.from_batches(list(iter_catalog_batches(40, 5, with_broken=False)))
    lengths = {
        r["content_id"]: len(item_text(r["title"], r["description"])) for r in catalog.to_pylist()
    }
    long_ids = {cid for cid, n in lengths.items() if n > 60}
    assert 0 < len(long_ids) < 40  # the sample has both kinds

    started = datetime.now(UTC)
    run_id = new_run_id(started)
    version = extractor_version(signal.ref)
    worker = ExtractBatches(
        signal_ref=signal.ref,
        run_id=run_id,
        event_timestamp=started,
        signal_uri=settings.signal_uri(signal.storage_name),
        quarantine_uri=settings.quarantine_uri(signal.storage_name),
        storage_options={},
        device="cpu",
        threads=1,
        expected_version=version,
    )
    inputs = catalog.select(
        ["content_id", "content_type", "updated_at", "duration_ms", "title", "description"]
    )
    meta = worker(hash_batch(inputs, signal.ref, version, settings.storage_options))
    record = RunRecord(run_id, "extract", started, started, "running", signal=signal.ref)
    record = commit_run(
        replace(settings, quarantine_threshold=1.0), signal, record, [meta], total=40
    )

    assert (record.extracted, record.quarantined) == (40 - len(long_ids), len(long_ids))
    assert set(_rows(settings, signal)) == set(lengths) - long_ids
    quarantined = _quarantined(settings, signal)
    assert set(quarantined) == long_ids
    for cid, row in quarantined.items():
        assert row["stage"] == STAGE_SIGNAL
        assert row["reason"] == (
            f"column 'length_chars' failed check less_than_or_equal_to(60) (value {lengths[cid]})"
        )


def test_the_near_duplicates_path_quarantines_contract_violations_with_the_check_name(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    signal, hashes = get_signal("near_duplicates@1"), get_signal("artwork_hash@1")
    _tighten(monkeypatch, signal.ref, "group_size", pa_schema.Check.le(1))
    now = datetime.now(UTC)
    red, blue = [1.0, 0.0, 0.0] * 16, [0.0, 0.0, 1.0] * 16
    artwork = {  # a and b share their artwork; c and d are far from everything
        "a": ("8f3c5a1e9d2b4c70", red),
        "b": ("8f3c5a1e9d2b4c70", red),
        "c": ("0123456789abcdef", blue),
        "d": ("fedcba9876543210", red),
    }
    rows = [
        {
            "content_id": cid,
            "event_timestamp": now,
            "created_timestamp": now,
            "input_updated_at": None,
            "input_hash": f"h-{cid}",
            "extractor_version": "1",
            "run_id": "seed",
            "phash": phash,
            "colour_layout": layout,
        }
        for cid, (phash, layout) in artwork.items()
    ]
    write_deltalake(
        settings.signal_uri(hashes.storage_name),
        pa.Table.from_pylist(rows, schema=hashes.arrow_schema()),
    )

    # The job's stages in this process (one partition), where the tightened contract applies.
    sources = [source for source, _ in pinned_sources(settings)]
    layout = plan_layout(settings, len(artwork))
    shares = [tasks.read_source(source, 0, 1, layout, {}) for source in sources]
    items, buckets = tasks.build_items(0, layout, sources, [1] * len(sources), *shares)
    pairs = tasks.attach_first(layout, items, tasks.bucket_candidates(layout, buckets))
    edges = tasks.verify(layout, items, pairs)
    run_id = new_run_id(now)
    meta = tasks.write_partition(
        writer_arguments(settings, run_id), now, items, tasks.group(layout, edges)
    )
    record = RunRecord(run_id, "near_duplicates", now, now, "running", signal=signal.ref)
    record = commit_run(replace(settings, quarantine_threshold=0.9), signal, record, [meta])

    assert (record.extracted, record.quarantined) == (2, 2)
    assert set(_rows(settings, signal)) == {"c", "d"}
    quarantined = _quarantined(settings, signal)
    assert set(quarantined) == {"a", "b"}
    assert {r["reason"] for r in quarantined.values()} == {
        "column 'group_size' failed check less_than_or_equal_to(1) (value 2)"
    }
    assert {r["stage"] for r in quarantined.values()} == {STAGE_SIGNAL}
