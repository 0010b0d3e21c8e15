"""The vocabulary and the word pickers: every string is a join of columns picked from word lists.

The words live in `vocabulary/` as JSON, one file per language plus `genres_<language>.json`. Lists
are picked from by index, so their order is part of the output; pairs are [text before, text
after] a slot. Title halves: English is adjective + noun, the others noun + a modifier that agrees
with any noun. The lists a translated item draws from (topics, roles, blurbs, outros, book titles
and blurbs, genre sentences) are aligned: position `i` says the same thing in every language.
`genres_<language>.json` holds, per content type, the genre labels its descriptions may state and
two sentences for each, the same sentences translated in every file: the one place the catalog
states a genre, so the ground truth can hold it and `text_tags` be scored against it in every
language. They are worded as a label would write it, never copied from extractors/taxonomy.yaml;
the keys are taxonomy genre labels.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.catalog import CONTENT_TYPES
from jobs.sample.plan import LANGUAGE_WEIGHTS, LANGUAGES
from jobs.sample.randomness import Keys

GENRE_SHARE = 0.5  # of tracks, episodes and audiobooks, in every language
NULL_STRING = pa.scalar(None, pa.string())
LANGUAGE_CODES = pa.array(LANGUAGES, pa.string())
_LANGUAGE_CUMULATIVE = np.cumsum(LANGUAGE_WEIGHTS) / sum(LANGUAGE_WEIGHTS)


@cache
def _vocabulary(name: str) -> Any:
    """One file of `vocabulary/`, parsed once."""
    files = resources.files("jobs.sample") / "vocabulary"
    return json.loads((files / f"{name}.json").read_text(encoding="utf-8"))


class Words:
    """Word lists (one per language, or per genre), concatenated so a whole batch picks in one
    `take`: row `i` picks from list `which[i]`."""

    def __init__(self, lists: list[list[str]]) -> None:
        self.values = pa.array([word for words in lists for word in words], pa.string())
        self.sizes = np.array([len(words) for words in lists], dtype=np.uint64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def pick(self, which: np.ndarray, bits: np.ndarray) -> pa.Array:
        """One word per row, from list `which` at position `bits` (modulo the list's size)."""
        return self.values.take(self.offsets[which] + (bits % self.sizes[which]).astype(np.int64))


class Affix:
    """Per-language text around a slot, e.g. ["From the album ", "."]."""

    def __init__(self, field: str) -> None:
        pairs = [_vocabulary(lang)[field] for lang in LANGUAGES]
        self.before = pa.array([before for before, _ in pairs], pa.string())
        self.after = pa.array([after for _, after in pairs], pa.string())

    def wrap(self, lang: np.ndarray, middle: pa.Array) -> pa.Array:
        """`middle` between each row's language's text before and after."""
        return join(self.before.take(lang), middle, self.after.take(lang))


@cache
def words(field: str) -> Words:
    """The per-language lists of one vocabulary field, e.g. "moods"."""
    return Words([_vocabulary(lang)[field] for lang in LANGUAGES])


@cache
def affix(field: str) -> Affix:
    """The per-language pair of one vocabulary field, e.g. "album"."""
    return Affix(field)


@cache
def _genres(code: int) -> tuple[pa.Array, Words]:
    """The genre labels one content type's descriptions state, and their sentences: list
    `language × labels + label` of the words holds that label's sentences in that language."""
    per_language = [_vocabulary(f"genres_{lang}")[CONTENT_TYPES[code]] for lang in LANGUAGES]
    labels = list(per_language[0])
    if any(list(sentences) != labels for sentences in per_language):
        raise ValueError(f"genres_<language>.json disagree on the {CONTENT_TYPES[code]} labels")
    lists = [sentences[label] for sentences in per_language for label in labels]
    return pa.array(labels, pa.string()), Words(lists)


def join(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of string columns and literals."""
    return pc.binary_join_element_wise(*parts, "")


def sentences(*parts: pa.Array) -> pa.Array:
    """Space-joined sentences; a null sentence is left out."""
    return pc.binary_join_element_wise(*parts, " ", null_handling="skip")


def maybe(values: pa.Array, keep: np.ndarray) -> pa.Array:
    """`values` where `keep`, null elsewhere."""
    return pc.if_else(pa.array(keep), values, NULL_STRING)


def numbers(values: np.ndarray, width: int = 0) -> pa.Array:
    """Integers as text, zero-padded to `width` when given."""
    text = pc.cast(pa.array(values, pa.int64()), pa.string())
    return pc.utf8_lpad(text, width, "0") if width else text


def language(keys: Keys) -> np.ndarray:
    """Each item's language, as an index into LANGUAGES drawn with LANGUAGE_WEIGHTS."""
    chosen = np.searchsorted(_LANGUAGE_CUMULATIVE, keys.uniform(0), side="right")
    return np.minimum(chosen, len(LANGUAGES) - 1)


def person(keys: Keys, lang: np.ndarray, stream: int) -> pa.Array:
    """A first and last name in each row's language (streams `stream`, `stream + 1`)."""
    first = words("first").pick(lang, keys.bits(stream))
    return join(first, " ", words("last").pick(lang, keys.bits(stream + 1)))


def song_title(keys: Keys, lang: np.ndarray, stream: int) -> pa.Array:
    """A two-part title (streams `stream`, `stream + 1`): songs, albums and video loops."""
    head = words("title_a").pick(lang, keys.bits(stream))
    return join(head, " ", words("title_b").pick(lang, keys.bits(stream + 1)))


def book_title(keys: Keys, lang: np.ndarray) -> pa.Array:
    """An audiobook's title; its chapters draw it again from their book's keys."""
    head = words("book_a").pick(lang, keys.bits(30))
    return join(head, " ", words("book_b").pick(lang, keys.bits(31)))


def genre(keys: Keys, lang: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(a sentence in the item's language stating its genre, that genre) for GENRE_SHARE of the
    items; nulls elsewhere. The genre is ground truth for `text_tags`."""
    labels, stated_by = _genres(keys.code)
    which = (keys.bits(70) % np.uint64(len(labels))).astype(np.int64)
    sentence = stated_by.pick(lang * len(labels) + which, keys.bits(71))
    stated = keys.chance(72, GENRE_SHARE)
    return maybe(sentence, stated), maybe(labels.take(which), stated)


def story(keys: Keys, lang: np.ndarray) -> pa.Array:
    """A one-sentence synopsis in each row's language: who, where and when (streams 50–52), in
    the order the language's `story` template puts them.

    Why: the templates around it are few, so without it two episodes on one topic read nearly
    alike; a synopsis gives each item words of its own, as a real catalog's texts have, and a
    translation the same ones.
    """
    templates = [_vocabulary(code)["story"] for code in LANGUAGES]
    parts = zip(
        lang.tolist(),
        words("story_who").pick(lang, keys.bits(50)).to_pylist(),
        words("story_where").pick(lang, keys.bits(51)).to_pylist(),
        words("story_when").pick(lang, keys.bits(52)).to_pylist(),
        strict=True,
    )
    return pa.array(
        [templates[i].format(who=who, where=where, when=when) for i, who, where, when in parts],
        pa.string(),
    )
