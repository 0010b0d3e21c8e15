"""What every `signals` command prints through: the consoles, progress bars, the tables several
commands share, and errors without tracebacks — with an exit code that says whether to retry."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features import SignalsError

# Piped output (CI logs, `| tee`) gets a wide console instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

EXIT_USER_ERROR = 1  # fix the input, the settings or the data first; the same call fails again
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: nothing was half-done; run the same command again later

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(error: SignalsError) -> int:
    """The exit code of an error a command raised on purpose: a scheduler retries on 75 only."""
    return EXIT_TRANSIENT if error.retryable else EXIT_USER_ERROR


def handles_errors(fn: F) -> F:
    """A user error prints its reason and exits 1, a transient failure 75; only a bug shows a
    traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SignalsError as exc:
            err_console.print(f"[bold red]error:[/] {exc.render()}", highlight=False)
            raise typer.Exit(exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]


def progress() -> Progress:
    """The progress bar of a long job, on stderr so that piped output stays the result."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def run_table(records: list[Any]) -> Table:
    """Runs as the jobs that made them print them: one row per run, its counts and status."""
    table = Table(box=None, header_style="bold")
    counts = ("read", "unchanged", "skipped", "extracted", "quarantined", "removed")
    for column in ("signal", "run", *counts, "status"):
        table.add_column(column, no_wrap=True, justify="right" if column in counts else "left")
    for r in records:
        table.add_row(r.signal, r.run_id, *(str(getattr(r, c)) for c in counts), r.status)
    return table


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


def print_materialized(done: Any) -> None:
    """What a materialization loaded, and the removed items it deleted from the online store."""
    console.print(f"materialized {', '.join(done.views) or 'nothing'}")
    for view, count in done.deleted.items():
        console.print(f"  {view}: {count} removed items deleted from the online store")


def short(value: Any) -> str:
    """A served value in one cell: the head of a vector and its length, 4 digits of a float."""
    if isinstance(value, list):
        head = ", ".join(f"{v:.3f}" for v in value[:3])
        return f"[{head}, …] ({len(value)})"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def human_days(days: float) -> str:
    """`1 day`, `7 days`."""
    return f"{days:g} day" + ("" if days == 1 else "s")
