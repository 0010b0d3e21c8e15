"""`signals similar`: the items most like one item, from the vector index beside the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from features import SignalsError
from jobs.cli.options import TOKEN_OPTION, URL_OPTION
from jobs.cli.output import console, handles_errors
from jobs.settings import Settings


def parse_where(clauses: list[str]) -> dict[str, str | list[str]]:
    """`content_type=track`, `language=de,fr` → `{key: value or values}`."""
    where: dict[str, str | list[str]] = {}
    for clause in clauses:
        key, sep, value = clause.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SignalsError(f"--where {clause!r}: write KEY=VALUE, e.g. content_type=track")
        values = [v.strip() for v in value.split(",") if v.strip()]
        where[key.strip()] = values if len(values) > 1 else values[0]
    return where


@handles_errors
def similar(
    content_id: Annotated[
        str, typer.Argument(help="The item to find others like, e.g. track:000042.")
    ],
    signal: Annotated[str, typer.Option("--signal", help="A searchable signal, NAME@VERSION.")],
    k: Annotated[int, typer.Option("-k", help="How many neighbours.")] = 10,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="KEY=VALUE[,VALUE…] on content_type or language; repeatable."),
    ] = None,
    url: Annotated[str | None, URL_OPTION] = None,
    token: Annotated[str | None, TOKEN_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The items nearest to CONTENT_ID by a signal's searchable embedding (the item itself left
    out), nearest first."""
    from jobs.serving.similarity import similar as search

    rows = search(content_id, signal=signal, k=k, where=parse_where(where or []), url=url,
                  token=token, settings=Settings.from_env(), output="dicts")  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(box=None, header_style="bold")
    for column in ("rank", "content_id", "distance"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["rank"]), row["content_id"], f"{row['distance']:.4f}")
    console.print(table)
    if not rows:
        console.print("no neighbours: is the signal materialized, and do the filters match?")
