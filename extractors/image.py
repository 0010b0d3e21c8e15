"""Artwork extractors: what an item's cover image looks like, and a hash to find its near-copies.

Decoding is guarded before any pixel is touched: only JPEG, PNG, WebP and GIF are opened (no other
Pillow plugin sees catalog bytes), the pixel count is checked against `MAX_PIXELS` from the header
alone, and large JPEGs are decoded at reduced size in the DCT domain (`Image.draft`). Every image
is then resampled to the shared canvas of `extractors.image_stats`, so an item costs about the same
whatever its size and its statistics are comparable across sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from extractors.errors import MediaError
from extractors.image_stats import (
    CANVAS,
    colour_layout,
    describe,
    hex_colour,
    luma,
    palette,
    palette_pixels,
    phash,
)
from extractors.media import MediaExtractor, describe_failure, open_media

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAX_PIXELS = 64_000_000  # 8000×8000: larger is refused before decoding (≈ 256 MB as RGBA)
MAX_BYTES = 64 * 1024**2
MIN_SIDE = 300  # `too_small` below this: the smallest size catalog artwork is shown at
PALETTE_COLOURS = 3

# EXIF orientation -> the transpose that shows the picture upright (as `ImageOps.exif_transpose`).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Picture:
    """A decoded image: its true size as displayed, its format and its canvas."""

    width: int
    height: int
    format: str  # jpeg | png | webp | gif
    canvas: np.ndarray  # CANVAS×CANVAS×3 uint8


def to_canvas(image: Image.Image) -> np.ndarray:
    """Resample a decoded image to the shared square RGB canvas.

    Transparency is composited onto black, as artwork is mostly shown on dark backgrounds;
    resampling first keeps that cheap for large images (Pillow resamples RGBA premultiplied).
    16-bit grey is scaled to 8 bits first.
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit grey: Pillow's RGB clips it
        grey = np.asarray(image, dtype=np.float32) / 257
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    mode = "RGBA" if image.has_transparency_data else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    resized = image.resize((CANVAS, CANVAS), Image.Resampling.BILINEAR, reducing_gap=3.0)
    if mode == "RGBA":
        resized = Image.alpha_composite(Image.new("RGBA", resized.size, (0, 0, 0, 255)), resized)
    return np.asarray(resized.convert("RGB"))


def _open(handle: IO[bytes], uri: str) -> Image.Image:
    try:
        return Image.open(handle, formats=FORMATS)
    except Image.DecompressionBombError as exc:  # an Exception, not an OSError
        raise MediaError(f"image too large (decompression bomb guard): {exc}: {uri}") from None
    except UnidentifiedImageError:
        raise MediaError(
            f"not an image in a supported format ({', '.join(FORMATS)}): {uri}"
        ) from None
    except OSError as exc:  # recognised, but its header is already broken (a cut WebP)
        raise MediaError(f"truncated or corrupt image: {describe_failure(exc)}: {uri}") from None


def load_picture(uri: str) -> Picture:
    """Decode one image into a `Picture`, or raise `MediaError` naming what is wrong with it.

    Why the checks come in this order: the size in bytes and the pixel count are known before
    decoding, so a decompression bomb costs a header read; a truncated file opens fine and only
    fails when its pixels are read.
    """
    with open_media(uri, MAX_BYTES) as handle, _open(handle, uri) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise MediaError(
                f"image too large: {width}x{height} px ({width * height / 1e6:.0f} MP) "
                f"exceeds the {MAX_PIXELS / 1e6:.0f} MP limit: {uri}"
            )
        fmt = (image.format or "").lower()
        image.draft("RGB", (CANVAS, CANVAS))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        try:
            image.load()
            # After load: a PNG may keep its EXIF behind the pixels, and a cut file must fail above.
            orientation = image.getexif().get(_EXIF_ORIENTATION)
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(
                f"truncated or corrupt {fmt} image: {describe_failure(exc)}: {uri}"
            ) from None
        canvas = to_canvas(image)
    if orientation in _ORIENTATION:
        canvas = np.asarray(Image.fromarray(canvas).transpose(_ORIENTATION[orientation]))
        if orientation >= 5:  # a quarter turn: shown the other way round
            width, height = height, width
    return Picture(width, height, fmt, canvas)


class _ArtworkExtractor(MediaExtractor):
    media_column = "artwork_uri"
    max_bytes = MAX_BYTES
    batch_size = 64  # ≈ 5–15 ms an image: a batch is about a second of work


class ArtworkQuality(_ArtworkExtractor):
    """Size, focus, light and colour of a cover image, with the quality flags catalog teams act on."""

    version = "1"

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("format", pa.string()),
                pa.field("width", pa.int64()),
                pa.field("height", pa.int64()),
                pa.field("aspect_ratio", pa.float32()),
                pa.field("sharpness", pa.float32()),
                pa.field("blur", pa.float32()),
                pa.field("brightness", pa.float32()),
                pa.field("colourfulness", pa.float32()),
                pa.field("dominant_colour", pa.string()),
                pa.field("dominant_share", pa.float32()),
                pa.field("palette", pa.string()),
                pa.field("palette_shares", pa.list_(pa.float32())),
                pa.field("too_small", pa.bool_()),
                pa.field("blurry", pa.bool_()),
                pa.field("letterboxed", pa.bool_()),
                pa.field("near_blank", pa.bool_()),
            ]
        )

    def extract_one(self, uri: str) -> dict[str, Any]:
        picture = load_picture(uri)
        stats = describe(picture.canvas)
        colours = palette(palette_pixels(picture.canvas), PALETTE_COLOURS)
        shares = [share for _, share in colours]
        return {
            "format": picture.format,
            "width": picture.width,
            "height": picture.height,
            "aspect_ratio": picture.width / picture.height,
            "sharpness": stats.sharpness,
            "blur": stats.blur,
            "brightness": stats.brightness,
            "colourfulness": stats.colourfulness,
            "dominant_colour": hex_colour(colours[0][0]),
            "dominant_share": shares[0],
            "palette": ",".join(hex_colour(rgb) for rgb, _ in colours),
            "palette_shares": shares + [0.0] * (PALETTE_COLOURS - len(shares)),
            "too_small": min(picture.width, picture.height) < MIN_SIDE,
            "blurry": stats.blurry,
            "letterboxed": stats.letterboxed,
            "near_blank": stats.near_blank,
        }


class ArtworkHash(_ArtworkExtractor):
    """What finds near-copies of a cover: its 64-bit DCT pHash and its 4×4 colour layout.

    `extractors.image_stats.near_duplicates` is the rule that compares two items.
    """

    version = "1"

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field("phash", pa.string()), pa.field("colour_layout", pa.list_(pa.float32()))]
        )

    def extract_one(self, uri: str) -> dict[str, Any]:
        canvas = load_picture(uri).canvas
        return {"phash": phash(luma(canvas)), "colour_layout": colour_layout(canvas).tolist()}
