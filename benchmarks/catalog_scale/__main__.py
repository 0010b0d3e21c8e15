"""Run the catalog-scale benchmark: each step, two sizes, a fresh measured child per size."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.catalog_scale.measure import TreeSampler

STEPS = ("near_duplicates", "daily_near_duplicates", "training_set", "materialize")
PHASE_FIGURES = ("seconds", "peak_rss_mib", "peak_pss_mib", "processes_at_peak")
OUT = Path(__file__).resolve().parents[1] / "out" / "catalog_scale.json"


def child(step: str, phase: str, workdir: str, items: int) -> None:
    """In the child: run one phase of one step and print its figures as JSON on the last line."""
    module = importlib.import_module(f"benchmarks.catalog_scale.{step}")
    start = time.perf_counter()
    figures = getattr(module, phase)(Path(workdir), items) or {}
    figures.setdefault("seconds", round(time.perf_counter() - start, 2))
    print(json.dumps(figures, default=str))


def _run_child(step: str, phase: str, workdir: Path, items: int) -> dict[str, object]:
    """One phase in a fresh process, its whole process tree sampled while it runs."""
    command = [sys.executable, "-m", "benchmarks.catalog_scale", "--child", step, phase,
               str(workdir), str(items)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    sampler = TreeSampler(process.pid)
    out, _ = process.communicate()
    peak = sampler.stop()
    if process.returncode:
        raise SystemExit(f"{step} {phase} at {items} items failed (exit {process.returncode})")
    figures = json.loads(out.strip().splitlines()[-1])
    return {**figures, "peak_rss_mib": peak.rss_mib, "peak_pss_mib": peak.pss_mib,
            "processes_at_peak": peak.processes}  # fmt: skip


def _growth(small: dict[str, object], large: dict[str, object]) -> str:
    wall = float(large["seconds"]) / max(float(small["seconds"]), 1e-9)
    rss = float(large["peak_rss_mib"]) / max(float(small["peak_rss_mib"]), 1e-9)
    pss = float(large["peak_pss_mib"]) / max(float(small["peak_pss_mib"]), 1e-9)
    return f"wall ×{wall:.1f} (target ≤ 15), peak RSS ×{rss:.2f}, PSS ×{pss:.2f} (target < 2)"


def main(
    small: Annotated[int, typer.Option(help="Items (rows) of the smaller size.")] = 100_000,
    factor: Annotated[
        int, typer.Option(help="The larger size is this many times the smaller.")
    ] = 10,
    step: Annotated[
        list[str] | None, typer.Option(help=f"Steps to run (default: {STEPS}).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary lakes.")] = False,
    object_store_mb: Annotated[
        int, typer.Option(help="The local Ray's object store, as on a node of fixed size.")
    ] = 1024,
) -> None:
    """Every catalog-wide step at `small` and `small × factor` items; prints and saves figures.

    Ray's object store is fixed (it spills to disk beyond), as it is on every node of a real
    cluster; left at its default (30 % of memory) it would grow with the shuffles it holds.
    """
    os.environ["SIGNALS_RAY_OBJECT_STORE_MB"] = str(object_store_mb)
    results: dict[str, dict[int, dict[str, object]]] = {}
    for name in step or STEPS:
        results[name] = {}
        for items in (small, small * factor):
            workdir = Path(tempfile.mkdtemp(prefix=f"catalog-scale-{name}-{items}-"))
            prepared = _run_child(name, "prepare", workdir, items)
            figures = _run_child(name, "measure", workdir, items)
            # What preparing measured as a baseline (the full run before a daily one).
            figures.update({k: v for k, v in prepared.items() if k not in PHASE_FIGURES})
            if hasattr(importlib.import_module(f"benchmarks.catalog_scale.{name}"), "check"):
                quality = _run_child(name, "check", workdir, items)  # after, not measured
                figures.update({k: v for k, v in quality.items() if k not in PHASE_FIGURES})
            results[name][items] = figures
            shown = ", ".join(f"{k} {v}" for k, v in figures.items())
            print(f"{name:16s} {items:>9,d}  {shown}", flush=True)
            if not keep:
                subprocess.run(["rm", "-rf", str(workdir)], check=False)
        print(f"{name:16s} growth     {_growth(*results[name].values())}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(OUT.read_text()) if OUT.exists() else {}
    OUT.write_text(json.dumps({**saved, **results}, indent=2, default=str))  # other steps kept
    print(f"saved {OUT}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        typer.run(main)
