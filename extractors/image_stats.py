"""Statistics of one decoded picture, shared by the artwork and the video extractors.

Every statistic is computed on a *canvas*: the picture resampled to `CANVAS`×`CANVAS` RGB uint8,
whatever its size and aspect ratio. Why: sharpness, blur and hashes then mean the same thing for a
300 px thumbnail and a 3000 px master, a video frame costs the same as an album cover, and the cost
per item is fixed. Decoding and resampling are the callers' business (`extractors.image`,
`extractors.video`); this module is numpy only, so both get the same numbers from one implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.fft import dctn
from scipy.ndimage import uniform_filter1d

CANVAS = 256  # side of the square canvas every statistic is computed on

# BT.601 luma weights, the same as Pillow's "L" mode: brightness and grey statistics agree with it.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# A pixel "matches" a colour when no channel differs by more than this (out of 255): enough to
# absorb JPEG ringing and resampling at block edges, below the gap between distinct flat colours.
COLOUR_TOLERANCE = 12

# `blur_effect` at or above this reads as blurry at display size. Measured on the canvas: crisp flat
# art ≈ 0.2, sharp photo-like pictures 0.45–0.6 (smooth areas count as blur), the same pictures
# after a Gaussian blur of σ = 3 canvas pixels 0.78–0.9; σ = 1 lands in between (0.6–0.74).
BLURRY_AT = 0.7

# Near-duplicates: pHashes at most this many bits apart (of 64) AND colour layouts at most this far
# apart (RMS over the grid, colour levels / 255). Measured on photo-like pictures and the sample
# catalog: re-encodes and resizes stay within 2 bits and 1/255, crops of 3–6 % a side within 14
# bits and 18/255, unrelated pictures ≥ 18 bits (median 32). The pHash sees only luma structure,
# so unrelated flat designs that share a layout do collide on it (≤ 10 bits); their colours do not
# (layouts ≥ 26/255 apart).
DUPLICATE_MAX_BITS = 12
DUPLICATE_MAX_LAYOUT = 20 / 255
LAYOUT_GRID = 4  # colour layout: mean RGB of each cell of a 4×4 grid

_BAR_MIN_SHARE = 0.03  # a letterbox bar covers at least 3 % of the height (or width) ...
_BAR_MAX_SHARE = 0.45  # ... and leaves at least 10 % in the middle for the picture itself
_LINE_UNIFORM = 0.98  # share of a row's pixels that must match the bar colour
_EDGE_BAR_SHARE = 0.9  # between the bars, each side edge is at most this much bar colour
_BLANK_SHARE = 0.97  # share of pixels that match one colour for a picture to be near-blank
_PALETTE_CLUSTERS = 8  # k-means clusters before merging: more than the colours reported
_PALETTE_MERGE = 8.0  # RGB distance under which two clusters are one colour
_PALETTE_SAMPLE = 16_384  # pixels the palette is estimated from, at most
_BLUR_FILTER = 11  # width of the re-blurring box filter of the blur-effect metric


def luma(canvas: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] of an RGB uint8 picture: the input of the structure statistics."""
    return (canvas.astype(np.float32) @ _LUMA) / np.float32(255.0)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a canvas' luma on the 0–255 scale; at most 16·255².

    The usual focus measure, in the units of OpenCV's `cv2.Laplacian(grey, cv2.CV_64F).var()`
    (here always on the canvas, so it compares across sizes). It orders a picture above its own
    blurred copy, but it also grows with the amount of detail: a crisp flat design scores lower
    than a soft photo, so whether a picture is blurry is `blur_effect`'s call.
    """
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var()) * 255.0**2


def blur_effect(grey: np.ndarray) -> float:
    """No-reference blur in [0, 1] (Crété-Roffet et al. 2007): 0 crisp, 1 nothing but blur.

    Why: re-blurring a sharp picture removes much of its pixel-to-pixel variation, re-blurring a
    blurred one removes little. The ratio ignores contrast and how much detail a picture has, so a
    crisp flat design reads sharp and a soft photo reads blurry. A picture without any variation
    scores 1.
    """
    scores = []
    for axis in (0, 1):
        reblurred = uniform_filter1d(grey, _BLUR_FILTER, axis=axis, mode="reflect")
        variation = np.abs(np.diff(grey, axis=axis))
        kept = np.abs(np.diff(reblurred, axis=axis))
        total = float(variation.sum())
        lost = float(np.maximum(0.0, variation - kept).sum())
        scores.append((total - lost) / total if total > 1e-6 else 1.0)
    return float(np.clip(max(scores), 0.0, 1.0))


def colourfulness(canvas: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness on the 0–255 scale; ≈ 0 grey, > 109 extremely colourful.

    Why this metric: it tracks how colourful people judge a picture and its scale comes with
    published bands (15 slightly, 33 moderately, 45 averagely, 59 quite, 82 highly colourful).
    """
    rgb = canvas.reshape(-1, 3).astype(np.float32)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    spread = np.hypot(rg.std(), yb.std())
    centre = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * centre)


def palette_pixels(canvas: np.ndarray) -> np.ndarray:
    """An evenly spread subsample of a canvas' pixels (N×3 uint8), the input of `palette`.

    Why a subsample and not the canvas: 4096 pixels pin down a share to ±1 %, and the pixels of
    several video frames can be pooled into one palette.
    """
    step = max(1, round(np.sqrt(canvas.shape[0] * canvas.shape[1] / 4096)))
    return canvas[step // 2 :: step, step // 2 :: step].reshape(-1, 3)


def palette(pixels: np.ndarray, colours: int = 3) -> list[tuple[tuple[int, int, int], float]]:
    """The `colours` dominant colours of some pixels as ((r, g, b), share), largest share first.

    Why k-means with more clusters than colours, then merging: flat artwork has a handful of exact
    colours plus blended pixels on the edges, photos have gradients. Extra clusters soak up the
    edge pixels, merging joins clusters that are really one colour, and the reported centres stay
    within a few levels of the true colours. Deterministic: the same pixels give the same palette.
    """
    x = pixels.reshape(-1, 3).astype(np.float32)
    if len(x) > _PALETTE_SAMPLE:
        x = x[:: math.ceil(len(x) / _PALETTE_SAMPLE)]
    centres = _kmeans(x, _PALETTE_CLUSTERS)
    labels = _nearest(x, centres)
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    merged: list[tuple[np.ndarray, float]] = []
    for k in np.argsort(-counts, kind="stable"):
        if counts[k] == 0:
            continue
        for i, (centre, weight) in enumerate(merged):
            if np.linalg.norm(centre - centres[k]) < _PALETTE_MERGE:
                total = weight + counts[k]
                merged[i] = ((centre * weight + centres[k] * counts[k]) / total, total)
                break
        else:
            merged.append((centres[k].astype(np.float64), float(counts[k])))
    merged.sort(key=lambda item: -item[1])
    found = []
    for centre, weight in merged[:colours]:
        r, g, b = (int(v) for v in np.clip(np.rint(centre), 0, 255))
        found.append(((r, g, b), weight / len(x)))
    return found


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    distances = (centres**2).sum(axis=1)[None, :] - 2 * x @ centres.T
    return distances.argmin(axis=1)


def _kmeans(x: np.ndarray, k: int, iterations: int = 12) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding from a fixed seed; fewer centres if x has fewer colours."""
    rng = np.random.default_rng(0)
    centres = [x[rng.integers(len(x))]]
    closest = ((x - centres[0]) ** 2).sum(axis=1, dtype=np.float64)
    while len(centres) < k and closest.sum() > 0:
        centres.append(x[rng.choice(len(x), p=closest / closest.sum())])
        closest = np.minimum(closest, ((x - centres[-1]) ** 2).sum(axis=1, dtype=np.float64))
    c = np.array(centres, dtype=np.float64)
    x64 = x.astype(np.float64)
    for _ in range(iterations):
        labels = _nearest(x64, c)
        counts = np.bincount(labels, minlength=len(c))
        sums = np.stack([np.bincount(labels, x64[:, i], minlength=len(c)) for i in range(3)], 1)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        if np.abs(moved - c).max() < 0.05:
            break
        c = moved
    return c


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """`#rrggbb`, the way a colour is stored and served (a string every store and UI reads)."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def phash(grey: np.ndarray) -> str:
    """64-bit DCT perceptual hash of a canvas' luma as 16 hex digits.

    The classic pHash: the luma averaged down to 32×32, its 2-D DCT, the 8×8 lowest frequencies,
    one bit per coefficient above their median (the DC term left out of the median). Why: low
    frequencies survive re-encoding, resizing and small crops, so near-duplicates differ in few
    bits (`hamming`, `near_duplicates`). A near-blank picture has no structure to hash: its
    bits follow noise and mean nothing.
    """
    side = grey.shape[0] // 32
    small = grey[: 32 * side, : 32 * side].reshape(32, side, 32, side).mean(axis=(1, 3))
    low = dctn(small.astype(np.float64), type=2, norm="ortho")[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex pHashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def colour_layout(canvas: np.ndarray) -> np.ndarray:
    """Mean colour of each cell of a `LAYOUT_GRID`² grid, RGB in [0, 1]: 48 float32 values.

    Why next to the pHash: it says which colours sit where, which the luma-only pHash cannot, and it
    barely moves under re-encoding, resizing or a small crop.
    """
    cell = canvas.shape[0] // LAYOUT_GRID
    grid = canvas.reshape(LAYOUT_GRID, cell, LAYOUT_GRID, cell, 3).mean(axis=(1, 3))
    return (grid / 255.0).astype(np.float32).ravel()


def layout_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference of two colour layouts, in colour levels / 255."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def near_duplicates(phash_a: str, layout_a: np.ndarray, phash_b: str, layout_b: np.ndarray) -> bool:
    """Whether two pictures are the same artwork after everyday edits (re-encode, resize, crop).

    Why two tests: the Hamming distance of the pHashes finds candidates fast (it is what an index
    searches), the colour layout rejects designs that share a structure but not their colours.
    """
    return (
        hamming(phash_a, phash_b) <= DUPLICATE_MAX_BITS
        and layout_distance(layout_a, layout_b) <= DUPLICATE_MAX_LAYOUT
    )


def _matches(canvas: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Pixels within `COLOUR_TOLERANCE` of `colour` in every channel (channel by channel: fast)."""
    low = np.clip(colour - COLOUR_TOLERANCE, 0, 255).astype(np.uint8)
    high = np.clip(colour + COLOUR_TOLERANCE, 0, 255).astype(np.uint8)
    inside = (canvas[..., 0] >= low[0]) & (canvas[..., 0] <= high[0])
    for channel in (1, 2):
        inside &= (canvas[..., channel] >= low[channel]) & (canvas[..., channel] <= high[channel])
    return inside


def _bar_lines(canvas: np.ndarray, most: int) -> tuple[int, np.ndarray]:
    """How many leading rows (up to `most` + 1) are one uniform colour, and that colour."""
    colour = np.median(canvas[0], axis=0)
    if _matches(canvas[:1], colour).mean() < _LINE_UNIFORM:
        return 0, colour  # the usual case, settled by one row
    uniform = _matches(canvas[: most + 1], colour).mean(axis=1) >= _LINE_UNIFORM
    return (len(uniform) if uniform.all() else int(uniform.argmin())), colour


def letterboxed(canvas: np.ndarray) -> bool:
    """Uniform bars of one colour top and bottom (or left and right) framing a full-width picture.

    Why so strict: a design whose upper half is one flat block is not a letterbox, nor is a small
    subject on a plain background. Bars on opposite sides with a picture between them that
    reaches both other edges are what a padded 16:9 still or a pillarboxed video look like.
    """
    for picture in (canvas, canvas.transpose(1, 0, 2)):
        size = picture.shape[0]
        smallest, largest = _BAR_MIN_SHARE * size, _BAR_MAX_SHARE * size
        top, colour = _bar_lines(picture, int(largest))
        bottom, bottom_colour = _bar_lines(picture[::-1], int(largest))
        if not (
            smallest <= top <= largest
            and smallest <= bottom <= largest
            and np.abs(colour - bottom_colour).max() <= COLOUR_TOLERANCE
        ):
            continue
        band_edges = picture[top : size - bottom][:, [0, -1]]
        if (_matches(band_edges, colour).mean(axis=0) <= _EDGE_BAR_SHARE).all():
            return True
    return False


def near_blank(canvas: np.ndarray) -> bool:
    """Almost every pixel is one colour: an empty, black or placeholder picture."""
    colour = np.median(palette_pixels(canvas), axis=0)
    return bool(_matches(canvas, colour).mean() >= _BLANK_SHARE)


@dataclass(frozen=True)
class PictureStats:
    """Everything this module says about one canvas."""

    brightness: float  # mean luma, 0..1
    sharpness: float  # variance of the Laplacian, 0..16·255²
    blur: float  # blur effect, 0 crisp .. 1 blurred
    colourfulness: float  # Hasler–Süsstrunk, 0..~450
    phash: str  # 16 hex digits
    letterboxed: bool
    near_blank: bool

    @property
    def blurry(self) -> bool:
        """Blurry, unless there is nothing in the picture to be blurry (near-blank)."""
        return self.blur >= BLURRY_AT and not self.near_blank


def describe(canvas: np.ndarray) -> PictureStats:
    """All statistics of one `CANVAS`×`CANVAS` RGB uint8 picture (the palette is separate: it pools)."""
    if canvas.shape != (CANVAS, CANVAS, 3) or canvas.dtype != np.uint8:
        raise ValueError(f"expected a {CANVAS}x{CANVAS} RGB uint8 canvas, got {canvas.shape}")
    grey = luma(canvas)
    return PictureStats(
        brightness=float(grey.mean()),
        sharpness=sharpness(grey),
        blur=blur_effect(grey),
        colourfulness=colourfulness(canvas),
        phash=phash(grey),
        letterboxed=letterboxed(canvas),
        near_blank=near_blank(canvas),
    )
