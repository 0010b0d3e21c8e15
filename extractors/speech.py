"""Where an item speaks: a speech timeline from Silero VAD, streamed window by window.

The file is decoded block by block (`extractors.audio.open_audio`), mixed to mono, resampled to
16 kHz by FFmpeg's resampler (stateful, so block edges leave no seam) and cut into 32 ms frames.
Silero VAD (MIT; its ONNX graph ships in the `silero-vad` wheel) scores each frame; the
"sequence" export used here takes a whole window of frames in one call and hands back its
recurrent state, which the next window starts from, so the probabilities are those of the
frame-by-frame model (snakers4/silero-vad#784; the tests hold it to both). Only a window of
samples (16.4 s, 1 MB) and the open segment are ever held: memory is the same for a 30 s preview
and a two-hour audiobook. The segments themselves are the output and grow with the speech.

Frames become segments by the rules of Silero's `get_speech_timestamps`, applied as the
probabilities arrive (constants below, with why).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pyarrow as pa

from extractors.artifact import ArtifactExtractor
from extractors.audio import AudioExtractor, AudioStream, open_audio

MODEL_URI = "package://silero_vad/data/silero_vad_16k_sequence.onnx"
SAMPLE_RATE = 16000  # the model's rate
FRAME = 512  # samples a probability covers: 32 ms
CONTEXT = 64  # samples of the previous frame each frame is given, as the streaming model has
WINDOW_FRAMES = 512  # frames per model call: 16.4 s, the package's default for this export
FRAME_S = FRAME / SAMPLE_RATE
_STATE_SHAPE = (1, 1, 128)

# Silero's own defaults unless said otherwise; its README: "lazy 0.5 is pretty good for most
# datasets".
THRESHOLD = 0.5  # a frame at or above it starts (or resumes) speech
NEG_THRESHOLD = 0.35  # only a frame below it ends speech: hysteresis, Silero's threshold - 0.15,
# so a syllable's soft tail between the two does not cut a word in half
MIN_SPEECH_S = 0.25  # shorter bursts are dropped: a cough, a click, a drum hit
# Not Silero's 0.1 s: that splits at the gaps between words. A pause must last 0.3 s to end a
# segment, about what a listener hears as a break between phrases, so a segment is a phrase
# (what a chapter marker, a skip-intro or an ad break is placed against), not a word.
MIN_SILENCE_S = 0.3
SPEECH_PAD_S = 0.03  # each segment widened by this on both sides (MIN_SILENCE_S > 2 pads)
_MIN_SILENCE_FRAMES = math.ceil(MIN_SILENCE_S * SAMPLE_RATE / FRAME)  # 10: Silero counts samples


def mono_16k(audio: AudioStream) -> Iterator[np.ndarray]:
    """The stream mixed to mono (the mean of its channels) at 16 kHz, as float32 pieces of
    about one decoded block each."""
    resampler = None
    if audio.rate != SAMPLE_RATE:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def converted(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
        for frame in frames:
            yield frame.to_ndarray().reshape(-1)

    for block in audio.blocks():
        mono = np.ascontiguousarray(block[:, 0] if block.shape[1] == 1 else block.mean(axis=1))
        if resampler is None:
            yield mono
            continue
        frame = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
        frame.sample_rate = audio.rate
        yield from converted(resampler.resample(frame))
    if resampler is not None:
        yield from converted(resampler.resample(None))


class FrameScorer:
    """Speech probabilities of consecutive 32 ms frames, a window of frames per model call;
    the recurrent state and the last frame's context carry from one window to the next."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.h = np.zeros(_STATE_SHAPE, np.float32)
        self.c = np.zeros(_STATE_SHAPE, np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0

    def add(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        """Feed 16 kHz mono samples; yields the probabilities of every window filled."""
        self._pending.append(samples)
        self._pending_samples += len(samples)
        window = WINDOW_FRAMES * FRAME
        if self._pending_samples < window:
            return
        buffered = np.concatenate(self._pending)
        whole = len(buffered) // window * window
        for start in range(0, whole, window):
            yield self._score(buffered[start : start + window])
        rest = buffered[whole:]
        self._pending, self._pending_samples = [rest], len(rest)

    def finish(self) -> Iterator[np.ndarray]:
        """The probabilities of what is left, its last frame padded with zeros (as Silero)."""
        if self._pending_samples:
            yield self._score(np.concatenate(self._pending))
        self._pending, self._pending_samples = [], 0

    def _score(self, samples: np.ndarray) -> np.ndarray:
        count = -(-len(samples) // FRAME)
        frames = np.zeros((count, FRAME), np.float32)
        frames.reshape(-1)[: len(samples)] = samples
        inputs = np.empty((count, CONTEXT + FRAME), np.float32)
        inputs[:, CONTEXT:] = frames
        inputs[0, :CONTEXT] = self.context
        inputs[1:, :CONTEXT] = frames[:-1, -CONTEXT:]
        self.context = frames[-1, -CONTEXT:].copy()
        probs, self.h, self.c = self.model.run({"input": inputs, "h": self.h, "c": self.c})
        return probs.reshape(-1)


@dataclass
class SegmentTracker:
    """Silero's rules (`get_speech_timestamps`) for turning frame probabilities into segments,
    applied as the probabilities arrive.

    Speech starts at a frame at or above THRESHOLD and stops at the first frame below
    NEG_THRESHOLD. The segment ends there once a frame below NEG_THRESHOLD comes at least
    MIN_SILENCE_S after the stop; speech (a frame at or above THRESHOLD) before that resumes it.
    Segments of at most MIN_SPEECH_S are dropped, and the rest widened by SPEECH_PAD_S on each
    side. One deviation: a segment still open when the file ends stops where its speech
    stopped, where Silero stretches it to the end of the file. Frame indices until `timeline`,
    which turns them into seconds against the decoded duration.
    """

    speaking: bool = False
    frames: int = 0
    start: int | None = None  # first frame of the open segment
    stop: int | None = None  # where the open segment's current silence began
    ends: bool = False  # that silence has lasted long enough to end the segment
    closed: list[tuple[int, int]] = field(default_factory=list)

    def add(self, probs: np.ndarray) -> None:
        """Feed the next frames' probabilities."""
        n = len(probs)
        if n == 0:
            return
        # Hysteresis: 1 at or above THRESHOLD, 0 below NEG_THRESHOLD, in between the state stays.
        decided = np.where(probs >= THRESHOLD, 1, np.where(probs < NEG_THRESHOLD, 0, -1))
        last = np.maximum.accumulate(np.where(decided >= 0, np.arange(n), -1))
        state = np.where(last >= 0, decided[np.maximum(last, 0)], int(self.speaking))
        edges = np.diff(np.concatenate([[int(self.speaking)], state]))
        silent = decided == 0
        since = 0  # frames of this window already looked at for an ending silence
        for offset in np.flatnonzero(edges).tolist():
            if edges[offset] > 0:
                self._look_for_end(silent, since, offset)
                self._speech_at(self.frames + offset)
            else:
                self.stop, self.ends = self.frames + offset, False
            since = offset
        if not state[-1]:
            self._look_for_end(silent, since, n)
        self.speaking = bool(state[-1])
        self.frames += n

    def _look_for_end(self, silent: np.ndarray, begin: int, end: int) -> None:
        # Within a silence: a frame below NEG_THRESHOLD at least MIN_SILENCE_S after the stop?
        if self.stop is None or self.ends:
            return
        first = max(begin, self.stop + _MIN_SILENCE_FRAMES - self.frames)
        self.ends = first < end and bool(silent[first:end].any())

    def _speech_at(self, frame: int) -> None:
        if self.start is not None and self.stop is not None:
            if not self.ends:
                self.stop = None  # a short pause inside the segment
                return
            self._close(self.stop)
        self.start, self.stop, self.ends = frame, None, False

    def _close(self, stop: int) -> None:
        assert self.start is not None
        if (stop - self.start) * FRAME > MIN_SPEECH_S * SAMPLE_RATE:
            self.closed.append((self.start, stop))
        self.start, self.stop, self.ends = None, None, False

    def timeline(self, duration_s: float) -> dict[str, Any]:
        """The features, once every frame has been fed: segments in seconds, padded and
        clipped to the decoded duration, and what is read off them."""
        if self.start is not None:
            self._close(self.stop if self.stop is not None else self.frames)
        # Closed segments are MIN_SILENCE_S apart, more than two pads: padded, they never meet.
        segments = [
            [
                max(0.0, start * FRAME_S - SPEECH_PAD_S),
                min(duration_s, stop * FRAME_S + SPEECH_PAD_S),
            ]
            for start, stop in self.closed
            if start * FRAME_S < duration_s
        ]
        edges = [0.0, *(t for s in segments for t in s), duration_s]
        gaps = [b - a for a, b in zip(edges[::2], edges[1::2], strict=True)]
        spoken = sum(end - begin for begin, end in segments)
        return {
            "speech_ratio": min(1.0, spoken / duration_s) if duration_s > 0 else 0.0,
            "speech_segments": segments,
            "first_speech_s": segments[0][0] if segments else None,
            "longest_non_speech_s": max(0.0, max(gaps)),
            "segment_count": len(segments),
        }


class SpeechTimeline(ArtifactExtractor, AudioExtractor):
    """Speech segments of an item's whole audio, with its speech share, first speech onset and
    longest stretch without speech (music, silence or anything else that is not a voice)."""

    model_uri = MODEL_URI
    version = "1"
    # A 2 MB model whose recurrence runs one frame after another: a GPU gets 128-wide steps
    # with nothing to parallelise (not measured here). On the CPU one ONNX Runtime thread is
    # fastest, 0.06 ms a frame (≈ 500 s of audio a second) against 0.12 ms with its default
    # pool on two cores; the extract job's actors have one (OMP_NUM_THREADS, which the model
    # loader reads). The model is ≈ 3/4 of the time; decoding and resampling the rest.
    wants_gpu = False

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("speech_ratio", pa.float32()),
                pa.field("speech_segments", pa.list_(pa.list_(pa.float32()))),
                pa.field("first_speech_s", pa.float32()),
                pa.field("longest_non_speech_s", pa.float32()),
                pa.field("segment_count", pa.int64()),
            ]
        )

    def probabilities(self, samples: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Frame probabilities of a stream of 16 kHz mono pieces, window by window."""
        scorer = FrameScorer(self.model)
        for piece in samples:
            yield from scorer.add(piece)
        yield from scorer.finish()

    def extract_one(self, uri: str) -> dict[str, Any]:
        tracker = SegmentTracker()
        with open_audio(uri, self.max_bytes) as audio:
            for probs in self.probabilities(mono_16k(audio)):
                tracker.add(probs)
            duration_s = audio.decoded / audio.rate
        return tracker.timeline(duration_s)
