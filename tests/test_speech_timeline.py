"""speech_timeline@1: Silero VAD over real decoded media, against speech placed at known times.

The speech is real synthesized speech (espeak-ng, shipped by `espeakng-loader`), so the truth is
where each phrase was put, not what another model thinks.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from deltalake import DeltaTable, write_deltalake
from signal_rows import contract_violations, history, standard_columns
from silero_vad.sequence_vad import SileroVADSequence
from silero_vad.utils_vad import OnnxWrapper, get_speech_timestamps_from_probs

from extractors.artifact import resolve
from extractors.speech import (
    MIN_SILENCE_S,
    MIN_SPEECH_S,
    MODEL_URI,
    NEG_THRESHOLD,
    SAMPLE_RATE,
    SPEECH_PAD_S,
    THRESHOLD,
    FrameScorer,
    SegmentTracker,
    SpeechTimeline,
)
from features import get_signal
from features.types import Segments
from jobs.quality.evaluate import evaluate
from jobs.quality.segments import segment_matches, segment_scores
from jobs.sample import write_sample_catalog
from jobs.sample.audio import render_clip, spoken_phrase
from jobs.sample.plan import TRACK
from jobs.settings import Settings

SIGNAL = get_signal("speech_timeline@1")
PHRASES = ("the ferry leaves at midnight from the northern pier", "we open the second chapter")


@pytest.fixture(scope="module")
def extractor() -> SpeechTimeline:
    return SpeechTimeline(device="cpu")


def _f1(predicted: list[list[list[float]]], true: list[list[list[float]]]) -> float:
    return segment_scores(zip(predicted, true, strict=True)).f1


def _tile(rate: int) -> tuple[np.ndarray, list[tuple[float, float]], float]:
    """12 s: two English phrases at known times, silence around them; (samples, truth, s)."""
    seconds = 12.0
    tile = np.zeros(int(seconds * rate), np.float32)
    truth, position = [], rate
    for text in PHRASES:
        said = 0.5 * spoken_phrase("en", text, rate)
        tile[position : position + len(said)] = said
        truth.append((position / rate, (position + len(said)) / rate))
        position += len(said) + int(1.5 * rate)
    return tile, truth, seconds


def test_the_sample_catalog_speech_is_found_within_half_a_second_and_evaluate_says_so(
    settings: Settings, extractor: SpeechTimeline
) -> None:
    sample = write_sample_catalog(settings.default_snapshot_uri, settings.media_dir, 60, seed=4)
    snapshot = pa.table(DeltaTable(sample.snapshot_uri).to_pyarrow_table())
    with_audio = snapshot.filter(pc.is_valid(snapshot.column("audio_uri")))
    out = extractor.extract(with_audio)
    truth = {r["content_id"]: r for r in pq.read_table(sample.ground_truth_uri).to_pylist()}

    failed = {c: e for c, e in zip(out["content_id"].to_pylist(), out["error"].to_pylist(),
                                   strict=True) if e}  # fmt: skip
    assert set(failed) == {c for c, t in truth.items() if t["broken"] and "audio" in t["broken"]}
    assert not contract_violations(SIGNAL.ref, out)
    good = [r for r in out.to_pylist() if not r["error"]]
    kinds = {truth[r["content_id"]]["kind"] for r in good}
    assert kinds == {"music", "speech"}
    placed = [truth[r["content_id"]]["speech_segments"] for r in good]
    assert sum(map(len, placed)) >= 30  # phrases over music beds and over silence
    assert _f1([r["speech_segments"] for r in good], placed) >= 0.9
    errors = [abs(r["speech_ratio"] - truth[r["content_id"]]["speech_ratio"]) for r in good]
    assert np.mean(errors) <= 0.05

    # `signals evaluate` reads the stored rows: the same figures, with their bounds.
    computed = out.filter(pc.is_null(out.column("error")))
    rows = pa.table(
        {
            **standard_columns(computed["content_id"].to_pylist(), datetime.now(UTC)),
            **{name: computed[name] for name in SIGNAL.features},
        }
    ).cast(SIGNAL.arrow_schema())
    write_deltalake(settings.signal_uri(SIGNAL.storage_name), rows)
    scores = {s.metric: s for s in evaluate(settings) if s.signal == SIGNAL.ref}
    assert scores["F1"].passed and scores["F1"].value >= 0.9
    assert scores["MAE (share)"].passed and scores["MAE (share)"].value <= 0.05


def test_music_and_silence_alone_have_no_speech(tmp_path: Path, extractor: SpeechTimeline) -> None:
    track = render_clip(0, TRACK, 3)  # a sample track: kick drum on the beat over a chord
    uris = [str(tmp_path / "track.flac"), str(tmp_path / "silence.wav")]
    sf.write(uris[0], track.pcm, track.rate)
    sf.write(uris[1], np.zeros(5 * 16000, np.int16), 16000)
    for row, seconds in zip(
        extractor.extract(pa.table({"content_id": ["m", "s"], "audio_uri": uris})).to_pylist(),
        (len(track.pcm) / track.rate, 5.0),
        strict=True,
    ):
        assert row["error"] is None
        assert row["speech_segments"] == [] and row["segment_count"] == 0
        assert row["first_speech_s"] is None and row["speech_ratio"] == 0.0
        assert row["longest_non_speech_s"] == pytest.approx(seconds, abs=1e-3)


def test_windowed_probabilities_are_the_frame_by_frame_models(extractor: SpeechTimeline) -> None:
    # 40 s fed in uneven pieces: windows of 16.4 s, so the state crosses two window edges.
    tile, _, _ = _tile(SAMPLE_RATE)
    samples = np.concatenate([tile, tile, tile[: 16 * SAMPLE_RATE]])
    scorer = FrameScorer(extractor.model)
    cuts = np.cumsum(np.random.default_rng(0).integers(100, 40_000, 100))
    pieces = np.split(samples, cuts[cuts < len(samples)])
    probs = np.concatenate(
        [p for piece in pieces for p in scorer.add(piece)] + list(scorer.finish())
    )
    packaged = SileroVADSequence(str(resolve(MODEL_URI))).audio_forward(samples)
    streaming = OnnxWrapper(str(resolve("package://silero_vad/data/silero_vad.onnx")), True)
    one_by_one = streaming.audio_forward(torch.from_numpy(samples), SAMPLE_RATE).numpy().ravel()
    assert len(probs) == len(packaged) == len(one_by_one) == -(-len(samples) // 512)
    np.testing.assert_allclose(probs, packaged, atol=1e-6)
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)


def test_frames_become_segments_by_silero_s_own_rules() -> None:
    # Random probability tracks, fed in uneven pieces, each ending in 1.3 s of silence (where
    # the one documented deviation, a segment still open at the end of the file, cannot apply).
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(50, 3000))
        smooth = np.convolve(rng.normal(0, 1, n), np.ones(5) / 5, "same") * 3
        probs = np.concatenate([1 / (1 + np.exp(-smooth)), np.zeros(40)]).astype(np.float32)
        samples = len(probs) * 512 - int(rng.integers(0, 512))
        expected = get_speech_timestamps_from_probs(
            list(probs),
            threshold=THRESHOLD,
            neg_threshold=NEG_THRESHOLD,
            min_speech_duration_ms=MIN_SPEECH_S * 1000,
            min_silence_duration_ms=MIN_SILENCE_S * 1000,
            speech_pad_ms=SPEECH_PAD_S * 1000,
            audio_length_samples=samples,
        )
        tracker = SegmentTracker()
        for piece in np.split(probs, np.sort(rng.integers(0, len(probs), 4))):
            tracker.add(piece)
        found = tracker.timeline(samples / SAMPLE_RATE)["speech_segments"]
        want = [[s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE] for s in expected]
        assert len(found) == len(want)
        np.testing.assert_allclose(np.reshape(found, (-1, 2)), np.reshape(want, (-1, 2)), atol=1e-6)


def test_memory_is_the_same_for_one_minute_and_ten(
    tmp_path: Path, extractor: SpeechTimeline
) -> None:
    """Peak Python-side allocations (numpy's buffers are traced) while one file is processed:
    a 10 min file must not cost more than a 1 min one. Decoding it whole would take 53 MB of
    float32 at 22.05 kHz; the extractor holds a decoded block and a 16 s window."""
    rate = 22050  # not the model's: the resampler is part of the stream
    tile, truth, seconds = _tile(rate)
    peaks, results = [], []
    for minutes in (1, 10):
        path = tmp_path / f"{minutes}min.flac"
        with sf.SoundFile(path, "w", rate, 1, format="FLAC", subtype="PCM_16") as f:
            for _ in range(int(minutes * 60 / seconds)):
                f.write(tile)  # written tile by tile: the test holds no long file either
        tracemalloc.start()
        started = time.perf_counter()
        results.append(extractor.extract_one(str(path)))
        elapsed = time.perf_counter() - started
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert elapsed < minutes * 60 / 20  # well over 20× real time even on 2 busy cores
    short, long = results
    assert peaks[1] < 1.2 * peaks[0] + 1e6, peaks
    assert peaks[1] < 0.25 * 10 * 60 * rate * 4, peaks  # a quarter of the decoded file
    # State carries across windows: every phrase of every tile is found, none split in two.
    placed = [[[a + k * seconds, b + k * seconds] for a, b in truth] for k in range(50)]
    assert long["segment_count"] == 10 * short["segment_count"] == 100
    assert _f1([long["speech_segments"]], [[p for tile in placed for p in tile]]) == 1.0
    assert long["speech_ratio"] == pytest.approx(short["speech_ratio"], abs=1e-3)


def test_bad_audio_is_an_error_row_with_the_audio_reasons(
    tmp_path: Path, extractor: SpeechTimeline
) -> None:
    tile, _, _ = _tile(16000)
    cut = tmp_path / "cut.flac"
    sf.write(cut, tile, 16000)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    uris = [str(cut), str(text), str(tmp_path / "missing.wav"), None]
    out = extractor.extract(pa.table({"content_id": list("abcd"), "audio_uri": uris}))
    reasons = out["error"].to_pylist()
    assert "truncated" in reasons[0] or "corrupt" in reasons[0]
    assert "not a decodable audio file" in reasons[1]
    assert "media not found" in reasons[2]
    assert reasons[3] == "no audio_uri"
    assert out["speech_segments"].null_count == 4


def test_a_segment_matches_when_start_and_end_are_each_within_half_a_second() -> None:
    true = [[1.0, 3.0], [5.0, 6.0]]
    assert segment_matches([[1.4, 3.5], [5.0, 6.0]], true) == 2
    assert segment_matches([[1.6, 3.0]], true) == 0  # the start is 0.6 s off
    assert segment_matches([[1.0, 3.0], [1.1, 3.1]], true) == 1  # one to one
    scores = segment_scores([([[1.0, 3.0]], true), ([[0.0, 1.0]], [])])  # the second: music
    assert (scores.matches, scores.predicted, scores.true) == (1, 2, 2)
    assert scores.precision == scores.recall == scores.f1 == 0.5


def test_the_contract_refuses_malformed_segments() -> None:
    segments = [
        [[0.5, 1.5], [1.5, 3.0]],  # touching is fine
        [],  # measured, no speech
        [[0.5, 2.0], [1.5, 3.0]],  # overlapping
        [[2.0, 1.0]],  # ends before it starts
        [[-0.2, 1.0]],  # before the file starts
        [[1.0, 2.0], [0.0, 0.5]],  # out of order
        [[0.0, 1.0, 2.0]],  # not a pair
    ]
    n = len(segments)
    out = pa.table(
        {
            "content_id": [f"episode:{i}" for i in range(n)],
            "speech_ratio": pa.array([0.5] * n, pa.float32()),
            "speech_segments": pa.array(segments, Segments().arrow_type()),
            "first_speech_s": pa.array([0.5, None, 0.5, 2.0, 0.0, 1.0, 0.0], pa.float32()),
            "longest_non_speech_s": pa.array([1.0] * n, pa.float32()),
            "segment_count": pa.array([len(s) for s in segments], pa.int64()),
            "error": pa.nulls(n, pa.string()),
        }
    )
    assert set(contract_violations(SIGNAL.ref, out)) == {2, 3, 4, 5, 6}


def test_segments_are_served_whole_online_as_the_table_keeps_them(settings: Settings) -> None:
    from jobs.serving.client import get_signals
    from jobs.serving.materialize import materialize

    when = datetime.now(UTC).replace(microsecond=0)
    values = {
        "a": [[0.25, 1.5], [2.0, 3.75]],
        "b": [],
    }
    rows = [
        (cid, when, {"speech_ratio": 0.5, "speech_segments": s, "first_speech_s": 0.25 if s else None,
                     "longest_non_speech_s": 1.0, "segment_count": len(s)})
        for cid, s in values.items()
    ]  # fmt: skip
    write_deltalake(settings.signal_uri(SIGNAL.storage_name), history(SIGNAL.ref, rows, "r1"))
    materialize(settings, [SIGNAL])
    served = get_signals(["a", "b", "zzz"], signals=[SIGNAL.ref], settings=settings)
    name = f"{SIGNAL.feature_view_name}__speech_segments"
    assert served.schema.field(name).type == Segments().arrow_type()
    assert served.column(name).to_pylist() == [values["a"], [], None]
