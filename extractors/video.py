"""Video extractors: a summary of a canvas loop or a video podcast from a bounded sample of frames.

Frames come from a real decoder (PyAV, i.e. FFmpeg). When a stream has more than one keyframe only
keyframes are decoded: packets flagged `is_keyframe` are sent to the decoder and the rest are
skipped, which works for every codec (FFmpeg's `skip_frame` is ignored by VP9). A stream with a
single keyframe — an animated GIF, whose later frames patch the previous ones, or a short loop
encoded as one group of pictures — has to be decoded frame by frame, and frames are kept at an
interval instead. Either way at most `MAX_FRAMES` frames are kept, spread over the duration, each
resampled to the canvas of `extractors.image_stats`, so memory does not grow with the video.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av
import numpy as np
import pyarrow as pa

from extractors.errors import MediaError
from extractors.image_stats import (
    CANVAS,
    describe,
    hex_colour,
    luma,
    palette,
    palette_pixels,
)
from extractors.media import MediaExtractor, describe_failure, open_media

MAX_FRAMES = 16  # frames kept per video
MAX_PIXELS = 7680 * 4320  # 8K UHD: larger frames are refused before decoding
MAX_BYTES = 4 * 1024**3  # an hour-long 1080p video podcast fits
_FIRST_SLOT_S = 0.04  # slot width when the header gives no duration (doubles as needed)


@dataclass(frozen=True)
class VideoSample:
    """What one pass over a video stream measured, and the frames it kept."""

    width: int
    height: int
    frame_count: int  # video packets in the stream: one per frame
    duration_s: float
    fps: float  # average: frames / duration
    times: tuple[float, ...]  # seconds from the first frame, of each kept frame
    canvases: tuple[np.ndarray, ...]  # CANVAS×CANVAS×3 uint8, in time order
    decoded: int  # frames the decoder produced (the work done)


class _Spread:
    """At most `limit` frames, one per time slot; the slots double in width when too many are kept.

    Why: the duration is not always known before the last packet (headers can be missing or
    wrong), yet the kept frames must stay bounded and cover the whole video evenly.
    """

    def __init__(self, limit: int, slot_s: float) -> None:
        self.limit = limit
        self.slot_s = slot_s
        self.kept: dict[int, tuple[float, np.ndarray]] = {}

    def _slot(self, t: float) -> int:
        return int(max(t, 0.0) // self.slot_s)

    def wants(self, t: float) -> bool:
        """Whether a frame at `t` would be kept (its slot is still empty)."""
        return self._slot(t) not in self.kept

    def offer(self, t: float, canvas: Callable[[], np.ndarray]) -> None:
        """Keep the frame at `t` if its slot is empty; `canvas` is only called when it is kept."""
        if not self.wants(t):
            return
        self.kept[self._slot(t)] = (t, canvas())
        while len(self.kept) > self.limit:
            self.slot_s *= 2
            earliest: dict[int, tuple[float, np.ndarray]] = {}
            for frame in sorted(self.kept.values(), key=lambda kept: kept[0]):
                earliest.setdefault(self._slot(frame[0]), frame)
            self.kept = earliest

    def frames(self) -> list[tuple[float, np.ndarray]]:
        return sorted(self.kept.values(), key=lambda kept: kept[0])


def _canvas(frame: av.VideoFrame) -> np.ndarray:
    # swscale resamples and converts to RGB in one step (area filter, like a box downscale).
    return frame.to_ndarray(format="rgb24", width=CANVAS, height=CANVAS, interpolation="AREA")


def _reason(exc: av.FFmpegError) -> str:
    # FFmpeg's own words without the file name it appends (the caller names the URI).
    return exc.strerror or describe_failure(exc)


def _header_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


class _Clock:
    """The stream's frame count and true extent, from packet timestamps (no decoding needed)."""

    def __init__(self, time_base: Fraction, start: int | None) -> None:
        self.time_base = time_base
        self.origin = start
        self.last: int | None = None
        self.end: int | None = None
        self.packets = 0
        self.durations_known = True

    def add(self, packet: av.Packet) -> float:
        """Count a packet; return its time in seconds from the start of the stream."""
        self.packets += 1
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            return self.seconds(self.last)
        self.origin = stamp if self.origin is None else min(self.origin, stamp)
        self.last = stamp if self.last is None else max(self.last, stamp)
        self.end = max(self.end or stamp, stamp + (packet.duration or 0))
        self.durations_known &= bool(packet.duration)
        return self.seconds(stamp)

    def seconds(self, stamp: int | None) -> float:
        if stamp is None or self.origin is None:
            return 0.0
        return float((stamp - self.origin) * self.time_base)

    def duration(self) -> float | None:
        """First to last frame plus the last frame's own duration; None without timestamps."""
        if self.last is None or self.end is None:
            return None
        if self.durations_known or self.packets < 2:
            return self.seconds(self.end)
        # Some packets carry no duration: the last frame lasts an average interval.
        return self.seconds(self.last) * self.packets / (self.packets - 1)


def sample_video(source: IO[bytes] | str, max_frames: int = MAX_FRAMES) -> VideoSample:
    """Read a video's first video stream once: count and time its frames, keep a bounded sample.

    Why one pass: the frame count and the true duration come from the packets themselves (a
    header may lack them), and a remote file is read once. Decoding starts frame by frame; the
    second keyframe proves the stream has more, and from then on only keyframes whose time slot
    is still empty are decoded.
    """
    try:
        container = av.open(source, mode="r")
    except av.FFmpegError as exc:
        raise MediaError(f"not a readable video: {_reason(exc)}") from None
    with container:
        if not container.streams.video:
            raise MediaError("no video stream in the file")
        stream = container.streams.video[0]
        codec = stream.codec_context
        width, height = codec.width, codec.height
        if width <= 0 or height <= 0:
            raise MediaError("video stream has no frame size")
        if width * height > MAX_PIXELS:
            raise MediaError(f"video frames too large: {width}x{height} px exceed 8K UHD")
        header_s = _header_duration(container, stream)
        clock = _Clock(stream.time_base or Fraction(1, 1), stream.start_time)
        spread = _Spread(max_frames, header_s / max_frames or _FIRST_SLOT_S)
        keyframes = decoded = 0

        def keep(frames: list[av.VideoFrame]) -> None:
            nonlocal decoded
            for frame in frames:
                decoded += 1
                spread.offer(clock.seconds(frame.pts), lambda frame=frame: _canvas(frame))

        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's empty packet at the end
                    continue
                t = clock.add(packet)
                keyframes += packet.is_keyframe
                if keyframes < 2 or (packet.is_keyframe and spread.wants(t)):
                    keep(codec.decode(packet))
            keep(codec.decode(None))  # flush: the decoder may hold frames back
        except av.FFmpegError as exc:
            raise MediaError(f"corrupt video data: {_reason(exc)}") from None
        rate = float(stream.average_rate or 0)

    if clock.packets == 0 or not spread.kept:
        raise MediaError("no decodable video frames")
    duration = clock.duration()
    duration = header_s if duration is None else duration
    kept = spread.frames()
    return VideoSample(
        width=width,
        height=height,
        frame_count=clock.packets,
        duration_s=duration,
        fps=clock.packets / duration if duration > 0 else rate,
        times=tuple(t for t, _ in kept),
        canvases=tuple(canvas for _, canvas in kept),
        decoded=decoded,
    )


class VideoSummary(MediaExtractor):
    """Duration, frame rate and size of a video, with the artwork statistics over sampled frames."""

    media_column = "video_uri"
    max_bytes = MAX_BYTES
    version = "1"
    batch_size = 8  # a canvas loop takes ≈ 20 ms, a long video podcast seconds: keep batches short

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("width", pa.int64()),
                pa.field("height", pa.int64()),
                pa.field("duration_s", pa.float32()),
                pa.field("fps", pa.float32()),
                pa.field("frame_count", pa.int64()),
                pa.field("frames_sampled", pa.int64()),
                pa.field("brightness", pa.float32()),
                pa.field("sharpness", pa.float32()),
                pa.field("blur", pa.float32()),
                pa.field("colourfulness", pa.float32()),
                pa.field("dominant_colour", pa.string()),
                pa.field("visual_change", pa.float32()),
                pa.field("phash", pa.string()),
                pa.field("letterboxed", pa.bool_()),
                pa.field("near_blank", pa.bool_()),
            ]
        )

    def extract_one(self, uri: str) -> dict[str, Any]:
        with open_media(uri, self.max_bytes) as handle:
            try:
                sample = sample_video(handle)
            except MediaError as exc:
                raise MediaError(f"{exc}: {uri}") from None
        stats = [describe(canvas) for canvas in sample.canvases]
        greys = [luma(canvas) for canvas in sample.canvases]
        pooled = np.concatenate([palette_pixels(canvas) for canvas in sample.canvases])
        (dominant, _), *_ = palette(pooled, 1)
        changes = [float(np.abs(b - a).mean()) for a, b in itertools.pairwise(greys)]
        return {
            "width": sample.width,
            "height": sample.height,
            "duration_s": sample.duration_s,
            "fps": sample.fps,
            "frame_count": sample.frame_count,
            "frames_sampled": len(stats),
            "brightness": float(np.mean([s.brightness for s in stats])),
            "sharpness": float(np.mean([s.sharpness for s in stats])),
            "blur": float(np.mean([s.blur for s in stats])),
            "colourfulness": float(np.mean([s.colourfulness for s in stats])),
            "dominant_colour": hex_colour(dominant),
            "visual_change": float(np.mean(changes)) if changes else 0.0,
            "phash": stats[len(stats) // 2].phash,
            "letterboxed": sum(s.letterboxed for s in stats) * 2 > len(stats),
            "near_blank": all(s.near_blank for s in stats),
        }
