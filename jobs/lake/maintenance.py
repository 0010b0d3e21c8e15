"""Delta table maintenance: compact, vacuum, history and time travel (`--as-of`) for signal tables.

Every extract run adds a few small files to a signal table and every commit a log entry: reads get
slower as files pile up, and crashed runs leave Parquet parts that no commit names. Compaction
rewrites small files into large ones (a new version; the old files stay for time travel), vacuum
deletes what no version within the retention window needs, and history / `--as-of` let a person see
and read what the table held at a given moment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.transaction import CommitProperties

from features.registry import all_signals, get_signal
from features.signal import Signal
from features.standard import JOIN_KEY
from jobs.lake.errors import AsOfError, MissingTableError, RetentionTooShortError
from jobs.lake.state import state_tables
from jobs.lake.tables import open_table, table_exists
from jobs.settings import Settings

# Keys our jobs put into a commit's custom metadata (see `jobs.lake.parts.commit_parts`); delta-rs
# stores them at the top level of the log's `commitInfo`, beside its own keys.
COMMIT_METADATA_KEYS = ("run_id", "job", "signal", "snapshot_version")
AS_OF_HINT = (
    "give a table version (12) or an ISO-8601 date or time, UTC unless it says otherwise "
    "(2026-11-25, 2026-11-25T10:00:00Z, 2026-11-25 10:00+01:00)"
)
_VERSION = re.compile(r"[0-9]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CompactResult:
    """What one compaction did, as delta-rs reports it."""

    files_added: int
    files_removed: int
    version_before: int
    version_after: int  # equal to version_before when there was nothing to rewrite


@dataclass(frozen=True)
class VacuumResult:
    """The files a vacuum deleted (or, on a dry run, would delete), per table URI."""

    dry_run: bool
    retention_hours: int
    files: Mapping[str, tuple[str, ...]]

    @property
    def total(self) -> int:
        return sum(len(f) for f in self.files.values())


def _commit_properties(job: str, signal: Signal) -> CommitProperties:
    return CommitProperties(custom_metadata={"job": job, "signal": signal.ref})


def _no_table(settings: Settings, signal: Signal) -> MissingTableError:
    return MissingTableError(
        f"{signal.ref} has no table yet",
        details=[settings.signal_uri(signal.storage_name)],
        hint=f"run `signals extract {signal.ref}` first",
    )


def _signal_table(settings: Settings, signal: Signal) -> DeltaTable:
    table = open_table(settings.signal_uri(signal.storage_name), settings.storage_options)
    if table is None:
        raise _no_table(settings, signal)
    return table


def compact(settings: Settings, signal_ref: str, *, z_order: bool = True) -> CompactResult:
    """Rewrite a signal table's small files into few large ones, in a new table version.

    Each run appends its own files, so lookups by content ID open ever more files; Z-ordering on
    `content_id` also clusters the IDs so that file statistics let readers skip most files. The
    rows do not change, and the replaced files stay on disk for time travel until a vacuum.
    """
    signal = get_signal(signal_ref)
    table = _signal_table(settings, signal)
    before = table.version()
    props = _commit_properties("compact", signal)
    if z_order:
        metrics = table.optimize.z_order([JOIN_KEY], commit_properties=props)
    else:
        metrics = table.optimize.compact(commit_properties=props)
    return CompactResult(
        files_added=metrics["numFilesAdded"],
        files_removed=metrics["numFilesRemoved"],
        version_before=before,
        version_after=table.version(),
    )


def vacuum(
    settings: Settings,
    signal_ref: str,
    *,
    retention_hours: int = 168,
    dry_run: bool = True,
    force: bool = False,
) -> VacuumResult:
    """Delete the files of a signal's table, quarantine table and state tables (`state`) that
    no recent version needs.

    That is files replaced (by compaction) longer than `retention_hours` ago, and Parquet parts of
    crashed runs that no commit names, written longer ago than that. Time travel to a version
    older than the retention breaks once its files are gone, so delta-rs refuses a retention
    under the table's configured minimum (`delta.deletedFileRetentionDuration`, 7 days unless
    set). `force` lifts that guard; it also deletes the uncommitted parts of a run still in
    progress, so use it only when no job writes to the signal.
    """
    if retention_hours < 0:
        raise RetentionTooShortError(f"retention of {retention_hours} hours: it cannot be negative")
    signal = get_signal(signal_ref)
    uris = (
        settings.signal_uri(signal.storage_name),
        settings.quarantine_uri(signal.storage_name),
        *state_tables(settings, signal.storage_name),
    )
    tables = {u: t for u in uris if (t := open_table(u, settings.storage_options)) is not None}
    if not tables:
        raise _no_table(settings, signal)
    files: dict[str, tuple[str, ...]] = {}
    for uri, table in tables.items():
        try:
            # `full`: the default ("lite") vacuum only deletes files the log marks as removed,
            # never the parts of crashed runs, which no log entry names.
            deleted = table.vacuum(
                retention_hours=retention_hours,
                dry_run=dry_run,
                enforce_retention_duration=not force,
                full=True,
                commit_properties=_commit_properties("vacuum", signal),
            )
        except DeltaError as exc:
            if "retention period" not in str(exc).lower():
                raise
            raise RetentionTooShortError(
                f"{signal.ref}: a retention of {retention_hours} hours is under the table's minimum",
                details=[str(exc)],
                hint=(
                    "a shorter retention deletes files that readers of older versions and "
                    "`--as-of` need; pass --force only when no job is writing to this signal"
                ),
            ) from exc
        files[uri] = tuple(deleted)
    return VacuumResult(dry_run=dry_run, retention_hours=retention_hours, files=files)


def _commits(table: DeltaTable, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits, newest first, in the shape `history` documents."""
    commits = []
    for info in table.history(limit):
        metrics = info.get("operationMetrics") or {}
        commits.append(
            {
                "version": info["version"],
                "timestamp": _EPOCH + timedelta(milliseconds=info["timestamp"]),
                "operation": info.get("operation"),
                **{key: info.get(key) for key in COMMIT_METADATA_KEYS},
                # delta-rs names its metrics per operation: writes in snake_case, optimize in
                # camelCase; our own commits (`parts.commit_parts`) put theirs in custom metadata.
                "rows_added": metrics.get("num_added_rows", info.get("rows")),
                "files_added": metrics.get(
                    "num_added_files", metrics.get("numFilesAdded", info.get("files"))
                ),
                "files_removed": metrics.get(
                    "num_removed_files",
                    metrics.get("numFilesRemoved", metrics.get("numDeletedFiles")),
                ),
            }
        )
    return commits


def history(settings: Settings, signal_ref: str, limit: int | None = None) -> list[dict[str, Any]]:
    """A signal table's commits, newest first: which run (or maintenance job) made each version.

    Keys: version, timestamp (UTC), operation, run_id, job, signal, snapshot_version, rows_added,
    files_added, files_removed; None where a commit does not say. This is the lineage a person
    needs to pick an `--as-of` version, or to tie a served value back to the run that wrote it.
    """
    return _commits(_signal_table(settings, get_signal(signal_ref)), limit)


def resolve_as_of(value: str) -> int | datetime:
    """Parse an `--as-of` value: a table version, or a moment as a timezone-aware UTC datetime.

    Naive times are read as UTC (every time in the lake is UTC), and a bare date means its
    midnight, so `--as-of 2026-11-25` reads the table as it was when that day began.
    """
    text = value.strip()
    if _VERSION.fullmatch(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AsOfError(
            f"--as-of {value!r} is neither a table version nor a time", hint=AS_OF_HINT
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def open_as_of(
    uri: str,
    as_of: int | datetime | None,
    storage_options: dict[str, str] | None = None,
) -> DeltaTable:
    """The table at `uri` as it was at a version or a moment (the latest when `as_of` is None).

    A moment maps to the newest commit made at or before it, by the commit timestamps `history`
    shows. delta-rs's own time travel goes by the log files' modification times instead: those
    differ from the commit timestamps by a few milliseconds either way and are reset when a lake
    is copied, so a time read off `signals history` could land on a neighbouring version.
    """
    table = open_table(uri, storage_options)
    if table is None:
        raise MissingTableError(f"no Delta table at {uri}")
    if as_of is None:
        return table
    commits = _commits(table)
    newest, oldest = commits[0], commits[-1]
    if isinstance(as_of, datetime):
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        version = next((c["version"] for c in commits if c["timestamp"] <= moment), None)
    else:
        version = as_of if oldest["version"] <= as_of <= newest["version"] else None
    if version is None:
        wanted = f"as of {as_of.isoformat()}" if isinstance(as_of, datetime) else str(as_of)
        raise AsOfError(
            f"{uri} has no version {wanted}",
            details=[
                f"versions {oldest['version']} to {newest['version']}",
                f"committed from {oldest['timestamp'].isoformat()} "
                f"to {newest['timestamp'].isoformat()}",
            ],
            hint="`signals history SIGNAL` lists every version with its time",
        )
    table.load_as_version(version)
    return table


def signals_with_tables(settings: Settings, refs: list[str] | None = None) -> list[str]:
    """The named signals (NAME@VERSION), or every declared signal that has a table in the lake:
    what a maintenance command covers when it is given none."""
    if refs:
        return [get_signal(r).ref for r in refs]
    return [
        s.ref
        for s in all_signals()
        if table_exists(settings.signal_uri(s.storage_name), settings.storage_options)
    ]
