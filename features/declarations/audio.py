"""Audio signals: how an item sounds — its loudness, its beat and texture, and its identity.

Each signal is what one decode of the file computes. Ranges are what the measures can produce,
not what is typical, so that only a wrong value is quarantined. Silent audio has no loudness,
tempo or fingerprint: it is quarantined with the reason "silent audio", never stored as -inf.
"""

from __future__ import annotations

from datetime import timedelta

from features.signal import Searchable, Signal
from features.types import Embedding, Float

# Values change only when the media does (the input hash covers the file's bytes), so a served
# value stays valid far longer than the weekly recompute of new and changed items.
_TTL = timedelta(days=365)
_WEEKLY = timedelta(days=7)
_OWNER = "content-understanding"
_NYQUIST_HZ = 11025.0  # spectra are measured at 22.05 kHz whatever the file's rate

audio_loudness = Signal(
    name="audio_loudness",
    version=1,
    description=(
        "Integrated loudness (ITU-R BS.1770-4, gated), loudness range (EBU Tech 3342) and true "
        "peak (4x oversampled) of the whole file, for playback normalisation and ad insertion."
    ),
    owner=_OWNER,
    tags={"modality": "audio", "standard": "ITU-R BS.1770-4 / EBU R128"},
    consumers=("playback", "ads", "catalog-quality"),
    extractor="extractors.audio:Loudness",
    features={
        # Above the -70 LUFS absolute gate by definition; a full-scale square wave is about +3.
        "integrated_lufs": Float(ge=-70, le=10, description="LUFS"),
        # Short-term values within 20 LU below the mean and at most 13 LU above it.
        "loudness_range_lu": Float(ge=0, le=40, description="LU"),
        # Lossy decoders and float files overshoot 0 dBFS; audio above the gate peaks above -90.
        "true_peak_dbtp": Float(ge=-90, le=20, description="dBTP"),
    },
    ttl=_TTL,
    freshness=_WEEKLY,
)

audio_features = Signal(
    name="audio_features",
    version=1,
    description=(
        "Tempo with a confidence, duration, silence ratio (100 ms frames under -50 dBFS), "
        "spectral centroid / 85 % rolloff / flatness and a speech-versus-music score. Duration "
        "and silence cover the whole file; the rest its first 60 s of sound."
    ),
    owner=_OWNER,
    tags={"modality": "audio"},
    consumers=("recommendations", "search", "catalog-quality"),
    extractor="extractors.audio:AudioFeatures",
    features={
        "tempo_bpm": Float(ge=40, le=240, nullable=True, description="null under 4 s of sound"),
        "tempo_confidence": Float(ge=0, le=1, description="periodicity of the onsets at the tempo"),
        "duration_s": Float(ge=0, description="decoded length in seconds"),
        "silence_ratio": Float(ge=0, le=1),
        "spectral_centroid_hz": Float(ge=0, le=_NYQUIST_HZ),
        "spectral_rolloff_hz": Float(ge=0, le=_NYQUIST_HZ),
        "spectral_flatness": Float(ge=0, le=1, description="0 tonal, ~0.56 white noise"),
        "speech_score": Float(ge=0, le=1, description="above 0.5: speech rather than music"),
    },
    ttl=_TTL,
    freshness=_WEEKLY,
)

audio_fingerprint = Signal(
    name="audio_fingerprint",
    version=1,
    description=(
        "128-d unit vector of the first 12.8 s of sound (after leading silence) for duplicate "
        "detection: re-encoded copies are within cosine distance 0.02 (1 - a·b), unrelated "
        "audio far beyond it."
    ),
    owner=_OWNER,
    tags={"modality": "audio", "distance": "cosine", "duplicate_threshold": "0.02"},
    consumers=("catalog-quality", "trust-safety"),
    extractor="extractors.audio:AudioFingerprint",
    features={"fingerprint": Embedding(dim=128, normalized=True)},
    searchable=Searchable("fingerprint", "cosine"),
    ttl=_TTL,
    freshness=_WEEKLY,
)
