"""The runs table (`lake/_runs`): one row per job run — counts, snapshot version, status, lineage."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from features.standard import TIMESTAMP
from jobs.lake.tables import latest_per_key, read_table, write_table
from jobs.settings import Settings

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),
        pa.field("signal", pa.string(), nullable=True),
        pa.field("snapshot_uri", pa.string(), nullable=True),
        pa.field("snapshot_version", pa.int64(), nullable=True),
        pa.field("extractor_version", pa.string(), nullable=True),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("finished_at", TIMESTAMP, nullable=False),
        pa.field("read", pa.int64(), nullable=False),
        pa.field("skipped", pa.int64(), nullable=False),
        pa.field("unchanged", pa.int64(), nullable=True),
        pa.field("extracted", pa.int64(), nullable=False),
        pa.field("quarantined", pa.int64(), nullable=False),
        pa.field("removed", pa.int64(), nullable=True),
        pa.field("signal_table_version", pa.int64(), nullable=True),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=True),
        # What the run spent, as JSON: LLM calls, tokens in and out, cache hits (paid extractors).
        pa.field("usage", pa.string(), nullable=True),
    ]
)


@dataclass
class RunRecord:
    """What one run did, as it is stored and as the CLI prints it."""

    run_id: str
    job: str
    started_at: datetime
    finished_at: datetime
    status: str
    signal: str | None = None
    snapshot_uri: str | None = None
    snapshot_version: int | None = None
    extractor_version: str | None = None
    read: int = 0  # rows of the snapshot
    skipped: int = 0  # rows the signal does not apply to (no audio for loudness)
    unchanged: int = 0  # rows whose input hash was already stored: not recomputed
    extracted: int = 0
    quarantined: int = 0
    removed: int = 0  # items that left the catalog: a tombstone each
    signal_table_version: int | None = None
    error: str | None = None
    reasons: dict[str, int] = field(
        default_factory=dict
    )  # not stored: the quarantine table has them
    usage: dict[str, int] = field(default_factory=dict)  # stored as JSON; empty for free runs
    queued_for_review: int = 0  # not stored: the annotation queue has them

    @property
    def computed(self) -> int:
        """Rows this run tried to compute: read, less the skipped and the unchanged ones."""
        return self.read - self.skipped - self.unchanged

    @property
    def quarantine_rate(self) -> float:
        """Share of the rows this run tried to compute that were quarantined."""
        return self.quarantined / self.computed if self.computed else 0.0


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: `<UTC time>-<random>`."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def record_run(settings: Settings, *records: RunRecord) -> None:
    """Append the runs' rows in one commit; the lineage every signal row points back to through
    `run_id`."""
    rows = [
        {k: v for k, v in asdict(r).items() if k in RUNS_SCHEMA.names}
        | {"usage": json.dumps(r.usage) if r.usage else None}
        for r in records
    ]
    write_table(
        settings.runs_uri,
        pa.Table.from_pylist(rows, schema=RUNS_SCHEMA),
        storage_options=settings.storage_options,
    )


def list_runs(settings: Settings, limit: int | None = None) -> pa.Table:
    """Runs, newest first, each as its last record says (a run is recorded when it starts, as
    "running", and again when it ends; one that died stays "running")."""
    records = read_table(
        settings.runs_uri, storage_options=settings.storage_options, if_missing=RUNS_SCHEMA
    )
    last = latest_per_key(records, key="run_id", order=("finished_at",))
    runs = last.sort_by([("started_at", "descending"), ("run_id", "descending")])
    return runs.slice(0, limit) if limit else runs
