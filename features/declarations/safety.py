"""Safety signals: how likely an item's pictures are pornographic, and which a person must check.

Two signals, not one: the cover image and the video are different media with their own input
hashes (a new cover recomputes only `artwork_safety`), a video item has both, and only the video's
score has a frame time. Both use Yahoo's Open-NSFW model; what its scores mean is said once here.
"""

from __future__ import annotations

from datetime import timedelta

from features.signal import Signal
from features.types import Bool, Float, Int, String

_SCORE = (
    "nsfw_score is Yahoo's Open-NSFW model's probability (0–1) that the picture is pornographic. "
    "It detects nothing else (violence, gore, drugs, hate symbols score low), and skin-toned "
    "texture raises it: a flag is a reason for a person to look, not a verdict. The rating: 'safe' "
    "below the review threshold (SIGNALS_SAFETY_REVIEW_THRESHOLD, default 0.2), 'uncertain' "
    "from it to the flag threshold (SIGNALS_SAFETY_FLAG_THRESHOLD, default 0.8, Yahoo's "
    "suggested cut-offs), 'unsafe' from the flag threshold on; is_flagged: rating 'unsafe'; "
    "needs_review: not 'safe'. Items that need review go to the annotation queue, where a "
    "person confirms or corrects the rating (`signals annotate`), also when they decided the "
    "item before: a run recomputes only changed pictures. The thresholds are part of "
    "the extractor version. Measured here on negatives only: the sample catalog's artwork is "
    "synthetic and none of it is unsafe, so `signals evaluate` reports the false-positive rate; "
    "no recall can be measured in this project."
)
_RATING = String(
    isin=("safe", "uncertain", "unsafe"), description="the model's reading of nsfw_score"
)

artwork_safety = Signal(
    name="artwork_safety",
    version=1,
    description=f"Whether the cover image may be pornographic. {_SCORE}",
    owner="trust-and-safety",
    tags={"modality": "image", "media": "artwork_uri", "model": "yahoo-open-nsfw"},
    consumers=("trust-safety",),
    extractor="extractors.safety:ArtworkSafety",
    features={
        "nsfw_score": Float(ge=0, le=1, description="P(pornographic), Open-NSFW"),
        "artwork_rating": _RATING,
        "is_flagged": Bool(description="nsfw_score ≥ the flag threshold"),
        "needs_review": Bool(description="nsfw_score ≥ the review threshold: queued for a person"),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)

video_safety = Signal(
    name="video_safety",
    version=1,
    description=(
        "Whether a video may show pornography, judged by its worst frame among at most 16 "
        "spread over the video (video_summary@1's sample: keyframes when the stream has "
        "several, frames at an interval otherwise, as in a GIF loop). nsfw_score, video_rating and "
        f"the flags are the worst frame's. {_SCORE}"
    ),
    owner="trust-and-safety",
    tags={"modality": "video", "media": "video_uri", "model": "yahoo-open-nsfw"},
    consumers=("trust-safety",),
    extractor="extractors.safety:VideoSafety",
    features={
        "nsfw_score": Float(ge=0, le=1, description="the highest frame score"),
        "video_rating": _RATING,
        "is_flagged": Bool(description="nsfw_score ≥ the flag threshold"),
        "needs_review": Bool(description="nsfw_score ≥ the review threshold: queued for a person"),
        "peak_time_s": Float(ge=0, description="seconds from the start of the worst frame"),
        "frames_scored": Int(ge=1, le=16),
        "frames_flagged": Int(ge=0, le=16, description="frames at or above the flag threshold"),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)
