"""Artwork and video: a few solid blocks, one of which covers at least half the picture, and a
canvas loop of a square sliding over the artwork's dominant colour.

Why solid blocks: the dominant colour, its area and the palette are then known exactly.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

ARTWORK_TRANSFORMS = ("jpeg_requality", "resize", "crop")
IMAGE_FORMATS: dict[str, tuple[str, str]] = {"png": ("PNG", "png"), "jpeg": ("JPEG", "jpg"),
                                             "webp": ("WEBP", "webp")}  # fmt: skip
PALETTE = np.array(
    [
        (230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87),
        (244, 162, 97), (233, 196, 106), (42, 157, 143), (38, 70, 83), (231, 111, 81),
        (106, 76, 147), (255, 202, 58), (138, 201, 38), (25, 130, 196), (255, 89, 94),
        (20, 20, 20), (250, 250, 250), (120, 120, 120), (214, 40, 118), (0, 95, 115),
    ],
    dtype=np.uint8,
)  # fmt: skip
VIDEO_SIZE = (144, 256)  # width, height: a portrait canvas loop


@dataclass(frozen=True)
class Art:
    """One item's artwork as a label map and its colours, before encoding."""

    labels: np.ndarray  # (h, w) index into colours
    colours: np.ndarray  # (k, 3) uint8
    fmt: str
    quality: int

    def image(self) -> Image.Image:
        """The artwork as an RGB image."""
        return paint(self.labels, self.colours)


@lru_cache(maxsize=64)
def draw_art(seed: int, code: int, number: int) -> Art:
    """The artwork of one item (cached: its copies and its video loop draw it again)."""
    rng = np.random.default_rng([seed, code, number, 13])
    size = int(rng.choice([300, 360, 400, 480, 512, 600, 640]))
    fmt = str(rng.choice(list(IMAGE_FORMATS), p=[0.5, 0.42, 0.08]))
    colours = PALETTE[rng.choice(len(PALETTE), size=int(rng.integers(3, 5)), replace=False)]
    split = round(size * rng.uniform(0.5, 0.68))  # the dominant block's width
    labels = np.zeros((size, size), dtype=np.uint8)
    shares = rng.dirichlet(np.full(len(colours) - 1, 3.0))
    bounds = np.round(np.concatenate([[0], np.cumsum(shares)]) * size).astype(int)
    for k, (top, bottom) in enumerate(itertools.pairwise(bounds)):
        labels[top:bottom, split:] = k + 1
    labels = np.rot90(labels, int(rng.integers(4))).copy()
    return Art(labels, colours, fmt, int(rng.integers(80, 96)))


def paint(labels: np.ndarray, colours: np.ndarray) -> Image.Image:
    """An RGB image of a label map (palette lookup in Pillow: numpy fancy indexing is 10x slower)."""
    indexed = Image.fromarray(labels, mode="P")
    indexed.putpalette(colours.astype(np.uint8).ravel().tolist())
    return indexed.convert("RGB")


def encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    """The file bytes of an image in one of IMAGE_FORMATS."""
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("jpeg", "webp") else {"compress_level": 1}
    image.save(buffer, format=IMAGE_FORMATS[fmt][0], **options)
    return buffer.getvalue()


def art_truth(labels: np.ndarray, colours: np.ndarray, fmt: str) -> dict[str, Any]:
    """The ground-truth columns of an artwork: size, dominant colour and palette by area."""
    fractions = np.bincount(labels.ravel(), minlength=len(colours)) / labels.size
    order = np.argsort(-fractions, kind="stable")
    palette = [[int(v) for v in colours[k]] for k in order if fractions[k] > 0]
    return {
        "artwork_format": fmt,
        "artwork_width": labels.shape[1],
        "artwork_height": labels.shape[0],
        "dominant_rgb": palette[0],
        "dominant_fraction": round(float(fractions[order[0]]), 6),
        "palette": palette,
        "palette_fractions": [round(float(fractions[k]), 6) for k in order if fractions[k] > 0],
    }


def transform_art(
    art: Art, transform: str, rng: np.random.Generator
) -> tuple[np.ndarray, bytes, str]:
    """A near-duplicate of `art`: (labels, image bytes, format) after one everyday edit."""
    source = encode(art.image(), art.fmt, art.quality)
    if transform == "jpeg_requality":  # decoded and saved again at a lower quality
        decoded = Image.open(io.BytesIO(source)).convert("RGB")
        return art.labels, encode(decoded, "jpeg", int(rng.integers(30, 60))), "jpeg"
    fmt = "png" if art.fmt == "webp" else art.fmt
    height, width = art.labels.shape
    if transform == "resize":
        scale = rng.uniform(0.5, 0.8)
        size = (round(width * scale), round(height * scale))
        image = art.image().resize(size, Image.Resampling.LANCZOS)
        rows = (np.arange(size[1]) / scale).astype(int)
        cols = (np.arange(size[0]) / scale).astype(int)
        return art.labels[np.ix_(rows, cols)], encode(image, fmt, 90), fmt
    left, top, right, bottom = (int(v) for v in rng.integers(3, 7, size=4) * width // 100)
    labels = art.labels[top : height - bottom, left : width - right]
    return labels, encode(paint(labels, art.colours), fmt, 90), fmt


def video_frames(art: Art, frames: int) -> list[Image.Image]:
    """A canvas loop: a square of the artwork's second colour sliding over its dominant one."""
    width, height = VIDEO_SIZE
    side = width // 3
    top = (height - side) // 2
    out = []
    for k in range(frames):
        labels = np.zeros((height, width), dtype=np.uint8)
        left = (k * (width - side)) // max(1, frames - 1)
        labels[top : top + side, left : left + side] = 1
        frame = Image.fromarray(labels, mode="P")
        frame.putpalette(art.colours[:2].ravel().tolist())
        out.append(frame)
    return out
