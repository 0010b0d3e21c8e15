"""The ground truth: one row per item saying what its text and media really hold.

Why: the extractors that follow are checked against known answers instead of eyeballed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from features.catalog import CONTENT_TYPES
from jobs.sample.batches import TEXT_TRUTH
from jobs.sample.media import Media
from jobs.sample.plan import TRACK, TYPE_NAMES, VIDEO

GROUND_TRUTH_FILE = "ground_truth.parquet"  # in the media folder
GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string(), nullable=False),
        pa.field("content_type", pa.string(), nullable=False),  # the intended type
        pa.field("language", pa.string()),
        pa.field("kind", pa.string()),  # music | speech | null (video: no audio)
        pa.field("genre", pa.string()),  # the text_tags genre the description states, if any
        pa.field(
            "translation_of", pa.string()
        ),  # the item whose title and description this translates
        pa.field("broken", pa.string()),  # the reason, as in SampleCatalog.broken
        pa.field("audio_format", pa.string()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int32()),
        pa.field("clip_duration_ms", pa.int64()),
        pa.field("tempo_bpm", pa.float64()),
        pa.field("first_beat_s", pa.float64()),
        pa.field("loudness_lufs", pa.float64()),  # measured on the decoded file, BS.1770-4
        pa.field("target_lufs", pa.float64()),
        pa.field("sample_peak_dbfs", pa.float64()),
        pa.field("speech_ratio", pa.float64()),  # share of the clip with voice in it
        # [start_s, end_s] of each spoken phrase, in order ([] for music, null without audio)
        pa.field("speech_segments", pa.list_(pa.list_(pa.float64()))),
        pa.field("artwork_format", pa.string()),
        pa.field("artwork_width", pa.int32()),
        pa.field("artwork_height", pa.int32()),
        pa.field("dominant_rgb", pa.list_(pa.int32())),
        pa.field("dominant_fraction", pa.float64()),
        pa.field("palette", pa.list_(pa.list_(pa.int32()))),  # largest area first
        pa.field("palette_fractions", pa.list_(pa.float64())),
        pa.field("video_frames", pa.int32()),
        pa.field("video_fps", pa.float64()),
        pa.field("duplicate_of", pa.string()),  # the content_id whose media this one copies
        pa.field("duplicate_media", pa.string()),  # audio | artwork
        pa.field("duplicate_transform", pa.string()),
    ]
)

_KIND_BY_TYPE = pa.array(
    [
        "music" if c == TRACK else None if c == VIDEO else "speech"
        for c in range(len(CONTENT_TYPES))
    ],
    pa.string(),
)
_MEDIA_TRUTH = pa.schema(
    [
        f
        for f in GROUND_TRUTH_SCHEMA
        if f.name not in ("content_id", "content_type", "language", *TEXT_TRUTH)
    ]
)


def truth_batch(
    batch: pa.RecordBatch,
    code: np.ndarray,
    text_truth: dict[str, pa.Array],
    reasons: list[str | None],
    media: list[Media] | None,
) -> pa.RecordBatch:
    """Ground-truth rows for one catalog batch (media columns null without media)."""
    n = batch.num_rows
    if media:
        found = pa.Table.from_pylist([m.truth for m in media], schema=_MEDIA_TRUTH)
        columns = {name: found.column(name).combine_chunks() for name in _MEDIA_TRUTH.names}
    else:
        columns = {f.name: pa.nulls(n, f.type) for f in _MEDIA_TRUTH}
    columns |= {
        "content_id": batch.column("content_id"),
        "content_type": TYPE_NAMES.take(code),
        "language": batch.column("language"),
        "kind": _KIND_BY_TYPE.take(code),
        **text_truth,
        "broken": pa.array(reasons, pa.string()),
    }
    return pa.RecordBatch.from_arrays(
        [columns[f.name] for f in GROUND_TRUTH_SCHEMA], schema=GROUND_TRUTH_SCHEMA
    )
