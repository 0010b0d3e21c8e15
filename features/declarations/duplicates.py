"""Catalog-level signals: relations between items rather than properties of one item."""

from __future__ import annotations

from datetime import timedelta

from features.signal import Signal
from features.types import Float, Int, String

near_duplicates = Signal(
    name="near_duplicates",
    version=1,
    description=(
        "Near-duplicate groups: items whose artwork pHashes lie within 12 bits (Hamming) with colour "
        "layouts within 20/255 RMS, or whose audio fingerprints lie within cosine 0.98 of each "
        "other (re-uploads, re-encodes, spam). "
        "Groups are connected components of the matching pairs; group_id is the smallest "
        "content_id of the group. nearest_id and distance name the closest matching item and how "
        "close it is (bits for artwork, cosine distance for audio); null for an item with no match. "
        "Candidates come from LSH tables sized to find a pair within 6 pHash bits, or at the "
        "cosine threshold, with probability 0.99; every candidate is checked exactly."
    ),
    owner="trust-and-safety",
    tags={
        "modality": "catalog",
        "method": "LSH candidates, exact pHash Hamming + fingerprint cosine",
    },
    consumers=("trust-safety", "catalog-quality"),
    extractor="extractors.duplicates:NearDuplicates",
    features={
        "group_id": String(),
        "group_size": Int(ge=1),
        "nearest_id": String(nullable=True),
        "distance": Float(ge=0, nullable=True),
        "match": String(isin=("artwork", "audio"), nullable=True),
    },
    freshness=timedelta(days=1),
)
