"""The artwork extractors on their own, no Ray: real Pillow decoding against pictures we drew."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from deltalake import DeltaTable
from PIL import Image, ImageDraw, ImageFilter
from signal_rows import contract_violations

from extractors.base import ERROR_COLUMN
from extractors.image import MIN_SIDE, ArtworkHash, ArtworkQuality
from extractors.image_stats import (
    DUPLICATE_MAX_BITS,
    hamming,
    layout_distance,
    near_duplicates,
)
from jobs.sample import write_sample_catalog

QUALITY = ArtworkQuality()
HASH = ArtworkHash()

RED, TEAL, GOLD = (230, 57, 70), (42, 157, 143), (233, 196, 106)


def _save(path: Path, image: Image.Image, **options: object) -> str:
    image.save(path, **({"compress_level": 1} | options))  # PNG: fast; other formats ignore it
    return str(path)


def _extract(extractor: ArtworkQuality | ArtworkHash, uris: list[str | None]) -> list[dict]:
    batch = pa.table(
        {
            "content_id": [f"item:{i:03d}" for i in range(len(uris))],
            "artwork_uri": pa.array(uris, pa.string()),
        }
    )
    out = extractor.extract(batch)
    _assert_contract_holds(extractor, out)
    return out.to_pylist()


def _assert_contract_holds(extractor: ArtworkQuality | ArtworkHash, out: pa.Table) -> None:
    """The computed rows pass the declared contract, as the extract job will check them."""
    ref = "artwork_hash@1" if isinstance(extractor, ArtworkHash) else "artwork_quality@1"
    assert contract_violations(ref, out) == {}


def _blocks(size: tuple[int, int]) -> Image.Image:
    """60 % red on the left; on the right 25 % teal above 15 % gold (shares of the whole)."""
    width, height = size
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    split, cut = int(width * 0.6), int(height * 0.625)
    pixels[:, :split] = RED
    pixels[:cut, split:] = TEAL
    pixels[cut:, split:] = GOLD
    return Image.fromarray(pixels)


def _scene(seed: int, size: int = 480) -> Image.Image:
    """A photo-like picture: a smooth colour field, shapes with edges, and a little grain."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, size * 3 // 4, 2))
        x1, y1 = (
            x0 + int(rng.integers(size // 10, size // 2)),
            y0 + int(rng.integers(size // 10, size // 2)),
        )
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    grain = rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


# --------------------------------------------------------------------------------------------
# What the statistics say about pictures whose answers we know
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_size_and_dominant_colours_of_solid_blocks(tmp_path: Path, fmt: str, suffix: str) -> None:
    uri = _save(tmp_path / f"blocks.{suffix}", _blocks((600, 400)), format=fmt, quality=90)
    (row,) = _extract(QUALITY, [uri])
    assert row[ERROR_COLUMN] is None
    assert (row["format"], row["width"], row["height"]) == (fmt.lower(), 600, 400)
    assert row["aspect_ratio"] == pytest.approx(1.5)
    palette = row["palette"].split(",")
    assert len(palette) == 3 and palette[0] == row["dominant_colour"]
    for found, truth in zip(palette, (RED, TEAL, GOLD), strict=True):
        assert np.abs(_rgb(found) - np.array(truth)).max() <= 3
    assert row["palette_shares"] == pytest.approx([0.6, 0.25, 0.15], abs=0.015)
    assert row["dominant_share"] == pytest.approx(0.6, abs=0.015)
    assert not (row["too_small"] or row["blurry"] or row["letterboxed"] or row["near_blank"])


def test_brightness_and_colourfulness_match_their_formulas(tmp_path: Path) -> None:
    grey = _save(tmp_path / "grey.png", Image.new("RGB", (400, 400), (64, 64, 64)))
    halves = np.zeros((400, 400, 3), dtype=np.uint8)
    halves[:, :200] = (255, 0, 0)
    halves[:, 200:] = (0, 255, 0)
    red_green = _save(tmp_path / "red_green.png", Image.fromarray(halves))
    dull, vivid = _extract(QUALITY, [grey, red_green])
    assert dull["brightness"] == pytest.approx(64 / 255, abs=1e-4)
    assert dull["colourfulness"] == pytest.approx(0.0, abs=1e-3)
    # R-G is ±255 (σ 255, mean 0), (R+G)/2-B is 127.5 everywhere: 255 + 0.3 × 127.5.
    assert vivid["colourfulness"] == pytest.approx(293.25, abs=3)
    assert vivid["brightness"] == pytest.approx((0.299 + 0.587) / 2, abs=0.01)
    assert dull["near_blank"] and not vivid["near_blank"]


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 400 * 300).reshape(300, 400).astype(np.uint16)
    (row,) = _extract(QUALITY, [_save(tmp_path / "ramp16.png", Image.fromarray(ramp))])
    assert row["brightness"] == pytest.approx(0.5, abs=0.01)


def test_sharpness_orders_a_picture_above_its_blurred_copy_at_any_size(tmp_path: Path) -> None:
    master = _scene(1, size=1600)
    uris = []
    for side in (400, 800, 1600):
        image = master.resize((side, side), Image.Resampling.LANCZOS)
        uris.append(_save(tmp_path / f"sharp{side}.png", image))
        blurred = image.filter(ImageFilter.GaussianBlur(radius=3 * side / 256))
        uris.append(_save(tmp_path / f"blurred{side}.png", blurred))
    rows = _extract(QUALITY, uris)
    sharp, blurred = rows[0::2], rows[1::2]
    for s, b in zip(sharp, blurred, strict=True):
        assert s["sharpness"] > 5 * b["sharpness"]
        assert s["blur"] < 0.6 and b["blur"] >= 0.75
        assert not s["blurry"] and b["blurry"]
    # Measured on the same canvas, the same picture at 400 and 1600 px reads alike.
    values = [s["sharpness"] for s in sharp]
    assert max(values) < 1.6 * min(values)


def test_flat_artwork_with_crisp_edges_is_not_blurry(tmp_path: Path) -> None:
    crisp = _save(tmp_path / "crisp.png", _blocks((500, 500)))
    soft = _save(
        tmp_path / "soft.png", _blocks((500, 500)).filter(ImageFilter.GaussianBlur(radius=8))
    )
    crisp_row, soft_row = _extract(QUALITY, [crisp, soft])
    assert not crisp_row["blurry"] and soft_row["blurry"]


def test_letterbox_and_pillarbox_bars_are_flagged_and_designs_are_not(tmp_path: Path) -> None:
    scene = _scene(2, size=640)
    letterbox = Image.new("RGB", (640, 640))
    letterbox.paste(scene.resize((640, 360)), (0, 140))
    pillarbox = Image.new("RGB", (640, 640), (250, 250, 250))
    pillarbox.paste(scene.resize((360, 640)), (140, 0))
    subject = Image.new("RGB", (640, 640), (20, 20, 20))
    subject.paste(scene.resize((200, 200)), (220, 220))
    top_block = _blocks((640, 640)).rotate(90)  # one flat block fills the upper 60 %
    uris = [
        _save(tmp_path / "letterbox.jpg", letterbox, quality=85),
        _save(tmp_path / "pillarbox.png", pillarbox),
        _save(tmp_path / "scene.png", scene),
        _save(tmp_path / "subject.png", subject),
        _save(tmp_path / "top_block.png", top_block),
    ]
    flags = [row["letterboxed"] for row in _extract(QUALITY, uris)]
    assert flags == [True, True, False, False, False]


def test_near_blank_and_tiny_images_are_computed_and_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noisy = np.clip(rng.normal(30, 2, (500, 500, 3)), 0, 255).astype(np.uint8)
    noisy[240:260, 240:300] = 255  # a small logo: 0.5 % of the picture
    transparent = Image.new("RGBA", (400, 400), (255, 255, 255, 0))
    uris = [
        _save(tmp_path / "dark.jpg", Image.fromarray(noisy), quality=80),
        _save(tmp_path / "transparent.png", transparent),  # composited onto black
        _save(tmp_path / "one_pixel.png", Image.new("RGB", (1, 1), GOLD)),
        _save(tmp_path / "thumb.png", _scene(4, size=MIN_SIDE - 1)),
        _save(tmp_path / "scene.png", _scene(4, size=MIN_SIDE)),
    ]
    dark, clear, pixel, thumb, scene = _extract(QUALITY, uris)
    assert dark["near_blank"] and not dark["blurry"]
    assert clear["near_blank"] and clear["brightness"] == 0.0
    # A 1×1 cover is a real, decodable image: served with its flags rather than quarantined, so
    # catalog-quality can find it; its statistics are those of one flat colour.
    assert pixel[ERROR_COLUMN] is None
    assert (pixel["width"], pixel["height"]) == (1, 1)
    assert pixel["too_small"] and pixel["near_blank"] and not pixel["blurry"]
    assert pixel["dominant_colour"] == "#e9c46a" and pixel["dominant_share"] == 1.0
    assert pixel["palette_shares"] == [1.0, 0.0, 0.0]
    assert thumb["too_small"] and not scene["too_small"]
    assert not scene["near_blank"]


def test_exif_orientation_gives_the_displayed_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated a quarter turn
    uri = _save(tmp_path / "rotated.jpg", _blocks((400, 300)), exif=exif.tobytes())
    (row,) = _extract(QUALITY, [uri])
    assert (row["width"], row["height"]) == (300, 400)


# --------------------------------------------------------------------------------------------
# Near-duplicates
# --------------------------------------------------------------------------------------------


def _copies(image: Image.Image, rng: np.random.Generator) -> list[Image.Image]:
    """The everyday edits: re-saved as a low-quality JPEG, resized, cropped by a few per cent."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(30, 60)))
    requality = Image.open(io.BytesIO(buffer.getvalue()))
    scale = rng.uniform(0.5, 0.8)
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    left, top, right, bottom = (int(v) * image.width // 100 for v in rng.integers(3, 7, 4))
    cropped = image.crop((left, top, image.width - right, image.height - bottom))
    return [requality, resized, cropped]


def test_near_duplicates_are_found_with_high_precision_and_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    uris, groups = [], []
    for group in range(50):
        original = _scene(100 + group, size=int(rng.choice([360, 480, 600])))
        for k, image in enumerate([original, *_copies(original, rng)]):
            uris.append(_save(tmp_path / f"{group}-{k}.jpg", image, quality=95))
            groups.append(group)
    rows = _extract(HASH, uris)
    assert all(row[ERROR_COLUMN] is None and len(row["phash"]) == 16 for row in rows)

    same, different, found, false = [], [], 0, 0
    for (a, ga), (b, gb) in itertools.combinations(zip(rows, groups, strict=True), 2):
        bits = hamming(a["phash"], b["phash"])
        match = near_duplicates(a["phash"], a["colour_layout"], b["phash"], b["colour_layout"])
        (same if ga == gb else different).append(bits)
        found += match and ga == gb
        false += match and ga != gb
    recall = found / len(same)
    precision = found / max(1, found + false)
    print(
        f"\npHash bits, copies: max {max(same)}, p95 {np.percentile(same, 95):.0f}; "
        f"unrelated: min {min(different)}, p1 {np.percentile(different, 1):.0f}, "
        f"median {np.median(different):.0f}; rule: recall {recall:.3f} precision {precision:.3f}"
    )
    assert recall >= 0.95 and precision >= 0.95
    # The pHash alone already separates photo-like pictures at the same threshold.
    assert np.mean(np.array(same) <= DUPLICATE_MAX_BITS) >= 0.95
    assert np.mean(np.array(different) <= DUPLICATE_MAX_BITS) < 0.001


# --------------------------------------------------------------------------------------------
# Bad media
# --------------------------------------------------------------------------------------------


def _streamed_png(path: Path, width: int, height: int) -> str:
    """A valid all-black 1-bit PNG written row by row: its pixels never exist in memory."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data)
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    row = bytes(1 + (width + 7) // 8)  # filter byte, then the packed bits
    compressor = zlib.compressobj(9)
    with path.open("wb") as out:
        header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
        out.write(chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return str(path)


def test_bad_files_become_error_rows_with_their_reason_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    good = _save(tmp_path / "good.jpg", _scene(6), quality=90)
    cut = []
    for suffix in ("jpg", "png", "webp"):
        whole = Path(_save(tmp_path / f"whole.{suffix}", _scene(6), quality=90)).read_bytes()
        cut.append(tmp_path / f"truncated.{suffix}")
        cut[-1].write_bytes(whole[: len(whole) // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    wav_as_png = tmp_path / "song.png"
    sf.write(wav_as_png, np.zeros(8000, dtype=np.float32), 8000, format="WAV")
    bomb = _streamed_png(tmp_path / "bomb.png", 20_000, 20_000)
    large = _streamed_png(tmp_path / "large.png", 9_000, 9_000)  # under Pillow's own guard
    missing = str(tmp_path / "missing.webp")
    uris = [good, str(cut[0]), str(empty), str(wav_as_png), bomb, large, missing, None]
    uris += [str(cut[1]), str(cut[2]), good]

    for extractor in (QUALITY, HASH):
        rows = _extract(extractor, uris)
        errors = [row[ERROR_COLUMN] for row in rows]
        assert errors[0] is None and errors[-1] is None
        assert errors[1].startswith(
            "truncated or corrupt jpeg image: OSError: image file is truncated"
        )
        assert errors[2].startswith("empty file (0 bytes)")
        assert errors[3].startswith("not an image in a supported format (JPEG, PNG, WEBP, GIF)")
        assert errors[4].startswith("image too large (decompression bomb guard)")
        assert errors[5].startswith("image too large: 9000x9000 px (81 MP) exceeds the 64 MP limit")
        assert errors[6] == f"media not found: {missing}"
        assert errors[7] == "no artwork_uri"
        assert errors[8].startswith(
            "truncated or corrupt png image: OSError: image file is truncated"
        )
        assert errors[9].startswith("truncated or corrupt image: OSError")  # a WebP fails at open
        assert all(str(tmp_path) in e for e in errors[1:7] + errors[8:10])
        assert rows[0] == rows[-1] | {"content_id": rows[0]["content_id"]}


def _memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def test_a_decompression_bomb_is_refused_without_the_memory_to_decode_it(tmp_path: Path) -> None:
    bomb = _streamed_png(tmp_path / "bomb.png", 20_000, 20_000)  # 400 MP: ≥ 400 MB decoded
    try:  # reset this process' peak resident memory (Linux), so the peak below is this test's
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak memory of this process (/proc/self/clear_refs)")
    before = _memory_kb("VmRSS:")
    (row,) = _extract(QUALITY, [bomb])
    grown_mb = (_memory_kb("VmHWM:") - before) / 1024
    print(f"\npeak memory while refusing a 20000x20000 PNG: +{grown_mb:.1f} MB")
    assert row[ERROR_COLUMN].startswith("image too large")
    assert grown_mb < 50


# --------------------------------------------------------------------------------------------
# The sample catalog's ground truth
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, dict[str, dict]]:
    root = tmp_path_factory.mktemp("catalog")
    written = write_sample_catalog(str(root / "snapshot"), root / "media", 200, seed=7)
    snapshot = DeltaTable(written.snapshot_uri).to_pyarrow_table()
    truth = pq.read_table(written.ground_truth_uri).to_pylist()
    return snapshot, {row["content_id"]: row for row in truth}


def test_sample_catalog_dominant_colours_and_flags_match_ground_truth(
    catalog: tuple[pa.Table, dict[str, dict]],
) -> None:
    snapshot, truth = catalog
    out = QUALITY.extract(snapshot.select(["content_id", "artwork_uri"]))
    _assert_contract_holds(QUALITY, out)
    colour_errors, share_errors = [], []
    for row in out.to_pylist():
        expected = truth[row["content_id"]]
        if expected["broken"] and expected["broken"].startswith("zero-byte artwork"):
            assert row[ERROR_COLUMN].startswith("empty file (0 bytes)")
            continue
        assert row[ERROR_COLUMN] is None
        assert (row["width"], row["height"]) == (
            expected["artwork_width"],
            expected["artwork_height"],
        )
        colour_errors.append(np.abs(_rgb(row["dominant_colour"]) - expected["dominant_rgb"]).max())
        share_errors.append(abs(row["dominant_share"] - expected["dominant_fraction"]))
        assert row["too_small"] == (min(row["width"], row["height"]) < MIN_SIDE)
        assert row["near_blank"] == (expected["dominant_fraction"] > 0.97)
        assert not row["letterboxed"] and not row["blurry"]
    print(
        f"\ndominant colour: max channel error {max(colour_errors)}; "
        f"share: max error {max(share_errors):.4f}, mean {np.mean(share_errors):.4f}"
    )
    assert max(colour_errors) <= 4
    assert max(share_errors) <= 0.02


def test_sample_catalog_planted_copies_are_the_only_near_duplicates(
    catalog: tuple[pa.Table, dict[str, dict]],
) -> None:
    snapshot, truth = catalog
    out = HASH.extract(snapshot.select(["content_id", "artwork_uri"]))
    rows = {r["content_id"]: r for r in out.to_pylist() if r[ERROR_COLUMN] is None}
    usable = {c: r for c, r in rows.items() if (truth[c]["dominant_fraction"] or 0) <= 0.97}
    planted = {
        frozenset((c, t["duplicate_of"]))
        for c, t in truth.items()
        if t["duplicate_media"] == "artwork"
    }
    assert len(planted) >= 3
    matches, phash_only = set(), 0
    for (a, ra), (b, rb) in itertools.combinations(usable.items(), 2):
        phash_only += hamming(ra["phash"], rb["phash"]) <= DUPLICATE_MAX_BITS
        if near_duplicates(ra["phash"], ra["colour_layout"], rb["phash"], rb["colour_layout"]):
            matches.add(frozenset((a, b)))
    layouts = [
        layout_distance(rows[a]["colour_layout"], rows[b]["colour_layout"]) for a, b in planted
    ]
    print(
        f"\nplanted copies {len(planted)}, found {len(matches & planted)}, false {len(matches - planted)}; "
        f"pairs within {DUPLICATE_MAX_BITS} pHash bits: {phash_only}; "
        f"copies' layout distance max {max(layouts) * 255:.1f}/255"
    )
    assert matches == planted
