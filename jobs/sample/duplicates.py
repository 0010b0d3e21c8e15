"""Planted duplicates: items whose audio or artwork is another item's, lightly transformed.

Why: near-duplicate detection needs pairs whose bytes differ but whose content is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from jobs.sample.artwork import ARTWORK_TRANSFORMS
from jobs.sample.audio import AUDIO_FORMATS, render_clip
from jobs.sample.breaks import broken_rows
from jobs.sample.plan import TRACK, plan
from jobs.sample.rows import ids


@dataclass(frozen=True)
class Copy:
    """An item whose audio or artwork is another item's, lightly transformed."""

    media: str  # audio | artwork
    code: int  # the source item
    number: int
    source_id: str
    transform: str  # reencode:<fmt> | jpeg_requality | resize | crop


@lru_cache(maxsize=16)
def planted_copies(items: int, seed: int) -> dict[int, Copy]:
    """Row -> the copy planted there: a handful of re-encoded clips and edited artworks.

    Sources and copies are distinct, and never broken rows.
    """
    if items < 20:
        return {}
    layout = plan(items, seed)
    broken = set(broken_rows(items, seed, True))
    rows = [r for r in np.random.default_rng([seed, 3]).permutation(items).tolist()
            if r not in broken]  # fmt: skip
    codes, numbers = layout.locate(np.array(rows, dtype=np.int64))
    where = {row: (int(c), int(n)) for row, c, n in zip(rows, codes, numbers, strict=True)}
    used: set[int] = set()

    def pairs(pool: list[int], count: int) -> list[tuple[int, int, int, str]]:
        free = [r for r in pool if r not in used][: 2 * count]
        used.update(free)
        out = []
        for source, copy in zip(free[::2], free[1::2], strict=False):
            code, number = where[source]
            out.append((copy, code, number, ids(layout, code, np.array([number]))[0].as_py()))
        return out

    chosen: dict[int, Copy] = {}
    tracks = [r for r in rows if where[r][0] == TRACK]
    for k, (copy, code, number, source_id) in enumerate(pairs(tracks, min(8, items // 60 or 1))):
        other = [f for f in AUDIO_FORMATS if f != render_clip(seed, code, number).fmt][k % 2]
        chosen[copy] = Copy("audio", code, number, source_id, f"reencode:{other}")
    for k, (copy, code, number, source_id) in enumerate(pairs(rows, min(12, items // 40 or 1))):
        transform = ARTWORK_TRANSFORMS[k % len(ARTWORK_TRANSFORMS)]
        chosen[copy] = Copy("artwork", code, number, source_id, transform)
    return chosen
