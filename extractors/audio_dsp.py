"""Audio DSP in numpy/scipy: what the audio signals measure, on finite float32 sample blocks
(`extractors.audio` refuses a file holding NaN or Inf before its samples reach these).

No I/O and no learned weights. Whole-file measures (loudness, true peak, levels) are accumulators
fed block by block, so a two-hour audiobook never sits in memory; measures that need only a window
(tempo, spectra, speech score, fingerprint) work on a bounded mono excerpt resampled to
`ANALYSIS_RATE`, so their values do not depend on the file's sample rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sfft
from scipy import ndimage, sparse
from scipy import signal as sps

ANALYSIS_RATE = 22050  # Hz; spectral features are reported up to its Nyquist frequency, 11 025 Hz
N_FFT = 1024
HOP = 256  # 11.6 ms at ANALYSIS_RATE: fine enough for sub-BPM tempo after interpolation
FRAME_RATE = ANALYSIS_RATE / HOP

ABSOLUTE_GATE_LUFS = -70.0
SILENCE_DBFS = -50.0  # a 100 ms frame below this RMS counts towards the silence ratio
SILENT_DBFS = -70.0  # audio whose every 100 ms frame is below this RMS is silent audio

# --------------------------------------------------------------------------------------------
# ITU-R BS.1770-4 loudness, EBU Tech 3342 loudness range
# --------------------------------------------------------------------------------------------

# K-weighting as two bilinear-transformed analogue prototypes (Brecht De Man's derivation): at
# 48 kHz they reproduce the coefficients printed in BS.1770-4, and they hold at any other rate.
_SHELF_HZ, _SHELF_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_HIGHPASS_HZ, _HIGHPASS_Q = 38.13547087602444, 0.5003270373238773


def k_weighting_coefficients(rate: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """((b, a) of the high shelf, (b, a) of the high pass) of the BS.1770 K-weighting, a[0] = 1.

    Why derived rather than tabulated: the standard prints coefficients for 48 kHz only, and
    catalogs hold 16, 22.05 and 44.1 kHz files too.
    """
    k = math.tan(math.pi * _SHELF_HZ / rate)
    vh = 10 ** (_SHELF_DB / 20)
    vb = vh**0.4996667741545416
    shelf_b = [vh + vb * k / _SHELF_Q + k * k, 2 * (k * k - vh), vh - vb * k / _SHELF_Q + k * k]
    shelf_a = [1 + k / _SHELF_Q + k * k, 2 * (k * k - 1), 1 - k / _SHELF_Q + k * k]
    k = math.tan(math.pi * _HIGHPASS_HZ / rate)
    high_b = [1.0, -2.0, 1.0]
    high_a = [1 + k / _HIGHPASS_Q + k * k, 2 * (k * k - 1), 1 - k / _HIGHPASS_Q + k * k]
    return (
        (np.array(shelf_b) / shelf_a[0], np.array(shelf_a) / shelf_a[0]),
        (np.array(high_b), np.array(high_a) / high_a[0]),  # the spec leaves b un-normalised
    )


@cache
def _k_weighting_sos(rate: int) -> np.ndarray:
    return np.array([np.concatenate([b, a]) for b, a in k_weighting_coefficients(rate)])


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 channel weights G_i: 1 for front channels, 1.41 for surrounds, 0 for the LFE.

    Only 5.1 in the usual file order (L R C LFE Ls Rs) has known positions; any other layout is
    weighted 1 per channel, which is exact for mono and stereo.
    """
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


class _FrameEnergy:
    """Sum of squares per channel over consecutive frames of a fixed length, fed in blocks."""

    def __init__(self, frame: int, channels: int) -> None:
        self.frame = frame
        self._sums: list[np.ndarray] = []
        self._tail = np.zeros((0, channels))

    def add(self, block: np.ndarray) -> None:
        x = np.concatenate([self._tail, block]) if len(self._tail) else block
        whole = len(x) // self.frame * self.frame
        if whole:
            frames = x[:whole].reshape(-1, self.frame, x.shape[1])
            self._sums.append(np.einsum("fsc,fsc->fc", frames, frames, dtype=np.float64))
        self._tail = np.array(x[whole:], dtype=np.float64)

    def sums(self) -> np.ndarray:
        """(frames, channels) sums of squares of the complete frames so far."""
        if not self._sums:
            return np.zeros((0, self._tail.shape[1]))
        if len(self._sums) > 1:
            self._sums = [np.concatenate(self._sums)]
        return self._sums[0]

    @property
    def tail(self) -> np.ndarray:
        """The samples after the last complete frame."""
        return self._tail


def _lufs(power: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(power)


class LoudnessMeter:
    """Integrated loudness (BS.1770-4) and loudness range (EBU Tech 3342) of a stream.

    Why streamed: the K-weighting runs as a stateful IIR filter block by block and only the
    energy of each 100 ms step is kept (10 numbers a second), so a two-hour file costs about
    a megabyte. 400 ms gating blocks (75 % overlap) and 3 s short-term windows are sums of
    consecutive steps.
    """

    def __init__(self, rate: int, channels: int) -> None:
        self.step = round(0.1 * rate)
        self._sos = _k_weighting_sos(int(rate))
        self._state = np.zeros((self._sos.shape[0], 2, channels))
        self._energy = _FrameEnergy(self.step, channels)
        self._weights = channel_weights(channels)

    def add(self, block: np.ndarray) -> None:
        """Feed (frames, channels) samples."""
        weighted, self._state = sps.sosfilt(
            self._sos, block.astype(np.float64), axis=0, zi=self._state
        )
        self._energy.add(weighted)

    def _window_powers(self, steps: int) -> np.ndarray:
        """Mean-square K-weighted power of every window of `steps` consecutive 100 ms steps."""
        per_step = self._energy.sums() @ self._weights
        if len(per_step) < steps:
            return np.zeros(0)
        total = np.concatenate([[0.0], np.cumsum(per_step)])
        return (total[steps:] - total[:-steps]) / (steps * self.step)

    def integrated(self) -> float:
        """Gated loudness in LUFS; -inf when no 400 ms block clears the -70 LUFS gate."""
        power = self._window_powers(4)
        above = power[_lufs(power) > ABSOLUTE_GATE_LUFS]
        if above.size == 0:
            return float("-inf")
        relative = _lufs(above.mean()) - 10.0
        return float(_lufs(above[_lufs(above) > relative].mean()))

    def loudness_range(self) -> float:
        """LRA in LU: 10th to 95th percentile of gated 3 s short-term loudness (0 if too short)."""
        power = self._window_powers(30)
        above = power[_lufs(power) > ABSOLUTE_GATE_LUFS]
        if above.size == 0:
            return 0.0
        kept = _lufs(above[_lufs(above) > _lufs(above.mean()) - 20.0])
        return float(np.percentile(kept, 95) - np.percentile(kept, 10))


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness in LUFS of a whole array ((frames,) or (frames, channels)).

    Why: the sample catalog measures its ground truth with the same meter the extractors stream,
    so there is one BS.1770 implementation in the project. -inf for silence or < 400 ms.
    """
    x = np.asarray(samples)
    x = x[:, None] if x.ndim == 1 else x
    meter = LoudnessMeter(int(rate), x.shape[1])
    meter.add(x)
    return meter.integrated()


# 4x oversampling interpolator for the true peak (BS.1770-4 Annex 2 asks for >= 4x at 48 kHz).
# An odd length centred on a multiple of 4 makes phase 0 the samples themselves, so the estimate
# is never below the sample peak; phases 1-3 are 12-tap FIRs.
_OVERSAMPLE = 4
_INTERPOLATOR = sps.firwin(4 * 12 + 1, 1 / _OVERSAMPLE, window=("kaiser", 6.0)) * _OVERSAMPLE
_TAPS = 12
_PHASES = [np.ascontiguousarray(_INTERPOLATOR[p::_OVERSAMPLE][:_TAPS]) for p in (1, 2, 3)]
_HISTORY = _TAPS - 1  # what a phase needs before the first new sample
# No interpolated value can exceed this multiple of the largest sample it is computed from.
_PHASE_GAIN = max(float(np.abs(p).sum()) for p in _PHASES)
_CHUNK = 4096


class TruePeakMeter:
    """Maximum absolute value of the 4x oversampled signal over all channels.

    Why the pruning: a chunk whose largest sample, times the interpolator's gain bound, cannot
    beat the running peak is skipped, so quiet passages (most of an audiobook) cost a comparison.
    """

    def __init__(self, channels: int) -> None:
        self.peak = 0.0
        self._history = np.zeros((_HISTORY, channels), dtype=np.float32)

    def add(self, block: np.ndarray) -> None:
        """Feed (frames, channels) samples."""
        if len(block) == 0:
            return
        x = np.concatenate([self._history, block.astype(np.float32, copy=False)])
        self._history = x[-_HISTORY:].copy()
        self._interpolate(x)

    def _interpolate(self, x: np.ndarray) -> None:
        outputs = len(x) - _HISTORY
        chunks = -(-outputs // _CHUNK)
        padded = np.zeros((chunks * _CHUNK + _CHUNK, x.shape[1]), dtype=np.float32)
        np.abs(x, out=padded[: len(x)])
        chunk_max = padded.reshape(chunks + 1, -1).max(axis=1)  # all channels of a chunk at once
        self.peak = max(self.peak, float(chunk_max.max()))  # the sample peak
        # Outputs of chunk c read inputs c*CHUNK .. (c+1)*CHUNK + HISTORY: chunks c and c + 1.
        reach = np.maximum(chunk_max[:-1], chunk_max[1:])
        wanted = np.flatnonzero(reach * _PHASE_GAIN > self.peak)
        if wanted.size == 0:
            return
        # Runs of consecutive chunks, each interpolated in one call.
        breaks = np.flatnonzero(np.diff(wanted) > 1)
        for first, last in zip(
            wanted[np.r_[0, breaks + 1]], wanted[np.r_[breaks, wanted.size - 1]], strict=True
        ):
            segment = x[first * _CHUNK : min(outputs, (last + 1) * _CHUNK) + _HISTORY]
            for phase in _PHASES:
                # A convolution (correlation with the reversed taps), all channels at once;
                # only outputs whose taps lie wholly inside the segment are kept.
                filtered = ndimage.correlate1d(segment, phase[::-1], axis=0, mode="constant")
                valid = filtered[_TAPS // 2 : len(segment) - _TAPS // 2 + 1]
                self.peak = max(self.peak, float(valid.max()), -float(valid.min()))

    def finish(self) -> float:
        """The true peak (linear), including the ringing after the last sample."""
        self._interpolate(np.concatenate([self._history, np.zeros_like(self._history)]))
        return self.peak


def to_db(linear: float) -> float:
    """20 log10 of an amplitude; -inf for zero."""
    return 20 * math.log10(linear) if linear > 0 else float("-inf")


# --------------------------------------------------------------------------------------------
# Levels: duration and silence over the whole stream
# --------------------------------------------------------------------------------------------


class LevelMeter:
    """Duration and the share of 100 ms frames whose RMS (all channels) is below a level."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.frames = 0
        self._energy = _FrameEnergy(round(0.1 * rate), channels)

    def add(self, block: np.ndarray) -> None:
        """Feed (frames, channels) samples."""
        self.frames += len(block)
        self._energy.add(block)

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def _mean_squares(self) -> np.ndarray:
        sums, tail = self._energy.sums(), self._energy.tail
        mean_square = sums.mean(axis=1) / self._energy.frame
        if len(tail):  # a final partial frame counts too
            mean_square = np.append(mean_square, np.mean(np.square(tail)))
        return mean_square

    def silence_ratio(self, threshold_dbfs: float = SILENCE_DBFS) -> float:
        """Share of 100 ms frames whose RMS is below `threshold_dbfs` (1.0 for no frames)."""
        mean_square = self._mean_squares()
        if mean_square.size == 0:
            return 1.0
        return float(np.mean(mean_square < 10 ** (threshold_dbfs / 10)))

    @property
    def silent(self) -> bool:
        """No 100 ms frame reaches SILENT_DBFS RMS, the level of BS.1770's absolute gate."""
        return not np.any(self._mean_squares() >= 10 ** (SILENT_DBFS / 10))


# --------------------------------------------------------------------------------------------
# A bounded mono excerpt at the analysis rate
# --------------------------------------------------------------------------------------------


class MonoWindow:
    """`seconds` of a stream mixed to mono, kept as float32 at the stream's rate.

    The window opens at the first sample above SILENT_DBFS, so leading silence (a minute of
    nothing before an audiobook starts) neither wastes the window nor hides the content.
    """

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate = rate
        self.limit = round(seconds * rate)
        self._parts: list[np.ndarray] = []
        self.frames = 0

    @property
    def full(self) -> bool:
        return self.frames >= self.limit

    def add(self, block: np.ndarray) -> None:
        """Feed (frames, channels) samples; anything past the window is ignored."""
        if self.full:
            return
        mono = block.mean(axis=1, dtype=np.float32)
        if not self._parts:
            loud = np.flatnonzero(np.abs(mono) > 10 ** (SILENT_DBFS / 20))
            if loud.size == 0:
                return
            mono = mono[loud[0] :]
        taken = mono[: self.limit - self.frames]
        self._parts.append(taken)
        self.frames += len(taken)

    def samples(self) -> np.ndarray:
        """The excerpt resampled to ANALYSIS_RATE (empty if nothing rose above silence)."""
        mono = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        return resample(mono, self.rate, ANALYSIS_RATE)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy's Kaiser-windowed FIR) of a mono float32 signal."""
    if rate == target or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    g = math.gcd(int(rate), int(target))
    return sps.resample_poly(x, target // g, rate // g).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Short-time spectra
# --------------------------------------------------------------------------------------------


def power_spectra(x: np.ndarray, chunk: int = 512) -> Iterator[np.ndarray]:
    """Hann-windowed |STFT|^2 of a mono signal at ANALYSIS_RATE, `chunk` frames at a time.

    Why chunks: per-frame statistics are all the callers keep, so a minute of audio never
    exists as a full spectrogram.
    """
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    frames = sliding_window_view(x, N_FFT)[::HOP]
    window = sps.get_window("hann", N_FFT).astype(np.float32)
    for start in range(0, len(frames), chunk):
        spectrum = sfft.rfft(frames[start : start + chunk] * window, axis=1)
        yield (spectrum.real**2 + spectrum.imag**2).astype(np.float32)


@cache
def mel_filterbank(bands: int, low_hz: float, high_hz: float) -> sparse.csr_matrix:
    """(bands, bins) triangular filters evenly spaced on the HTK mel scale, stored sparse.

    Why sparse: each band covers a few bins, and a dense float32 matmul hands a tiny product to
    a multi-threaded BLAS that, on a busy node, spends ten times longer than the arithmetic.
    """

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges_mel = np.linspace(mel(np.array(low_hz)), mel(np.array(high_hz)), bands + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(N_FFT, 1 / ANALYSIS_RATE)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return sparse.csr_matrix(np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32))


def band_power(power: np.ndarray, bank: sparse.csr_matrix) -> np.ndarray:
    """(frames, bands) power in each filter of `bank` for (frames, bins) power spectra."""
    return np.asarray((bank @ power.T).T)


_FREQS = np.fft.rfftfreq(N_FFT, 1 / ANALYSIS_RATE).astype(np.float32)
_ONSET_BANDS = (40, 30.0, 11025.0)
_TINY = 1e-10


@dataclass(frozen=True)
class FrameStats:
    """Per-frame measures of a mono excerpt at FRAME_RATE frames a second."""

    energy: np.ndarray  # sum of the power spectrum (windowed signal energy)
    centroid: np.ndarray  # Hz, magnitude-weighted
    rolloff: np.ndarray  # Hz below which 85 % of the magnitude lies
    flatness: np.ndarray  # geometric / arithmetic mean of the power spectrum
    onset: np.ndarray  # half-wave rectified log-mel flux (onset strength)

    @property
    def active(self) -> np.ndarray:
        """Frames within 60 dB of the loudest: the ones spectral averages are taken over."""
        return self.energy > max(float(self.energy.max()) * 1e-6, _TINY)


def _spectral_shape(power: np.ndarray) -> tuple[np.ndarray, ...]:
    """(energy, centroid, rolloff, flatness) of each row of (frames, bins) power spectra."""
    magnitude = np.sqrt(power)
    total = magnitude.sum(axis=1) + _TINY
    centroid = (magnitude * _FREQS).sum(axis=1) / total
    rolloff = _FREQS[np.argmax(np.cumsum(magnitude, axis=1) >= 0.85 * total[:, None], axis=1)]
    floored = np.maximum(power, _TINY)
    flatness = np.exp(np.log(floored).mean(axis=1)) / floored.mean(axis=1)
    return power.sum(axis=1), centroid, rolloff, flatness


def frame_stats(x: np.ndarray) -> FrameStats:
    """Spectral shape and onset strength of every STFT frame of a mono ANALYSIS_RATE signal."""
    bank = mel_filterbank(*_ONSET_BANDS)
    shapes, log_mel = [], []
    for power in power_spectra(x):
        shapes.append(_spectral_shape(power))
        log_mel.append(10 * np.log10(np.maximum(band_power(power, bank), _TINY)))
    energy, centroid, rolloff, flatness = (
        np.concatenate(column) for column in zip(*shapes, strict=True)
    )
    levels = np.concatenate(log_mel)
    levels = np.maximum(levels, levels.max() - 80.0)  # an 80 dB floor, as onset detectors use
    flux = np.maximum(np.diff(levels, axis=0, prepend=levels[:1]), 0.0).mean(axis=1)
    return FrameStats(energy, centroid, rolloff, flatness, flux.astype(np.float32))


def spectral_summary(stats: FrameStats) -> tuple[float, float, float]:
    """(centroid Hz, 85 % rolloff Hz, flatness) averaged over the active frames."""
    active = stats.active
    return (
        float(stats.centroid[active].mean()),
        float(stats.rolloff[active].mean()),
        float(np.clip(stats.flatness[active].mean(), 0.0, 1.0)),
    )


# --------------------------------------------------------------------------------------------
# Tempo: autocorrelation of the onset strength
# --------------------------------------------------------------------------------------------

TEMPO_RANGE_BPM = (40.0, 240.0)
MIN_TEMPO_SECONDS = 4.0  # fewer than ~4 beats at slow tempi: no meaningful periodicity


def _peak_near(curve: np.ndarray, position: float, radius: float) -> tuple[float, float]:
    """(sub-sample position, value) of the largest point within `radius` of `position`,
    refined by fitting a parabola through it and its neighbours."""
    low = max(1, round(position - radius))
    high = min(len(curve) - 2, round(position + radius))
    if high < low:
        return position, 0.0
    i = low + int(np.argmax(curve[low : high + 1]))
    left, centre, right = curve[i - 1], curve[i], curve[i + 1]
    curvature = left - 2 * centre + right
    offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return i + float(np.clip(offset, -0.5, 0.5)), float(centre)


def _pulse_strengths(pulses: np.ndarray, period: float, phases: np.ndarray) -> np.ndarray:
    """For each phase, the mean of `pulses` (its largest within +-1 frame) at phase, phase +
    period, phase + 2 period, ..."""
    local = ndimage.maximum_filter1d(pulses, 3)
    beats = np.arange(int(len(pulses) / period) + 1)
    at = np.round(phases[:, None] + period * beats[None, :]).astype(int)
    inside = at < len(pulses)
    total = np.where(inside, local[np.minimum(at, len(pulses) - 1)], 0.0).sum(axis=1)
    return total / np.maximum(inside.sum(axis=1), 1)


def _offbeat_ratio(pulses: np.ndarray, period: float) -> float | None:
    """Strength of the pulses halfway between beats of `period`, relative to those on them;
    None when the pulses show no clear beat at that period (the best phase under twice the
    median phase)."""
    phases = np.arange(0.0, period, 0.5)
    strengths = _pulse_strengths(pulses, period, phases)
    best = int(np.argmax(strengths))
    if strengths[best] <= 2 * np.median(strengths):
        return None
    offbeat = _pulse_strengths(pulses, period, np.array([phases[best] + period / 2]))[0]
    return float(offbeat / strengths[best])


def _autocorrelation(onset: np.ndarray) -> np.ndarray:
    """Unbiased autocorrelation of the onset envelope (1 s moving average removed), AC[0] = 1."""
    n = len(onset)
    width = round(FRAME_RATE)
    envelope = onset - np.convolve(onset, np.ones(width) / width, mode="same")
    power = np.abs(sfft.rfft(envelope, 2 * n)) ** 2
    autocorrelation = sfft.irfft(power)[:n]
    if autocorrelation[0] <= _TINY:
        return np.zeros(n)
    return autocorrelation * n / ((n - np.arange(n)) * autocorrelation[0])


def tempo(stats: FrameStats) -> tuple[float | None, float]:
    """(BPM or None, confidence in [0, 1]) of an excerpt's frame statistics.

    How: the autocorrelation of the onset envelope peaks at the beat period; a log-normal
    preference around 120 BPM (one octave wide) picks among its peaks. Two octave checks follow.
    A pulse train correlates as well at twice its period, so if half the chosen period is nearly
    as periodic (>= 0.6) the faster pulse is the beat. The log-spectral onset envelope hears a
    quiet hi-hat as loudly as a kick, so if every other pulse carries under 30 % of the energy
    of its neighbours (measured on the energy envelope) those are subdivisions and the period
    doubles back. Hi-hats on eighths louder than about a sixth of the drums still read as double
    tempo. The period is refined from the peaks at its multiples (precision grows with each),
    to well under 1 BPM at hop 256. Confidence is the autocorrelation at the period: 1 for a
    perfectly periodic envelope, under 0.4 for speech. None under MIN_TEMPO_SECONDS of audio.
    """
    n = len(stats.onset)
    if n < MIN_TEMPO_SECONDS * FRAME_RATE:
        return None, 0.0
    autocorrelation = _autocorrelation(stats.onset)
    if autocorrelation[0] == 0:  # no onsets at all
        return None, 0.0
    low_bpm, high_bpm = TEMPO_RANGE_BPM
    shortest, longest = 60 * FRAME_RATE / high_bpm, min(60 * FRAME_RATE / low_bpm, n / 2)
    lags = np.arange(math.floor(shortest), math.ceil(longest))
    preference = np.exp(-0.5 * np.log2(60 * FRAME_RATE / lags / 120.0) ** 2)
    best = lags[np.argmax(autocorrelation[lags] * preference)]
    period, strength = _peak_near(autocorrelation, best, 1)

    half, half_strength = _peak_near(autocorrelation, period / 2, 1.5)
    if half >= shortest and half_strength >= 0.6 * strength:
        period, strength = half, half_strength
    amplitude = np.sqrt(stats.energy)
    energy_pulses = np.maximum(np.diff(amplitude, prepend=amplitude[:1]), 0.0)
    offbeat = _offbeat_ratio(energy_pulses, 2 * period) if 2 * period <= longest else None
    if offbeat is not None and offbeat < 0.3:
        period, strength = _peak_near(autocorrelation, 2 * period, 2)

    multiples = np.arange(1, int(n / 2 / period) + 1)
    positions = np.array([_peak_near(autocorrelation, k * period, 2)[0] for k in multiples])
    period = float((multiples * positions).sum() / (multiples**2).sum())
    bpm = float(np.clip(60 * FRAME_RATE / period, low_bpm, high_bpm))
    return bpm, float(np.clip(strength, 0.0, 1.0))


# --------------------------------------------------------------------------------------------
# Speech versus music
# --------------------------------------------------------------------------------------------


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def speech_score(stats: FrameStats, tempo_confidence: float) -> float:
    """How speech-like an excerpt is, in [0, 1] (0.5 is the decision boundary).

    A heuristic, not a trained classifier: the mean of three pieces of evidence, each squashed
    to [0, 1]. Speech pauses between phrases (frames 20 dB below the loud ones: speech 30-50 %,
    music rarely over 10 %); its level swings with every syllable (the standard deviation of
    the frame level in dB: speech over 10 dB, music a few); and it has no steady beat (music's
    onset envelope is periodic, tempo confidence well over 0.5).
    """
    loud = float(np.percentile(stats.energy, 95))
    if loud <= _TINY:
        return 0.0
    pauses = float(np.mean(stats.energy < loud * 0.01))
    level_db = 10 * np.log10(np.maximum(stats.energy, loud * 1e-6))
    swing = float(level_db.std())
    evidence = (
        _logistic((pauses - 0.15) / 0.05),
        _logistic((swing - 8.0) / 2.0),
        _logistic((0.5 - tempo_confidence) / 0.1),
    )
    return float(np.mean(evidence))


# --------------------------------------------------------------------------------------------
# Fingerprint for duplicate detection
# --------------------------------------------------------------------------------------------

FINGERPRINT_DIM = 128
FINGERPRINT_SECONDS = 12.8  # after leading silence
FINGERPRINT_WINDOW_SECONDS = FINGERPRINT_SECONDS + 2.0  # room for the fade-in trimmed off
FINGERPRINT_SCAN_SECONDS = 120.0  # how far into a file to look for sound to fingerprint
FINGERPRINT_SEGMENT_S = 0.1
FINGERPRINT_BANDS = 8
# Cosine distance (1 - a.b of the unit vectors) at or below which two items hold the same audio.
# Measured on the sample catalog: re-encodes (WAV/FLAC/OGG/MP3, resampling, gain, padding with
# silence) stay below 0.005 and the nearest unrelated pair is 0.10; 0.02 is their geometric mean.
DUPLICATE_DISTANCE = 0.02
_LEAD_GATE_DB = -40.0


@cache
def _projection(rows: int) -> np.ndarray:
    # RandomState, not Generator: numpy guarantees its stream never changes between versions,
    # and a fingerprint computed today must stay comparable with one computed next year.
    matrix = np.random.RandomState(20261101).standard_normal((rows, FINGERPRINT_DIM))
    return matrix.astype(np.float32)


def trim_leading_silence(x: np.ndarray, gate_db: float = _LEAD_GATE_DB) -> np.ndarray:
    """`x` from its first sample within `gate_db` of its peak: aligns copies padded with silence."""
    magnitude = np.abs(x)
    peak = float(magnitude.max()) if len(x) else 0.0
    if peak == 0.0:
        return x
    return x[int(np.argmax(magnitude > peak * 10 ** (gate_db / 20))) :]


def _segment_band_power(x: np.ndarray) -> np.ndarray:
    """(segments, bands) mean power of the fingerprint grid; segments past the end are 0."""
    bank = mel_filterbank(FINGERPRINT_BANDS, 50.0, 8000.0)
    frames = np.concatenate([band_power(power, bank) for power in power_spectra(x)])
    segments = round(FINGERPRINT_SECONDS / FINGERPRINT_SEGMENT_S)
    which = np.minimum(
        (np.arange(len(frames)) / (FINGERPRINT_SEGMENT_S * FRAME_RATE)).astype(int), segments - 1
    )
    sums = np.zeros((segments, FINGERPRINT_BANDS))
    np.add.at(sums, which, frames)
    return sums / np.maximum(np.bincount(which, minlength=segments), 1)[:, None]


def fingerprint(x: np.ndarray) -> np.ndarray:
    """A 128-d unit vector of a mono ANALYSIS_RATE excerpt; near-equal for re-encoded copies.

    What it encodes: the level in 8 mel bands (50 Hz - 8 kHz: what every codec keeps) in 0.1 s
    segments over the first 12.8 s after leading silence, each band relative to its own mean
    and all scaled by the grid's spread (so gain and codec tilt cancel), clipped at 3 to keep
    one transient from dominating. Segments more than 35-45 dB below the loudest fade to zero,
    so trailing silence and a shorter file look alike. The 1024 numbers are projected onto
    128 fixed random directions, which keeps cosine similarity (Johnson-Lindenstrauss).
    Compare with cosine distance; `DUPLICATE_DISTANCE` is the threshold. Alignment comes from
    the trimmed lead-in (codec priming and padding are silence): a copy whose first note is cut
    by more than ~5 ms is not matched.
    """
    x = trim_leading_silence(x)[: round(FINGERPRINT_SECONDS * ANALYSIS_RATE)]
    power = _segment_band_power(x)
    total = power.sum(axis=1)
    top = max(float(total.max()), _TINY)
    relative_db = 10 * np.log10(np.maximum(total, top * 1e-12) / top)
    weight = np.clip((relative_db + 45.0) / 10.0, 0.0, 1.0)[:, None]
    level = 10 * np.log10(np.maximum(power, top * 1e-6))
    weights = max(float(weight.sum()), _TINY)
    centred = level - (weight * level).sum(axis=0) / weights
    spread = math.sqrt(float((weight * centred**2).sum()) / weights / FINGERPRINT_BANDS)
    grid = np.clip(weight * centred / max(spread, 1e-3), -3.0, 3.0)
    vector = grid.ravel() @ _projection(grid.size)
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)
