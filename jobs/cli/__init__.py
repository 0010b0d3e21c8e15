"""`signals`: the command line, in the words of the people who use the store.

One module per command group, each command a thin function — parse the arguments, call one
library function of a room, print — joined here in one list, in the order `signals --help` shows
them. Every room may be imported from here; nothing outside `jobs.cli` imports it.

Exit codes: 0 done; 1 a user error (fix the input, settings or data first; the message says
what), or a check that failed (`contracts check`, `profile --fail-on-drift`); 75 a transient
failure (an online store, feature server or cluster that could not be reached, a commit race lost:
nothing was half-done, run the same command again). A traceback is a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from jobs.cli import catalog, cluster, compute, demo, lake, quality, serving, similarity, ui
from jobs.cli.contracts import contracts_app

app = typer.Typer(
    name="signals",
    help="Content signals: compute, store and serve machine-readable understanding of a catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
    ("list", catalog.list_signals, {}),
    ("sample", catalog.sample, {}),
    ("extract", compute.extract, {}),
    ("backfill", compute.backfill, {}),
    ("near-duplicates", compute.near_duplicates, {}),
    ("materialize", serving.materialize, {}),
    ("get", serving.get, {}),
    ("similar", similarity.similar, {}),
    ("serve", serving.serve, {}),
    ("ui", ui.ui, {}),
    # The job's own flags pass through to the cluster untouched.
    ("submit", cluster.submit, {"allow_extra_args": True, "ignore_unknown_options": True}),
    ("training-set", serving.training_set, {}),
    ("evaluate", quality.evaluate, {}),
    ("annotate", quality.annotate, {}),
    ("lineage", lake.lineage, {}),
    ("history", lake.history, {}),
    ("compact", lake.compact, {}),
    ("vacuum", lake.vacuum, {}),
    ("runs", lake.runs, {}),
    ("demo", demo.demo, {}),
    ("profile", quality.profile, {}),
]
for name, command, context in COMMANDS:
    app.command(name, context_settings=context or None)(command)
app.add_typer(contracts_app, name="contracts")


def main() -> None:
    """Console-script entry point."""
    app()
