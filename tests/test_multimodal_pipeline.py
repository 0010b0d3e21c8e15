"""Every signal through the real extract job on a sample catalog with media, against its truth."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from features import get_signal
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.pipeline.extractors import item_signals
from jobs.pipeline.near_duplicates import run_near_duplicates
from jobs.quality.evaluate import evaluate
from jobs.sample import write_sample_catalog
from jobs.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def _reasons(settings: Settings, ref: str) -> dict[str, str]:
    uri = settings.quarantine_uri(get_signal(ref).storage_name)
    rows = pa.table(DeltaTable(uri).to_pyarrow_table(columns=["content_id", "reason"]))
    return dict(
        zip(rows.column("content_id").to_pylist(), rows.column("reason").to_pylist(), strict=True)
    )


def test_all_signals_meet_their_ground_truth_bounds_and_bad_media_is_quarantined_with_reasons(
    settings: Settings,
) -> None:
    sample = write_sample_catalog(settings.default_snapshot_uri, settings.media_dir, 130, seed=0)
    records = {
        s.ref: run_extract(settings, ExtractRequest(signal=s.ref, batch_size=32))
        for s in item_signals()
    }
    assert all(r.status == "succeeded" for r in records.values())
    # Videos have no audio: skipped by the audio signals, not quarantined.
    assert records["audio_loudness@1"].skipped == sample.counts_by_type.get("video", 0)
    duplicates = run_near_duplicates(settings)
    assert duplicates.extracted > 0

    scores = evaluate(settings)
    measured = {(s.signal, s.metric) for s in scores}
    assert {
        ("audio_loudness@1", "MAE (LU)"),
        ("audio_features@1", "MAE (BPM)"),
        ("text_language@1", "accuracy"),
        ("near_duplicates@1", "precision"),
        ("near_duplicates@1", "recall"),
    } <= measured
    # A dozen items state a genre here: too few to hold text_tags to its bound, which
    # test_text_understanding checks on 2,000 items. Here: measured, through the job.
    assert ("text_tags@1", "accuracy") in measured
    failed = [s for s in scores if not s.passed and s.signal != "text_tags@1"]
    assert not failed, failed

    audio_reasons = _reasons(settings, "audio_loudness@1")
    art_reasons = _reasons(settings, "artwork_quality@1")
    for cid, what in sample.broken.items():
        if "does not exist" in what:
            assert "not found" in audio_reasons[cid]
        if "truncated" in what and "audio" in what:
            assert "truncated" in audio_reasons[cid] or "corrupt" in audio_reasons[cid]
        if "zero-byte" in what:
            assert "empty file" in art_reasons[cid]
