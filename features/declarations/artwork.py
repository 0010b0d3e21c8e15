"""Artwork signals: what an item's cover image looks like, and what finds its near-copies."""

from __future__ import annotations

from datetime import timedelta

from features.signal import Searchable, Signal
from features.types import Bool, Embedding, Float, Int, String

artwork_quality = Signal(
    name="artwork_quality",
    version=1,
    description=(
        "Size, focus, light and colour of the cover image, with quality flags. Statistics are "
        "measured on a 256×256 resample so they compare across image sizes: sharpness is the "
        "variance of the Laplacian of the 0–255 luma (as OpenCV's), blur the Crété-Roffet blur "
        "effect (0 crisp, 1 blurred), colourfulness Hasler–Süsstrunk on the 0–255 scale. Colours "
        "are '#rrggbb'; the palette holds up to three, largest area first, with their area "
        "shares (zero-padded). too_small: shorter side under 300 px; blurry: blur ≥ 0.7 and not "
        "near-blank; letterboxed: same-colour bars on opposite sides framing the picture; "
        "near_blank: ≥ 97 % of the pixels are one colour."
    ),
    owner="content-understanding",
    tags={"modality": "image", "media": "artwork_uri"},
    consumers=("catalog-quality", "recommendations"),
    extractor="extractors.image:ArtworkQuality",
    features={
        "format": String(isin=("jpeg", "png", "webp", "gif")),
        "width": Int(ge=1, description="pixels, as displayed (EXIF orientation applied)"),
        "height": Int(ge=1, description="pixels, as displayed (EXIF orientation applied)"),
        "aspect_ratio": Float(ge=0, description="width / height"),
        "sharpness": Float(ge=0, le=16 * 255**2),
        "blur": Float(ge=0, le=1),
        "brightness": Float(ge=0, le=1, description="mean BT.601 luma"),
        "colourfulness": Float(ge=0, le=450),
        "dominant_colour": String(description="'#rrggbb'"),
        "dominant_share": Float(ge=0, le=1),
        "palette": String(description="up to three '#rrggbb', comma-separated, largest first"),
        "palette_shares": Embedding(dim=3, description="area share of each palette colour"),
        "too_small": Bool(),
        "blurry": Bool(),
        "letterboxed": Bool(),
        "near_blank": Bool(),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)

artwork_hash = Signal(
    name="artwork_hash",
    version=1,
    description=(
        "Near-duplicate keys of the cover image: a 64-bit DCT perceptual hash of the luma "
        "(16 hex digits) and the mean RGB of a 4×4 grid (48 values in 0–1). Two items are "
        "near-duplicates when their hashes differ in at most 12 bits and their layouts by at most "
        "20/255 RMS (extractors.image_stats.near_duplicates); the hash of a near-blank image "
        "means nothing."
    ),
    owner="content-understanding",
    tags={"modality": "image", "media": "artwork_uri"},
    consumers=("catalog-quality", "trust-safety"),
    extractor="extractors.image:ArtworkHash",
    features={
        "phash": String(description="64-bit pHash, 16 lowercase hex digits"),
        "colour_layout": Embedding(dim=48, description="4×4 grid × RGB, row-major, 0–1"),
    },
    searchable=Searchable("colour_layout", "l2"),
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)
