"""`signals list` and `signals sample`: what is declared, and a catalog to try it on."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from features import all_signals
from jobs.cli.output import console, handles_errors, human_days, progress
from jobs.settings import Settings


@handles_errors
def list_signals() -> None:
    """The declared signals: name, version, modality, owner, features, freshness, and which
    embedding `signals similar` searches."""
    table = Table(box=None, header_style="bold")
    for column in ("signal", "version", "modality", "owner", "features", "freshness", "search"):
        table.add_column(column)
    for s in all_signals():
        table.add_row(
            s.name,
            str(s.version),
            s.modality,
            s.owner,
            s.feature_summary(),
            human_days(s.freshness.total_seconds() / 86400),
            s.searchable.summary() if s.searchable else "—",
        )
    console.print(table)


@handles_errors
def sample(
    items: Annotated[int, typer.Option(help="How many content items.")] = 200,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same catalog.")
    ] = 0,
    snapshot: Annotated[
        str | None, typer.Option(help="Snapshot URI (default: <lake>/catalog).")
    ] = None,
    media: Annotated[bool, typer.Option(help="Write audio and artwork files too.")] = True,
) -> None:
    """Write a realistic synthetic catalog snapshot (Delta) with media files on disk."""
    from jobs.sample import write_sample_catalog

    settings = Settings.from_env()
    uri = snapshot or settings.default_snapshot_uri
    with progress() as bar:
        task = bar.add_task("sample catalog", total=items)
        result = write_sample_catalog(
            uri,
            settings.media_dir,
            items,
            seed=seed,
            with_media=media,
            storage_options=settings.storage_options or None,
            progress=lambda n: bar.advance(task, n),
        )
    mix = ", ".join(f"{n} {t}" for t, n in sorted(result.counts_by_type.items()))
    console.print(f"wrote {result.items} items to {result.snapshot_uri} ({mix})")
    console.print(f"media in {result.media_dir}; {len(result.broken)} deliberately broken rows")
