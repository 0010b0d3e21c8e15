"""The video extractor on its own, no Ray: videos encoded here with PyAV, and the sample catalog's loops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from deltalake import DeltaTable
from PIL import Image
from signal_rows import contract_violations

from extractors.base import ERROR_COLUMN
from extractors.video import MAX_FRAMES, VideoSummary, sample_video
from jobs.sample import write_sample_catalog

SUMMARY = VideoSummary()
BACKGROUND, SQUARE = (40, 90, 200), (250, 210, 30)


def _moving_square(width: int, height: int) -> Callable[[int, int], np.ndarray]:
    """Frame `i` of `n`: a square crossing a plain background from left to right."""

    def frame(i: int, n: int) -> np.ndarray:
        pixels = np.empty((height, width, 3), dtype=np.uint8)
        pixels[:] = BACKGROUND
        side = height // 4
        left = i * (width - side) // max(1, n - 1)
        pixels[height // 2 - side // 2 :][:side, left : left + side] = SQUARE
        return pixels

    return frame


def _encode(
    path: Path,
    frame: Callable[[int, int], np.ndarray],
    *,
    frames: int,
    fps: int,
    codec: str = "libx264",
    gop: int = 12,
    size: tuple[int, int] = (320, 240),
) -> str:
    """Encode `frames` frames with PyAV at `fps`, a keyframe every `gop` frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":  # fixed keyframe interval, no scene-cut keyframes
            stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for i in range(frames):
            picture = av.VideoFrame.from_ndarray(frame(i, frames), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return str(path)


def _extract(uris: list[str | None]) -> list[dict]:
    batch = pa.table(
        {
            "content_id": [f"video:{i:03d}" for i in range(len(uris))],
            "video_uri": pa.array(uris, pa.string()),
        }
    )
    out = SUMMARY.extract(batch)
    _assert_contract_holds(out)
    return out.to_pylist()


def _assert_contract_holds(out: pa.Table) -> None:
    """The computed rows pass the declared contract, as the extract job will check them."""
    assert contract_violations("video_summary@1", out) == {}


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def _luma(rgb: tuple[int, int, int]) -> float:
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "suffix"), [("libx264", "mp4"), ("libvpx-vp9", "webm")])
def test_only_keyframes_are_decoded_once_a_second_keyframe_shows_up(
    tmp_path: Path, codec: str, suffix: str
) -> None:
    uri = _encode(
        tmp_path / f"square.{suffix}", _moving_square(320, 240), frames=100, fps=25, codec=codec
    )
    sample = sample_video(uri)
    assert (sample.width, sample.height, sample.frame_count) == (320, 240, 100)
    assert sample.duration_s == pytest.approx(4.0)
    assert sample.fps == pytest.approx(25.0)
    # The first group of pictures is decoded frame by frame; after it, keyframes only.
    keyframe_times = {round(k * 12 / 25, 3) for k in range(9)}
    later = [t for t in sample.times if t >= 12 / 25]
    assert later and {round(t, 3) for t in later} <= keyframe_times
    assert sample.decoded <= 12 + 8
    assert sample.times[-1] >= 3.8  # the last keyframe, 3.84 s: the sample spans the video


def test_a_single_keyframe_video_is_decoded_whole_and_sampled_at_an_interval(
    tmp_path: Path,
) -> None:
    uri = _encode(
        tmp_path / "one_gop.mp4",
        _moving_square(320, 240),
        frames=90,
        fps=30,
        codec="mpeg4",
        gop=1000,
    )
    sample = sample_video(uri)
    assert (sample.frame_count, sample.decoded) == (90, 90)
    assert sample.duration_s == pytest.approx(3.0) and sample.fps == pytest.approx(30.0)
    assert MAX_FRAMES // 2 <= len(sample.times) <= MAX_FRAMES
    gaps = np.diff([0.0, *sample.times, sample.duration_s])
    assert gaps.max() <= 2.5 * sample.duration_s / MAX_FRAMES


def test_a_long_intra_only_video_keeps_a_bounded_sample_and_decodes_little(
    tmp_path: Path,
) -> None:
    uri = _encode(
        tmp_path / "intra.mp4",
        _moving_square(160, 96),
        frames=600,
        fps=25,
        gop=1,
        size=(160, 96),
    )
    sample = sample_video(uri)
    assert sample.frame_count == 600 and sample.duration_s == pytest.approx(24.0)
    assert len(sample.canvases) == len(sample.times) <= MAX_FRAMES
    assert sample.decoded <= 3 * MAX_FRAMES  # every frame is a keyframe: most are skipped
    assert sample.times[0] == 0.0 and sample.times[-1] > 22.0


def test_a_gif_loop_is_decoded_frame_by_frame_and_timed_from_its_frames(tmp_path: Path) -> None:
    """GIF frames patch the previous ones: only the first is a keyframe, so all are decoded."""
    frame = _moving_square(144, 256)
    frames = [Image.fromarray(frame(i, 30)) for i in range(30)]
    path = tmp_path / "loop.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    sample = sample_video(str(path))
    assert (sample.frame_count, sample.decoded) == (30, 30)
    assert sample.duration_s == pytest.approx(3.0) and sample.fps == pytest.approx(10.0)
    assert len(sample.times) == MAX_FRAMES


# --------------------------------------------------------------------------------------------
# The summary
# --------------------------------------------------------------------------------------------


def test_summary_aggregates_match_what_was_encoded(tmp_path: Path) -> None:
    dark, light = (40, 40, 40), (200, 200, 200)

    def halves(i: int, n: int) -> np.ndarray:
        return np.full((240, 320, 3), dark if i < n // 2 else light, dtype=np.uint8)

    still = _encode(tmp_path / "still.mp4", lambda i, n: halves(0, n), frames=50, fps=25)
    stepped = _encode(tmp_path / "stepped.mp4", halves, frames=50, fps=25, gop=1)
    square = _encode(tmp_path / "square.mp4", _moving_square(320, 240), frames=50, fps=25)
    still_row, stepped_row, square_row = _extract([still, stepped, square])

    assert still_row["brightness"] == pytest.approx(_luma(dark), abs=0.01)
    assert still_row["visual_change"] < 0.002 and still_row["near_blank"]
    # Sampled evenly in time: half the frames dark, half light.
    assert stepped_row["brightness"] == pytest.approx((_luma(dark) + _luma(light)) / 2, abs=0.03)
    assert stepped_row["frames_sampled"] == MAX_FRAMES
    assert stepped_row["visual_change"] > 0
    assert square_row["visual_change"] > 10 * still_row["visual_change"]
    # 4:2:0 chroma and limited-range YUV move a colour by a few levels, no more.
    assert np.abs(_rgb(square_row["dominant_colour"]) - BACKGROUND).max() <= 6
    assert square_row["colourfulness"] > 40 and still_row["colourfulness"] < 1
    assert not square_row["letterboxed"] and not square_row["near_blank"]
    assert len(square_row["phash"]) == 16
    assert (square_row["width"], square_row["height"], square_row["duration_s"]) == (320, 240, 2.0)


def test_letterboxed_video_is_flagged(tmp_path: Path) -> None:
    def letterbox(i: int, n: int) -> np.ndarray:
        pixels = np.zeros((240, 320, 3), dtype=np.uint8)
        band = np.linspace(30, 230, 320, dtype=np.uint8)[None, :, None]
        pixels[40:200] = np.broadcast_to(band, (160, 320, 3)) + np.uint8(i % 10)
        return pixels

    (row,) = _extract([_encode(tmp_path / "letterbox.mp4", letterbox, frames=25, fps=25)])
    assert row["letterboxed"] and not row["near_blank"]


def test_bad_videos_become_error_rows_with_their_reason_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    good = _encode(tmp_path / "good.mp4", _moving_square(320, 240), frames=25, fps=25)
    whole = Path(good).read_bytes()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(20_000))
    truncated = tmp_path / "truncated.mp4"  # the index (moov) is written last: cut away
    truncated.write_bytes(whole[: len(whole) // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio_only = tmp_path / "podcast.mp4"
    sf.write(audio_only, np.zeros(8000, dtype=np.float32), 8000, format="WAV")
    missing = str(tmp_path / "missing.mp4")
    uris = [good, str(garbage), str(truncated), str(empty), str(audio_only), missing, None, good]

    rows = _extract(uris)
    errors = [row[ERROR_COLUMN] for row in rows]
    assert errors[0] is None and errors[-1] is None
    unreadable = "not a readable video: Invalid data found when processing input"
    assert errors[1] == f"{unreadable}: {garbage}"
    assert errors[2] == f"{unreadable}: {truncated}"
    assert errors[3] == f"empty file (0 bytes): {empty}"
    assert errors[4] == f"no video stream in the file: {audio_only}"
    assert errors[5] == f"media not found: {missing}"
    assert errors[6] == "no video_uri"
    assert rows[0] == rows[-1] | {"content_id": rows[0]["content_id"]}


# --------------------------------------------------------------------------------------------
# The sample catalog's canvas loops
# --------------------------------------------------------------------------------------------


def test_sample_catalog_loops_match_their_ground_truth(tmp_path: Path) -> None:
    written = write_sample_catalog(str(tmp_path / "snapshot"), tmp_path / "media", 200, seed=7)
    snapshot = DeltaTable(written.snapshot_uri).to_pyarrow_table()
    videos = snapshot.filter(pc.is_valid(snapshot.column("video_uri")))
    truth = {r["content_id"]: r for r in pq.read_table(written.ground_truth_uri).to_pylist()}
    rows = _extract(videos.column("video_uri").to_pylist())
    assert len(rows) >= 2
    for row, content_id in zip(rows, videos.column("content_id").to_pylist(), strict=True):
        expected = truth[content_id]
        assert row[ERROR_COLUMN] is None
        assert (row["width"], row["height"]) == (144, 256)
        assert row["frame_count"] == expected["video_frames"]
        assert row["fps"] == pytest.approx(expected["video_fps"])
        assert row["duration_s"] == pytest.approx(expected["video_frames"] / expected["video_fps"])
        assert row["frames_sampled"] == MAX_FRAMES
        assert not row["letterboxed"] and not row["near_blank"]
        if expected["duplicate_media"] != "artwork":  # the loop is painted in the artwork's colours
            assert _rgb(row["dominant_colour"]).tolist() == expected["dominant_rgb"]
