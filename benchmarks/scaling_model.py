"""What a catalog of N items costs on a cluster, from the per-item costs measured on this machine.

    .venv/bin/python -m benchmarks.scaling_model [--nodes 4 16 64] [--cpus-per-node 16]

Reads the results the other benchmarks wrote to `benchmarks/out/` (run them first):
  extractors.json          per-extractor items/s on `threads` CPU threads (benchmarks.extractors)
  extract_throughput*.json the whole job's items/s against the bare model's (the job efficiency)
  incremental.json         the unchanged rerun: what planning costs per catalog item
  materialize.json         rows/s from Delta into the online store, one process
  catalog_scale.json       the catalog-wide steps at two sizes (benchmarks.catalog_scale)
and prints Markdown tables (docs/scaling.md holds one run's output). Every input it did not
measure is a flag, printed beside the tables: the GPU rate of the MiniLM-based signals (no GPU
was lent to measure it), the node shape and its price.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import typer

OUT = Path("benchmarks/out")
# Signals computed by the MiniLM model: on a GPU node they run on the GPU.
GPU_SIGNALS = ("text_embedding@1", "text_tags@1")
# Which items a signal applies to: audio signals skip videos, video signals run on videos only.
APPLIES_TO = {"video": ("video_summary@1",), "audio": ("audio_features@1", "audio_fingerprint@1",
                                                        "audio_loudness@1")}  # fmt: skip


@dataclass(frozen=True)
class Measured:
    """Per-item costs measured on this machine."""

    core_s: dict[str, float]  # CPU core-seconds per item, per CPU signal
    efficiency: float  # extract job items/s ÷ bare model items/s
    plan_core_s: float  # core-seconds per catalog item of an incremental run with nothing to do
    materialize_rows_per_s: float  # one process, Delta → online store
    sources: list[str]


def _read(name: str, hint: str) -> dict:
    path = OUT / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `.venv/bin/python -m {hint}` first")
    return json.loads(path.read_text())


def measured() -> Measured:
    extractors = _read("extractors.json", "benchmarks.extractors --items 200")
    threads = extractors["threads"]
    core_s = {
        r["signal"]: threads / r["items_per_s"]
        for r in extractors["results"]
        if r["signal"] not in GPU_SIGNALS
    }
    throughput = max(
        (json.loads(p.read_text()) for p in OUT.glob("extract_throughput*.json")),
        key=lambda r: r["items"],
        default=None,
    ) or _read("extract_throughput.json", "benchmarks.extract_throughput --items 20000")
    incremental = _read("incremental.json", "benchmarks.incremental --items 100000")
    unchanged = next(r for r in incremental["runs"] if r["name"] == "unchanged")
    plan = unchanged["seconds"] * incremental["cpus"] / incremental["items"]
    streamed = _streamed_materialize()
    if streamed:
        rows_per_s, where = streamed
    else:
        materialize = _read("materialize.json", "benchmarks.materialize --items 50000")
        rows_per_s = min(r["materialize_rows_per_s"] for r in materialize)
        where = "materialize.json"
    sources = [
        f"extractors.json: {len(core_s)} CPU signals on {threads} threads",
        f"extract_throughput: job/bare = {throughput['ratio']:.2f} at {throughput['items']:,} items",
        f"incremental.json: unchanged rerun of {incremental['items']:,} items in "
        f"{unchanged['seconds']:.1f} s on {incremental['cpus']} cores",
        f"{where}: materialization {rows_per_s:,.0f} rows/s (the slower store)",
    ]
    return Measured(core_s, throughput["ratio"], plan, rows_per_s, sources)


def _streamed_materialize() -> tuple[float, str] | None:
    """Rows/s of the streamed materialization at the largest size `catalog_scale` measured, in
    the slower store; None before that benchmark has run."""
    path = OUT / "catalog_scale.json"
    sizes = json.loads(path.read_text()).get("materialize") if path.exists() else None
    if not sizes:
        return None
    largest = sizes[max(sizes, key=int)]
    rate = min(largest["sqlite_rows_per_s"], largest["redis_rows_per_s"])
    return float(rate), f"catalog_scale.json ({int(max(sizes, key=int)):,} rows)"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 360 else f"{seconds / 60:,.1f} min"


def main(
    items: int = typer.Option(100_000_000, help="Catalog size."),
    change_rate: float = typer.Option(0.01, help="Share of items changed per day."),
    nodes: list[int] = typer.Option([4, 16, 64], help="GPU node counts to show."),
    cpus_per_node: int = typer.Option(16, help="CPU cores per GPU node (assumed)."),
    gpu_items_per_s: float = typer.Option(
        14_200.0, help="MiniLM items/s on one GPU (assumed: sbert.net's V100 figure)."
    ),
    node_hour_usd: float = typer.Option(1.60, help="Price of one GPU node-hour (assumed)."),
    video_share: float = typer.Option(0.025, help="Share of the catalog that is video (assumed)."),
    catalog_only: bool = typer.Option(False, help="Only the catalog-wide steps' table."),
) -> None:
    """Print the backfill, daily-run and growth tables for `docs/scaling.md`."""
    if catalog_only:
        catalog_steps(items, nodes, cpus_per_node, measured_cores=2)
        return
    m = measured()

    def share(signal: str) -> float:
        if signal in APPLIES_TO["video"]:
            return video_share
        return 1 - video_share if signal in APPLIES_TO["audio"] else 1.0

    cpu_core_s = sum(c * share(s) for s, c in m.core_s.items())
    signals = len(m.core_s) + len(GPU_SIGNALS)

    def run_seconds(n: int, extracted: float, catalog: float) -> dict[str, float]:
        cores = n * cpus_per_node
        return {
            "plan": catalog * m.plan_core_s / cores,
            "cpu": extracted * cpu_core_s / (cores * m.efficiency),
            "gpu": extracted * len(GPU_SIGNALS) / (n * gpu_items_per_s * m.efficiency),
            "materialize": extracted * signals / m.materialize_rows_per_s,
        }

    print("Measured inputs (this machine, 2 cores, CPU only):")
    for line in m.sources:
        print(f"- {line}")
    print("- CPU signals, core-ms per item they apply to: "
          + ", ".join(f"{s} {c * 1000:,.1f}" for s, c in sorted(m.core_s.items())))  # fmt: skip
    print(f"- all CPU signals: {cpu_core_s * 1000:,.1f} core-ms per catalog item "
          f"(videos {video_share:.1%} of the catalog, audio signals on the rest)")  # fmt: skip
    print(f"- planning (hash, anti-join, no extraction): {m.plan_core_s * 1000:.2f} core-ms per "
          "catalog item")  # fmt: skip
    print(f"\nAssumed: {cpus_per_node} cores and 1 GPU per node, {gpu_items_per_s:,.0f} MiniLM "
          f"items/s per GPU, ${node_hour_usd:.2f} per node-hour; materialization in one process "
          "streaming bounded batches."
          )  # fmt: skip
    for title, extracted in (
        (f"Full backfill of {items:,} items", items),
        (f"Daily run, {change_rate:.0%} of {items:,} items changed", items * change_rate),
    ):
        print(f"\n### {title}\n")
        print("| nodes | planning | CPU signals | GPU signals | extract wall | node-hours | cost "
              "| materialize (1 process, streamed) |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for n in nodes:
            t = run_seconds(n, extracted, items)
            wall = t["plan"] + max(t["cpu"], t["gpu"])  # CPU and GPU actors run side by side
            node_hours = wall * n / 3600
            print(f"| {n} | {hours(t['plan'])} | {hours(t['cpu'])} | {hours(t['gpu'])} | "
                  f"{hours(wall)} | {node_hours:,.0f} | ${node_hours * node_hour_usd:,.0f} | "
                  f"{hours(t['materialize'])} |")  # fmt: skip
    n = nodes[len(nodes) // 2]
    print(f"\n### Daily run against catalog size ({n} nodes, {change_rate:.0%} changed)\n")
    print("| catalog | planning | extraction | wall | share of wall in planning |")
    print("| --- | --- | --- | --- | --- |")
    for size in (1_000_000, 10_000_000, 100_000_000, 1_000_000_000):
        t = run_seconds(n, size * change_rate, size)
        work = max(t["cpu"], t["gpu"])
        wall = t["plan"] + work
        print(f"| {size:,} | {hours(t['plan'])} | {hours(work)} | {hours(wall)} | "
              f"{t['plan'] / wall:.0%} |")  # fmt: skip
    catalog_steps(items, nodes, cpus_per_node, measured_cores=2)


# How each catalog-wide step spreads: over every core of the cluster (Ray tasks), or over one
# node's cores (an out-of-core engine in one process).
# The figure of a step that is its wall time: materialization's phase also times both stores and
# their raw baselines, its Redis load (the slower store) is the step.
STEP_SECONDS = {"materialize": "redis_materialize_s"}
SPREAD = {
    "near_duplicates": "cluster",
    "daily_near_duplicates": "cluster",  # 1 % of the catalog changed
    "materialize": "cluster",
    "training_set": "node",
}


def catalog_steps(items: int, nodes: list[int], cpus_per_node: int, measured_cores: int) -> None:
    """Wall time of each catalog-wide step at `items`, from its two measured sizes: the growth
    exponent between them (1 is linear) carries the larger size's core-seconds per item on."""
    runs = _read("catalog_scale.json", "benchmarks.catalog_scale")
    print("\n### Catalog-wide steps\n")
    print("| step | measured (items: wall, peak RSS) | growth exponent | core-ms per item |"
          + "".join(f" {n} nodes |" for n in nodes))  # fmt: skip
    print("| --- | --- | --- | --- |" + " --- |" * len(nodes))
    for step, sizes in runs.items():
        (small, a), (large, b) = sorted(((int(k), v) for k, v in sizes.items()))
        key = STEP_SECONDS.get(step, "seconds")
        exponent = math.log(b[key] / a[key]) / math.log(large / small)
        per_item = b[key] * measured_cores / large
        core_s = per_item * items * (items / large) ** max(exponent - 1, 0)
        seen = "; ".join(f"{n:,}: {r[key]:.0f} s, {r['peak_rss_mib'] / 1024:.1f} GiB"
                         for n, r in ((small, a), (large, b)))  # fmt: skip
        walls = [core_s / (cpus_per_node * (n if SPREAD.get(step) == "cluster" else 1))
                 for n in nodes]  # fmt: skip
        print(f"| {step} | {seen} | {exponent:.2f} | {per_item * 1000:.2f} |"
              + "".join(f" {hours(w)} |" for w in walls))  # fmt: skip


if __name__ == "__main__":
    typer.run(main)
