"""The catalog's shape and where each row sits in it.

Rows come in blocks of CYCLE; each block holds SHARES[type] items of every type, in an order drawn
once per seed, so a row's type and its item number within the type follow from the row number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa

from features.catalog import CONTENT_TYPES

TRACK, EPISODE, AUDIOBOOK, CHAPTER, VIDEO = (
    CONTENT_TYPES.index(name) for name in ("track", "episode", "audiobook", "chapter", "video")
)
TYPE_NAMES = pa.array(CONTENT_TYPES, pa.string())  # `take` by type code
CYCLE = 100
SHARES: dict[int, int] = {TRACK: 55, EPISODE: 25, AUDIOBOOK: 8, CHAPTER: 10, VIDEO: 2}
BOOKS_PER_CHAPTERED_BOOK = 3  # one audiobook in three has chapters, ~4 each

REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)  # `updated_at` counts back from here
UPDATED_SPREAD_DAYS = 240
DEFAULT_BATCH_ROWS = 65_536
VIDEO_FRAME_MS = 100  # GIF frame delays are whole centiseconds

LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "sv")
LANGUAGE_WEIGHTS: tuple[float, ...] = (0.38, 0.16, 0.10, 0.10, 0.10, 0.07, 0.09)


@dataclass(frozen=True)
class Plan:
    """The layout of one catalog (items, seed): which type and item number each row holds.

    Why: rows, broken rows and planted duplicates are all addressed by row number, and each must
    find its item without generating the rows before it.
    """

    items: int
    seed: int
    cycle: np.ndarray  # type code at each position of a block
    rank: np.ndarray  # the position's rank among the block's positions of the same type
    per_cycle: np.ndarray  # items of each type in a full block
    counts: np.ndarray  # items of each type in the catalog
    id_width: int
    chaptered_books: int

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(type code, item number within its type) of each row."""
        block, position = np.divmod(rows, CYCLE)
        code = self.cycle[position]
        return code, block * self.per_cycle[code] + self.rank[position]

    def row_of(self, code: int, number: int) -> int:
        """The row that holds item `number` of type `code`."""
        block, rank = divmod(number, int(self.per_cycle[code]))
        return block * CYCLE + int(np.flatnonzero(self.cycle == code)[rank])


@lru_cache(maxsize=16)
def plan(items: int, seed: int) -> Plan:
    """The plan of a catalog of `items` rows, drawn from `seed` (cached: every batch asks)."""
    if items < 1:
        raise ValueError(f"a sample catalog needs at least one item, got {items}")
    cycle = np.repeat(np.array(list(SHARES), dtype=np.int64), list(SHARES.values()))
    cycle = np.random.default_rng([seed, 1]).permutation(cycle)
    # A chapter never appears before the first audiobook, so every chapter has a parent.
    first_book, first_chapter = (int(np.argmax(cycle == c)) for c in (AUDIOBOOK, CHAPTER))
    if first_chapter < first_book:
        cycle[[first_book, first_chapter]] = cycle[[first_chapter, first_book]]
    rank = np.zeros(CYCLE, dtype=np.int64)
    for code in SHARES:
        rank[cycle == code] = np.arange(SHARES[code])
    per_cycle = np.bincount(cycle, minlength=len(CONTENT_TYPES))
    full, rest = divmod(items, CYCLE)
    counts = full * per_cycle + np.bincount(cycle[:rest], minlength=len(CONTENT_TYPES))
    width = max(6, len(str(int(counts.max()))))
    books = max(1, int(counts[AUDIOBOOK]) // BOOKS_PER_CHAPTERED_BOOK)
    return Plan(items, seed, cycle, rank, per_cycle, counts, width, books)
