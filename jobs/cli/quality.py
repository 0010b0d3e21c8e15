"""`signals evaluate`, `annotate` and `profile`: how good the signals are, judged three ways."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from jobs.cli.output import EXIT_USER_ERROR, console, err_console, handles_errors
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.quality.annotation import QueueItem


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
    settings = Settings.from_env()
    if gold:
        _evaluate_gold(settings, signals or [], out)
        return
    from jobs.quality.evaluate import evaluate as run_evaluate
    from jobs.quality.evaluate import to_markdown

    scores = run_evaluate(settings)
    table = Table(box=None, header_style="bold")
    for column in ("signal", "measure", "metric", "value", "items", "bound", "ok"):
        table.add_column(column, justify="right" if column in ("value", "items") else "left")
    for s in scores:
        ok = "[green]yes[/]" if s.passed else "[red]no[/]"
        table.add_row(s.signal, s.measure, s.metric, f"{s.value:.3f}", str(s.n), s.bound, ok)
    console.print(table)
    _write(out or Path(settings.lake_path("reports", "evaluation.md")), to_markdown(scores))


def _evaluate_gold(settings: Settings, names: list[str], out: Path | None) -> None:
    from jobs.quality.agreement import agreement_markdown, gold_agreement, share

    scores = gold_agreement(settings, names)
    table = Table(box=None, header_style="bold")
    for column in ("signal", "label", "items", "agreement", "precision", "recall"):
        table.add_column(column, justify="left" if column in ("signal", "label") else "right")
    for a in scores:
        table.add_row(a.signal, a.field, str(a.items), share(a.agreement), share(a.precision),
                      share(a.recall))  # fmt: skip
    console.print(table)
    _write(
        out or Path(settings.lake_path("reports", "gold-agreement.md")), agreement_markdown(scores)
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    console.print(f"wrote {path}")


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
    from jobs.quality.annotation import catalog_texts, decide, label_fields, open_items

    settings = Settings.from_env()
    items = open_items(settings, signal)[:limit]
    if not items:
        console.print("nothing to review")
        return
    texts = catalog_texts(settings, [i.content_id for i in items])
    decisions: dict[str, int] = {}
    for n, item in enumerate(items, 1):
        fields = label_fields(item.signal)
        _show_item(n, len(items), item, texts.get(item.content_id, {}), fields)
        choice = _ask("[a]ccept, [c]orrect, [s]kip or [q]uit", ["a", "c", "s", "q"], "a")
        if choice == "q":
            break
        labels = {k: v for k, v in item.proposed.items() if k in fields}
        if choice == "c":
            labels = _corrected(fields, labels)
        decision = decide(settings, item, None if choice == "s" else labels, annotator)
        decisions[decision] = decisions.get(decision, 0) + 1
        console.print(f"→ {decision}", highlight=False)
    done = ", ".join(f"{v} {k}" for k, v in decisions.items()) or "nothing decided"
    console.print(f"{done}; {len(open_items(settings, signal))} still open")


def _show_item(
    n: int, total: int, item: QueueItem, text: dict[str, Any], fields: dict[str, tuple[str, ...]]
) -> None:
    from features import get_signal

    table = Table(box=None, header_style="bold")
    for column in ("label", item.signal, "compared with"):
        table.add_column(column)
    for field in fields:
        table.add_row(field, str(item.proposed.get(field)), str(item.compared.get(field, "")))
    console.rule(f"{n}/{total}  {item.content_id}  ({text.get('content_type', '?')})")
    console.print(f"[bold]{text.get('title', '')}[/]", highlight=False)
    console.print(text.get("description") or "", highlight=False)
    media = get_signal(item.signal).tags.get("media")  # what a person must look at, if any
    if media and text.get(media):
        console.print(f"{media}: {text[media]}", highlight=False)
    console.print(table)
    console.print(f"why: {item.reason}", highlight=False)


def _ask(question: str, choices: list[str], default: str) -> str:
    while True:
        answer = typer.prompt(question, default=default).strip()
        if answer in choices:
            return answer
        err_console.print(f"one of: {', '.join(choices)}")


def _corrected(fields: dict[str, tuple[str, ...]], labels: dict[str, Any]) -> dict[str, str | None]:
    """Ask for each label, the model's as the default; `-` means the item has none."""
    corrected: dict[str, str | None] = {}
    for field, allowed in fields.items():
        current = labels.get(field) or "-"
        answer = _ask(f"{field} ({', '.join(allowed)}, or -)", [*allowed, "-"], current)
        corrected[field] = None if answer == "-" else answer
    return corrected


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
    from jobs.quality.drift import drift_of
    from jobs.quality.drift_report import drift_rows, html_report
    from jobs.quality.drift_report import markdown as drift_markdown

    done = drift_of(Settings.from_env(), signal, base, psi=psi_threshold, ks=ks_threshold)
    table = Table(box=None, header_style="bold")
    for column in ("feature", "PSI", "KS", "null rate", "drift"):
        table.add_column(column)
    for *cells, drifted in drift_rows(done.drifts):
        table.add_row(*cells, "[bold red]yes[/]" if drifted else "no")
    console.print(f"[bold]{done.signal}[/]: {done.base_label} → {done.new_label}", highlight=False)
    console.print(table)
    labels = (done.signal, done.base_label, done.new_label, done.drifts)
    if html:
        html.write_text(html_report(*labels, done.base.profile, done.new.profile))
        console.print(f"html report: {html}")
    if markdown:
        markdown.write_text(drift_markdown(*labels))
        console.print(f"markdown: {markdown}")
    if fail_on_drift and done.drifted:
        err_console.print(f"error: {done.signal} drifted in {', '.join(done.drifted)}",
                          highlight=False)  # fmt: skip
        raise typer.Exit(EXIT_USER_ERROR)
