"""Video signals: canvas loops and video podcasts summarised from a bounded sample of frames."""

from __future__ import annotations

from datetime import timedelta

from features.signal import Signal
from features.types import Bool, Float, Int, String

video_summary = Signal(
    name="video_summary",
    version=1,
    description=(
        "Duration, average frame rate and frame size of the first video stream, with the artwork "
        "statistics (artwork_quality@1's definitions) over at most 16 frames spread across the "
        "video: keyframes when the stream has several, frames at an interval otherwise. "
        "Brightness, sharpness, blur and colourfulness are means over the sampled frames; the "
        "dominant colour pools their pixels; phash is the middle sampled frame's; visual_change "
        "is the mean absolute luma difference between consecutive sampled frames (0 for a still); "
        "letterboxed holds for most sampled frames, near_blank for all."
    ),
    owner="content-understanding",
    tags={"modality": "video", "media": "video_uri"},
    consumers=("catalog-quality", "recommendations"),
    extractor="extractors.video:VideoSummary",
    features={
        "width": Int(ge=1),
        "height": Int(ge=1),
        "duration_s": Float(ge=0),
        "fps": Float(ge=0, description="frames / duration"),
        "frame_count": Int(ge=1),
        "frames_sampled": Int(ge=1, le=16),
        "brightness": Float(ge=0, le=1),
        "sharpness": Float(ge=0, le=16 * 255**2),
        "blur": Float(ge=0, le=1),
        "colourfulness": Float(ge=0, le=450),
        "dominant_colour": String(description="'#rrggbb'"),
        "visual_change": Float(ge=0, le=1),
        "phash": String(description="64-bit pHash of the middle sampled frame, 16 hex digits"),
        "letterboxed": Bool(),
        "near_blank": Bool(),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)
