"""How a tagging signal agrees with the gold set people built with `signals annotate`.

A new prompt, model or version is judged on the same items before it is promoted: per label, the
share of gold items where the signal says what the gold says, and its precision and recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow.compute as pc

from features import all_signals
from features.signal import Signal
from jobs.lake.tables import latest_signal_values, table_exists
from jobs.quality.annotation import gold, gold_fields
from jobs.quality.errors import NoGroundTruthError
from jobs.quality.report import markdown_table
from jobs.settings import Settings


@dataclass(frozen=True)
class Agreement:
    """How one label of one signal version agrees with the gold set."""

    signal: str
    field: str
    items: int  # gold items the signal has a value row for
    agreement: float  # share of those where the signal says what the gold says (none included)
    precision: float | None  # of its labels (not none), the share that are right
    recall: float | None  # of the gold labels (not none), the share it found


def agreement_with_gold(settings: Settings, signal: Signal) -> list[Agreement]:
    """Compare a tagging signal's served labels with the gold set, label by label, so a new
    prompt, model or version is judged on the same items before it is promoted. Only the gold
    items' values are read, not the signal's whole table."""
    truth = gold(settings)
    fields = [f for f in signal.features if f in set(truth["field"].to_pylist())]
    values = latest_signal_values(
        settings.signal_uri(signal.storage_name), signal.arrow_schema(), fields,
        settings.storage_options, content_ids=truth["content_id"].to_pylist(),
    )  # fmt: skip
    served = {r["content_id"]: r for r in values.to_pylist()}
    scores = []
    for field in fields:
        pairs = [
            (served[r["content_id"]][field], r["label"])
            for r in truth.filter(pc.equal(truth["field"], field)).to_pylist()
            if r["content_id"] in served
        ]
        said = [(p, g) for p, g in pairs if p is not None]
        known = [(p, g) for p, g in pairs if g is not None]
        scores.append(Agreement(
            signal.ref, field, len(pairs),
            agreement=sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0,
            precision=sum(p == g for p, g in said) / len(said) if said else None,
            recall=sum(p == g for p, g in known) / len(known) if known else None,
        ))  # fmt: skip
    return scores


def share(value: float | None) -> str:
    """A share as people read it in the agreement tables; `–` where it is undefined."""
    return "–" if value is None else f"{value:.2f}"


def agreement_markdown(scores: list[Agreement]) -> str:
    """The agreement table as Markdown, for a pull request that changes a prompt or a model."""
    return markdown_table(
        "Agreement with the gold set",
        ["signal", "label", "items", "agreement", "precision", "recall"],
        "llrrrr",
        [
            [a.signal, a.field, a.items, share(a.agreement), share(a.precision), share(a.recall)]
            for a in scores
        ],
    )


def gold_agreement(settings: Settings, names: Sequence[str] = ()) -> list[Agreement]:
    """The agreement of every signal with a table that labels what the gold set decides (or of
    those `names` lists: NAME for every version, or NAME@VERSION)."""
    fields = gold_fields(settings)
    if not fields:
        raise NoGroundTruthError(
            "the gold set is empty", hint="review answers with `signals annotate`"
        )
    chosen = [
        s
        for s in all_signals()
        if (not names or s.ref in names or s.name in names)
        and fields & set(s.features)
        and table_exists(settings.signal_uri(s.storage_name), settings.storage_options)
    ]
    if not chosen:
        raise NoGroundTruthError(f"no signal with a table labels {', '.join(sorted(fields))}")
    return [a for s in chosen for a in agreement_with_gold(settings, s)]
