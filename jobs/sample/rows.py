"""The text columns of each content type: ids, titles, descriptions, languages and durations.

Each type has its own templates; every column is built for a whole batch of one type at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.catalog import CONTENT_TYPES
from jobs.sample.plan import (
    AUDIOBOOK,
    CHAPTER,
    EPISODE,
    LANGUAGES,
    REFERENCE_TIME,
    TRACK,
    UPDATED_SPREAD_DAYS,
    VIDEO,
    VIDEO_FRAME_MS,
    Plan,
)
from jobs.sample.randomness import Keys
from jobs.sample.words import (
    LANGUAGE_CODES,
    NULL_STRING,
    affix,
    book_title,
    genre,
    join,
    language,
    maybe,
    numbers,
    person,
    sentences,
    song_title,
    story,
    words,
)

TRANSLATED_TYPES = (EPISODE, AUDIOBOOK)  # their texts are built from aligned lists only
TRANSLATED_SHARE = 0.3  # of the odd-numbered ones: each translates the item before it
Columns = dict[str, Any]  # column name -> pyarrow array, or numpy codes / values to convert

_REFERENCE_US = int(REFERENCE_TIME.timestamp() * 1_000_000)
_SPREAD_US = UPDATED_SPREAD_DAYS * 86_400 * 1_000_000


def ids(plan: Plan, code: int, number: np.ndarray) -> pa.Array:
    """`content_id`s of items of one type: `<type>:<number>`, chapters `chapter:<book>-<nn>`."""
    if code == CHAPTER:
        book, chapter = chapter_parent(plan, number)
        return join("chapter:", numbers(book + 1, plan.id_width), "-", numbers(chapter, 2))
    return join(f"{CONTENT_TYPES[code]}:", numbers(number + 1, plan.id_width))


def chapter_parent(plan: Plan, number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(audiobook number, 1-based chapter number) of each chapter.

    Chapters are dealt round the first `chaptered_books` audiobooks like cards.
    """
    round_, book = np.divmod(number, plan.chaptered_books)
    return book, round_ + 1


def _lognormal_ms(
    keys: Keys, median_s: float, sigma: float, low_s: float, high_s: float
) -> np.ndarray:
    seconds = np.clip(median_s * np.exp(sigma * keys.normal(90)), low_s, high_s)
    return np.round(seconds * 1000).astype(np.int64)


def _track_rows(plan: Plan, keys: Keys, lang: np.ndarray, names: np.ndarray) -> Columns:
    album = affix("album").wrap(lang, song_title(keys, lang, 20))
    produced = maybe(affix("produced").wrap(lang, person(keys, names, 22)), keys.chance(24, 0.5))
    mood = maybe(words("moods").pick(lang, keys.bits(25)), keys.chance(26, 0.4))
    genre_sentence, stated = genre(keys, lang)
    text = sentences(genre_sentence, album, produced, mood)
    roll = keys.uniform(27)  # 35 % have no description, 5 % an empty one
    described = roll >= 0.40
    description = pc.if_else(pa.array(roll < 0.35), NULL_STRING, text)
    description = pc.if_else(pa.array(~described & (roll >= 0.35)), "", description)
    return {
        "title": song_title(keys, lang, 10),
        "description": description,
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 210, 0.3, 60, 600),
        "genre": maybe(stated, described),
    }


def _episode_rows(plan: Plan, keys: Keys, lang: np.ndarray, names: np.ndarray) -> Columns:
    episode = affix("episode")
    number = numbers(1 + (keys.bits(11) % np.uint64(250)).astype(np.int64))
    topic = words("topics").pick(lang, keys.bits(12))
    title = join(episode.before.take(lang), number, episode.after.take(lang), topic)
    talk = affix("conversation")
    role = words("roles").pick(lang, keys.bits(22))
    guest = join(talk.before.take(lang), person(keys, names, 20), talk.after.take(lang), role, ".")
    blurb = maybe(words("blurbs").pick(lang, keys.bits(23)), keys.chance(24, 0.7))
    outro = maybe(words("outros").pick(lang, keys.bits(25)), keys.chance(26, 0.35))
    genre_sentence, stated = genre(keys, lang)
    return {
        "title": title,
        "description": sentences(genre_sentence, guest, story(keys, lang), blurb, outro),
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 2400, 0.5, 300, 3 * 3600),
        "genre": stated,
    }


def _book_text(keys: Keys, lang: np.ndarray, names: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """An audiobook's (author sentence, narrator sentence); chapters repeat their book's."""
    author = affix("novel").wrap(lang, person(keys, names, 40))
    return author, affix("narrated").wrap(lang, person(keys, names, 42))


def _audiobook_rows(plan: Plan, keys: Keys, lang: np.ndarray, names: np.ndarray) -> Columns:
    author, narrator = _book_text(keys, lang, names)
    blurb = maybe(words("book_blurbs").pick(lang, keys.bits(44)), keys.chance(45, 0.8))
    genre_sentence, stated = genre(keys, lang)
    narrated = maybe(narrator, keys.chance(46, 0.6))
    return {
        "title": book_title(keys, lang),
        "description": sentences(author, genre_sentence, story(keys, lang), blurb, narrated),
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 8 * 3600, 0.45, 3600, 30 * 3600),
        "genre": stated,
    }


def _chapter_rows(plan: Plan, keys: Keys, lang: np.ndarray, names: np.ndarray) -> Columns:
    parent, number = chapter_parent(plan, keys.index)
    book = Keys(keys.seed, AUDIOBOOK, parent)
    lang = language(book)  # a chapter speaks its book's language
    name = words("chapters").pick(lang, book.bits(47) + number.astype(np.uint64))
    heading = affix("chapter")
    title = join(heading.before.take(lang), numbers(number), heading.after.take(lang), name)
    _, narrator = _book_text(book, lang, lang)
    source = affix("from_book").wrap(lang, book_title(book, lang))
    return {
        "title": title,
        "description": sentences(source, maybe(narrator, keys.chance(46, 0.5))),
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 1500, 0.35, 300, 5400),
    }


def _video_rows(plan: Plan, keys: Keys, lang: np.ndarray, names: np.ndarray) -> Columns:
    title = song_title(keys, lang, 10)
    frames = 30 + (keys.bits(60) % np.uint64(51)).astype(np.int64)  # 3–8 s at 10 frames/s
    return {
        "title": title,
        "description": affix("loop").wrap(lang, title),
        "language": lang,
        "duration_ms": frames * VIDEO_FRAME_MS,
    }


# A builder gets the keys its text is drawn from, the language it is written in, and the one its
# names come from (a translation keeps its original's names).
_BUILDERS: dict[int, Callable[[Plan, Keys, np.ndarray, np.ndarray], Columns]] = {
    TRACK: _track_rows,
    EPISODE: _episode_rows,
    AUDIOBOOK: _audiobook_rows,
    CHAPTER: _chapter_rows,
    VIDEO: _video_rows,
}


def translations(plan: Plan, code: int, number: np.ndarray) -> np.ndarray:
    """Which items are translations of the item before them (number − 1): TRANSLATED_SHARE of
    the odd-numbered episodes and audiobooks (never a book with chapters, whose chapters speak
    their book's language)."""
    if code not in TRANSLATED_TYPES:
        return np.zeros(len(number), dtype=bool)
    original = Keys(plan.seed, code, np.maximum(number - 1, 0))
    chosen = (number % 2 == 1) & original.chance(80, TRANSLATED_SHARE)
    return chosen & (number - 1 >= (plan.chaptered_books if code == AUDIOBOOK else 0))


def type_rows(plan: Plan, code: int, number: np.ndarray) -> Columns:
    """All catalog columns but the media URIs for items of one type, plus what goes to the
    ground truth only: the `genre` their text states and the item they translate (null where
    none).

    A translation is drawn from its original's keys in another language, with the original's
    names: every aligned list picks the same sentence, so the two texts say the same thing.
    """
    keys = Keys(plan.seed, code, number)
    translated = translations(plan, code, number)
    text_keys = Keys(plan.seed, code, np.where(translated, number - 1, number))
    names = language(text_keys)
    other = (names + 1 + (keys.bits(81) % np.uint64(len(LANGUAGES) - 1)).astype(np.int64)) % len(
        LANGUAGES
    )
    columns = _BUILDERS[code](plan, text_keys, np.where(translated, other, names), names)
    columns.setdefault("genre", pa.nulls(len(number), pa.string()))
    columns["translation_of"] = maybe(ids(plan, code, np.maximum(number - 1, 0)), translated)
    columns["content_id"] = ids(plan, code, number)
    columns["language"] = LANGUAGE_CODES.take(columns["language"])
    columns["duration_ms"] = pa.array(columns["duration_ms"], pa.int64())
    age_us = (keys.uniform(99) * _SPREAD_US).astype(np.int64)
    columns["updated_at"] = pa.array(_REFERENCE_US - age_us, pa.timestamp("us", tz="UTC"))
    return columns
