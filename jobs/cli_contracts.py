"""`signals contracts …`: review, gate, show and export the declared signals' contracts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from features import SignalsError
from jobs.cli_output import console, handles_errors
from jobs.contracts import WORKTREE, load_catalog

contracts_app = typer.Typer(
    help="Feature contracts: review changes between revisions, gate breaking ones, export.",
    no_args_is_help=True,
)

HEAD_OPTION = typer.Option(help="The changed side: a git revision, WORKTREE, or a contracts file.")


def _review_table(changes: list) -> Table:  # list[Change]
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
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Every declared contract as JSON: a file that `contracts diff` and `check` accept."""
    text = json.dumps(load_catalog(WORKTREE), indent=2)
    if out:
        out.write_text(text + "\n")
    else:
        typer.echo(text)
