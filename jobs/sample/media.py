"""The media files of one item — audio, artwork, video — broken or copied as planned, and the
ground truth of what they hold (the layout of the media folder is in the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from jobs.sample.artwork import (
    IMAGE_FORMATS,
    art_truth,
    draw_art,
    encode,
    paint,
    transform_art,
    video_frames,
)
from jobs.sample.audio import audio_truth, render_clip, write_clip
from jobs.sample.duplicates import Copy
from jobs.sample.plan import VIDEO, VIDEO_FRAME_MS


@dataclass(frozen=True)
class MediaJob:
    """What one worker thread needs to write an item's files."""

    content_id: str
    code: int
    number: int
    duration_ms: int
    broken: str | None  # break kind
    copy: Copy | None
    language: str | None = None  # the item's: what its speech is spoken in

    def copies(self, media: str) -> Copy | None:
        """The planted copy, if this item's `media` (audio | artwork) is one."""
        return self.copy if self.copy and self.copy.media == media else None


@dataclass(frozen=True)
class Media:
    """Where an item's files were written, and what they truly hold."""

    audio_uri: str | None
    artwork_uri: str | None
    video_uri: str | None
    truth: dict[str, Any]


def _stem(content_id: str) -> str:
    return content_id.replace(":", "-")


def _write_audio(root: Path, seed: int, job: MediaJob) -> tuple[str | None, dict[str, Any]]:
    if job.code == VIDEO:
        return None, {}
    copy = job.copies("audio")
    source = copy or job
    clip = render_clip(seed, source.code, source.number, None if copy else job.language)
    fmt = copy.transform.removeprefix("reencode:") if copy else clip.fmt
    if job.broken == "truncated_audio":
        fmt = "flac"  # a cut FLAC fails to decode; a cut WAV would silently read short
    path = root / "audio" / f"{_stem(job.content_id)}.{fmt}"
    if job.broken == "missing_audio":
        path.unlink(missing_ok=True)  # a previous run may have left one there
        return str(path), {}
    measured: tuple[float, float] | None = write_clip(path, clip, fmt)
    if job.broken == "truncated_audio":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        measured = None
    return str(path), audio_truth(clip, fmt, measured)


def _artwork_bytes(seed: int, job: MediaJob) -> tuple[bytes, np.ndarray, np.ndarray, str]:
    """(file bytes, label map, colours, format) of an item's artwork, broken or copied."""
    copy = job.copies("artwork")
    if copy:
        rng = np.random.default_rng([seed, job.code, job.number, 17])
        source = draw_art(seed, copy.code, copy.number)
        labels, data, fmt = transform_art(source, copy.transform, rng)
        return data, labels, source.colours, fmt
    art = draw_art(seed, job.code, job.number)
    if job.broken == "zero_byte_artwork":
        return b"", art.labels, art.colours, art.fmt
    if job.broken == "tiny_artwork":
        return (
            encode(paint(art.labels[:1, :1], art.colours), "png", 0),
            art.labels[:1, :1],
            art.colours,
            "png",
        )
    return encode(art.image(), art.fmt, art.quality), art.labels, art.colours, art.fmt


def _write_artwork(root: Path, seed: int, job: MediaJob) -> tuple[str, dict[str, Any]]:
    data, labels, colours, fmt = _artwork_bytes(seed, job)
    path = root / "artwork" / f"{_stem(job.content_id)}.{IMAGE_FORMATS[fmt][1]}"
    path.write_bytes(data)
    return str(path), art_truth(labels, colours, fmt) if data else {"artwork_format": fmt}


def _write_video(root: Path, seed: int, job: MediaJob) -> tuple[str, dict[str, Any]]:
    frames = video_frames(draw_art(seed, job.code, job.number), job.duration_ms // VIDEO_FRAME_MS)
    path = root / "video" / f"{_stem(job.content_id)}.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=VIDEO_FRAME_MS, loop=0)
    return str(path), {"video_frames": len(frames), "video_fps": 1000 / VIDEO_FRAME_MS}


def write_media(root: Path, seed: int, job: MediaJob) -> Media:
    """Every file of one item, and what they truly hold."""
    audio_uri, truth = _write_audio(root, seed, job)
    artwork_uri, artwork_truth = _write_artwork(root, seed, job)
    truth |= artwork_truth
    video_uri = None
    if job.code == VIDEO:
        video_uri, video_truth = _write_video(root, seed, job)
        truth |= video_truth
    if job.copy:
        truth |= {"duplicate_of": job.copy.source_id, "duplicate_media": job.copy.media,
                  "duplicate_transform": job.copy.transform}  # fmt: skip
    return Media(audio_uri, artwork_uri, video_uri, truth)


def media_jobs(
    batch: pa.RecordBatch,
    rows: np.ndarray,
    code: np.ndarray,
    number: np.ndarray,
    breaks: dict[int, str],
    copies: dict[int, Copy],
) -> list[MediaJob]:
    """One job per row of a catalog batch, with the break and the copy planted there."""
    ids = batch.column("content_id").to_pylist()
    durations = batch.column("duration_ms").to_pylist()
    langs = batch.column("language").to_pylist()
    return [
        MediaJob(ids[i], int(code[i]), int(number[i]), durations[i], breaks.get(r), copies.get(r),
                 langs[i])
        for i, r in enumerate(rows.tolist())
    ]  # fmt: skip
