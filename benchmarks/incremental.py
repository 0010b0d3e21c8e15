"""Seconds of an incremental rerun of the extract job beside the first run over the same snapshot.

    .venv/bin/python -m benchmarks.incremental --items 100000 [--signal text_embedding@1]

Three runs of the whole job as a user runs it, on a temporary lake and one already-started Ray
(its start-up and Ray Data's first execution are counted in none of them):
  first      every item computed: the baseline;
  unchanged  the same snapshot again;
  changed    the snapshot rewritten with 1 % of the titles edited and `updated_at` bumped.
Targets (the reported figure needs ≥ 100,000 items): the unchanged rerun sends no row to the
extractor (computed = read − unchanged − skipped = 0, extracted = 0) in ≤ 5 % of the first run's
seconds; the changed rerun extracts exactly the changed items that were stored before, in ≤ 10 %.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = 7


@dataclass
class Run:
    """One timed run and its verdict."""

    name: str
    seconds: float
    read: int
    unchanged: int
    computed: int
    extracted: int
    quarantined: int
    ratio: float | None = None
    target: str = "baseline"
    ok: bool = True


def _snapshot(items: int, every: int | None, changed: list[str]) -> Iterator[object]:
    """The catalog as RecordBatches, with every `every`-th item edited (ids appended to
    `changed`); nothing is held beyond one batch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from jobs.sample import iter_catalog_batches

    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    offset = 0
    for batch in iter_catalog_batches(items, SEED):
        if every:
            mask = pa.array((np.arange(offset, offset + batch.num_rows) % every) == 0)
            title = pc.if_else(
                mask,
                pc.binary_join_element_wise(
                    pc.coalesce(batch.column("title"), ""), " (remastered)", ""
                ),
                batch.column("title"),
            )
            updated = pc.if_else(
                mask, now.cast(batch.schema.field("updated_at").type), batch.column("updated_at")
            )
            changed += batch.column("content_id").filter(mask).to_pylist()
            columns = {"title": title, "updated_at": updated}
            batch = pa.RecordBatch.from_arrays(
                [columns.get(name, batch.column(name)) for name in batch.schema.names],
                schema=batch.schema,
            )
        offset += batch.num_rows
        yield batch


def _write_snapshot(uri: str, items: int, every: int | None = None) -> list[str]:
    import pyarrow as pa
    from deltalake import write_deltalake

    from features.catalog import CATALOG_SCHEMA

    changed: list[str] = []
    reader = pa.RecordBatchReader.from_batches(CATALOG_SCHEMA, _snapshot(items, every, changed))
    write_deltalake(uri, reader, mode="overwrite")
    return changed


def main(
    items: int = typer.Option(
        100_000, help="Catalog size (at least 100,000 for the reported figure)."
    ),
    signal: str = typer.Option("text_embedding@1", help="Signal to extract."),
    changed_share: float = typer.Option(0.01, help="Share of items edited before the last run."),
    actors: int = typer.Option(2, help="Extractor actors."),
    cpus_per_actor: float | None = typer.Option(
        None, help="CPUs each actor asks for; default (cpus − 1) / actors, leaving one for reads."
    ),
    out: Path = typer.Option(Path("benchmarks/out/incremental.json"), help="JSON result."),
) -> None:
    """First run, unchanged rerun, 1 %-changed rerun; print the table and the verdicts."""
    import pyarrow.compute as pc
    import ray
    from deltalake import DeltaTable

    from features import get_signal
    from jobs.pipeline.extract import ExtractRequest, run_extract
    from jobs.pipeline.runtime import ensure_ray
    from jobs.settings import Settings

    lake = Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    cpus = os.cpu_count() or 2
    settings = Settings(lake_uri=str(lake), ray_num_cpus=cpus)
    # Fractional CPUs leave one CPU slot for the read/hash/join tasks while the actors hold
    # the cores (a whole CPU each would starve the reads and stall the pipeline on 2 cores).
    per_actor = cpus_per_actor or max(0.25, (cpus - 1) / actors)
    request = ExtractRequest(
        signal=signal,
        min_actors=actors,
        max_actors=actors,
        cpus_per_actor=per_actor,
        threads_per_actor=max(1, cpus // actors),
    )
    signal_uri = settings.signal_uri(get_signal(signal).storage_name)
    _write_snapshot(settings.default_snapshot_uri, items)
    ensure_ray(settings)  # Ray start-up is counted in none of the runs, nor is Ray Data's:
    ray.data.range(1).materialize()  # its system actors start on the first execution

    def timed(name: str) -> tuple[Run, str]:
        started = time.perf_counter()
        record = run_extract(settings, request)
        seconds = time.perf_counter() - started
        run = Run(
            name,
            round(seconds, 2),
            record.read,
            record.unchanged,
            record.computed,
            record.extracted,
            record.quarantined,
        )
        return run, record.run_id

    first, _ = timed("first")
    version = DeltaTable(signal_uri).version()
    unchanged, _ = timed("unchanged")
    # Nothing computed, so nothing committed: the signal table keeps the first run's version.
    no_commit = DeltaTable(signal_uri).version() == version
    every = max(1, round(1 / changed_share))
    changed = set(_write_snapshot(settings.default_snapshot_uri, items, every))
    edited, run_id = timed(f"{len(changed) / items:.0%} changed")

    rows = DeltaTable(signal_uri).to_pyarrow_table(columns=["content_id", "run_id"])
    new = pc.equal(rows.column("run_id"), run_id)
    new_ids = rows.filter(new).column("content_id").to_pylist()
    stored_before = changed & set(rows.filter(pc.invert(new)).column("content_id").to_pylist())

    for run, share in ((unchanged, 0.05), (edited, 0.10)):
        run.ratio = round(run.seconds / first.seconds, 3)
        run.ok = run.ratio <= share
    unchanged.target = "computed = extracted = 0, no commit, ≤ 5 %"
    unchanged.ok &= unchanged.computed == 0 and unchanged.extracted == 0
    unchanged.ok &= no_commit
    edited.target = "extracted = changed ∩ stored, ≤ 10 %"
    exact = len(new_ids) == len(set(new_ids)) and set(new_ids) == stored_before
    edited.ok &= exact and edited.extracted == len(stored_before)

    runs = [first, unchanged, edited]
    result = {
        "items": items,
        "signal": signal,
        "actors": actors,
        "cpus_per_actor": per_actor,
        "cpus": cpus,
        "changed": len(changed),
        "changed_stored_before": len(stored_before),
        "runs": [vars(r) for r in runs],
        "passed": all(r.ok for r in runs),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    header = (
        f"{'run':<11} {'seconds':>8} {'read':>8} {'unchanged':>9} {'computed':>8} "
        f"{'extracted':>9} {'quarant.':>8} {'ratio':>6}  {'target':<42} result"
    )
    lines = [f"{signal}, {items} items, {actors} actors × {per_actor:g} CPU", header]
    for r in runs:
        ratio = f"{r.ratio:6.3f}" if r.ratio is not None else "     —"
        lines.append(
            f"{r.name:<11} {r.seconds:8.1f} {r.read:8d} {r.unchanged:9d} {r.computed:8d} "
            f"{r.extracted:9d} {r.quarantined:8d} {ratio}  {r.target:<42} "
            f"{'pass' if r.ok else 'FAIL'}"
        )
    lines.append(
        f"changed {len(changed)} items, {len(stored_before)} of them stored before; the last run "
        f"wrote {len(new_ids)} rows, {'exactly those' if exact else 'NOT exactly those'}"
    )
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
