"""`signals materialize`, `get`, `serve` and `training-set`: signals to the people who use them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from features import SignalsError, get_signal
from features.registry import service_signals
from features.standard import SERVED_AT
from jobs.cli.options import AS_OF_OPTION, TOKEN_OPTION, URL_OPTION
from jobs.cli.output import console, handles_errors, print_materialized, short
from jobs.settings import Settings


@handles_errors
def materialize(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to load (default: all).")
    ] = None,
) -> None:
    """Apply the Feast repository and load new signal history into the online store."""
    from jobs.serving.materialize import materialize as run_materialize

    chosen = [get_signal(s) for s in signals] if signals else None
    with console.status("materializing into the online store"):
        done = run_materialize(Settings.from_env(), chosen)
    print_materialized(done)


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
    url: Annotated[str | None, URL_OPTION] = None,
    token: Annotated[str | None, TOKEN_OPTION] = None,
) -> None:
    """Serve signals for content IDs from the online store or a feature server — or, with
    --as-of, what was served then, read from the lake's history."""
    from jobs.serving.client import served_values
    from jobs.serving.errors import NotServedError

    if signal and service:
        raise SignalsError("use --signal or --service, not both")
    chosen = [get_signal(s) for s in signal] if signal else None
    if service is not None:
        chosen = list(service_signals(service))
    values = served_values(Settings.from_env(), content_ids, chosen, as_of, url, token)
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
        source = (
            f"as served at {as_of}, from the lake"
            if as_of is not None
            else f"served by {url}"
            if url
            else "served from the online store"
        )
        for cid, per_id in zip(content_ids, values, strict=True):
            if not per_id:
                continue
            console.print(f"[bold]{cid}[/] — {source}", highlight=False)
            table = Table(box=None, show_header=False, pad_edge=False)
            for ref, feats in per_id.items():
                shown = " · ".join(
                    short(v) if len(feats) == 2 else f"{k} {short(v)}"
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


@handles_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6566,
    no_access_log: Annotated[bool, typer.Option("--no-access-log")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="SIGNALS_SERVE_WORKERS",
            help="Server processes sharing the port, each with its own store: about one per"
            " core, as one Python process serves on about one core.",
        ),
    ] = 1,
) -> None:
    """Feast's HTTP feature server (POST /get-online-features) on the configured online store."""
    from jobs.serving.server import run_server

    run_server(Settings.from_env(), host, port, access_log=not no_access_log, workers=workers)


@handles_errors
def training_set(
    entities: Annotated[
        Path, typer.Argument(help="Parquet or CSV: content_id, event_timestamp, any labels.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="A folder for the training set: Parquet parts (part-000000.parquet, ...); read it"
            " as one dataset. An earlier training set there is replaced."
        ),
    ],
    service: Annotated[str | None, typer.Option(help="The feature service to join.")] = None,
    signal: Annotated[
        list[str] | None, typer.Option("--signal", help="Or these signals (NAME@VERSION).")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Where the join runs: local (one process, parts in the entity file's order) or"
            " ray (Ray tasks by entity key, each part in the entity file's order). Default:"
            " $SIGNALS_TRAINING_SET_ENGINE, else local."
        ),
    ] = None,
) -> None:
    """A point-in-time-correct training set: each row gets the values served at its timestamp."""
    from jobs.serving.training_set import build_training_set

    with console.status("point-in-time join over the Delta history"):
        done = build_training_set(
            Settings.from_env(), entities, out, service=service, signals=signal, engine=engine
        )
    console.print(f"wrote {done.rows} rows × {len(done.features)} features to {done.path}")
    for name, count in done.filled.items():
        console.print(f"  {name}: {count} of {done.rows} rows have a value", highlight=False)
