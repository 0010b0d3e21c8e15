"""`signals demo`: the whole loop on the embedded defaults — sample → extract → materialize → get."""

from __future__ import annotations

from typing import Annotated

import typer

from features import get_signal
from jobs.cli.compute import extract_with_progress
from jobs.cli.output import console, handles_errors, print_materialized, run_table, short
from jobs.settings import Settings


@handles_errors
def demo(
    items: Annotated[int, typer.Option(help="Size of the sample catalog.")] = 200,
    show: Annotated[int, typer.Option(help="How many content IDs to look up at the end.")] = 3,
) -> None:
    """The whole loop on the embedded defaults: sample → extract → materialize → get."""
    from jobs.lake.tables import some_content_ids
    from jobs.pipeline.extract import ExtractRequest
    from jobs.pipeline.extractors import item_signals
    from jobs.pipeline.near_duplicates import run_near_duplicates
    from jobs.sample import write_sample_catalog
    from jobs.serving.client import online_values
    from jobs.serving.materialize import materialize

    settings = Settings.from_env()
    console.rule("1. sample catalog")
    result = write_sample_catalog(
        settings.default_snapshot_uri,
        settings.media_dir,
        items,
        seed=0,
        storage_options=settings.storage_options or None,
    )
    console.print(f"{result.items} items in {result.snapshot_uri}")
    console.rule("2. extract (Ray Data → Delta)")
    records = [
        extract_with_progress(settings, ExtractRequest(signal=s.ref)) for s in item_signals()
    ]
    records.append(run_near_duplicates(settings))
    console.print(run_table(records))
    console.rule("3. materialize (Feast → SQLite online store)")
    print_materialized(materialize(settings))
    console.rule("4. serve by content ID")
    served = settings.signal_uri(get_signal("text_embedding@2").storage_name)
    sample_ids = some_content_ids(served, show, settings.storage_options)
    for cid, per_id in zip(sample_ids, online_values(settings, sample_ids), strict=True):
        console.print(f"[bold]{cid}[/]", highlight=False)
        for ref, feats in per_id.items():
            shown = " · ".join(f"{k} {short(v)}" for k, v in feats.items() if not k.startswith("_"))
            console.print(f"  {ref:<20} {shown}", highlight=False)
    console.rule("5. more like this (the vector index)")
    _planted_neighbours(settings)
    console.print(f"\nlake: {settings.lake_uri}   feast repo: {settings.feast_repo}")
    console.print(
        "next: `signals get ID --service playback`, `signals similar ID --signal "
        "audio_fingerprint@1`, `signals runs`, `signals serve`"
    )


def _planted_neighbours(settings: Settings, k: int = 3) -> None:
    """Each planted near-duplicate's nearest items by audio fingerprint and by colour layout:
    the original it copies is among them (✓) by the medium it copies."""
    import pyarrow.parquet as pq

    from jobs.sample.truth import GROUND_TRUTH_FILE
    from jobs.serving.errors import NotServedError
    from jobs.serving.similarity import similar

    truth = pq.read_table(f"{settings.media_dir}/{GROUND_TRUTH_FILE}",
                          columns=["content_id", "duplicate_of"]).to_pylist()  # fmt: skip
    for row in [r for r in truth if r["duplicate_of"]]:
        for ref in ("audio_fingerprint@1", "artwork_hash@1"):
            try:
                found = similar(row["content_id"], signal=ref, k=k, settings=settings,
                                output="dicts")  # fmt: skip
            except NotServedError:
                continue
            ids = [n["content_id"] for n in found]
            mark = "✓ original" if row["duplicate_of"] in ids else ""
            console.print(
                f"  {row['content_id']:<18} {ref:<20} {', '.join(ids)}  "
                f"(copy of {row['duplicate_of']}) {mark}",
                highlight=False,
            )
