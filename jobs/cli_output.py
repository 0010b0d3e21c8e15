"""What every `signals` command prints through: the consoles, and user errors without tracebacks."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from features import SignalsError

# Piped output (CI logs, `| tee`) gets a wide console instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(fn: F) -> F:
    """A user error prints its reason and exits 1; only a bug shows a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SignalsError as exc:
            err_console.print(f"[bold red]error:[/] {exc.render()}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
