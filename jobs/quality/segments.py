"""Time segments against the truth: the segment F1 `signals evaluate` reports for speech_timeline.

A predicted segment matches a true segment of the same item when its start and its end are each
within the tolerance of the true segment's (0.5 s by default). Matching is one to one: each true
segment is taken by the first predicted segment, in time order, that matches it, and by no other.
Precision is matches over predicted segments and recall matches over true segments, both summed
over the items (an item with no true segment turns every segment found in it into a false
positive); F1 is their harmonic mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

TOLERANCE_S = 0.5

Pairs = Iterable[Iterable[float]]  # [start_s, end_s] pairs: lists, tuples or numpy arrays


@dataclass(frozen=True)
class SegmentScores:
    """Matches, and how many segments were found and placed, over a set of items."""

    matches: int
    predicted: int
    true: int

    @property
    def precision(self) -> float:
        return self.matches / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matches / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(value: Pairs | None) -> list[tuple[float, float]]:
    return [] if value is None else [(float(a), float(b)) for a, b in value]


def segment_matches(predicted: Pairs, true: Pairs, tolerance_s: float = TOLERANCE_S) -> int:
    """How many of one item's predicted segments match its true ones (one to one)."""
    placed = _pairs(true)
    taken = [False] * len(placed)
    hits = 0
    for start, end in _pairs(predicted):
        for k, (true_start, true_end) in enumerate(placed):
            near = abs(start - true_start) <= tolerance_s and abs(end - true_end) <= tolerance_s
            if near and not taken[k]:
                taken[k], hits = True, hits + 1
                break
    return hits


def segment_scores(
    items: Iterable[tuple[Pairs | None, Pairs | None]], tolerance_s: float = TOLERANCE_S
) -> SegmentScores:
    """Scores summed over items, each given as (predicted segments, true segments)."""
    matches = predicted = true = 0
    for found, placed in items:
        matches += segment_matches(_pairs(found), _pairs(placed), tolerance_s)
        predicted, true = predicted + len(_pairs(found)), true + len(_pairs(placed))
    return SegmentScores(matches, predicted, true)
