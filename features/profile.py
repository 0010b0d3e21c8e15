"""Profiles of a signal's values and the drift between two of them.

A profile is small on purpose: per feature, the null rate and 101 quantiles
(p0…p100) of its numeric values — an embedding contributes its vectors' L2 norms, time segments
their count per item, a string or flag its category frequencies. From quantiles alone both drift
statistics follow:

- **KS**: the largest gap between the two empirical CDFs, each read off its quantiles.
- **PSI**: the population stability index over the base's deciles (bins that hold 10 % each of
  the base), with the share of the new values in each bin read off the new CDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = np.linspace(0.0, 1.0, 101)
TOP_CATEGORIES = 20
_EPSILON = 1e-4  # PSI's floor for an empty bin


def profile_column(column: pa.ChunkedArray | pa.Array, kind: str) -> dict[str, Any]:
    """One feature's profile: rows, null rate, and quantiles or category frequencies."""
    rows = len(column)
    nulls = column.null_count
    found: dict[str, Any] = {"rows": rows, "null_rate": nulls / rows if rows else 0.0}
    values = pc.drop_null(column)
    if kind in ("string", "bool"):
        counts = pc.value_counts(values).to_pylist()
        top = sorted(counts, key=lambda c: -c["counts"])[:TOP_CATEGORIES]
        present = max(rows - nulls, 1)
        found["categories"] = {str(c["values"]): c["counts"] / present for c in top}
        return found
    if kind == "segments":  # what drifts is how many an item has
        found["of"] = "count"
        values = pc.list_value_length(values)
    if kind == "embedding":
        found["of"] = "l2_norm"
        if pa.types.is_list(values.type):
            values = embedding_norms(values)
        numbers = np.asarray(values.to_numpy(zero_copy_only=False), np.float64)
    else:
        numbers = np.asarray(values.to_numpy(zero_copy_only=False), np.float64)
    numbers = numbers[np.isfinite(numbers)]
    if len(numbers):
        found["quantiles"] = [float(q) for q in np.quantile(numbers, QUANTILES)]
        found["mean"] = float(numbers.mean())
        found["std"] = float(numbers.std())
    return found


def embedding_norms(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The L2 norm of each vector (null stays null): what a profile keeps of an embedding."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = pc.is_valid(column)
    vectors = pc.drop_null(column)
    lengths = np.asarray(pc.list_value_length(vectors).to_numpy(zero_copy_only=False))
    flat = np.asarray(pc.list_flatten(vectors).to_numpy(zero_copy_only=False), np.float32)
    if len(lengths) and (lengths == lengths[0]).all():
        norms = np.linalg.norm(flat.reshape(len(lengths), int(lengths[0])), axis=1)
    else:
        ends = np.cumsum(lengths)
        norms = np.array([np.linalg.norm(v) for v in np.split(flat, ends[:-1])], np.float32)
    out = np.full(len(column), np.nan, np.float32)
    out[np.asarray(valid.to_numpy(zero_copy_only=False))] = norms
    return pa.array(out, pa.float32(), mask=~np.asarray(valid.to_numpy(zero_copy_only=False)))


def profile_table(table: pa.Table, kinds: dict[str, str]) -> dict[str, Any]:
    """The profile of a table's feature columns (`kinds`: feature → FeatureType.kind)."""
    return {
        "rows": table.num_rows,
        "features": {n: profile_column(table.column(n), k) for n, k in kinds.items()},
    }


def _cdf(quantiles: list[float], at: np.ndarray) -> np.ndarray:
    """The CDF a list of quantiles implies, at the points `at` (ties take the largest share)."""
    q = np.asarray(quantiles)
    return np.interp(at, q, QUANTILES, left=0.0, right=1.0)


def ks(base: list[float], new: list[float]) -> float:
    """Kolmogorov–Smirnov statistic between two distributions given by their quantiles."""
    points = np.union1d(base, new)
    return float(np.max(np.abs(_cdf(base, points) - _cdf(new, points))))


def psi(base: list[float], new: list[float]) -> float:
    """Population stability index of `new` against the base's deciles."""
    edges = np.unique(np.asarray(base)[::10])  # p0, p10, …, p100
    if len(edges) < 2:
        return 0.0 if np.allclose(base, new) else float("inf")
    inner = edges[1:-1]
    expected = np.diff(np.concatenate([[0.0], _cdf(base, inner), [1.0]]))
    actual = np.diff(np.concatenate([[0.0], _cdf(new, inner), [1.0]]))
    expected, actual = np.maximum(expected, _EPSILON), np.maximum(actual, _EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def category_psi(base: dict[str, float], new: dict[str, float]) -> float:
    """PSI over categories (a category missing on one side counts as a tiny share)."""
    total = 0.0
    for key in base.keys() | new.keys():
        e, a = max(base.get(key, 0.0), _EPSILON), max(new.get(key, 0.0), _EPSILON)
        total += (a - e) * np.log(a / e)
    return float(total)


@dataclass(frozen=True)
class Drift:
    """How far one feature moved between two profiles, and whether that is past a threshold."""

    feature: str
    psi: float | None
    ks: float | None
    null_rate: tuple[float, float]
    drifted: bool


@dataclass(frozen=True)
class DriftThresholds:
    """Past which a feature has drifted.

    Defaults follow common practice: PSI > 0.2 is a significant shift, a KS gap over 0.1 a clear
    one, and a null rate that moved more than 5 points is a pipeline change worth a look.
    """

    psi: float = 0.2
    ks: float = 0.1
    null_rate: float = 0.05


def compare(
    base: dict[str, Any], new: dict[str, Any], thresholds: DriftThresholds = DriftThresholds()
) -> list[Drift]:
    """Each feature of `new` against `base`: PSI and KS where both have values, the null rates."""
    found = []
    for name, now in new["features"].items():
        before = base["features"].get(name)
        if before is None:
            continue
        nulls = (before["null_rate"], now["null_rate"])
        p = k = None
        if "quantiles" in before and "quantiles" in now:
            p, k = (
                psi(before["quantiles"], now["quantiles"]),
                ks(before["quantiles"], now["quantiles"]),
            )
        elif "categories" in before and "categories" in now:
            p = category_psi(before["categories"], now["categories"])
        drifted = (
            (p is not None and p > thresholds.psi)
            or (k is not None and k > thresholds.ks)
            or abs(nulls[1] - nulls[0]) > thresholds.null_rate
        )
        found.append(Drift(name, p, k, nulls, drifted))
    return found
