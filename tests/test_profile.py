"""Profiles and drift statistics against distributions with a known answer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from features.profile import category_psi, compare, embedding_norms, ks, profile_column, psi
from jobs.quality.drift_report import html_report, markdown

RNG = np.random.default_rng(7)
N = 20_000


def _quantiles(values: np.ndarray) -> list[float]:
    return profile_column(pa.array(values), "float")["quantiles"]


def test_the_same_distribution_does_not_drift_and_a_shift_does_by_the_known_amount() -> None:
    base = _quantiles(RNG.normal(0, 1, N))
    same = _quantiles(RNG.normal(0, 1, N))
    shifted = _quantiles(RNG.normal(0.5, 1, N))
    assert psi(base, same) < 0.01 and ks(base, same) < 0.02
    # Two unit normals half a sigma apart: KS = 2Φ(0.25) − 1 ≈ 0.197; PSI ≈ 0.25 on deciles.
    assert ks(base, shifted) == pytest.approx(0.197, abs=0.02)
    assert 0.2 < psi(base, shifted) < 0.3


def test_category_shares_and_their_psi() -> None:
    profile = profile_column(pa.array(["en", "en", "fr", None]), "string")
    assert profile["null_rate"] == 0.25
    assert profile["categories"] == pytest.approx({"en": 2 / 3, "fr": 1 / 3})
    assert category_psi({"en": 0.5, "fr": 0.5}, {"en": 0.5, "fr": 0.5}) == 0
    assert category_psi({"en": 0.9, "fr": 0.1}, {"en": 0.5, "fr": 0.5}) > 0.2


def test_an_embedding_is_profiled_by_its_norms_and_nulls_stay_null() -> None:
    column = pa.array([[3.0, 4.0], None, [0.6, 0.8]], pa.list_(pa.float32()))
    norms = embedding_norms(column)
    assert norms.null_count == 1
    assert norms.to_pylist()[0] == pytest.approx(5.0) and norms.to_pylist()[2] == pytest.approx(1)
    profile = profile_column(column, "embedding")
    assert (profile["of"], profile["null_rate"]) == ("l2_norm", pytest.approx(1 / 3))
    assert (profile["quantiles"][0], profile["quantiles"][-1]) == pytest.approx((1.0, 5.0))


def test_compare_flags_the_shifted_and_the_newly_null_features_and_reports_render() -> None:
    def table(shift: float, nulls: int) -> dict[str, object]:
        loud = RNG.normal(-14 + shift, 3, N)
        peak = RNG.normal(-1, 0.5, N).tolist()
        peak[:nulls] = [None] * nulls
        return {
            "rows": N,
            "features": {
                "lufs": profile_column(pa.array(loud), "float"),
                "peak": profile_column(pa.array(peak), "float"),
                "lang": profile_column(pa.array(["en"] * N), "string"),
            },
        }

    base, new = table(0, 0), table(3, N // 10)
    drifts = {d.feature: d for d in compare(base, new)}
    assert drifts["lufs"].drifted and drifts["lufs"].psi > 0.2
    assert drifts["peak"].drifted and drifts["peak"].null_rate == (0.0, 0.1)
    assert not drifts["lang"].drifted

    text = markdown("audio_loudness@1", "run-a", "run-b", list(drifts.values()))
    assert "**2 of 3 features drifted.**" in text
    page = html_report("audio_loudness@1", "run-a", "run-b", list(drifts.values()), base, new)
    assert page.count("<svg") == 2 and "drifted" in page
