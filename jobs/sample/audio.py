"""Audio previews: synthetic music and real synthesized speech with known tempo, beats, loudness,
and where the voice is.

Clips are 6–8 s whatever the item's catalog `duration_ms` says. Loudness ground truth is measured
on the samples as a decoder returns them (ITU-R BS.1770-4), not merely the target.

Speech is real speech: phrases of the item's language (its vocabulary's topics and chapter
titles) spoken by espeak-ng, which the `espeakng-loader` wheel ships with its voice data, driven
through its C API. Phrases are placed at known times, apart by pauses of 0.8–1.4 s; in half the
clips a music bed (a sustained chord, no beat) plays under the start, 16–24 dB below the voice,
and fades out in the first pause, so speech is heard over music and over silence. Each phrase,
from its first to its last sample within 40 dB of its peak, is one truth segment.
"""

from __future__ import annotations

import ctypes
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal as sps
import soundfile as sf

# The project's one BS.1770 meter; its tests hold it to pyloudnorm and to the standard's numbers.
from extractors.audio_dsp import integrated_loudness
from jobs.sample.plan import LANGUAGES, TRACK
from jobs.sample.words import words

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
    speech_segments: tuple[tuple[float, float], ...] = ()  # [start_s, end_s] of each phrase


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


# espeak-ng's C API (speak_lib.h): synchronous synthesis, samples handed to a callback.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE, _ESPEAK_PITCH = 1, 3
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
# espeak-ng's voice for each catalog language (all of them have one).
VOICES: dict[str, str] = {lang: lang for lang in LANGUAGES}
PHRASE_GAP_S = (0.8, 1.4)  # pauses between phrases: well over the VAD's 0.3 s minimum
BED_BELOW_VOICE_DB = (16.0, 24.0)
_TRIM_DB = -40.0  # a phrase starts and ends where it first and last comes within this of its peak


# espeak-ng's state is global to the process: one initialisation, one synthesis at a time (the
# sample writer renders items on several threads; two first calls at once initialised it twice
# and crashed it with SIGFPE).
_ESPEAK_LOCK = threading.Lock()


class _Espeak:
    """The espeak-ng library, initialised once per process (`_espeak`, under `_ESPEAK_LOCK`)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        data = str(espeakng_loader.get_data_path()).encode()
        self.rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.rate <= 0:
            raise RuntimeError(f"espeak-ng did not initialise (returned {self.rate})")
        self._parts: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._take)  # kept: the library holds only a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib

    def _take(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0 and wav:
            self._parts.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # go on

    def say(self, voice: str, text: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """int16 samples at `self.rate` of `text` spoken by `voice`."""
        with _ESPEAK_LOCK:
            self._parts = []
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
            raw = text.encode()
            status = self._lib.espeak_Synth(raw, len(raw) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8,
                                            None, None)  # fmt: skip
            if status != 0:
                raise RuntimeError(f"espeak-ng could not speak {text!r} (error {status})")
            return np.concatenate(self._parts) if self._parts else np.zeros(0, np.int16)


_engine: list[_Espeak] = []


def _espeak() -> _Espeak:
    with _ESPEAK_LOCK:
        if not _engine:
            _engine.append(_Espeak())
        return _engine[0]


@lru_cache(maxsize=256)
def spoken_phrase(
    language: str, text: str, rate: int, rate_wpm: int = 175, pitch: int = 50
) -> np.ndarray:
    """`text` spoken in `language` (English where espeak-ng has no voice for it), float32 at
    `rate`, trimmed to where it is within 40 dB of its peak; cached per phrase and voice."""
    engine = _espeak()
    voice = VOICES.get(language, "en")
    samples = engine.say(voice, text, rate_wpm, pitch).astype(np.float32) / 32768
    if rate != engine.rate:
        g = math.gcd(rate, engine.rate)
        samples = sps.resample_poly(samples, rate // g, engine.rate // g).astype(np.float32)
    loud = np.flatnonzero(np.abs(samples) >= np.abs(samples).max() * 10 ** (_TRIM_DB / 20))
    trimmed = samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]
    trimmed.setflags(write=False)  # shared by every clip that says it
    return trimmed


def _phrases(language: str) -> list[str]:
    index = LANGUAGES.index(language) if language in LANGUAGES else 0
    found = []
    for field in ("topics", "chapters"):
        lists = words(field)
        start, size = int(lists.offsets[index]), int(lists.sizes[index])
        found += lists.values.slice(start, size).to_pylist()
    return found


def _bed(rng: np.random.Generator, rate: int, frames: int) -> np.ndarray:
    """A music bed: a sustained major triad with a slow swell, no onsets (unit peak)."""
    root = float(rng.choice([110.0, 130.81, 146.83, 164.81, 196.0]))
    t = np.arange(frames, dtype=np.float32) / rate
    chord = sum(np.sin(np.float32(2 * np.pi * root * r) * t) for r in (1.0, 1.26, 1.5))
    swell = 1.0 + 0.2 * np.sin(np.float32(2 * np.pi * rng.uniform(0.1, 0.3)) * t)
    return (chord * swell / 3.6).astype(np.float32)


def _speech(
    rng: np.random.Generator, rate: int, channels: int, frames: int, language: str
) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Phrases of the item's language at known times, over a music bed or over silence; the
    samples and the [start_s, end_s] of each phrase."""
    phrases = _phrases(language)
    rate_wpm, pitch = int(rng.integers(150, 191)), int(rng.integers(30, 71))
    voice = np.zeros(frames, dtype=np.float32)
    segments: list[tuple[int, int]] = []
    position = int(rng.uniform(0.3, 1.2) * rate)
    tail = int(0.4 * rate)  # the clip ends in silence (or the bed's end) after the last phrase
    for _ in range(8):
        said = spoken_phrase(language, phrases[int(rng.integers(len(phrases)))], rate, rate_wpm,
                             pitch)  # fmt: skip
        if position + len(said) > frames - tail:
            break
        voice[position : position + len(said)] = said
        segments.append((position, position + len(said)))
        position += len(said) + int(rng.uniform(*PHRASE_GAP_S) * rate)
    out = np.repeat(voice[:, None], channels, axis=1)
    if segments and rng.random() < 0.5:  # a bed under the start, gone in the first pause
        first_end = segments[0][1]
        next_start = segments[1][0] if len(segments) > 1 else frames
        stop = min(frames, first_end + (next_start - first_end) // 2)
        fade = min(stop, int(0.3 * rate))
        envelope = np.ones(stop, dtype=np.float32)
        envelope[stop - fade :] = np.linspace(1.0, 0.0, fade, dtype=np.float32)
        envelope[: int(0.05 * rate)] *= np.linspace(0.0, 1.0, int(0.05 * rate), dtype=np.float32)
        spoken = np.concatenate([voice[a:b] for a, b in segments])
        voice_rms = float(np.sqrt(np.mean(np.square(spoken))))
        bed = _bed(rng, rate, stop) * envelope
        bed *= (
            voice_rms
            * 10 ** (-rng.uniform(*BED_BELOW_VOICE_DB) / 20)
            / float(np.sqrt(np.mean(np.square(bed[: max(1, stop - fade)]))))
        )
        out[:stop] += bed[:, None]
    return out, tuple((a / rate, b / rate) for a, b in segments)


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


def render_clip(seed: int, code: int, number: int, language: str | None = None) -> Clip:
    """The preview clip of one item (speech in `language`, English when None); a duplicate
    re-renders its source's clip from this."""
    return _render_clip(seed, code, number, None if code == TRACK else language or "en")


@lru_cache(maxsize=16)
def _render_clip(seed: int, code: int, number: int, language: str | None) -> Clip:
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
        extra: dict[str, Any] = {"tempo_bpm": bpm, "first_beat_s": first, "speech_ratio": 0.0}
    else:
        signal, segments = _speech(rng, rate, channels, frames, language or "en")
        spoken = sum(end - start for start, end in segments)
        extra = {"speech_ratio": spoken * rate / frames, "speech_segments": segments}
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
        "speech_segments": [list(segment) for segment in clip.speech_segments],
    }
    if measured is not None:
        loudness, peak = measured
        truth["loudness_lufs"] = round(loudness, 3)
        truth["sample_peak_dbfs"] = round(20 * math.log10(peak), 3)
    return truth
