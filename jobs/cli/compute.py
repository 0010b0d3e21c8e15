"""`signals extract`, `backfill` and `near-duplicates`: the jobs that compute signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from features import SignalsError, get_signal
from jobs.cli.output import (
    console,
    handles_errors,
    print_materialized,
    progress,
    run_table,
    usage_line,
)
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.lake.runs import RunRecord
    from jobs.pipeline.backfill import Backfill
    from jobs.pipeline.extract import ExtractRequest

T = TypeVar("T")

# The options of every command that runs extractors over a snapshot (extract, backfill).
SnapshotOpt = Annotated[str | None, typer.Option(help="Catalog snapshot URI.")]
SnapshotVersionOpt = Annotated[int | None, typer.Option(help="Read this Delta version.")]
RunIdOpt = Annotated[str | None, typer.Option(help="Reuse a run id to retry a run safely.")]
BatchSizeOpt = Annotated[int | None, typer.Option(help="Rows per extractor call.")]
ActorsOpt = Annotated[str, typer.Option(help="Actor pool size, N or MIN:MAX.")]
CpusOpt = Annotated[float, typer.Option(help="CPUs reserved per actor.")]
GpusOpt = Annotated[
    float | None, typer.Option(help="GPUs per actor (default: 1 when the cluster has GPUs).")
]
DeviceOpt = Annotated[str | None, typer.Option(help="Force a torch device, e.g. cpu.")]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(help="Fail the run when more than this share of rows is quarantined."),
]
MinRowsOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Fail it only when at least this many rows are quarantined as well, so that one "
        "bad file in a small run still lands the good rows.",
    ),
]
FullOpt = Annotated[
    bool, typer.Option("--full", help="Recompute every item, not only those whose inputs changed.")
]
_RUN_OPTIONS = ("snapshot", "snapshot_version", "run_id", "batch_size", "actors", "cpus_per_actor",
                "gpus_per_actor", "device", "quarantine_threshold", "quarantine_min_rows",
                "full")  # fmt: skip


def _parse_actors(actors: str) -> tuple[int, int]:
    low, _, high = actors.partition(":")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise SignalsError(f"--actors {actors!r}: use N or MIN:MAX, e.g. 1:4") from None


def _request(signal: str, options: dict[str, Any]) -> ExtractRequest:
    """The `ExtractRequest` of one signal from the run options extract and backfill share."""
    from jobs.pipeline.extract import ExtractRequest

    shared = {k: options[k] for k in _RUN_OPTIONS}
    low, high = _parse_actors(shared.pop("actors"))
    return ExtractRequest(
        signal=signal,
        snapshot_uri=shared.pop("snapshot"),
        min_actors=low,
        max_actors=high,
        **shared,
    )


@handles_errors
def extract(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to compute, NAME@VERSION (default: all).")
    ] = None,
    snapshot: SnapshotOpt = None,
    snapshot_version: SnapshotVersionOpt = None,
    run_id: RunIdOpt = None,
    batch_size: BatchSizeOpt = None,
    actors: ActorsOpt = "1",
    cpus_per_actor: CpusOpt = 1.0,
    gpus_per_actor: GpusOpt = None,
    device: DeviceOpt = None,
    quarantine_threshold: ThresholdOpt = None,
    quarantine_min_rows: MinRowsOpt = None,
    full: FullOpt = False,
) -> None:
    """Compute signals over a catalog snapshot with Ray and commit them to the lake.

    Incremental: an item whose input hash (what the extractor reads, plus its version) equals
    that of its newest stored outcome is not recomputed; `--full` recomputes everything. Items
    that left the snapshot get a tombstone.
    """
    options = dict(locals())  # the run options by name (`_RUN_OPTIONS`)
    from jobs.pipeline.extractors import item_signals

    settings = Settings.from_env()
    chosen = [get_signal(s) for s in signals] if signals else item_signals()
    records = [extract_with_progress(settings, _request(s.ref, options)) for s in chosen]
    console.print(run_table(records))


@handles_errors
def backfill(
    signal: Annotated[str, typer.Argument(help="The version to compute, NAME@VERSION.")],
    snapshot: SnapshotOpt = None,
    snapshot_version: SnapshotVersionOpt = None,
    run_id: RunIdOpt = None,
    batch_size: BatchSizeOpt = None,
    actors: ActorsOpt = "1",
    cpus_per_actor: CpusOpt = 1.0,
    gpus_per_actor: GpusOpt = None,
    device: DeviceOpt = None,
    quarantine_threshold: ThresholdOpt = None,
    quarantine_min_rows: MinRowsOpt = None,
    full: FullOpt = False,
    online: Annotated[
        bool, typer.Option(help="Load the version into the online store afterwards.")
    ] = True,
) -> None:
    """Compute one signal version over the whole catalog and serve it beside the older ones.

    The older versions keep their tables, feature views and feature services; the report says
    which feature services still pin them. Rerun after a failure: only missing items are computed.
    """
    options = dict(locals())  # the run options by name (`_RUN_OPTIONS`)
    from jobs.pipeline.backfill import run_backfill

    settings = Settings.from_env()
    ref = get_signal(signal).ref
    request = _request(ref, options)
    done = _with_progress(
        settings,
        request,
        f"backfill {ref}",
        lambda advance: run_backfill(settings, request, load_online=online, on_progress=advance),
    )
    _print_reasons(done.run)
    console.print(run_table([done.run]))
    if done.materialized is not None:
        print_materialized(done.materialized)
    _print_versions(done)


def _print_versions(done: Backfill) -> None:
    table = Table(box=None, header_style="bold", title="versions", title_justify="left")
    for column in ("version", "feature services pinning it", "table"):
        table.add_column(column)
    for v in done.versions:
        table.add_row(v.signal, ", ".join(v.consumers) or "—", "yes" if v.has_table else "no")
    console.print(table)
    new = next(v for v in done.versions if v.signal == done.run.signal)
    for old in done.still_on_older:
        console.print(
            f"{', '.join(old.consumers)} still {'reads' if len(old.consumers) == 1 else 'read'} "
            f"{old.signal}; to move, list them in "
            f"{new.signal}'s consumers instead (a metadata change), then retire {old.signal}",
            highlight=False,
        )
    if not new.consumers:
        console.print(f"no feature service includes {new.signal} yet", highlight=False)


def _with_progress(
    settings: Settings,
    request: ExtractRequest,
    label: str,
    job: Callable[[Callable[[int], None]], T],
) -> T:
    """Run `job` with a progress bar over the snapshot's rows; `job` gets the advance callback."""
    from jobs.pipeline.extract import planned_rows

    with progress() as bar:
        task = bar.add_task(label, total=planned_rows(settings, request))
        return job(lambda n: bar.advance(task, n))


def extract_with_progress(settings: Settings, request: ExtractRequest) -> RunRecord:
    """One extract run with its progress bar, then what it quarantined, spent and queued."""
    from jobs.pipeline.extract import run_extract

    record = _with_progress(
        settings,
        request,
        f"extract {request.signal}",
        lambda advance: run_extract(settings, request, on_progress=advance),
    )
    _print_reasons(record)
    if record.usage:
        console.print(f"{record.signal}: {usage_line(record.usage)}", highlight=False)
    if record.queued_for_review:
        console.print(f"{record.signal}: {record.queued_for_review} answers queued for review "
                      "(`signals annotate`)", highlight=False)  # fmt: skip
    return record


def _print_reasons(record: RunRecord) -> None:
    for reason, count in record.reasons.items():
        console.print(f"  quarantined {count} × {reason}", highlight=False)


@handles_errors
def near_duplicates(full: FullOpt = False) -> None:
    """Group items whose artwork hashes or audio fingerprints are within a threshold: a daily
    run compares only the items changed since the last run."""
    from jobs.pipeline.near_duplicates import run_near_duplicates

    with console.status("reading artwork hashes and audio fingerprints") as status:
        record = run_near_duplicates(Settings.from_env(), on_stage=status.update, full=full)
    console.print(run_table([record]))
