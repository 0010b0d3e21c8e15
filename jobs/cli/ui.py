"""`signals ui`: Feast's web UI over the configured store, to find signals and who consumes them."""

from __future__ import annotations

from typing import Annotated

import typer

from jobs.cli.output import console, err_console, handles_errors
from jobs.settings import Settings


@handles_errors
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8888,
) -> None:
    """Feast's UI on the configured store: each signal's feature view with its description,
    owner, tags (`signal` is NAME@VERSION) and the feature services that consume it."""
    from jobs.serving.ui import REGISTRY_TTL_S, registered_views, run_ui, ui_store

    settings = Settings.from_env()
    store = ui_store(settings)
    views = registered_views(store)
    if not views:
        err_console.print(
            f"[yellow]warning:[/] the Feast registry of {settings.feast_repo} has no feature"
            f" views yet: run `signals materialize`; the UI shows them within {REGISTRY_TTL_S} s",
            highlight=False,
        )
    address = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    console.print(
        f"Feast UI on http://{address}:{port}/p/{store.project}: {len(views)} feature views",
        highlight=False,
        markup=False,  # `[::1]` is an address, not a style
    )
    run_ui(store, host, port)
