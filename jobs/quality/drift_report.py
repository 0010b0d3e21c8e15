"""Drift reports people read: Markdown for a comment, HTML with one CDF plot per feature.

The plots are inline SVG drawn from the profiles' quantiles (no plotting dependency, one file to
attach anywhere): the base's CDF and the new one's on one axis, so a shift or a new tail shows.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from features.profile import QUANTILES, Drift

_W, _H, _PAD = 360, 150, 28


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def drift_rows(drifts: list[Drift]) -> list[tuple[str, str, str, str, bool]]:
    """(feature, PSI, KS, null rate, drifted) per feature, drifted first: both reports' table."""
    return [
        (
            d.feature,
            _fmt(d.psi),
            _fmt(d.ks),
            f"{d.null_rate[0]:.1%} → {d.null_rate[1]:.1%}",
            d.drifted,
        )
        for d in sorted(drifts, key=lambda d: (not d.drifted, d.feature))
    ]


def markdown(signal: str, base: str, new: str, drifts: list[Drift]) -> str:
    """The comparison as a Markdown table, drifted features first."""
    flagged = [d for d in drifts if d.drifted]
    lines = [
        f"## Drift of `{signal}`: `{base}` → `{new}`",
        "",
        f"**{len(flagged)} of {len(drifts)} features drifted.**",
        "",
        "| feature | PSI | KS | null rate | drift |",
        "| --- | --- | --- | --- | --- |",
    ]
    for feature, p, k, nulls, drifted in drift_rows(drifts):
        lines.append(f"| `{feature}` | {p} | {k} | {nulls} | {'**yes**' if drifted else 'no'} |")
    return "\n".join(lines) + "\n"


def _cdf_svg(base: list[float], new: list[float]) -> str:
    lo, hi = min(base[0], new[0]), max(base[-1], new[-1])
    span = (hi - lo) or 1.0

    def path(quantiles: list[float]) -> str:
        xs = _PAD + (np.asarray(quantiles) - lo) / span * (_W - 2 * _PAD)
        ys = _H - _PAD - QUANTILES * (_H - 2 * _PAD)
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))

    return (
        f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">'
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#999"/>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{path(base)}"/>'
        f'<polyline fill="none" stroke="#d62728" stroke-width="2" points="{path(new)}"/>'
        f'<text x="{_PAD}" y="{_H - 8}" font-size="10">{lo:.3g}</text>'
        f'<text x="{_W - _PAD}" y="{_H - 8}" font-size="10" text-anchor="end">{hi:.3g}</text>'
        "</svg>"
    )


def _bars(base: dict[str, float], new: dict[str, float]) -> str:
    rows = []
    for key in sorted(base.keys() | new.keys(), key=lambda k: -max(base.get(k, 0), new.get(k, 0))):
        b, n = base.get(key, 0.0), new.get(key, 0.0)
        rows.append(
            f"<tr><td>{html.escape(key)}</td>"
            f'<td><div style="background:#1f77b4;height:8px;width:{b * 200:.0f}px"></div>'
            f'<div style="background:#d62728;height:8px;width:{n * 200:.0f}px"></div></td>'
            f"<td>{b:.1%} → {n:.1%}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def html_report(
    signal: str,
    base: str,
    new: str,
    drifts: list[Drift],
    base_profile: dict[str, Any],
    new_profile: dict[str, Any],
) -> str:
    """One self-contained HTML page: the table, then a plot per feature (blue base, red new)."""
    sections = []
    for d in sorted(drifts, key=lambda d: (not d.drifted, d.feature)):
        b, n = base_profile["features"][d.feature], new_profile["features"][d.feature]
        if "quantiles" in b and "quantiles" in n:
            plot = _cdf_svg(b["quantiles"], n["quantiles"])
            what = "CDF of the L2 norm" if n.get("of") == "l2_norm" else "CDF"
        elif "categories" in b and "categories" in n:
            plot, what = _bars(b["categories"], n["categories"]), "category shares"
        else:
            plot, what = "<p>no values on one side</p>", ""
        flag = ' <strong style="color:#d62728">drifted</strong>' if d.drifted else ""
        sections.append(
            f"<section><h3>{html.escape(d.feature)}{flag}</h3>"
            f"<p>{what} · PSI {_fmt(d.psi)} · KS {_fmt(d.ks)} · null rate "
            f"{d.null_rate[0]:.1%} → {d.null_rate[1]:.1%}</p>{plot}</section>"
        )
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (*row[:4], "yes" if row[4] else "no"))
        + "</tr>"
        for row in drift_rows(drifts)
    )  # fmt: skip
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Drift of {html.escape(signal)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "td,th{padding:2px 8px;text-align:left}section{display:inline-block;margin:1em}</style>"
        f"</head><body><h1>Drift of {html.escape(signal)}</h1>"
        f"<p>base <code>{html.escape(base)}</code> (blue) → new <code>{html.escape(new)}</code>"
        " (red)</p><table><tr><th>feature</th><th>PSI</th><th>KS</th><th>null rate</th>"
        f"<th>drift</th></tr>{cells}</table>{''.join(sections)}</body></html>\n"
    )
