"""`signals evaluate`: each signal's error against the sample catalog's ground truth.

The sample catalog knows what its media hold (tempo, loudness, colours, languages, planted
duplicates). This module joins the latest served value of each signal to that truth and reports
mean absolute error for numbers, accuracy for labels, precision / recall for duplicate pairs —
as a terminal table and as Markdown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features import CATALOG_SCHEMA, get_signal
from features.errors import UnknownSignalError
from jobs.lake.tables import latest_signal_values, read_items
from jobs.quality.errors import NoGroundTruthError
from jobs.quality.report import markdown_table
from jobs.sample import GROUND_TRUTH_FILE
from jobs.settings import Settings

GENRE_BOUND = 0.7  # top-1 genre of a text that states one; measured 0.767 on the 249 of 2,000 items


@dataclass(frozen=True)
class Score:
    """One measured figure: what, how much, on how many items, and the bound it must meet."""

    signal: str
    measure: str
    metric: str
    value: float
    n: int
    bound: str
    passed: bool


def latest_values(
    settings: Settings, signal_ref: str, features: list[str], content_ids: Iterable[str]
) -> pd.DataFrame:
    """The newest value per item of a signal, indexed by content_id (what serving returns), only
    of the items the truth knows: files whose statistics hold none of them are never read."""
    signal = get_signal(signal_ref)
    latest = latest_signal_values(
        settings.signal_uri(signal.storage_name),
        signal.arrow_schema(),
        features,
        settings.storage_options,
        content_ids=content_ids,
    )
    return latest.to_pandas().set_index("content_id")


def _joined(settings: Settings, truth: pd.DataFrame, ref: str, features: list[str]) -> pd.DataFrame:
    """Truth beside the signal's values, which are prefixed `pred_` so names never collide."""
    predicted = latest_values(settings, ref, features, truth.index).add_prefix("pred_")
    return truth.join(predicted, how="inner")


def _mae(
    signal: str, feature: str, truth_column: str, bound: float, unit: str, where: str | None = None
) -> Callable[[Settings, pd.DataFrame], list[Score]]:
    def evaluate(settings: Settings, truth: pd.DataFrame) -> list[Score]:
        frame = _joined(settings, truth, signal, [feature])
        if where:
            frame = frame.query(where)
        frame = frame.dropna(subset=[f"pred_{feature}", truth_column])
        if frame.empty:
            return []
        error = (frame[f"pred_{feature}"].astype(float) - frame[truth_column].astype(float)).abs()
        return [
            Score(signal, f"{feature} vs {truth_column}", f"MAE ({unit})", float(error.mean()),
                  len(frame), f"≤ {bound:g} {unit}", bool(error.mean() <= bound)),
            Score(signal, f"{feature} within {bound:g} {unit}", "share", float((error <= bound).mean()),
                  len(frame), "reported", True),
        ]  # fmt: skip

    return evaluate


def _accuracy(
    signal: str,
    predicted: Callable[[pd.DataFrame], pd.Series],
    features: list[str],
    truth: Callable[[pd.DataFrame], pd.Series],
    measure: str,
    bound: float,
    where: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> Callable[[Settings, pd.DataFrame], list[Score]]:
    def evaluate(settings: Settings, truth_frame: pd.DataFrame) -> list[Score]:
        frame = _joined(settings, truth_frame, signal, features)
        if where is not None:
            frame = frame[where(frame)]
        frame = frame.dropna(subset=[f"pred_{f}" for f in features])
        if frame.empty:
            return []
        hits = predicted(frame) == truth(frame)
        accuracy = float(hits.mean())
        return [
            Score(
                signal, measure, "accuracy", accuracy, len(frame), f"≥ {bound:g}", accuracy >= bound
            )
        ]

    return evaluate


def _pairs(groups: dict[str, list[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for members in groups.values() for p in combinations(sorted(members), 2)}


def _duplicates(settings: Settings, truth: pd.DataFrame) -> list[Score]:
    signal = "near_duplicates@1"
    predicted = latest_values(settings, signal, ["group_id"], truth.index)
    if predicted.empty:
        return []
    found = _pairs(predicted.reset_index().groupby("group_id")["content_id"].apply(list).to_dict())
    copies = truth.dropna(subset=["duplicate_of"])
    true_groups: dict[str, list[str]] = {}
    for cid, source in copies["duplicate_of"].items():
        true_groups.setdefault(source, [source]).append(cid)
    expected = _pairs(true_groups)
    hit = len(found & expected)
    precision = hit / len(found) if found else 1.0
    recall = hit / len(expected) if expected else 1.0
    return [
        Score(signal, "duplicate pairs", "precision", precision, len(found), "≥ 0.95", precision >= 0.95),
        Score(signal, "duplicate pairs", "recall", recall, len(expected), "≥ 0.95", recall >= 0.95),
    ]  # fmt: skip


def _dominant_colour(settings: Settings, truth: pd.DataFrame) -> list[Score]:
    signal = "artwork_quality@1"
    frame = _joined(settings, truth, signal, ["dominant_colour"]).dropna(
        subset=["pred_dominant_colour", "dominant_rgb"]
    )
    if frame.empty:
        return []
    predicted = np.array(
        [[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in frame["pred_dominant_colour"]]
    )
    expected = np.array([list(v) for v in frame["dominant_rgb"]])
    distance = np.linalg.norm(predicted - expected, axis=1)
    return [
        Score(signal, "dominant colour vs truth", "MAE (RGB levels)", float(distance.mean()),
              len(frame), "≤ 10", bool(distance.mean() <= 10)),
    ]  # fmt: skip


def _labels(
    signal: str,
    feature: str,
    measure: str,
    bound: float,
    where: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> Callable[[Settings, pd.DataFrame], list[Score]]:
    """Accuracy of a label feature against the truth column of the same name, and its precision
    and recall averaged over the labels the truth holds.

    Why macro as well: a signal that is right on the common label and wrong on every rare one
    scores well on accuracy alone; the macro average weighs each label equally.
    """

    def evaluate(settings: Settings, truth: pd.DataFrame) -> list[Score]:
        frame = _joined(settings, truth, signal, [feature])
        if where is not None:
            frame = frame[where(frame)]
        frame = frame.dropna(subset=[f"pred_{feature}", feature])
        if frame.empty:
            return []
        said, actual = frame[f"pred_{feature}"], frame[feature]
        precisions, recalls = [], []
        for label in sorted(actual.unique()):
            hits = int(((said == label) & (actual == label)).sum())
            precisions.append(hits / int((said == label).sum()) if (said == label).any() else 0.0)
            recalls.append(hits / int((actual == label).sum()))
        figures = {
            "accuracy": float((said == actual).mean()),
            "macro precision": float(np.mean(precisions)),
            "macro recall": float(np.mean(recalls)),
        }
        return [
            Score(signal, measure, metric, value, len(frame), f"≥ {bound:g}", value >= bound)
            for metric, value in figures.items()
        ]

    return evaluate


def _text_length(settings: Settings, content_ids: Iterable[str]) -> pd.Series:
    snapshot = read_items(
        settings.default_snapshot_uri,
        content_ids,
        ["content_id", "title", "description"],
        CATALOG_SCHEMA,
        settings.storage_options,
    )
    if snapshot.num_rows == 0:
        return pd.Series(dtype=int)
    frame = snapshot.to_pandas().set_index("content_id").fillna("")
    return (
        (frame["title"].str.strip() + " " + frame["description"].str.strip()).str.strip().str.len()
    )


# What is evaluated; each entry reads one signal. Add a line when a signal gains ground truth.
EVALUATIONS: list[Callable[[Settings, pd.DataFrame], list[Score]]] = [
    _mae("audio_loudness@1", "integrated_lufs", "loudness_lufs", 1.0, "LU"),
    _mae("audio_features@1", "tempo_bpm", "tempo_bpm", 2.0, "BPM", where="kind == 'music'"),
    _accuracy(
        "audio_features@1",
        lambda f: np.where(f["pred_speech_score"] >= 0.5, "speech", "music"),
        ["speech_score"],
        lambda f: f["kind"],
        "speech vs music",
        0.9,
        where=lambda f: f["kind"].isin(["speech", "music"]),
    ),
    _labels(
        "text_language@1",
        "language",
        "language (texts ≥ 40 chars)",
        0.9,
        where=lambda f: f["text_length"] >= 40,
    ),
    _labels("text_tags@1", "genre", "genre (texts stating one)", GENRE_BOUND),
    _dominant_colour,
    _duplicates,
]


def evaluate(settings: Settings) -> list[Score]:
    """Every evaluation whose signal has been computed, against the sample catalog's truth."""
    path = Path(settings.media_dir) / GROUND_TRUTH_FILE
    if not path.exists():
        raise NoGroundTruthError(
            f"no ground truth at {path}",
            hint="evaluation runs on the sample catalog: `signals sample`, then `signals extract`",
        )
    truth = pq.read_table(path).to_pandas().set_index("content_id")
    truth["text_length"] = _text_length(settings, truth.index)
    scores: list[Score] = []
    for evaluation in EVALUATIONS:
        try:
            scores.extend(evaluation(settings, truth))
        except UnknownSignalError:
            continue  # a signal this checkout does not declare
    return scores


def to_markdown(scores: list[Score]) -> str:
    """The evaluation as a Markdown table, for a pull request or a report."""
    return markdown_table(
        "Signal evaluation against the sample catalog's ground truth",
        ["signal", "measure", "metric", "value", "items", "bound", ""],
        "lllrrll",
        [
            [
                s.signal,
                s.measure,
                s.metric,
                f"{s.value:.3f}",
                s.n,
                s.bound,
                "✅" if s.passed else "❌",
            ]
            for s in scores
        ],
    )
