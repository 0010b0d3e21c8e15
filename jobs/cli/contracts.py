"""`signals contracts …`: review, gate, show and export the declared signals' contracts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from features import SignalsError
from jobs.cli.output import console, handles_errors
from jobs.quality.contracts import WORKTREE, load_catalog, select_contracts

if TYPE_CHECKING:
    from features.review import Change

contracts_app = typer.Typer(
    help="Feature contracts: review changes between revisions, gate breaking ones, export.",
    no_args_is_help=True,
)

HEAD_OPTION = typer.Option(help="The changed side: a git revision, WORKTREE, or a contracts file.")


def _review_table(changes: list[Change]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("severity", "rule", "change", "consumers"):
        table.add_column(column)
    colours = {"breaking": "red", "compatible": "green", "metadata": "blue"}
    for c in changes:
        colour = colours[c.severity.value]
        table.add_row(f"[{colour}]{c.severity.value}[/]", c.rule.name, c.what,
                      ", ".join(c.consumers))  # fmt: skip
    return table


@contracts_app.command()
@handles_errors
def diff(
    base: Annotated[str, typer.Argument(help="Git revision, WORKTREE, or a contracts file.")],
    head: Annotated[str, HEAD_OPTION] = WORKTREE,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the review as Markdown (a PR comment).")
    ] = None,
) -> None:
    """Every contract change from BASE to HEAD, classified: breaking, compatible or metadata."""
    from features.review import diff_catalogs, to_markdown

    changes = diff_catalogs(load_catalog(base), load_catalog(head))
    if not changes:
        console.print(f"no contract changes between {base} and {head}")
    else:
        console.print(_review_table(changes))
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(to_markdown(changes, base, head))
        console.print(f"markdown review: {markdown}")


@contracts_app.command()
@handles_errors
def check(
    base: Annotated[str, typer.Option(help="The revision the change is compared with.")],
    head: Annotated[str, HEAD_OPTION] = WORKTREE,
) -> None:
    """Exit non-zero when a breaking change comes without a new major version (the CI gate)."""
    from features.review import breaking, diff_catalogs, fix_for

    changes = diff_catalogs(load_catalog(base), load_catalog(head))
    refused = breaking(changes)
    if refused:
        raise SignalsError(
            f"{len(refused)} breaking contract change(s) from {base} to {head}",
            details=[f"{c.rule.name}: {c.what} — {c.rule.doc} Fix: {fix_for(c)}." for c in refused],
            hint="a breaking change lands as a new major version; see `signals contracts diff`",
        )
    console.print(f"contracts: no breaking change from {base} to {head} ({len(changes)} other)")


@contracts_app.command()
@handles_errors
def export(
    format: Annotated[
        str, typer.Option("--format", help="json (this project's), jsonschema, or odcs (YAML).")
    ] = "json",
    signal: Annotated[str | None, typer.Option(help="Only this signal, NAME[@VERSION].")] = None,
    out: Annotated[
        Path | None, typer.Option(help="A folder: one file per signal (default: stdout).")
    ] = None,
) -> None:
    """Export the declared contracts: `json` is what `contracts diff/check` read back; JSON
    Schema and Open Data Contract Standard are for tools outside the project."""
    from jobs.quality.contracts import export_documents

    for name, text in export_documents(load_catalog(WORKTREE), format, signal):
        _emit(text, out / name if out else None)


def _emit(text: str, path: Path | None) -> None:
    if path is None:
        typer.echo(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")
    console.print(f"wrote {path}")


@contracts_app.command()
@handles_errors
def show(
    signal: Annotated[str, typer.Argument(help="NAME[@VERSION] (default: the newest version).")],
) -> None:
    """One contract, readably: who owns and consumes it, what computes it, every column's rules."""
    ((ref, c),) = select_contracts(load_catalog(WORKTREE), signal).items()
    console.print(f"[bold]{ref}[/]  {c['description']}", highlight=False)
    console.print(
        f"owner {c['owner']} · consumers {', '.join(c['consumers']) or '—'} · "
        f"entity {c['entity']} by {', '.join(c['key'])} · ttl {c['ttl_seconds'] // 86400} days\n"
        f"extractor {c['extractor']} (code version {c['extractor_version'] or 'unknown'})",
        highlight=False,
    )
    table = Table(box=None, header_style="bold")
    for column in ("feature", "type", "null", "checks", "description"):
        table.add_column(column)
    for name, column in c["features"].items():
        checks = ", ".join(f"{k}={v}" for k, v in column["checks"].items())
        table.add_row(name, column["arrow_type"], "nullable" if column["nullable"] else "required",
                      checks, column["description"])  # fmt: skip
    console.print(table)
