"""The sample catalog: its snapshot honours the catalog contract, and its media hold what the
ground truth says they hold (checked by decoding the files, not by trusting the generator)."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from deltalake import DeltaTable
from PIL import Image

from features.catalog import CATALOG_SCHEMA, CONTENT_TYPES
from jobs.sample import (
    GROUND_TRUTH_SCHEMA,
    LANGUAGES,
    REFERENCE_TIME,
    UPDATED_SPREAD_DAYS,
    SampleCatalog,
    generate_catalog_rows,
    integrated_loudness,
    iter_catalog_batches,
    k_weighting_coefficients,
    write_sample_catalog,
)

ITEMS = 200
SEED = 7
ID_PATTERN = re.compile(r"^(track|episode|audiobook|video):\d{6}$|^chapter:\d{6}-\d{2}$")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SampleCatalog:
    root = tmp_path_factory.mktemp("sample")
    return write_sample_catalog(str(root / "snapshot"), root / "media", ITEMS, seed=SEED)


@pytest.fixture(scope="module")
def snapshot(catalog: SampleCatalog) -> pa.Table:
    return DeltaTable(catalog.snapshot_uri).to_pyarrow_table()


@pytest.fixture(scope="module")
def truth(catalog: SampleCatalog) -> pa.Table:
    return pq.read_table(catalog.ground_truth_uri)


def rows_by_id(table: pa.Table) -> dict[str, dict]:
    return {row["content_id"]: row for row in table.to_pylist()}


def healthy(truth: pa.Table, **equal: object) -> list[dict]:
    """Ground-truth rows that are neither broken nor copies, with the given column values."""
    return [
        row
        for row in truth.to_pylist()
        if row["broken"] is None
        and row["duplicate_of"] is None
        and all(row[k] == v for k, v in equal.items())
    ]


def decode_mono(path: str) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(path, dtype="float64", always_2d=True)
    return samples.mean(axis=1), rate


def rgb_pixels(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).reshape(-1, 3)


# --- the snapshot -----------------------------------------------------------------------------


def test_snapshot_has_the_catalog_schema_and_the_type_mix(
    catalog: SampleCatalog, snapshot: pa.Table
) -> None:
    assert snapshot.schema == CATALOG_SCHEMA
    assert snapshot.num_rows == catalog.items == ITEMS
    counts = {
        v["values"]: v["counts"] for v in pc.value_counts(snapshot["content_type"]).to_pylist()
    }
    assert counts == catalog.counts_by_type
    # 55 / 25 / 8 / 10 / 2 %, with one episode deliberately mislabelled "podcast"
    assert counts == {
        "track": 110,
        "episode": 49,
        "podcast": 1,
        "audiobook": 16,
        "chapter": 20,
        "video": 4,
    }


def test_ids_are_unique_and_chapters_belong_to_audiobooks(snapshot: pa.Table) -> None:
    ids = snapshot["content_id"].to_pylist()
    assert len(set(ids)) == len(ids)
    assert all(ID_PATTERN.match(i) for i in ids)
    rows = rows_by_id(snapshot)
    chapters = [i for i in ids if i.startswith("chapter:")]
    assert chapters
    for chapter in chapters:
        book = "audiobook:" + chapter.split(":")[1].split("-")[0]
        assert book in rows
        assert rows[chapter]["language"] == rows[book]["language"]


def test_text_is_multilingual_and_plausible(snapshot: pa.Table) -> None:
    languages = set(snapshot["language"].to_pylist())
    assert len(languages) >= 5
    assert languages <= set(LANGUAGES)
    rows = snapshot.to_pylist()
    episodes = [r for r in rows if r["content_type"] == "episode"]
    assert all(re.search(r"\d+ ?: ", r["title"]) for r in episodes)  # "Episode 12: ..."
    assert all(2 <= r["description"].count(".") <= 5 for r in episodes)  # guest, story, …
    tracks = [r for r in rows if r["content_type"] == "track"]
    assert any(r["description"] is None for r in tracks)  # tracks may have no description
    durations = {r["content_type"]: r["duration_ms"] for r in rows}
    assert durations["audiobook"] > durations["episode"] > durations["track"] > 0


def test_updated_at_is_utc_microseconds_in_the_past_months(snapshot: pa.Table) -> None:
    assert snapshot.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    stamps = snapshot["updated_at"].to_pylist()
    earliest = REFERENCE_TIME - timedelta(days=UPDATED_SPREAD_DAYS)
    assert all(earliest <= t <= REFERENCE_TIME for t in stamps)
    assert len(set(stamps)) == len(stamps)


def test_uris_are_absolute_paths_that_exist_unless_broken(
    catalog: SampleCatalog, snapshot: pa.Table, truth: pa.Table
) -> None:
    gt = rows_by_id(truth)
    for row in snapshot.to_pylist():
        has_audio = row["content_type"] != "video"
        assert (row["audio_uri"] is not None) == has_audio
        assert row["artwork_uri"] is not None
        assert (row["video_uri"] is not None) == (row["content_type"] == "video")
        for uri in (row["audio_uri"], row["artwork_uri"], row["video_uri"]):
            if uri is None:
                continue
            path = Path(uri)
            assert path.is_absolute() and path.is_relative_to(catalog.media_dir)
            missing = catalog.broken.get(row["content_id"], "").startswith("missing audio")
            assert path.exists() != (missing and uri == row["audio_uri"])
        if has_audio and gt[row["content_id"]]["audio_format"]:
            assert row["audio_uri"].endswith("." + gt[row["content_id"]]["audio_format"])


# --- determinism and the text-only generator ---------------------------------------------------


def test_same_seed_same_rows_whatever_the_batch_size() -> None:
    table = generate_catalog_rows(500, seed=3)
    assert table.equals(generate_catalog_rows(500, seed=3))
    batched = pa.Table.from_batches(list(iter_catalog_batches(500, seed=3, batch_rows=37)))
    assert batched.equals(table)
    other = generate_catalog_rows(500, seed=4)
    assert not other.equals(table)
    assert other["title"].to_pylist() != table["title"].to_pylist()


def test_written_snapshot_is_the_generated_rows_plus_uris(snapshot: pa.Table) -> None:
    generated = generate_catalog_rows(ITEMS, seed=SEED)
    text_columns = [c for c in CATALOG_SCHEMA.names if not c.endswith("_uri")]
    assert snapshot.select(text_columns).equals(generated.select(text_columns))
    assert generated["audio_uri"].null_count == ITEMS


def test_text_only_generation_is_fast_enough_for_benchmarks() -> None:
    table = generate_catalog_rows(100_000, seed=1)
    assert table.schema == CATALOG_SCHEMA
    assert table.num_rows == 100_000
    assert pc.count_distinct(table["content_id"]).as_py() == 100_000
    shares = {
        v["values"]: v["counts"] / 100_000
        for v in pc.value_counts(table["content_type"]).to_pylist()
    }
    assert shares["track"] == pytest.approx(0.55, abs=0.001)
    assert shares["video"] == pytest.approx(0.02, abs=0.001)


def test_tiny_catalogs_have_no_broken_rows() -> None:
    table = generate_catalog_rows(15, seed=0)
    assert table.num_rows == 15
    assert set(table["content_type"].to_pylist()) <= set(CONTENT_TYPES)
    assert all(title.strip() for title in table["title"].to_pylist())


def test_without_media_only_text_breaks_and_no_uris(tmp_path: Path) -> None:
    done: list[int] = []
    result = write_sample_catalog(
        str(tmp_path / "snap"),
        tmp_path / "media",
        60,
        seed=1,
        with_media=False,
        progress=done.append,
    )
    table = DeltaTable(result.snapshot_uri).to_pyarrow_table()
    assert table.num_rows == sum(done) == 60
    for column in ("audio_uri", "artwork_uri", "video_uri"):
        assert table[column].null_count == 60
    assert 0 < len(result.broken) < 0.05 * 60
    assert all(r.startswith(("empty text", "bad content_type")) for r in result.broken.values())
    truth = pq.read_table(result.ground_truth_uri)
    assert truth["language"].to_pylist() == table["language"].to_pylist()


# --- deliberately broken rows -----------------------------------------------------------------


def test_broken_rows_are_few_and_as_described(
    catalog: SampleCatalog, snapshot: pa.Table, truth: pa.Table
) -> None:
    assert 0 < len(catalog.broken) < 0.05 * ITEMS
    reasons = {reason.split(":")[0]: cid for cid, reason in catalog.broken.items()}
    assert set(reasons) == {
        "empty text",
        "bad content_type",
        "missing audio",
        "truncated audio",
        "zero-byte artwork",
        "tiny artwork",
    }
    rows = rows_by_id(snapshot)
    blank = rows[reasons["empty text"]]
    assert not (blank["title"] or "").strip() and not (blank["description"] or "").strip()
    assert rows[reasons["bad content_type"]]["content_type"] not in CONTENT_TYPES
    assert not Path(rows[reasons["missing audio"]]["audio_uri"]).exists()
    with pytest.raises(sf.LibsndfileError):
        sf.read(rows[reasons["truncated audio"]]["audio_uri"])
    assert Path(rows[reasons["zero-byte artwork"]]["artwork_uri"]).stat().st_size == 0
    with Image.open(rows[reasons["tiny artwork"]]["artwork_uri"]) as image:
        assert image.size == (1, 1)
    marked = {r["content_id"]: r["broken"] for r in truth.to_pylist() if r["broken"]}
    assert marked == catalog.broken


# --- media against ground truth ---------------------------------------------------------------


def test_ground_truth_covers_every_item(truth: pa.Table, snapshot: pa.Table) -> None:
    assert truth.schema == GROUND_TRUTH_SCHEMA
    assert truth["content_id"].to_pylist() == snapshot["content_id"].to_pylist()
    kinds = dict(zip(truth["content_type"].to_pylist(), truth["kind"].to_pylist(), strict=True))
    assert kinds == {
        "track": "music",
        "episode": "speech",
        "audiobook": "speech",
        "chapter": "speech",
        "video": None,
    }


def test_music_onsets_fall_on_the_ground_truth_tempo(snapshot: pa.Table, truth: pa.Table) -> None:
    uris = rows_by_id(snapshot)
    checked = 0
    for row in healthy(truth, kind="music", audio_format="wav")[:5]:
        mono, rate = decode_mono(uris[row["content_id"]]["audio_uri"])
        beat = 60.0 / row["tempo_bpm"]
        jumps = np.abs(np.diff(mono))
        candidates = np.flatnonzero(jumps > 0.5 * jumps.max()) + 1
        onsets = [candidates[0]] + [
            b for a, b in itertools.pairwise(candidates) if b - a > rate * beat / 2
        ]
        intervals = np.diff(onsets) / rate
        assert len(intervals) >= 6
        assert np.abs(intervals - beat).max() < 0.002  # within 2 ms (one sample is 0.02-0.05 ms)
        assert onsets[0] / rate == pytest.approx(row["first_beat_s"], abs=0.001)
        checked += 1
    assert checked == 5


def test_loudness_ground_truth_is_what_a_decoder_reads(snapshot: pa.Table, truth: pa.Table) -> None:
    uris = rows_by_id(snapshot)
    for fmt in ("wav", "flac", "ogg"):
        for row in healthy(truth, audio_format=fmt)[:3]:
            samples, rate = sf.read(uris[row["content_id"]]["audio_uri"], always_2d=True)
            assert rate == row["sample_rate"] and samples.shape[1] == row["channels"]
            assert integrated_loudness(samples, rate) == pytest.approx(
                row["loudness_lufs"], abs=0.01
            )
            assert 20 * np.log10(np.abs(samples).max()) == pytest.approx(
                row["sample_peak_dbfs"], abs=0.01
            )
    measured = [r["loudness_lufs"] for r in healthy(truth) if r["loudness_lufs"] is not None]
    assert min(measured) > -31 and max(measured) < -9
    assert max(measured) - min(measured) > 10


def test_loudness_meter_matches_bs1770() -> None:
    (shelf_b, shelf_a), (high_b, high_a) = k_weighting_coefficients(48000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285])
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585])
    np.testing.assert_allclose(high_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(high_a, [1.0, -1.99004745483398, 0.99007225036621])
    t = np.arange(5 * 48000) / 48000
    sine = np.sin(2 * np.pi * 997 * t)  # the standard's reference: 0 dBFS at 997 Hz is -3.01 LUFS
    assert integrated_loudness(sine, 48000) == pytest.approx(-3.01, abs=0.01)
    assert integrated_loudness(0.1 * sine, 48000) == pytest.approx(-23.01, abs=0.01)
    stereo = np.stack([sine, sine], axis=1)
    assert integrated_loudness(stereo, 48000) == pytest.approx(-3.01 + 3.01, abs=0.02)
    assert integrated_loudness(np.zeros(48000), 48000) == float("-inf")


def test_speech_clips_have_pauses(snapshot: pa.Table, truth: pa.Table) -> None:
    uris = rows_by_id(snapshot)
    row = healthy(truth, kind="speech", audio_format="wav")[0]
    mono, rate = decode_mono(uris[row["content_id"]]["audio_uri"])
    frames = mono[: len(mono) // (rate // 20) * (rate // 20)].reshape(-1, rate // 20)
    silent = np.mean(np.abs(frames).max(axis=1) < 1e-3)
    assert 0.1 < silent < 0.6
    assert 0.4 < row["speech_ratio"] < 0.9


def test_artwork_dominant_colour_matches_ground_truth(snapshot: pa.Table, truth: pa.Table) -> None:
    uris = rows_by_id(snapshot)
    for row in healthy(truth, artwork_format="png")[:3]:
        colours, counts = np.unique(
            rgb_pixels(uris[row["content_id"]]["artwork_uri"]), axis=0, return_counts=True
        )
        assert colours[counts.argmax()].tolist() == row["dominant_rgb"]
        assert counts.max() / counts.sum() == pytest.approx(row["dominant_fraction"], abs=1e-5)
    for row in healthy(truth, artwork_format="jpeg")[:3]:
        pixels = rgb_pixels(uris[row["content_id"]]["artwork_uri"]).astype(int)
        palette = np.array(row["palette"])
        nearest = np.argmin(((pixels[:, None, :] - palette[None]) ** 2).sum(axis=2), axis=1)
        shares = np.bincount(nearest, minlength=len(palette)) / len(pixels)
        assert shares.argmax() == 0  # the palette is stored largest area first
        assert shares[0] == pytest.approx(row["dominant_fraction"], abs=0.02)


def test_near_duplicates_exist_and_differ_in_bytes(snapshot: pa.Table, truth: pa.Table) -> None:
    uris = rows_by_id(snapshot)
    copies = [r for r in truth.to_pylist() if r["duplicate_of"]]
    artwork = [r for r in copies if r["duplicate_media"] == "artwork"]
    audio = [r for r in copies if r["duplicate_media"] == "audio"]
    assert {r["duplicate_transform"] for r in artwork} == {"jpeg_requality", "resize", "crop"}
    assert audio
    for row in artwork:
        copy, source = (
            uris[row["content_id"]]["artwork_uri"],
            uris[row["duplicate_of"]]["artwork_uri"],
        )
        assert Path(copy).read_bytes() != Path(source).read_bytes()
        thumbs = [
            np.asarray(Image.open(p).convert("L").resize((32, 32)), dtype=float)
            for p in (copy, source)
        ]
        assert np.abs(thumbs[0] - thumbs[1]).mean() < 12
    for row in audio:
        copy, source = uris[row["content_id"]]["audio_uri"], uris[row["duplicate_of"]]["audio_uri"]
        assert Path(copy).suffix != Path(source).suffix
        assert Path(copy).read_bytes() != Path(source).read_bytes()
        (a, rate_a), (b, rate_b) = decode_mono(copy), decode_mono(source)
        assert rate_a == rate_b and len(a) == len(b)
        assert np.corrcoef(a, b)[0, 1] > 0.99
        if ".ogg" not in (Path(copy).suffix, Path(source).suffix):
            np.testing.assert_array_equal(a, b)  # lossless re-encoding: the same samples


def test_canvas_loops_are_animated_gifs(snapshot: pa.Table, truth: pa.Table) -> None:
    uris = rows_by_id(snapshot)
    videos = [r for r in truth.to_pylist() if r["content_type"] == "video"]
    assert videos
    for row in videos:
        with Image.open(uris[row["content_id"]]["video_uri"]) as gif:
            assert gif.n_frames == row["video_frames"] > 1
            assert gif.info["duration"] == 1000 / row["video_fps"]
        assert (
            uris[row["content_id"]]["duration_ms"] == row["video_frames"] * 1000 / row["video_fps"]
        )
