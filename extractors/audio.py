"""Audio extractors: loudness, musical and spectral features, and a duplicate fingerprint.

Every extractor decodes its file once, block by block (soundfile for WAV/FLAC/OGG/AIFF, PyAV —
FFmpeg — for MP3, AAC and anything else), and feeds the blocks to the accumulators of
`extractors.audio_dsp`. Nothing here knows Ray, Delta or Feast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from typing import IO, Any, ClassVar

import av
import numpy as np
import pyarrow as pa
import soundfile as sf

from extractors import audio_dsp as dsp
from extractors.errors import MediaError
from extractors.media import MediaExtractor, describe_failure, open_media

BLOCK_FRAMES = 1 << 16
# Containers libsndfile reads reliably; MP3 goes to FFmpeg, whose decoder stops at a cut instead
# of padding it, and whose demuxer knows the duration the file claims.
_SOUNDFILE_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM")
# libsndfile logs "data : <declared> (should be <present>)" when a WAV's data chunk is cut.
_CUT_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_SIZE = 0xFFFFFFF0  # streaming writers put 0xFFFFFFFF in the size fields
# A compressed stream's declared duration can be an estimate (MP3 without a Xing header).
_DECLARED_TOLERANCE = 0.9


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own words ("Invalid data found when processing input"), without errno and path."""
    return getattr(exc, "strerror", None) or describe_failure(exc)


class AudioStream:
    """One opened audio file: its rate, channel count and its samples as float32 blocks."""

    def __init__(self, uri: str, handle: IO[bytes]) -> None:
        self.uri = uri
        self.decoded = 0
        head = handle.read(4)
        handle.seek(0)
        self._file: sf.SoundFile | None = None
        self._container: Any = None
        failure = ""
        if head in _SOUNDFILE_MAGIC:
            try:
                self._file = sf.SoundFile(handle)
            except sf.LibsndfileError as exc:
                failure = f"soundfile: {exc.error_string}; "
                handle.seek(0)
        if self._file is not None:
            self.rate, self.channels = self._file.samplerate, self._file.channels
            self.declared = self._soundfile_declared_frames()
        else:
            self._open_with_ffmpeg(handle, failure)

    def _soundfile_declared_frames(self) -> int | None:
        """Frames the header promises. libsndfile quietly shortens a cut WAV to what is there,
        so the promise is read back from its parse log."""
        assert self._file is not None
        cut = _CUT_CHUNK.search(self._file.extra_info)
        if cut and _UNKNOWN_SIZE > int(cut.group(1)) > int(cut.group(2)) > 0:
            declared_bytes, present_bytes = int(cut.group(1)), int(cut.group(2))
            return round(self._file.frames * declared_bytes / present_bytes)
        return self._file.frames or None

    def _open_with_ffmpeg(self, handle: IO[bytes], failure: str) -> None:
        try:
            self._container = av.open(handle, mode="r")
        except av.FFmpegError as exc:
            raise MediaError(
                f"not a decodable audio file: {self.uri} ({failure}ffmpeg: {_ffmpeg_reason(exc)})"
            ) from None
        streams = self._container.streams
        if not streams.audio:
            found = ", ".join(f"{s.type} ({s.codec_context.name})" for s in streams) or "nothing"
            container = self._container.format.name
            self._container.close()
            raise MediaError(
                f"not audio: {self.uri} has no audio stream (container {container} holds {found})"
            )
        self._stream = streams.audio[0]
        self.rate = int(self._stream.codec_context.sample_rate)
        self.channels = int(self._stream.codec_context.layout.nb_channels)
        duration = self._container.duration  # microseconds, as the container declares it
        self.declared = round(duration * self.rate / 1e6) if duration else None

    def blocks(self, max_seconds: float | None = None) -> Iterator[np.ndarray]:
        """(frames, channels) float32 blocks; stops after `max_seconds` when given.

        Reading to the end checks the file against its own header: fewer samples than it
        declares, or none at all, is a truncated file and raises `MediaError`. A read that stops
        at `max_seconds` cannot tell, unless the decoder itself fails before. Every block is
        finite: one with a NaN or an infinity raises `MediaError` before it is yielded.
        """
        limit = None if max_seconds is None else round(max_seconds * self.rate)
        source = self._soundfile_blocks() if self._file is not None else self._ffmpeg_blocks()
        try:
            for block in source:
                if limit is not None and self.decoded + len(block) >= limit:
                    block = block[: limit - self.decoded]
                    self._refuse_non_finite(block, source, limit)
                    yield block
                    self.decoded = limit
                    return
                self._refuse_non_finite(block, source, limit)
                self.decoded += len(block)
                yield block
        except (sf.LibsndfileError, av.FFmpegError) as exc:
            reason = (
                exc.error_string if isinstance(exc, sf.LibsndfileError) else _ffmpeg_reason(exc)
            )
            raise MediaError(
                f"corrupt or truncated audio: {self.uri} stops decoding after "
                f"{self.decoded / self.rate:.1f} s ({reason})"
            ) from None
        self._check_complete()

    def _refuse_non_finite(
        self, block: np.ndarray, rest: Iterator[np.ndarray], limit: int | None
    ) -> None:
        """Raise `MediaError` when `block` holds a NaN or an infinity, counting them up to `limit`.

        Why here: every audio extractor reads its samples through `blocks`, and a NaN or an
        infinity passes no level gate, so the measures would call the file silent, or store NaN
        and infinite features, instead of saying what is wrong with it. The rest of the stream is
        read only to count, so that the reason says how much of the file is broken.
        """
        if np.isfinite(block).all():
            return
        nan = inf = 0
        frames = self.decoded
        for piece in chain([block], rest):
            if limit is not None:
                piece = piece[: max(0, limit - frames)]
            nan += int(np.isnan(piece).sum())
            inf += int(np.isinf(piece).sum())
            frames += len(piece)
            if limit is not None and frames >= limit:
                break
        raise MediaError(
            f"audio holds non-finite samples: {nan:,} NaN, {inf:,} Inf of "
            f"{frames * self.channels:,} decoded from {self.uri}"
        )

    def _check_complete(self) -> None:
        if self.decoded == 0:
            raise MediaError(f"no audio decoded: {self.uri} holds no samples (empty or cut stream)")
        tolerance = 1.0 if self._file is not None else _DECLARED_TOLERANCE
        if self.declared and self.decoded < tolerance * self.declared - 1:
            raise MediaError(
                f"truncated audio: {self.uri} declares {self.declared / self.rate:.1f} s "
                f"but only {self.decoded / self.rate:.1f} s decode"
            )

    def _soundfile_blocks(self) -> Iterator[np.ndarray]:
        assert self._file is not None
        yield from self._file.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True)

    def _ffmpeg_blocks(self) -> Iterator[np.ndarray]:
        resampler = av.AudioResampler(format="fltp", layout=self._stream.codec_context.layout)
        pending: list[np.ndarray] = []
        count = 0

        def converted(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
            for frame in frames:
                yield frame.to_ndarray().T  # planar (channels, n) -> (n, channels)

        for packet_frame in self._container.decode(self._stream):
            for part in converted(resampler.resample(packet_frame)):
                pending.append(part)
                count += len(part)
                if count >= BLOCK_FRAMES:
                    yield np.concatenate(pending)
                    pending, count = [], 0
        pending.extend(converted(resampler.resample(None)))
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._container is not None:
            self._container.close()


@contextmanager
def open_audio(uri: str, max_bytes: int) -> Iterator[AudioStream]:
    """Open an audio URI for streaming decode; every failure is a `MediaError` with a reason."""
    with open_media(uri, max_bytes) as handle:
        stream = AudioStream(uri, handle)
        try:
            yield stream
        finally:
            stream.close()


def _float_fields(*names: str) -> pa.Schema:
    return pa.schema([pa.field(name, pa.float32(), nullable=True) for name in names])


class AudioExtractor(MediaExtractor):
    """Shared settings of the audio extractors: numpy on the CPU, files streamed."""

    media_column = "audio_uri"
    version = "1"
    wants_gpu = False
    # Work per row is one file's decode, seconds for an audiobook: small batches balance better.
    batch_size = 16
    max_bytes: ClassVar[int] = 4 * 1024**3  # streamed, so size costs time, not memory


class Loudness(AudioExtractor):
    """BS.1770-4 integrated loudness, EBU R128 loudness range and 4x-oversampled true peak.

    The whole file is measured, streamed block by block: two hours of audio stay a few MB.
    """

    def output_schema(self) -> pa.Schema:
        return _float_fields("integrated_lufs", "loudness_range_lu", "true_peak_dbtp")

    def extract_one(self, uri: str) -> dict[str, Any]:
        with open_audio(uri, self.max_bytes) as audio:
            loudness = dsp.LoudnessMeter(audio.rate, audio.channels)
            peak = dsp.TruePeakMeter(audio.channels)
            for block in audio.blocks():
                loudness.add(block)
                peak.add(block)
            seconds = audio.decoded / audio.rate
        if seconds < 0.4:
            raise MediaError(f"audio too short for loudness: {seconds:.2f} s < one 400 ms block")
        integrated = loudness.integrated()
        if not np.isfinite(integrated):
            raise MediaError(
                f"silent audio: no 400 ms block is above {dsp.ABSOLUTE_GATE_LUFS:.0f} LUFS, "
                "so loudness is undefined"
            )
        return {
            "integrated_lufs": integrated,
            "loudness_range_lu": max(0.0, loudness.loudness_range()),
            "true_peak_dbtp": dsp.to_db(peak.finish()),
        }


class AudioFeatures(AudioExtractor):
    """Tempo, duration, silence, spectral shape and a speech score in one decode.

    Duration and silence cover the whole file; tempo, spectra and the speech score read its
    first `analysis_seconds`, mixed to mono and resampled to 22.05 kHz, so that an audiobook
    costs its decode and a minute of analysis.
    """

    analysis_seconds: ClassVar[float] = 60.0

    def output_schema(self) -> pa.Schema:
        return _float_fields(
            "tempo_bpm",
            "tempo_confidence",
            "duration_s",
            "silence_ratio",
            "spectral_centroid_hz",
            "spectral_rolloff_hz",
            "spectral_flatness",
            "speech_score",
        )

    def extract_one(self, uri: str) -> dict[str, Any]:
        with open_audio(uri, self.max_bytes) as audio:
            levels = dsp.LevelMeter(audio.rate, audio.channels)
            window = dsp.MonoWindow(audio.rate, self.analysis_seconds)
            for block in audio.blocks():
                levels.add(block)
                window.add(block)
        if levels.silent:
            raise MediaError(f"silent audio: no 100 ms frame reaches {dsp.SILENT_DBFS:.0f} dBFS")
        stats = dsp.frame_stats(window.samples())
        bpm, confidence = dsp.tempo(stats)
        centroid, rolloff, flatness = dsp.spectral_summary(stats)
        return {
            "tempo_bpm": bpm,
            "tempo_confidence": confidence,
            "duration_s": levels.duration_s,
            "silence_ratio": levels.silence_ratio(),
            "spectral_centroid_hz": centroid,
            "spectral_rolloff_hz": rolloff,
            "spectral_flatness": flatness,
            "speech_score": dsp.speech_score(stats, confidence),
        }


class AudioFingerprint(AudioExtractor):
    """A 128-d unit vector per item; re-encoded copies of the same audio are near in cosine.

    Only 12.8 s are fingerprinted, from where the sound starts; decoding stops there, whatever
    the file's length. Two items are duplicates when `1 - a·b <= audio_dsp.DUPLICATE_DISTANCE`.
    """

    batch_size = 32

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field("fingerprint", pa.list_(pa.float32()), nullable=True)])

    def extract_one(self, uri: str) -> dict[str, Any]:
        scan = dsp.FINGERPRINT_SCAN_SECONDS
        with open_audio(uri, self.max_bytes) as audio:
            window = dsp.MonoWindow(audio.rate, dsp.FINGERPRINT_WINDOW_SECONDS)
            for block in audio.blocks(max_seconds=scan):
                window.add(block)
                if window.full:
                    break
        excerpt = window.samples()
        if excerpt.size == 0:
            raise MediaError(
                f"silent audio: nothing above {dsp.SILENT_DBFS:.0f} dBFS in the first {scan:.0f} s"
            )
        return {"fingerprint": dsp.fingerprint(excerpt).tolist()}
