"""Items/s of the whole extract job beside the bare model on the same texts.

    .venv/bin/python -m benchmarks.extract_throughput --items 20000

The baseline is the same extractor's model, same batch size and torch threads, in one process,
timed over the encode calls alone. The pipeline figure is the whole job as a user runs it on an
already-started Ray: read the Delta snapshot, start the actor and load the model, check both
contracts, write Parquet parts, commit to Delta, record the run. Target: ratio ≥ 0.8.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import typer

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(
    items: int = typer.Option(
        10_000, help="Catalog size (at least 10,000 for the reported figure)."
    ),
    rows_per_call: int = typer.Option(1024, help="Rows per extractor call, for both sides."),
    threads: int = typer.Option(
        2, help="torch threads in all: the bare model's, split over the actors."
    ),
    actors: int = typer.Option(2, help="Extractor actors in the pipeline, threads/actors each."),
    out: Path = typer.Option(Path("benchmarks/out/extract_throughput.json"), help="JSON result."),
) -> None:
    """Run both measurements in one process and print the ratio."""
    import torch
    from deltalake import write_deltalake

    from extractors.text import TextEmbedding, batch_texts
    from jobs.pipeline.extract import ExtractRequest, run_extract
    from jobs.pipeline.runtime import ensure_ray
    from jobs.sample import generate_catalog_rows
    from jobs.settings import Settings

    lake = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    settings = Settings(lake_uri=str(lake), ray_num_cpus=os.cpu_count() or 2)
    catalog = generate_catalog_rows(items, seed=7)
    write_deltalake(settings.default_snapshot_uri, catalog)
    texts = [t for t in batch_texts(catalog) if t]

    torch.set_num_threads(threads)
    model = TextEmbedding(device="cpu")
    batch_size = model.encode_batch_size  # the pipeline's actor uses the same class default
    model.encode(texts[:batch_size])  # warm-up, as the pipeline's first batch also pays it
    started = time.perf_counter()
    for start in range(0, len(texts), rows_per_call):
        model.encode(texts[start : start + rows_per_call])
    bare_seconds = time.perf_counter() - started
    bare_rate = len(texts) / bare_seconds
    del model

    ensure_ray(settings)
    started = time.perf_counter()
    record = run_extract(
        settings,
        ExtractRequest(
            signal="text_embedding@1",
            batch_size=rows_per_call,
            min_actors=actors,
            max_actors=actors,
            threads_per_actor=max(1, threads // actors),
            # Fractional CPUs leave one CPU slot for the read tasks while the actors hold the cores.
            cpus_per_actor=max(0.25, ((settings.ray_num_cpus or 2) - 1) / actors),
        ),
    )
    job_seconds = time.perf_counter() - started
    job_rate = record.read / job_seconds

    result = {
        "items": items,
        "embedded": record.extracted,
        "batch_size": batch_size,
        "rows_per_call": rows_per_call,
        "threads": threads,
        "actors": actors,
        "bare_model_items_per_s": round(bare_rate, 1),
        "extract_job_items_per_s": round(job_rate, 1),
        "ratio": round(job_rate / bare_rate, 3),
        "bare_seconds": round(bare_seconds, 2),
        "job_seconds": round(job_seconds, 2),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    typer.echo(
        f"bare model   {bare_rate:8.1f} items/s  ({len(texts)} texts in {bare_seconds:.1f} s)\n"
        f"extract job  {job_rate:8.1f} items/s  ({record.read} items in {job_seconds:.1f} s, "
        f"{record.extracted} embedded, {record.quarantined} quarantined)\n"
        f"ratio        {job_rate / bare_rate:8.3f}  (target ≥ 0.8)"
    )


if __name__ == "__main__":
    typer.run(main)
