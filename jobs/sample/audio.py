"""Audio previews: synthetic music and speech with known tempo, beats, loudness and voice share.

Clips are 6–8 s whatever the item's catalog `duration_ms` says. Loudness ground truth is measured
on the samples as a decoder returns them (ITU-R BS.1770-4), not merely the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

# The project's one BS.1770 meter; its tests hold it to pyloudnorm and to the standard's numbers.
from extractors.audio_dsp import integrated_loudness
from jobs.sample.plan import TRACK

AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
}
PEAK_CEILING = 0.89  # -1 dBFS: headroom for the overshoot of lossy codecs


@dataclass(frozen=True)
class Clip:
    """One item's preview as 16-bit samples, with what is known about it by construction."""

    pcm: np.ndarray  # int16, (frames, channels)
    rate: int
    fmt: str
    kind: str
    target_lufs: float
    loudness_lufs: float  # of the 16-bit samples, as a lossless decoder returns them
    tempo_bpm: float | None = None
    first_beat_s: float | None = None
    speech_ratio: float | None = None


def _music(
    rng: np.random.Generator, rate: int, channels: int, frames: int
) -> tuple[np.ndarray, float, float]:
    """A kick on every beat over a sustained chord: onsets fall exactly on known samples."""
    bpm = round(float(rng.uniform(70, 180)), 1)
    period = 60.0 * rate / bpm
    first = int(rng.integers(1, int(period // 2)))  # not sample 0: an onset is a jump from silence
    onsets = np.round(first + period * np.arange(int((frames - first) / period) + 1))
    onsets = onsets[onsets < frames].astype(np.int64)
    t = np.arange(round(0.15 * rate), dtype=np.float32) / rate
    sweep = 50 + 100 * np.exp(-t / 0.02)  # pitch drops 150 -> 50 Hz
    kick = np.cos(2 * np.pi * np.cumsum(sweep) / rate - 2 * np.pi * sweep[0] / rate)
    kick *= np.exp(-t / 0.05)  # starts at its peak: the onset is a one-sample jump
    beats = np.zeros(frames, dtype=np.float32)
    for k, onset in enumerate(onsets):
        length = min(len(kick), frames - onset)
        beats[onset : onset + length] += (0.6 if k % 4 == 0 else 0.48) * kick[:length]
    root = float(rng.choice([110.0, 130.81, 146.83, 164.81, 196.0, 220.0]))
    step = np.arange(frames, dtype=np.float32) * np.float32(2 * np.pi * root / rate)
    level = np.float32(rng.uniform(0.25, 0.6) / 3)
    out = np.empty((frames, channels), dtype=np.float32)
    for ch in range(channels):  # a major triad, the right channel slightly detuned
        detune = 1.0 + 0.002 * ch
        chord = sum(np.sin(step * np.float32(r * detune) + ch) for r in (1.0, 1.26, 1.5))
        out[:, ch] = beats + level * chord
    return out, bpm, first / rate


def _speech(
    rng: np.random.Generator, rate: int, channels: int, frames: int
) -> tuple[np.ndarray, float]:
    """Voice-like audio: a gliding buzzy pitch plus breath noise, cut into syllables and pauses."""
    envelope = np.zeros(frames, dtype=np.float32)
    position = int(rng.uniform(0.1, 0.4) * rate)
    while position < frames:
        for _ in range(int(rng.integers(3, 11))):  # one phrase of syllables
            length = int(rng.uniform(0.12, 0.25) * rate)
            stop = min(frames, position + length)
            shape = np.sin(np.pi * np.arange(stop - position, dtype=np.float32) / length) ** 2
            envelope[position:stop] = rng.uniform(0.5, 1.0) * shape
            position += length + int(rng.uniform(0.01, 0.04) * rate)
            if position >= frames:
                break
        position += int(rng.uniform(0.2, 0.6) * rate)  # a pause between phrases
    time = np.arange(frames, dtype=np.float32) / rate
    wobble = np.sin(time * np.float32(2 * np.pi * rng.uniform(0.3, 0.9)))
    f0 = np.float32(rng.uniform(95, 230)) * (1 + np.float32(0.08) * wobble)
    phase = (np.cumsum(f0, dtype=np.float64) / rate % 1.0).astype(np.float32)
    voice = np.sin(2 * np.pi * phase) + 0.5 * np.sin(4 * np.pi * phase) + 0.3 * (phase - 0.5)
    noise = rng.standard_normal((frames, channels), dtype=np.float32) * np.float32(0.25)
    out = (voice[:, None] + noise) * envelope[:, None]
    return out, float(np.mean(envelope > 0.01))


def _normalise(signal: np.ndarray, rate: int, target_lufs: float) -> tuple[np.ndarray, float]:
    """16-bit samples at the target loudness (peaks never past PEAK_CEILING), and their loudness.

    The loudness is measured again on the decoded samples, `pcm / 32768`: scaling moves the
    relative gate with the gain but not the absolute -70 LUFS one, so the quiet tails of speech
    can cross it and the result can differ from `measured + gain` (by 0.075 LU on one clip).
    """
    measured = integrated_loudness(signal, rate)
    gain = min(10 ** ((target_lufs - measured) / 20), PEAK_CEILING / float(np.abs(signal).max()))
    pcm = np.round(signal * np.float32(gain * 32767)).astype(np.int16)
    return pcm, integrated_loudness(pcm / 32768, rate)


@lru_cache(maxsize=16)
def render_clip(seed: int, code: int, number: int) -> Clip:
    """The preview clip of one item; a duplicate re-renders its source's clip from this."""
    rng = np.random.default_rng([seed, code, number, 11])
    music = code == TRACK
    rates, shares = ([22050, 44100], [0.75, 0.25]) if music else ([16000, 22050], [0.5, 0.5])
    rate = int(rng.choice(rates, p=shares))
    channels = 2 if rng.random() < 0.25 else 1
    fmt = str(rng.choice(list(AUDIO_FORMATS), p=[0.80, 0.14, 0.06]))  # OGG is slow to encode
    frames = int(rng.uniform(6.0, 8.0) * rate)
    target = round(float(rng.uniform(-30.0, -10.0)), 2)
    if music:
        signal, bpm, first = _music(rng, rate, channels, frames)
        extra: dict[str, Any] = {"tempo_bpm": bpm, "first_beat_s": first}
    else:
        signal, ratio = _speech(rng, rate, channels, frames)
        extra = {"speech_ratio": ratio}
    pcm, loudness = _normalise(signal, rate, target)
    return Clip(pcm, rate, fmt, "music" if music else "speech", target, loudness, **extra)


def write_clip(path: Path, clip: Clip, fmt: str) -> tuple[float, float]:
    """Encode a clip; (integrated loudness, sample peak in dBFS) of what a decoder reads back."""
    container, subtype = AUDIO_FORMATS[fmt]
    sf.write(path, clip.pcm, clip.rate, format=container, subtype=subtype)
    if fmt == "ogg":  # lossy: measure what was actually stored
        decoded, _ = sf.read(path, dtype="float32", always_2d=True)
        return integrated_loudness(decoded, clip.rate), float(np.abs(decoded).max())
    return clip.loudness_lufs, int(np.abs(clip.pcm.astype(np.int32)).max()) / 32768


def audio_truth(clip: Clip, fmt: str, measured: tuple[float, float] | None) -> dict[str, Any]:
    """The ground-truth columns of a clip written as `fmt` (loudness and peak only if measured:
    a truncated file has none)."""
    truth: dict[str, Any] = {
        "kind": clip.kind,
        "audio_format": fmt,
        "sample_rate": clip.rate,
        "channels": clip.pcm.shape[1],
        "clip_duration_ms": round(1000 * clip.pcm.shape[0] / clip.rate),
        "tempo_bpm": clip.tempo_bpm,
        "first_beat_s": clip.first_beat_s,
        "target_lufs": clip.target_lufs,
        "speech_ratio": clip.speech_ratio,
    }
    if measured is not None:
        loudness, peak = measured
        truth["loudness_lufs"] = round(loudness, 3)
        truth["sample_peak_dbfs"] = round(20 * math.log10(peak), 3)
    return truth
