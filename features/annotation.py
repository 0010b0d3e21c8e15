"""Which answers a person should check before they are trusted, and against what.

A model's labels are reviewed when the model itself is unsure (its confidence under a threshold)
or when they disagree with another signal's labels for the same item (the zero-shot tags). The
queue, the terminal review and the gold set live in `jobs/quality/annotation.py`; this is the policy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnnotationPolicy:
    """When a signal's row goes to the annotation queue."""

    labels: tuple[str, ...]  # the label features a person confirms or corrects
    confidence: str  # the feature that holds the model's confidence
    below: float  # rows under this confidence are queued
    compare_with: str | None = None  # NAME@VERSION whose same-named labels must agree


POLICIES: dict[str, AnnotationPolicy] = {
    "llm_metadata": AnnotationPolicy(
        labels=("genre", "mood", "topic"),
        confidence="confidence",
        below=0.6,
        compare_with="text_tags@1",
    ),
}


def policy_for(signal_name: str) -> AnnotationPolicy | None:
    """The signal's annotation policy, or None when its rows need no human review."""
    return POLICIES.get(signal_name)
