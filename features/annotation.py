"""Which answers a person should check before they are trusted, and against what.

A model's labels are reviewed when the model itself is unsure (its confidence under a threshold),
when they disagree with another signal's labels for the same item (the zero-shot tags), or when
the model raised a flag a person must clear (the safety signals: a high NSFW score). The queue,
the terminal review and the gold set live in `jobs/quality/annotation.py`; this is the policy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnnotationPolicy:
    """When a signal's row goes to the annotation queue."""

    labels: tuple[str, ...]  # the label features a person confirms or corrects
    confidence: str  # the feature that holds the model's confidence (or score), shown with them
    below: float | None = None  # rows under this confidence are queued
    compare_with: str | None = None  # NAME@VERSION whose same-named labels must agree
    flag: str | None = None  # a Bool feature: rows where the model raised it are queued
    context: tuple[str, ...] = ()  # features quoted in the reason (where to look)
    # Queue items already decided too. For a flag: it judges the bytes a run scored, and a run
    # recomputes only changed inputs, so a new flag is a new cover (or model) a person must see.
    ask_again: bool = False


POLICIES: dict[str, AnnotationPolicy] = {
    "llm_metadata": AnnotationPolicy(
        labels=("genre", "mood", "topic"),
        confidence="confidence",
        below=0.6,
        compare_with="text_tags@2",
    ),
    # Every item the model does not call safe: a person confirms or corrects its rating. The
    # two ratings have their own names: a video item has both, and the gold set keys by field.
    "artwork_safety": AnnotationPolicy(
        labels=("artwork_rating",), confidence="nsfw_score", flag="needs_review", ask_again=True
    ),
    "video_safety": AnnotationPolicy(
        labels=("video_rating",),
        confidence="nsfw_score",
        flag="needs_review",
        context=("peak_time_s", "frames_flagged", "frames_scored"),
        ask_again=True,
    ),
}


def policy_for(signal_name: str) -> AnnotationPolicy | None:
    """The signal's annotation policy, or None when its rows need no human review."""
    return POLICIES.get(signal_name)
