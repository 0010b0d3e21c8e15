"""Audio extractors against ground truth: the EBU / ITU reference signals, pyloudnorm, drum loops
of known tempo, re-encoded copies, broken files, a 30-minute file and the sample catalog.

No Ray: the extractors are pure batch functions, called as the job's actors call them.
"""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyloudnorm
import pytest
import soundfile as sf
from deltalake import DeltaTable
from PIL import Image
from scipy.signal import resample, resample_poly

from extractors import audio_dsp as dsp
from extractors.audio import AudioFeatures, AudioFingerprint, Loudness
from extractors.base import Extractor
from features import get_signal
from jobs.sample import write_sample_catalog

# --------------------------------------------------------------------------------------------
# Synthesis and helpers
# --------------------------------------------------------------------------------------------


def tone(
    seconds: float, rate: int, dbfs: float, freq: float = 1000.0, channels: int = 2
) -> np.ndarray:
    """A sine whose peak is `dbfs` in every channel, (frames, channels) float32."""
    t = np.arange(round(seconds * rate)) / rate
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def sections(rate: int, *parts: tuple[float, float]) -> np.ndarray:
    """Consecutive 1 kHz stereo tones, (seconds, dBFS) each: the EBU test signals' shape."""
    return np.concatenate([tone(seconds, rate, level) for seconds, level in parts])


def drum_loop(bpm: float, seconds: float = 10.0, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, quiet hi-hats on the eighths, over soft chords that
    change every bar (the seed picks the chords, the drum noise and where the first beat is)."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0.05, 0.3)
    n = round(seconds * rate)
    t = np.arange(round(0.2 * rate)) / rate
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t / 0.02)) / rate) * np.exp(-t / 0.08)
    snare = 0.5 * rng.standard_normal(len(t)) * np.exp(-t / 0.05)
    hat = np.diff(rng.standard_normal(len(t)) * np.exp(-t / 0.01), prepend=0.0)
    out = np.zeros(n)
    step = 60.0 / bpm / 2
    for k in range(int((seconds - first) / step) + 1):
        start = round((first + k * step) * rate)
        for sound, gain, due in (
            (kick, 0.6, k % 4 == 0),
            (snare, 0.6, k % 4 == 2),
            (hat, 0.05, True),
        ):
            if due and start < n:
                length = min(len(sound), n - start)
                out[start : start + length] += gain * sound[:length]
    bar = round(8 * step * rate)
    for start in range(0, n, bar):
        time = np.arange(min(bar, n - start)) / rate
        root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
        out[start : start + bar] += 0.05 * sum(
            np.sin(2 * np.pi * root * ratio * time) for ratio in (1.0, 1.26, 1.5)
        )
    return np.stack([out, out], axis=1).astype(np.float32)


def speech_like(seconds: float = 8.0, rate: int = 22050, seed: int = 0) -> np.ndarray:
    """A buzzy voice cut into 4-7 syllables a second, with pauses between phrases."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    envelope = np.zeros(n)
    position = round(0.2 * rate)
    while position < n:
        for _ in range(int(rng.integers(3, 9))):
            length = round(rng.uniform(0.12, 0.25) * rate)
            stop = min(n, position + length)
            envelope[position:stop] = (
                rng.uniform(0.5, 1.0) * np.sin(np.pi * np.arange(stop - position) / length) ** 2
            )
            position += length + round(rng.uniform(0.01, 0.04) * rate)
        position += round(rng.uniform(0.25, 0.6) * rate)
    f0 = rng.uniform(100, 220) * (1 + 0.08 * np.sin(2 * np.pi * 0.5 * np.arange(n) / rate))
    phase = np.cumsum(f0) / rate % 1.0
    voice = np.sin(2 * np.pi * phase) + 0.5 * np.sin(4 * np.pi * phase) + 0.3 * (phase - 0.5)
    noisy = 0.3 * (voice + 0.3 * rng.standard_normal(n)) * envelope
    return noisy[:, None].astype(np.float32)


def write(
    path: Path, samples: np.ndarray, rate: int, fmt: str = "FLAC", subtype: str | None = None
) -> str:
    """Encode samples with libsndfile; the URI the extractors will read."""
    sf.write(path, samples, rate, format=fmt, subtype=subtype)
    return str(path)


def extract(extractor: Extractor, uris: list[str | None]) -> list[dict]:
    """Run an extractor over one batch of URIs, as a job actor would; rows in order."""
    batch = pa.table(
        {
            "content_id": [f"item:{i}" for i in range(len(uris))],
            "audio_uri": pa.array(uris, pa.string()),
        }
    )
    out = extractor.extract(batch)
    assert out.column("content_id").to_pylist() == batch.column("content_id").to_pylist()
    return out.to_pylist()


def only(rows: list[dict]) -> dict:
    """The single, successful row of a one-item batch."""
    assert len(rows) == 1 and rows[0]["error"] is None, rows
    return rows[0]


def cosine_distance(a: list[float], b: list[float]) -> float:
    return 1.0 - float(np.dot(a, b))


# --------------------------------------------------------------------------------------------
# Loudness, loudness range, true peak
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (((20, -23.0),), -23.0),  # EBU Tech 3341 test 1
        (((20, -33.0),), -33.0),  # test 2
        (((10, -36.0), (60, -23.0), (10, -36.0)), -23.0),  # test 3: the relative gate
        (((10, -72.0), (10, -36.0), (60, -23.0), (10, -36.0), (10, -72.0)), -23.0),  # 4: both
        (((20, -26.0), (20.1, -20.0), (20, -26.0)), -23.0),  # test 5
    ],
)
def test_integrated_loudness_reads_the_ebu_tech_3341_signals(parts, expected) -> None:
    signal = sections(48000, *parts)
    assert dsp.integrated_loudness(signal, 48000) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (((20, -20.0), (20, -30.0)), 10.0),  # EBU Tech 3342 test 1
        (((20, -20.0), (20, -15.0)), 5.0),  # test 2
        (((20, -40.0), (20, -20.0)), 20.0),  # test 3
        (((20, -50.0), (20, -35.0), (20, -20.0), (20, -35.0), (20, -50.0)), 15.0),  # test 4
    ],
)
def test_loudness_range_reads_the_ebu_tech_3342_signals(parts, expected) -> None:
    meter = dsp.LoudnessMeter(48000, 2)
    meter.add(sections(48000, *parts))
    assert meter.loudness_range() == pytest.approx(expected, abs=1.0)  # the spec's tolerance


def test_loudness_agrees_with_pyloudnorm_on_music_and_speech(tmp_path: Path) -> None:
    # pyloudnorm's "DeMan" filter class is the same bilinear derivation of the K-weighting as
    # ours and reads the 997 Hz reference exactly; its default class reads it 0.04 dB low
    # (-3.05 LUFS), which alone would eat half of the 0.1 LU budget.
    reference = tone(5, 48000, 0.0, 997.0, channels=1)
    assert pyloudnorm.Meter(48000, filter_class="DeMan").integrated_loudness(
        reference
    ) == pytest.approx(-3.01, abs=0.005)
    clips = {
        "drums-44k-stereo.wav": (drum_loop(97, 8, 44100), 44100),
        "drums-22k-stereo.flac": (drum_loop(131, 8, 22050, seed=1), 22050),
        "speech-16k-mono.flac": (speech_like(8, 16000), 16000),
        "speech-48k-mono.wav": (0.2 * speech_like(8, 48000, seed=2), 48000),
    }
    uris = [write(tmp_path / name, samples, rate) for name, (samples, rate) in clips.items()]
    for row, uri in zip(extract(Loudness(), uris), uris, strict=True):
        decoded, rate = sf.read(uri, always_2d=True)  # the same samples the extractor read
        expected = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(decoded)
        assert row["error"] is None
        assert row["integrated_lufs"] == pytest.approx(expected, abs=0.1)
        assert row["integrated_lufs"] == pytest.approx(expected, abs=0.01)  # in fact


def test_true_peak_finds_the_peak_between_samples(tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(rate * 2)
    # A quarter-rate sine sampled 45 degrees off its crests: every sample is at 0.707 of the
    # peak, so the sample peak reads 3 dB low and only oversampling sees the real one.
    # 10 ms fades: an abrupt start or end rings through any interpolator (+0.1 dB here).
    fades = np.minimum(1.0, np.minimum(t, t[::-1]) / (0.01 * rate))
    offset = 0.5 * fades * np.sin(2 * np.pi * t / 4 + np.pi / 4)
    aligned = tone(2, rate, -1.0, 997.0, channels=1)
    uris = [
        write(tmp_path / "quarter-rate.wav", offset[:, None], rate, "WAV", "FLOAT"),
        write(tmp_path / "997hz.wav", aligned, rate, "WAV", "FLOAT"),
    ]
    quarter, reference = extract(Loudness(), uris)
    assert 20 * math.log10(np.abs(offset).max()) == pytest.approx(-9.03, abs=0.01)
    assert quarter["true_peak_dbtp"] == pytest.approx(-6.02, abs=0.2)  # EBU 3341: +0.2 / -0.4
    assert quarter["true_peak_dbtp"] == pytest.approx(-6.02, abs=0.01)  # what it achieves
    assert reference["true_peak_dbtp"] == pytest.approx(-1.0, abs=0.1)


def test_true_peak_agrees_with_16x_fft_oversampling() -> None:
    rng = np.random.default_rng(3)
    rate = 44100
    noise = rng.standard_normal((rate * 3, 2))
    # Band-limited to 16 kHz like real programme, so that 4x interpolation is meant to hold.
    spectrum = np.fft.rfft(noise, axis=0)
    spectrum[np.fft.rfftfreq(len(noise), 1 / rate) > 16000] = 0
    signal = (0.25 * np.fft.irfft(spectrum, len(noise), axis=0)).astype(np.float32)
    reference = 20 * math.log10(np.abs(resample(signal, 16 * len(signal), axis=0)).max())
    meter = dsp.TruePeakMeter(2)
    for start in range(0, len(signal), 10000):  # in blocks: the history carries across them
        meter.add(signal[start : start + 10000])
    assert dsp.to_db(meter.finish()) == pytest.approx(reference, abs=0.3)
    assert dsp.to_db(meter.finish()) >= 20 * math.log10(np.abs(signal).max())


# --------------------------------------------------------------------------------------------
# Tempo, spectra, silence, speech
# --------------------------------------------------------------------------------------------


def test_tempo_is_within_2_bpm_on_drum_loops_from_70_to_180(tmp_path: Path) -> None:
    tempi = [70.0, 85.0, 97.5, 120.0, 133.3, 160.0, 180.0]
    uris = [
        write(tmp_path / f"loop-{bpm}.flac", drum_loop(bpm, 10, 44100, seed=i), 44100)
        for i, bpm in enumerate(tempi)
    ]
    rows = extract(AudioFeatures(), uris)
    for bpm, row in zip(tempi, rows, strict=True):
        assert row["error"] is None
        assert row["tempo_bpm"] == pytest.approx(bpm, abs=2.0)
        assert row["tempo_bpm"] == pytest.approx(bpm, abs=0.3)  # what it actually achieves
        assert row["tempo_confidence"] > 0.6
        assert row["speech_score"] < 0.3


def test_spectral_statistics_of_a_sine_and_of_white_noise(tmp_path: Path) -> None:
    # The noise is written at the analysis rate: resampling would roll its top octave off.
    noise = 0.1 * np.random.default_rng(0).standard_normal((22050 * 5, 1))
    uris = [
        write(tmp_path / "sine.flac", tone(5, 44100, -6.0, 1000.0, channels=1), 44100),
        write(tmp_path / "noise.wav", noise.astype(np.float32), 22050, "WAV", "FLOAT"),
    ]
    sine, white = extract(AudioFeatures(), uris)
    assert sine["spectral_centroid_hz"] == pytest.approx(1000, abs=30)
    assert sine["spectral_rolloff_hz"] == pytest.approx(1000, abs=50)
    assert sine["spectral_flatness"] < 0.01
    # Analysed at 22.05 kHz: white noise is flat to 11 025 Hz, its centroid at a quarter of
    # the rate, 85 % of its magnitude below 0.85 x 11 025 Hz, and the flatness of a periodogram
    # of Gaussian noise is e^-gamma = 0.56 (its bins are exponentially distributed).
    assert white["spectral_centroid_hz"] == pytest.approx(5512, abs=150)
    assert white["spectral_rolloff_hz"] == pytest.approx(0.85 * 11025, abs=150)
    assert white["spectral_flatness"] == pytest.approx(math.exp(-0.5772), abs=0.05)


def test_silence_ratio_and_duration_count_100_ms_frames(tmp_path: Path) -> None:
    rate = 16000
    quiet_noise = 10 ** (-60 / 20) * np.random.default_rng(1).standard_normal((rate * 2, 1))
    signal = np.concatenate(
        [np.zeros((rate * 3, 1)), tone(4.5, rate, -20.0, 440.0, channels=1), quiet_noise]
    ).astype(np.float32)
    row = only(extract(AudioFeatures(), [write(tmp_path / "gaps.flac", signal, rate)]))
    assert row["duration_s"] == pytest.approx(9.5, abs=1e-6)
    assert row["silence_ratio"] == pytest.approx(5.0 / 9.5, abs=1e-6)  # 3 s digital, 2 s at -60


def test_a_long_silent_lead_in_hides_neither_the_beat_nor_the_identity(tmp_path: Path) -> None:
    rate = 16000
    loop = drum_loop(104, 10, rate, seed=6)
    late = np.concatenate([np.zeros((70 * rate, 2), np.float32), loop])  # past the 60 s window
    uris = [write(tmp_path / "late.flac", late, rate), write(tmp_path / "loop.flac", loop, rate)]
    features = extract(AudioFeatures(), uris[:1])[0]
    assert features["tempo_bpm"] == pytest.approx(104, abs=2)
    assert features["silence_ratio"] == pytest.approx(70 / 80, abs=0.01)
    late_fp, loop_fp = (r["fingerprint"] for r in extract(AudioFingerprint(), uris))
    assert cosine_distance(late_fp, loop_fp) <= dsp.DUPLICATE_DISTANCE


def test_speech_score_separates_speech_from_music(tmp_path: Path) -> None:
    speech = [
        write(tmp_path / f"talk-{i}.flac", speech_like(8, 22050, seed=i), 22050) for i in range(4)
    ]
    music = [
        write(tmp_path / f"song-{i}.flac", drum_loop(bpm, 8, 22050, seed=i), 22050)
        for i, bpm in enumerate((76.0, 104.0, 128.0, 171.0))
    ]
    rows = extract(AudioFeatures(), speech + music)
    speech_scores = [r["speech_score"] for r in rows[:4]]
    music_scores = [r["speech_score"] for r in rows[4:]]
    assert min(speech_scores) > 0.7 and max(music_scores) < 0.3
    assert max(r["tempo_confidence"] for r in rows[:4]) < 0.5


# --------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------


def test_fingerprint_of_a_re_encoded_copy_is_nearer_than_any_other_clip(tmp_path: Path) -> None:
    rate = 44100
    source = drum_loop(118, 10, rate, seed=5)
    copies = [
        write(tmp_path / "copy.flac", source, rate),
        write(tmp_path / "copy.ogg", source, rate, "OGG", "VORBIS"),
        write(tmp_path / "copy.mp3", source, rate, "MP3"),  # decoded by FFmpeg
        write(tmp_path / "copy-22k.flac", resample_poly(source, 1, 2, axis=0), rate // 2),
        write(tmp_path / "copy-quieter.wav", 0.5 * source, rate, "WAV"),
        write(
            tmp_path / "copy-padded.wav", np.concatenate([np.zeros((rate, 2)), source]), rate, "WAV"
        ),
    ]
    others = [
        write(tmp_path / f"other-{bpm}.flac", drum_loop(bpm, 10, rate, seed=i), rate)
        for i, bpm in enumerate((118.0, 119.0, 90.0, 150.0))  # 118 again: same tempo, other take
    ] + [write(tmp_path / "talk.flac", speech_like(10, rate, seed=9), rate)]
    rows = extract(
        AudioFingerprint(), [write(tmp_path / "source.wav", source, rate, "WAV"), *copies, *others]
    )
    assert all(r["error"] is None for r in rows), rows
    vectors = [r["fingerprint"] for r in rows]
    assert all(len(v) == dsp.FINGERPRINT_DIM for v in vectors)
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors)
    source_fp, copy_fps, other_fps = vectors[0], vectors[1:7], vectors[7:]
    nearest_other = min(cosine_distance(source_fp, v) for v in other_fps)
    for copy_fp in copy_fps:
        assert cosine_distance(source_fp, copy_fp) <= dsp.DUPLICATE_DISTANCE < nearest_other
        assert cosine_distance(source_fp, copy_fp) < min(
            cosine_distance(copy_fp, v) for v in other_fps
        )


# --------------------------------------------------------------------------------------------
# Bad media, other codecs, long files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_batch(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[str | None], list[str | None]]:
    """(URIs, the word each row's reason must contain; None for a good row)."""
    root = tmp_path_factory.mktemp("broken")
    rate = 22050
    clip = drum_loop(120, 6, rate)

    def cut(name: str, fmt: str, subtype: str | None = None) -> str:
        path = Path(write(root / name, clip, rate, fmt, subtype))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return str(path)

    def spoilt(name: str, where: slice | int, value: float | list[float]) -> str:
        samples = clip.copy()
        samples[where] = value
        return write(root / name, samples, rate, "WAV", "FLOAT")  # float WAV keeps NaN and Inf

    png = root / "cover.wav"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(png, format="PNG")
    (root / "empty.flac").write_bytes(b"")
    cases = [
        (write(root / "good.flac", clip, rate), None),
        (cut("cut.flac", "FLAC"), "truncated"),
        (cut("cut.wav", "WAV"), "truncated"),
        (cut("cut.mp3", "MP3"), "truncated"),
        (str(root / "empty.flac"), "empty file (0 bytes)"),
        (str(png), "not audio"),
        (write(root / "silence.flac", np.zeros((rate * 3, 2), np.float32), rate), "silent audio"),
        (str(root / "nowhere.ogg"), "media not found"),
        (spoilt("nan.wav", np.s_[:], np.nan), "264,600 NaN, 0 Inf of 264,600"),
        (spoilt("some-nan.wav", np.s_[rate : 2 * rate], np.nan), "44,100 NaN, 0 Inf"),
        (spoilt("inf.wav", rate, [np.inf, -np.inf]), "0 NaN, 2 Inf"),
        (None, "no audio_uri"),
        (write(root / "good.ogg", clip, rate, "OGG", "VORBIS"), None),
    ]
    return [uri for uri, _ in cases], [reason for _, reason in cases]


@pytest.mark.parametrize("extractor_cls", [Loudness, AudioFeatures, AudioFingerprint])
def test_bad_media_become_error_rows_and_the_rest_of_the_batch_is_computed(
    extractor_cls: type[Extractor], broken_batch: tuple[list[str | None], list[str | None]]
) -> None:
    uris, reasons = broken_batch
    rows = extract(extractor_cls(), uris)
    features = extractor_cls().output_schema().names
    for uri, reason, row in zip(uris, reasons, rows, strict=True):
        if reason is None:
            assert row["error"] is None, row
            assert all(row[name] is not None for name in features if name != "tempo_bpm")
        else:
            assert row["error"] is not None and reason in row["error"], (uri, row["error"])
            assert reason == "silent audio" or "silent" not in row["error"], row["error"]
            assert all(row[name] is None for name in features)
            if uri:
                assert Path(uri).name in row["error"] or reason == "silent audio"


def test_aac_in_mp4_decodes_through_ffmpeg(tmp_path: Path) -> None:
    rate = 44100
    clip = drum_loop(126, 8, rate, seed=4)
    path = tmp_path / "episode.m4a"  # soundfile cannot read AAC; PyAV (FFmpeg) can
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="stereo")
        # At its default 128 kbit/s FFmpeg's AAC encoder low-passes this loop's bright noise
        # enough to drop 0.6 LU; at 256 kbit/s the codec costs 0.1 LU.
        stream.bit_rate = 256_000
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(clip.T), format="fltp", layout="stereo"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    wav = write(tmp_path / "episode.wav", clip, rate, "WAV", "FLOAT")
    aac_loudness, wav_loudness = extract(Loudness(), [str(path), wav])
    assert aac_loudness["integrated_lufs"] == pytest.approx(
        wav_loudness["integrated_lufs"], abs=0.3
    )
    features = only(extract(AudioFeatures(), [str(path)]))
    assert features["tempo_bpm"] == pytest.approx(126, abs=2)
    assert features["duration_s"] == pytest.approx(8, abs=0.1)  # AAC adds its priming samples


def test_a_30_minute_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    rate, minutes = 8000, 30
    path = tmp_path / "audiobook.flac"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
        for minute in range(minutes):  # written a minute at a time, never whole
            t = np.arange(60 * rate) / rate + 60 * minute
            level = 0.05 + 0.1 * (1 + np.sin(2 * np.pi * t / 300))
            out.write(
                (level * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t)))[:, None]
            )
    whole_file_float32 = minutes * 60 * rate * 4  # 57.6 MB

    tracemalloc.start()
    try:
        loudness = only(extract(Loudness(), [str(path)]))
        _, loudness_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        features = only(extract(AudioFeatures(), [str(path)]))
        _, features_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert features["duration_s"] == pytest.approx(minutes * 60, abs=1e-3)
    assert -40 < loudness["integrated_lufs"] < -10 and loudness["loudness_range_lu"] > 3
    # Loudness holds a decoded block (65 536 samples) and 10 energies a second; the features
    # also hold their 60 s analysis window resampled to 22.05 kHz, whatever the file's length.
    assert loudness_peak < 8e6 and loudness_peak < whole_file_float32 / 8, loudness_peak
    assert features_peak < 24e6 and features_peak < whole_file_float32 / 2, features_peak


# --------------------------------------------------------------------------------------------
# The sample catalog, end to end without Ray
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, pa.Table]]:
    """(ground truth by content_id, {extractor class name: its output over every audio row})."""
    root = tmp_path_factory.mktemp("catalog")
    catalog = write_sample_catalog(str(root / "snapshot"), root / "media", 200, seed=11)
    snapshot = DeltaTable(catalog.snapshot_uri).to_pyarrow_table()
    with_audio = snapshot.filter(pc.is_valid(snapshot.column("audio_uri")))
    truth = {r["content_id"]: r for r in pq.read_table(catalog.ground_truth_uri).to_pylist()}
    return truth, {
        cls.__name__: cls().extract(with_audio)
        for cls in (Loudness, AudioFeatures, AudioFingerprint)
    }


def test_the_sample_catalog_matches_its_ground_truth(catalog_rows) -> None:
    truth, outputs = catalog_rows
    loudness, features, prints = (
        {r["content_id"]: r for r in outputs[name].to_pylist()}
        for name in ("Loudness", "AudioFeatures", "AudioFingerprint")
    )
    broken_audio = {
        c for c, t in truth.items() if t["broken"] and "audio" in t["broken"].split(":")[0]
    }
    assert broken_audio  # the catalog plants a missing and a truncated file
    for rows in (loudness, features, prints):
        failed = {c: r["error"] for c, r in rows.items() if r["error"]}
        assert set(failed) == broken_audio, failed  # error rate: exactly the broken files
        for content_id, reason in failed.items():
            kind = truth[content_id]["broken"].split(":")[0]
            assert {"missing audio": "media not found", "truncated audio": "truncated"}[
                kind
            ] in reason

    healthy = [c for c in loudness if c not in broken_audio]
    for content_id in healthy:
        t, lo, fe = truth[content_id], loudness[content_id], features[content_id]
        assert lo["integrated_lufs"] == pytest.approx(t["loudness_lufs"], abs=0.05)
        assert lo["true_peak_dbtp"] >= t["sample_peak_dbfs"] - 0.01
        assert fe["duration_s"] * 1000 == pytest.approx(t["clip_duration_ms"], abs=1)
        if t["kind"] == "music":
            assert fe["tempo_bpm"] == pytest.approx(t["tempo_bpm"], abs=2.0)
            assert fe["tempo_confidence"] > 0.5 and fe["speech_score"] < 0.5
            assert fe["silence_ratio"] == 0.0
        else:
            assert fe["speech_score"] > 0.5
            assert fe["silence_ratio"] > 0.05  # pauses between phrases
    tempo_errors = [
        abs(features[c]["tempo_bpm"] - truth[c]["tempo_bpm"])
        for c in healthy
        if truth[c]["kind"] == "music"
    ]
    assert max(tempo_errors) < 0.5

    vectors = {c: np.array(prints[c]["fingerprint"]) for c in healthy}
    copies = [(c, t["duplicate_of"]) for c, t in truth.items() if t["duplicate_media"] == "audio"]
    assert copies
    for copy, source in copies:
        distance = cosine_distance(vectors[copy], vectors[source])
        nearest_other = min(
            cosine_distance(vectors[copy], v) for c, v in vectors.items() if c not in (copy, source)
        )
        assert distance <= dsp.DUPLICATE_DISTANCE < nearest_other


def test_the_sample_catalog_rows_pass_the_declared_contracts(catalog_rows) -> None:
    _, outputs = catalog_rows
    for name, signal_ref in (
        ("Loudness", "audio_loudness@1"),
        ("AudioFeatures", "audio_features@1"),
        ("AudioFingerprint", "audio_fingerprint@1"),
    ):
        signal = get_signal(signal_ref)
        assert signal.extractor == f"extractors.audio:{name}"
        out = outputs[name]
        computed = out.filter(pc.is_null(out.column("error"))).select(list(signal.features))
        checks = pandera.DataFrameSchema({n: t.column(n) for n, t in signal.features.items()})
        checks.validate(computed.to_pandas(), lazy=True)  # ranges, nullability, dimension, norm
