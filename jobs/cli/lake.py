"""`signals runs`, `lineage`, `history`, `compact` and `vacuum`: the lake's record and upkeep."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from jobs.cli.options import AS_OF_OPTION
from jobs.cli.output import console, handles_errors, usage_line
from jobs.settings import Settings


@handles_errors
def lineage(
    content_id: Annotated[str, typer.Argument(help="The item, e.g. track:000042.")],
    signal: Annotated[str, typer.Argument(help="The signal, NAME@VERSION.")],
    as_of: Annotated[str | None, AS_OF_OPTION] = None,
) -> None:
    """Which run, snapshot version and extractor produced the value being served (and before)."""
    from jobs.lake.lineage import item_history
    from jobs.lake.maintenance import resolve_as_of

    origins = item_history(Settings.from_env(), content_id, signal, as_of and resolve_as_of(as_of))
    console.print(f"[bold]{content_id}[/] · {origins[0].signal}", highlight=False)
    for i, o in enumerate(origins):
        # One line per value, soft-wrapped: a table would truncate run ids and URIs on a
        # narrow terminal, and these are what people copy.
        mark = "removed" if o.removed else ("served" if i == 0 else "earlier")
        snapshot = (
            f"{o.snapshot_uri}@{o.snapshot_version}" if o.snapshot_uri else "(run not recorded)"
        )
        fields = {
            "run": o.run_id,
            "snapshot": snapshot,
            "extractor": o.extractor_version,
            "input_hash": o.input_hash[:12],
            "input_updated": f"{o.input_updated_at:%Y-%m-%dT%H:%M}" if o.input_updated_at else "",
        }
        line = "  ".join(f"{k}={v}" for k, v in fields.items())
        console.print(
            f"{mark:<8}{o.event_timestamp:%Y-%m-%d %H:%M:%S}Z  {line}",
            soft_wrap=True,
            highlight=False,
        )


@handles_errors
def history(
    signal: Annotated[str, typer.Argument(help="The signal, NAME@VERSION.")],
    limit: Annotated[int, typer.Option(help="How many versions to show.")] = 20,
) -> None:
    """The signal table's versions, newest first: which run or maintenance job made each."""
    from jobs.lake.maintenance import history as table_history

    table = Table(box=None, header_style="bold")
    columns = ("version", "timestamp", "operation", "job", "run_id", "snapshot_version",
               "rows_added", "files_added", "files_removed")  # fmt: skip
    for column in columns:
        table.add_column(column, no_wrap=True)
    for commit in table_history(Settings.from_env(), signal, limit):
        commit["timestamp"] = f"{commit['timestamp']:%Y-%m-%d %H:%M:%S}Z"
        table.add_row(*("" if commit[c] is None else str(commit[c]) for c in columns))
    console.print(table)


@handles_errors
def compact(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to compact (default: all with a table).")
    ] = None,
    z_order: Annotated[
        bool, typer.Option(help="Z-order on content_id, so lookups skip most files.")
    ] = True,
) -> None:
    """Rewrite each signal table's small files into few large ones (a new version, same rows)."""
    from jobs.lake.maintenance import compact as compact_table
    from jobs.lake.maintenance import signals_with_tables

    settings = Settings.from_env()
    for ref in signals_with_tables(settings, signals):
        done = compact_table(settings, ref, z_order=z_order)
        console.print(
            f"{ref}: {done.files_removed} files → {done.files_added} "
            f"(version {done.version_before} → {done.version_after})",
            highlight=False,
        )


@handles_errors
def vacuum(
    signals: Annotated[
        list[str] | None, typer.Argument(help="Signals to vacuum (default: all with a table).")
    ] = None,
    retention_hours: Annotated[
        int, typer.Option(help="Keep files that versions of the last N hours need.")
    ] = 168,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--delete", help="List the files, or delete them.")
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Allow a retention under the table's minimum (no job running!).")
    ] = False,
) -> None:
    """Delete files no version within the retention needs, and crashed runs' leftover parts.

    A dry run unless told `--delete`.
    """
    from jobs.lake.maintenance import signals_with_tables
    from jobs.lake.maintenance import vacuum as vacuum_tables

    settings = Settings.from_env()
    for ref in signals_with_tables(settings, signals):
        done = vacuum_tables(
            settings, ref, retention_hours=retention_hours, dry_run=dry_run, force=force
        )
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{ref}: {verb} {done.total} files", highlight=False)
        for files in done.files.values():
            for name in files:
                console.print(f"  {name}", highlight=False)
    if dry_run:
        console.print("dry run: nothing deleted; `--delete` deletes them")


@handles_errors
def runs(limit: Annotated[int, typer.Option(help="How many runs to show.")] = 20) -> None:
    """Recent job runs: counts, snapshot version, status, and what paid extractors spent."""
    from jobs.lake.runs import list_runs

    table = Table(box=None, header_style="bold")
    columns = ("run_id", "signal", "snapshot_version", "read", "unchanged", "skipped",
               "extracted", "quarantined", "removed", "status")  # fmt: skip
    rows = list_runs(Settings.from_env(), limit).to_pylist()
    spent = any(row.get("usage") for row in rows)  # paid extractors ran: show what they cost
    for column in (*columns, "cost") if spent else columns:
        table.add_column(column)
    for row in rows:
        cells = ["" if row[c] is None else str(row[c]) for c in columns]
        usage = json.loads(row.get("usage") or "{}")
        table.add_row(*cells, *([usage_line(usage) if usage else ""] if spent else []))
    console.print(table)
