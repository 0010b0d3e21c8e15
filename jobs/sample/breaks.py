"""Deliberately broken rows: which rows are broken, how, and the text-level breaks themselves.

Why: the jobs that read the catalog must quarantine bad rows and go on; the sample holds one of
each kind so that tests see every path. The media-level breaks are planted by `media`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.sample.plan import EPISODE, TRACK, plan

# In the order they are planted while the budget (< 5 % of the rows) lasts.
# (kind, content type of the row it breaks, needs media, reason reported in `broken`)
BREAKS: tuple[tuple[str, int, bool, str], ...] = (
    ("empty_text", TRACK, False, "empty text: title and description are blank or whitespace"),
    ("missing_audio", TRACK, True, "missing audio: audio_uri points to a file that does not exist"),
    ("zero_byte_artwork", EPISODE, True, "zero-byte artwork: the artwork file is empty"),
    ("bad_content_type", EPISODE, False, "bad content_type: 'podcast' is not an allowed type"),
    ("truncated_audio", TRACK, True, "truncated audio: a FLAC cut to half its bytes"),
    ("tiny_artwork", TRACK, True, "tiny artwork: the image is 1x1 pixels"),
)
BAD_CONTENT_TYPE = "podcast"
REASONS = {kind: reason for kind, _, _, reason in BREAKS}


@lru_cache(maxsize=16)
def broken_rows(items: int, seed: int, with_media: bool) -> dict[int, str]:
    """Row -> break kind. Rows are drawn for every kind so they never move with `with_media`."""
    layout = plan(items, seed)
    rng = np.random.default_rng([seed, 2])
    budget = max(0, math.ceil(items / 20) - 1)  # strictly fewer than 5 % of the rows
    chosen: dict[int, str] = {}
    taken: set[int] = set()
    for kind, code, needs_media, _ in BREAKS:
        count = int(layout.counts[code])
        draws = [layout.row_of(code, int(n)) for n in rng.integers(0, max(count, 1), size=8)]
        row = next((r for r in draws if count and r not in taken), None)
        if row is None:
            continue
        taken.add(row)
        if len(chosen) < budget and (with_media or not needs_media):
            chosen[row] = kind
    return chosen


def break_text(columns: dict[str, pa.Array], rows: np.ndarray, breaks: dict[int, str]) -> None:
    """Plant the text-level breaks (blank text, unknown content type) in a batch's columns."""
    for kind, column, value in (
        ("empty_text", "title", "   "),
        ("empty_text", "description", ""),
        ("bad_content_type", "content_type", BAD_CONTENT_TYPE),
    ):
        targets = [row for row, k in breaks.items() if k == kind]
        mask = np.isin(rows, targets)
        if mask.any():
            columns[column] = pc.if_else(pa.array(mask), value, columns[column])
