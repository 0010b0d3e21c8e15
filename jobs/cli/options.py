"""Options several command groups share, so that they read and parse the same everywhere."""

from __future__ import annotations

import typer

AS_OF_OPTION = typer.Option(
    "--as-of", help="Read the lake as of a table version (12) or a time (2026-11-25T10:00Z)."
)
URL_OPTION = typer.Option("--url", help="Ask a running feature server (`signals serve`) instead.")
TOKEN_OPTION = typer.Option(
    "--token", help="Bearer token for --url (default: SIGNALS_TOKEN).", show_default=False
)
