"""Speech signals: where an item's audio speaks, for episodes, audiobooks, chapters and tracks.

Computed over the whole file, streamed, by a voice-activity model that ships its weights
(Silero VAD). Silence is a measured answer here, not an error: an item without speech has no
segments, a speech ratio of 0 and no first onset.
"""

from __future__ import annotations

from datetime import timedelta

from features.signal import Signal
from features.types import Float, Int, Segments

# Values change only when the media does (the input hash covers the file's bytes and the
# model's), as for the other audio signals.
_TTL = timedelta(days=365)
_WEEKLY = timedelta(days=7)

speech_timeline = Signal(
    name="speech_timeline",
    version=1,
    description=(
        "Where the audio speaks (Silero VAD over the whole file, 32 ms frames): speech "
        "segments as [start_s, end_s] phrases (a pause of 0.3 s ends one), the share of the "
        "duration they cover, the first speech onset and the longest stretch without speech "
        "(music, silence or any other sound)."
    ),
    owner="content-understanding",
    tags={"modality": "audio", "model": "silero-vad 6.2.3 (MIT)"},
    consumers=("ads", "catalog-quality"),  # ad breaks go where no one speaks
    extractor="extractors.speech:SpeechTimeline",
    features={
        "speech_ratio": Float(ge=0, le=1, description="share of the duration in speech segments"),
        "speech_segments": Segments(description="[start_s, end_s] of each phrase, in order"),
        "first_speech_s": Float(ge=0, nullable=True, description="null: no speech"),
        "longest_non_speech_s": Float(ge=0, description="longest stretch without speech, s"),
        "segment_count": Int(ge=0),
    },
    ttl=_TTL,
    freshness=_WEEKLY,
)
