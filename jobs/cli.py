"""`signals`: the command line, in the words of the people who use the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features import SignalsError, all_signals, get_signal
from features.registry import service_signals
from features.standard import SERVED_AT
from jobs.cli_contracts import contracts_app
from jobs.cli_output import console, err_console, handles_errors
from jobs.settings import Settings

app = typer.Typer(
    name="signals",
    help="Content signals: compute, store and serve machine-readable understanding of a catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")
AS_OF_OPTION = typer.Option(
    "--as-of", help="Read the lake as of a table version (12) or a time (2026-11-25T10:00Z)."
)


def _settings() -> Settings:
    return Settings.from_env()


def _human_days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


@app.command("list")
@handles_errors
def list_signals() -> None:
    """The declared signals: name, version, modality, owner, features, freshness."""
    table = Table(box=None, header_style="bold")
    for column in ("signal", "version", "modality", "owner", "features", "freshness"):
        table.add_column(column)
    for s in all_signals():
        table.add_row(
            s.name,
            str(s.version),
            s.modality,
            s.owner,
            s.feature_summary(),
            _human_days(s.freshness.total_seconds() / 86400),
        )
    console.print(table)


@app.command()
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
    from jobs.sample_catalog import write_sample_catalog

    settings = _settings()
    uri = snapshot or settings.default_snapshot_uri
    with _progress() as progress:
        task = progress.add_task("sample catalog", total=items)
        result = write_sample_catalog(
            uri,
            settings.media_dir,
            items,
            seed=seed,
            with_media=media,
            storage_options=settings.storage_options or None,
            progress=lambda n: progress.advance(task, n),
        )
    mix = ", ".join(f"{n} {t}" for t, n in sorted(result.counts_by_type.items()))
    console.print(f"wrote {result.items} items to {result.snapshot_uri} ({mix})")
    console.print(f"media in {result.media_dir}; {len(result.broken)} deliberately broken rows")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _parse_actors(actors: str) -> tuple[int, int]:
    low, _, high = actors.partition(":")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise SignalsError(f"--actors {actors!r}: use N or MIN:MAX, e.g. 1:4") from None


def _run_table(records: list[Any]) -> Table:
    table = Table(box=None, header_style="bold")
    counts = ("read", "unchanged", "skipped", "extracted", "quarantined", "removed")
    for column in ("signal", "run", *counts, "status"):
        table.add_column(column, no_wrap=True, justify="right" if column in counts else "left")
    for r in records:
        table.add_row(r.signal, r.run_id, *(str(getattr(r, c)) for c in counts), r.status)
    return table


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
FullOpt = Annotated[
    bool, typer.Option("--full", help="Recompute every item, not only those whose inputs changed.")
]


def _request(signal: str, options: dict[str, Any]) -> Any:
    """The `ExtractRequest` of one signal from the run options extract and backfill share."""
    from jobs.extract import ExtractRequest

    shared = {k: options[k] for k in _RUN_OPTIONS}
    low, high = _parse_actors(shared.pop("actors"))
    return ExtractRequest(
        signal=signal,
        snapshot_uri=shared.pop("snapshot"),
        min_actors=low,
        max_actors=high,
        **shared,
    )


_RUN_OPTIONS = ("snapshot", "snapshot_version", "run_id", "batch_size", "actors", "cpus_per_actor",
                "gpus_per_actor", "device", "quarantine_threshold", "full")  # fmt: skip


@app.command()
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
    full: FullOpt = False,
) -> None:
    """Compute signals over a catalog snapshot with Ray and commit them to the lake.

    Incremental: an item whose input hash (what the extractor reads, plus its version) equals
    that of its newest stored outcome is not recomputed; `--full` recomputes everything. Items
    that left the snapshot get a tombstone.
    """
    options = dict(locals())  # the run options by name (`_RUN_OPTIONS`)
    settings = _settings()
    chosen = [get_signal(s) for s in signals] if signals else item_signals()
    records = []
    for signal in chosen:
        request = _request(signal.ref, options)
        records.append(_extract_with_progress(settings, request))
    console.print(_run_table(records))


@app.command()
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
    from jobs.backfill import run_backfill

    settings = _settings()
    ref = get_signal(signal).ref
    request = _request(ref, options)
    done = _with_progress(
        settings,
        request,
        f"backfill {ref}",
        lambda progress: run_backfill(settings, request, load_online=online, on_progress=progress),
    )
    _print_reasons(done.run)
    console.print(_run_table([done.run]))
    if done.materialized is not None:
        _print_materialized(done.materialized)
    _print_versions(done)


def _print_versions(done: Any) -> None:
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
    settings: Settings, request: Any, label: str, job: Callable[[Callable[[int], None]], T]
) -> T:
    """Run `job` with a progress bar over the snapshot's rows; `job` gets the advance callback."""
    from jobs.extract import snapshot_rows

    total = snapshot_rows(settings, request.snapshot_uri, request.snapshot_version)
    with _progress() as progress:
        task = progress.add_task(label, total=total)
        return job(lambda n: progress.advance(task, n))


def _extract_with_progress(settings: Settings, request: Any) -> Any:
    from jobs.extract import run_extract

    record = _with_progress(
        settings,
        request,
        f"extract {request.signal}",
        lambda progress: run_extract(settings, request, on_progress=progress),
    )
    _print_reasons(record)
    if record.usage:
        console.print(f"{record.signal}: {usage_line(record.usage)}", highlight=False)
    if record.queued_for_review:
        console.print(f"{record.signal}: {record.queued_for_review} answers queued for review "
                      "(`signals annotate`)", highlight=False)  # fmt: skip
    return record


def usage_line(usage: dict[str, int]) -> str:
    """A run's spend in a person's words: `40 calls (2 retries), 12,345 tokens in, …`."""
    retries = f" ({usage['retries']:,} retries)" if usage.get("retries") else ""
    parts = [
        f"{usage.get('calls', 0):,} calls{retries}",
        f"{usage.get('prompt_tokens', 0):,} tokens in",
        f"{usage.get('completion_tokens', 0):,} out",
        f"{usage.get('cache_hits', 0):,} cache hits",
    ]
    parts += [f"{usage[k]:,} {k.replace('_', ' ')}" for k in ("bad_answers", "rate_limited",
              "tool_calls") if usage.get(k)]  # fmt: skip
    return ", ".join(parts)


def _print_reasons(record: Any) -> None:
    for reason, count in record.reasons.items():
        console.print(f"  quarantined {count} × {reason}", highlight=False)


def item_signals() -> list[Any]:
    """Signals computed item by item from catalog snapshots (what `extract` runs by default):
    on-demand ones (a paid call per item) only when named."""
    from jobs.extract import load_extractor_class

    return [
        s
        for s in all_signals()
        if (cls := load_extractor_class(s.extractor)).scope == "item" and not cls.on_demand
    ]


@app.command("near-duplicates")
@handles_errors
def near_duplicates() -> None:
    """Group items whose artwork hashes or audio fingerprints are within a threshold."""
    from jobs.near_duplicates import run_near_duplicates

    with console.status("comparing artwork hashes and audio fingerprints"):
        record = run_near_duplicates(_settings())
    console.print(_run_table([record]))


@app.command()
@handles_errors
def materialize(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to load (default: all).")
    ] = None,
) -> None:
    """Apply the Feast repository and load new signal history into the online store."""
    from jobs.materialize import materialize as run_materialize

    chosen = [get_signal(s) for s in signals] if signals else None
    with console.status("materializing into the online store"):
        done = run_materialize(_settings(), chosen)
    _print_materialized(done)


def _print_materialized(done: Any) -> None:
    console.print(f"materialized {', '.join(done.views) or 'nothing'}")
    for view, count in done.deleted.items():
        console.print(f"  {view}: {count} removed items deleted from the online store")


def _short(value: Any) -> str:
    if isinstance(value, list):
        head = ", ".join(f"{v:.3f}" for v in value[:3])
        return f"[{head}, …] ({len(value)})"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@app.command()
@handles_errors
def get(
    content_ids: Annotated[list[str], typer.Argument(help="Content IDs, e.g. track:000042.")],
    signal: Annotated[
        list[str] | None, typer.Option("--signal", help="Only these signals (NAME@VERSION).")
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="The signals of this feature service.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    as_of: Annotated[str | None, AS_OF_OPTION] = None,
) -> None:
    """Serve signals for content IDs from the online store — or, with --as-of, what was served
    then, read from the lake's history."""
    from jobs.errors import NotServedError

    if signal and service:
        raise SignalsError("use --signal or --service, not both")
    chosen = [get_signal(s) for s in signal] if signal else None
    if service is not None:
        chosen = list(service_signals(service))
    if as_of is None:
        from jobs.client import online_values

        values = online_values(_settings(), content_ids, chosen)
        source = "served from the online store"
    else:
        from jobs.lineage import values_as_of
        from jobs.maintenance import resolve_as_of

        refs = [s.ref for s in chosen or all_signals()]
        values = values_as_of(_settings(), content_ids, refs, resolve_as_of(as_of))
        source = f"as served at {as_of}, from the lake"
    if as_json:
        payload = {
            cid: {
                ref: {k: (v.isoformat() if k == SERVED_AT else v) for k, v in feats.items()}
                for ref, feats in per_id.items()
            }
            for cid, per_id in zip(content_ids, values, strict=True)
        }
        console.print_json(json.dumps(payload))
    else:
        for cid, per_id in zip(content_ids, values, strict=True):
            if not per_id:
                continue
            console.print(f"[bold]{cid}[/] — {source}", highlight=False)
            table = Table(box=None, show_header=False, pad_edge=False)
            for ref, feats in per_id.items():
                shown = " · ".join(
                    _short(v) if len(feats) == 2 else f"{k} {_short(v)}"
                    for k, v in feats.items()
                    if k != SERVED_AT
                )
                table.add_row(f"  {ref}", shown, f"run {feats[SERVED_AT]:%Y-%m-%dT%H:%MZ}")
            console.print(table)
    missing = [cid for cid, per_id in zip(content_ids, values, strict=True) if not per_id]
    if missing:
        raise NotServedError(
            f"not found: {', '.join(missing)} "
            + ("has" if len(missing) == 1 else "have")
            + " no served signals",
            hint="is it in the catalog snapshot? has `signals extract` + `signals materialize` run?",
        )


@app.command()
@handles_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6566,
    no_access_log: Annotated[bool, typer.Option("--no-access-log")] = False,
) -> None:
    """Feast's HTTP feature server (POST /get-online-features) on the configured online store."""
    from jobs.serve import run_server

    run_server(_settings(), host, port, access_log=not no_access_log)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handles_errors
def submit(
    job: Annotated[
        str,
        typer.Argument(
            help="The job: extract, backfill, near-duplicates, materialize, compact or vacuum."
        ),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(help="The job's own arguments and flags, as on a laptop.")
    ] = None,
    address: Annotated[
        str,
        typer.Option(envvar="SIGNALS_SUBMIT_ADDRESS", help="The cluster's Ray dashboard."),
    ] = "http://127.0.0.1:8265",
    upload: Annotated[
        bool,
        typer.Option(help="Upload this checkout as the job's code (--no-upload: the image's)."),
    ] = True,
    env: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for the job's environment (repeatable).")
    ] = None,
    forward_settings: Annotated[
        bool, typer.Option(help="Pass this shell's SIGNALS_* settings on to the job.")
    ] = True,
    wait: Annotated[bool, typer.Option(help="Stream the logs until the job ends.")] = True,
) -> None:
    """Run a job on a Ray cluster (Ray's job submission API), stream its logs, exit as it did.

    `signals submit extract text_embedding@1 --gpus-per-actor 1 --actors 2:8` runs
    `python -m jobs.extract text_embedding@1 --gpus-per-actor 1 --actors 2:8` on the cluster.
    """
    from jobs.submit import job_env
    from jobs.submit import submit as submit_job

    outcome = submit_job(
        address,
        job,
        args or [],
        env=job_env(env or [], forward=forward_settings),
        upload=upload,
        wait=wait,
        on_log=lambda line: console.print(line, markup=False, highlight=False),
    )
    if wait:
        style = "green" if outcome.exit_code == 0 else "bold red"
        err_console.print(f"[{style}]{job}: Ray job {outcome.job_id} {outcome.status}[/] "
                          f"{outcome.message}", highlight=False)  # fmt: skip
    raise typer.Exit(outcome.exit_code)


@app.command("training-set")
@handles_errors
def training_set(
    entities: Annotated[
        Path, typer.Argument(help="Parquet or CSV: content_id, event_timestamp, any labels.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the training set (Parquet).")],
    service: Annotated[str | None, typer.Option(help="The feature service to join.")] = None,
    signal: Annotated[
        list[str] | None, typer.Option("--signal", help="Or these signals (NAME@VERSION).")
    ] = None,
) -> None:
    """A point-in-time-correct training set: each row gets the values served at its timestamp."""
    from jobs.training_set import build_training_set

    with console.status("point-in-time join over the Delta history"):
        done = build_training_set(_settings(), entities, out, service=service, signals=signal)
    console.print(f"wrote {done.rows} rows × {len(done.features)} features to {done.path}")
    for name, count in done.filled.items():
        console.print(f"  {name}: {count} of {done.rows} rows have a value", highlight=False)


@app.command()
@handles_errors
def evaluate(
    signals: Annotated[
        list[str] | None,
        typer.Argument(help="With --gold: signals to judge, NAME (every version) or NAME@VERSION."),
    ] = None,
    gold: Annotated[
        bool, typer.Option("--gold", help="Judge tagging signals against the annotated gold set.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Markdown report (default: <lake>/reports/evaluation.md).")
    ] = None,
) -> None:
    """Each signal's error against the sample catalog's ground truth (table + Markdown); with
    --gold, each tagging signal's agreement with what people accepted or corrected."""
    from jobs.evaluate import evaluate as run_evaluate
    from jobs.evaluate import to_markdown

    settings = _settings()
    if gold:
        _evaluate_gold(settings, signals or [], out)
        return
    scores = run_evaluate(settings)
    table = Table(box=None, header_style="bold")
    for column in ("signal", "measure", "metric", "value", "items", "bound", "ok"):
        table.add_column(column, justify="right" if column in ("value", "items") else "left")
    for s in scores:
        ok = "[green]yes[/]" if s.passed else "[red]no[/]"
        table.add_row(s.signal, s.measure, s.metric, f"{s.value:.3f}", str(s.n), s.bound, ok)
    console.print(table)
    path = out or Path(settings.lake_path("reports", "evaluation.md"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_markdown(scores))
    console.print(f"wrote {path}")


def _evaluate_gold(settings: Settings, names: list[str], out: Path | None) -> None:
    from jobs.annotation import gold_fields
    from jobs.evaluate import agreement_markdown, agreement_with_gold, share
    from jobs.lake import open_table

    fields = gold_fields(settings)
    if not fields:
        raise SignalsError("the gold set is empty", hint="review answers with `signals annotate`")
    chosen = [
        s
        for s in all_signals()
        if (not names or s.ref in names or s.name in names)
        and fields & set(s.features)
        and open_table(settings.signal_uri(s.storage_name), settings.storage_options)
    ]
    if not chosen:
        raise SignalsError(f"no signal with a table labels {', '.join(sorted(fields))}")
    scores = [a for s in chosen for a in agreement_with_gold(settings, s)]
    table = Table(box=None, header_style="bold")
    for column in ("signal", "label", "items", "agreement", "precision", "recall"):
        table.add_column(column, justify="left" if column in ("signal", "label") else "right")

    for a in scores:
        table.add_row(a.signal, a.field, str(a.items), share(a.agreement), share(a.precision),
                      share(a.recall))  # fmt: skip
    console.print(table)
    path = out or Path(settings.lake_path("reports", "gold-agreement.md"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(agreement_markdown(scores))
    console.print(f"wrote {path}")


@app.command()
@handles_errors
def annotate(
    signal: Annotated[
        str | None, typer.Argument(help="Only this signal's answers, NAME@VERSION.")
    ] = None,
    annotator: Annotated[
        str, typer.Option(envvar="USER", help="Who decides (kept with every label).")
    ] = "annotator",
    limit: Annotated[int, typer.Option(help="Stop after this many items.")] = 50,
) -> None:
    """Review queued model answers one at a time: accept, correct or skip. Accepted and
    corrected labels form the gold set that `signals evaluate --gold` judges signals by."""
    from jobs.annotation import catalog_texts, decide, open_items

    settings = _settings()
    items = open_items(settings, signal)[:limit]
    if not items:
        console.print("nothing to review")
        return
    texts = catalog_texts(settings, [i.content_id for i in items])
    decisions: dict[str, int] = {}
    for n, item in enumerate(items, 1):
        _show_item(n, len(items), item, texts.get(item.content_id, {}))
        choice = _ask("[a]ccept, [c]orrect, [s]kip or [q]uit", ["a", "c", "s", "q"], "a")
        if choice == "q":
            break
        labels = {k: v for k, v in item.proposed.items() if k in _label_fields(item.signal)}
        if choice == "c":
            labels = _corrected(item.signal, labels)
        decision = decide(settings, item, None if choice == "s" else labels, annotator)
        decisions[decision] = decisions.get(decision, 0) + 1
        console.print(f"→ {decision}", highlight=False)
    done = ", ".join(f"{v} {k}" for k, v in decisions.items()) or "nothing decided"
    console.print(f"{done}; {len(open_items(settings, signal))} still open")


def _label_fields(signal_ref: str) -> dict[str, tuple[str, ...]]:
    """The label features a person decides, with their allowed values (the contract's)."""
    from features.annotation import policy_for

    signal = get_signal(signal_ref)
    policy = policy_for(signal.name)
    labels = policy.labels if policy else ()
    return {f: tuple(getattr(signal.features[f], "isin", None) or ()) for f in labels}


def _show_item(n: int, total: int, item: Any, text: dict[str, Any]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("label", item.signal, "compared with"):
        table.add_column(column)
    for field in _label_fields(item.signal):
        table.add_row(field, str(item.proposed.get(field)), str(item.compared.get(field, "")))
    console.rule(f"{n}/{total}  {item.content_id}  ({text.get('content_type', '?')})")
    console.print(f"[bold]{text.get('title', '')}[/]", highlight=False)
    console.print(text.get("description") or "", highlight=False)
    console.print(table)
    console.print(f"why: {item.reason}", highlight=False)


def _ask(question: str, choices: list[str], default: str) -> str:
    while True:
        answer = typer.prompt(question, default=default).strip()
        if answer in choices:
            return answer
        err_console.print(f"one of: {', '.join(choices)}")


def _corrected(signal_ref: str, labels: dict[str, Any]) -> dict[str, str | None]:
    """Ask for each label, the model's as the default; `-` means the item has none."""
    corrected: dict[str, str | None] = {}
    for field, allowed in _label_fields(signal_ref).items():
        current = labels.get(field) or "-"
        answer = _ask(f"{field} ({', '.join(allowed)}, or -)", [*allowed, "-"], current)
        corrected[field] = None if answer == "-" else answer
    return corrected


@app.command()
@handles_errors
def lineage(
    content_id: Annotated[str, typer.Argument(help="The item, e.g. track:000042.")],
    signal: Annotated[str, typer.Argument(help="The signal, NAME@VERSION.")],
    as_of: Annotated[str | None, AS_OF_OPTION] = None,
) -> None:
    """Which run, snapshot version and extractor produced the value being served (and before)."""
    from jobs.lineage import item_history
    from jobs.maintenance import resolve_as_of

    origins = item_history(_settings(), content_id, signal, as_of and resolve_as_of(as_of))
    console.print(f"[bold]{content_id}[/] · {origins[0].signal}", highlight=False)
    for i, o in enumerate(origins):
        # One line per value, soft-wrapped: a table would truncate run ids and URIs on a
        # narrow terminal, and these are what people copy.
        mark = "removed" if o.removed else ("served" if i == 0 else "earlier")
        snapshot = (
            f"{o.snapshot_uri}@{o.snapshot_version}" if o.snapshot_uri else "(run not recorded)"
        )
        fields = {
            "run": o.run_id,
            "snapshot": snapshot,
            "extractor": o.extractor_version,
            "input_hash": o.input_hash[:12],
            "input_updated": f"{o.input_updated_at:%Y-%m-%dT%H:%M}" if o.input_updated_at else "",
        }
        line = "  ".join(f"{k}={v}" for k, v in fields.items())
        console.print(
            f"{mark:<8}{o.event_timestamp:%Y-%m-%d %H:%M:%S}Z  {line}",
            soft_wrap=True,
            highlight=False,
        )


@app.command()
@handles_errors
def history(
    signal: Annotated[str, typer.Argument(help="The signal, NAME@VERSION.")],
    limit: Annotated[int, typer.Option(help="How many versions to show.")] = 20,
) -> None:
    """The signal table's versions, newest first: which run or maintenance job made each."""
    from jobs.maintenance import history as table_history

    table = Table(box=None, header_style="bold")
    columns = ("version", "timestamp", "operation", "job", "run_id", "snapshot_version",
               "rows_added", "files_added", "files_removed")  # fmt: skip
    for column in columns:
        table.add_column(column, no_wrap=True)
    for commit in table_history(_settings(), signal, limit):
        commit["timestamp"] = f"{commit['timestamp']:%Y-%m-%d %H:%M:%S}Z"
        table.add_row(*("" if commit[c] is None else str(commit[c]) for c in columns))
    console.print(table)


@app.command()
@handles_errors
def compact(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to compact (default: all with a table).")
    ] = None,
    z_order: Annotated[
        bool, typer.Option(help="Z-order on content_id, so lookups skip most files.")
    ] = True,
) -> None:
    """Rewrite each signal table's small files into few large ones (a new version, same rows)."""
    from jobs.maintenance import compact as compact_table

    settings = _settings()
    for ref in _refs_with_tables(settings, signals):
        done = compact_table(settings, ref, z_order=z_order)
        console.print(
            f"{ref}: {done.files_removed} files → {done.files_added} "
            f"(version {done.version_before} → {done.version_after})",
            highlight=False,
        )


@app.command()
@handles_errors
def vacuum(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to vacuum (default: all with a table).")
    ] = None,
    retention_hours: Annotated[
        int, typer.Option(help="Keep files that versions of the last N hours need.")
    ] = 168,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--delete", help="List the files, or delete them.")
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Allow a retention under the table's minimum (no job running!).")
    ] = False,
) -> None:
    """Delete files no version within the retention needs, and crashed runs' leftover parts.

    A dry run unless told `--delete`.
    """
    from jobs.maintenance import vacuum as vacuum_tables

    settings = _settings()
    for ref in _refs_with_tables(settings, signals):
        done = vacuum_tables(
            settings, ref, retention_hours=retention_hours, dry_run=dry_run, force=force
        )
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{ref}: {verb} {done.total} files", highlight=False)
        for files in done.files.values():
            for name in files:
                console.print(f"  {name}", highlight=False)
    if dry_run:
        console.print("dry run: nothing deleted; `--delete` deletes them")


def _refs_with_tables(settings: Settings, signals: list[str] | None) -> list[str]:
    """The named signals, or every declared signal that has a table in the lake."""
    from jobs.lake import open_table

    if signals:
        return [get_signal(s).ref for s in signals]
    return [
        s.ref
        for s in all_signals()
        if open_table(settings.signal_uri(s.storage_name), settings.storage_options)
    ]


@app.command()
@handles_errors
def runs(limit: Annotated[int, typer.Option(help="How many runs to show.")] = 20) -> None:
    """Recent job runs: counts, snapshot version, status, and what paid extractors spent."""
    from jobs.runs import list_runs

    table = Table(box=None, header_style="bold")
    columns = ("run_id", "signal", "snapshot_version", "read", "unchanged", "skipped",
               "extracted", "quarantined", "removed", "status")  # fmt: skip
    rows = list_runs(_settings(), limit).to_pylist()
    spent = any(row.get("usage") for row in rows)  # paid extractors ran: show what they cost
    for column in (*columns, "cost") if spent else columns:
        table.add_column(column)
    for row in rows:
        cells = ["" if row[c] is None else str(row[c]) for c in columns]
        usage = json.loads(row.get("usage") or "{}")
        table.add_row(*cells, *([usage_line(usage) if usage else ""] if spent else []))
    console.print(table)


@app.command()
@handles_errors
def demo(
    items: Annotated[int, typer.Option(help="Size of the sample catalog.")] = 200,
    show: Annotated[int, typer.Option(help="How many content IDs to look up at the end.")] = 3,
) -> None:
    """The whole loop on the embedded defaults: sample → extract → materialize → get."""
    from jobs.client import online_values
    from jobs.materialize import materialize as run_materialize
    from jobs.sample_catalog import write_sample_catalog

    settings = _settings()
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
    from jobs.extract import ExtractRequest
    from jobs.near_duplicates import run_near_duplicates

    records = [
        _extract_with_progress(settings, ExtractRequest(signal=s.ref)) for s in item_signals()
    ]
    records.append(run_near_duplicates(settings))
    console.print(_run_table(records))
    console.rule("3. materialize (Feast → SQLite online store)")
    _print_materialized(run_materialize(settings))
    console.rule("4. serve by content ID")
    sample_ids = _first_ids(settings, show)
    values = online_values(settings, sample_ids)
    for cid, per_id in zip(sample_ids, values, strict=True):
        console.print(f"[bold]{cid}[/]", highlight=False)
        for ref, feats in per_id.items():
            shown = " · ".join(
                f"{k} {_short(v)}" for k, v in feats.items() if not k.startswith("_")
            )
            console.print(f"  {ref:<20} {shown}", highlight=False)
    console.print(f"\nlake: {settings.lake_uri}   feast repo: {settings.feast_repo}")
    console.print("next: `signals get ID --service playback`, `signals runs`, `signals serve`")


def _first_ids(settings: Settings, n: int) -> list[str]:
    """A few served content IDs of different types, for the demo's closing table."""
    from jobs.lake import read_table

    ids = (
        read_table(
            settings.signal_uri(get_signal("text_embedding@1").storage_name),
            columns=["content_id"],
            storage_options=settings.storage_options,
        )
        .column("content_id")
        .to_pylist()
    )
    by_type: dict[str, str] = {}
    for cid in sorted(ids):
        by_type.setdefault(cid.split(":")[0], cid)
    chosen = list(by_type.values())[:n]
    return chosen + [c for c in sorted(ids) if c not in chosen][: n - len(chosen)]


@app.command()
@handles_errors
def profile(
    signal: Annotated[str, typer.Argument(help="The signal, NAME@VERSION.")],
    base: Annotated[
        str | None,
        typer.Option(
            help="Compare with this run id, or NAME@VERSION's latest (default: the previous run)."
        ),
    ] = None,
    psi_threshold: Annotated[
        float | None,
        typer.Option(help="PSI above this is drift (default: $SIGNALS_DRIFT_PSI, 0.2)."),
    ] = None,
    ks_threshold: Annotated[
        float | None,
        typer.Option(help="A KS gap above this is drift (default: $SIGNALS_DRIFT_KS, 0.1)."),
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when any feature drifted.")
    ] = False,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report (with plots).")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the Markdown table.")] = None,
) -> None:
    """Drift of a signal's latest committed values against the previous run (or another base)."""
    from features.profile import compare
    from jobs.profile_report import drift_rows, html_report
    from jobs.profile_report import markdown as drift_markdown
    from jobs.profiles import profiles_of

    settings = _settings()
    ref = get_signal(signal).ref
    found = profiles_of(settings, ref)
    if not found:
        raise SignalsError(f"{ref} has no profile yet", hint=f"run `signals extract {ref}`")
    new = found[0]
    if base is None:
        if len(found) < 2:
            raise SignalsError(f"{ref} has one profiled run: nothing to compare it with",
                               hint="pass --base NAME@VERSION to compare two versions")  # fmt: skip
        old = found[1]
    elif "@" in base:
        others = profiles_of(settings, get_signal(base).ref)
        if not others:
            raise SignalsError(f"{base} has no profile yet")
        old = others[0]
    else:
        matching = [p for p in found if p.run_id == base]
        if not matching:
            raise SignalsError(f"{ref} has no profiled run {base!r}",
                               details=[p.run_id for p in found[:5]])  # fmt: skip
        old = matching[0]
    thresholds = replace(
        settings.drift,
        psi=settings.drift.psi if psi_threshold is None else psi_threshold,
        ks=settings.drift.ks if ks_threshold is None else ks_threshold,
    )
    drifts = compare(old.profile, new.profile, thresholds)
    base_label, new_label = f"{old.signal} {old.run_id}", f"{new.signal} {new.run_id}"
    table = Table(box=None, header_style="bold")
    for column in ("feature", "PSI", "KS", "null rate", "drift"):
        table.add_column(column)
    for *cells, drifted in drift_rows(drifts):
        table.add_row(*cells, "[bold red]yes[/]" if drifted else "no")
    console.print(f"[bold]{ref}[/]: {base_label} → {new_label}", highlight=False)
    console.print(table)
    if html:
        html.write_text(html_report(ref, base_label, new_label, drifts, old.profile, new.profile))
        console.print(f"html report: {html}")
    if markdown:
        markdown.write_text(drift_markdown(ref, base_label, new_label, drifts))
        console.print(f"markdown: {markdown}")
    drifted = [d.feature for d in drifts if d.drifted]
    if fail_on_drift and drifted:
        err_console.print(f"error: {ref} drifted in {', '.join(drifted)}", highlight=False)
        raise typer.Exit(1)


app.add_typer(contracts_app, name="contracts")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
