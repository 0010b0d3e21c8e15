"""The extract job: catalog snapshot → Ray Data → extractor actors → contract → one Delta commit.

    python -m jobs.extract text_embedding@1 --snapshot lake/catalog

Each actor loads the extractor once, checks catalog rows, computes features, validates them against
the signal's contract and writes Parquet parts for the good rows and for the quarantined ones. The
driver only sees part metadata (streaming; nothing collected), then commits each table once,
tagged with the run id, and records the run.
"""

from __future__ import annotations

import importlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from extractors.base import ERROR_COLUMN, Extractor
from extractors.device import pick_device, set_cpu_threads
from features import get_signal
from features.catalog import CATALOG_CONTRACT, check_snapshot_schema
from features.contract_doc import contract_document
from features.contract_export import answer_schema
from features.errors import SignalsError
from features.signal import Signal
from features.standard import (
    QUARANTINE_SCHEMA,
    STAGE_CATALOG,
    STAGE_EXTRACT,
    STAGE_SIGNAL,
    TIMESTAMP,
)
from features.validation import split_valid
from jobs.annotation import enqueue
from jobs.errors import QuarantineThresholdError, SnapshotNotFoundError
from jobs.failpoints import BEFORE_COMMIT, BEFORE_RUN_RECORD, BETWEEN_COMMITS, failpoint
from jobs.lake import Part, commit_parts, has_committed, open_table, write_part
from jobs.llm_tools import LLMTools
from jobs.outcomes import GONE, INPUT_HASH, KIND, PLAN_COLUMNS, planned
from jobs.profiles import store_profile
from jobs.removals import tombstones
from jobs.runs import RunRecord, new_run_id, record_run
from jobs.settings import Settings
from jobs.storage import configure_fsspec

# Columns every extract reads besides the extractor's own inputs.
_ALWAYS_READ = ("content_id", "content_type", "updated_at", "duration_ms")
ROWS_PER_JOIN_PARTITION = 250_000  # of the anti-join's hash shuffle


def load_extractor_class(path: str) -> type[Extractor]:
    """Import `module:Class`: how `jobs` joins a declaration to its extractor."""
    module_name, _, class_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise TypeError(f"{path} is not an Extractor")
    return cls


@dataclass(frozen=True)
class ExtractRequest:
    """What to compute and with which resources; every field has a sensible default."""

    signal: str
    snapshot_uri: str | None = None
    snapshot_version: int | None = None
    run_id: str | None = None
    batch_size: int | None = None
    min_actors: int = 1
    max_actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None  # None: one GPU per actor when the cluster has GPUs
    threads_per_actor: int | None = None
    device: str | None = None
    quarantine_threshold: float | None = None
    full: bool = False  # recompute every item, even those whose input hash is already stored


_LOCATION = re.compile(r"(?:[a-z][a-z0-9+.-]*://|/)\S+")


def _reason_key(stage: str, reason: str) -> str:
    """A reason without the row's own value or file, so that the run summary counts kinds."""
    return f"{stage}: {_LOCATION.sub('<uri>', reason.split(' (value')[0])}"


def _plain_strings(batch: pa.Table) -> pa.Table:
    """Large strings (what Ray Data's join hands back) as the plain strings extractors expect."""
    if not any(pa.types.is_large_string(f.type) for f in batch.schema):
        return batch
    fields = [
        f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in batch.schema
    ]
    return batch.cast(pa.schema(fields))


class ExtractBatches:
    """The actor body of the pipeline; one instance per actor, so the model loads once."""

    def __init__(
        self,
        signal_ref: str,
        run_id: str,
        event_timestamp: datetime,
        signal_uri: str,
        quarantine_uri: str,
        storage_options: dict[str, str],
        device: str | None,
        threads: int | None,
        expected_version: str | None = None,
        options: dict[str, Any] | None = None,
        settings: Settings | None = None,
    ) -> None:
        set_cpu_threads(threads)
        configure_fsspec(storage_options)
        self.signal: Signal = get_signal(signal_ref)
        extractor_cls = load_extractor_class(self.signal.extractor)
        self.extractor = extractor_cls(device=pick_device(device))
        self.extractor.configure(options or {})
        if self.extractor.tools_wanted and settings is not None:
            tools = LLMTools(settings, asking=self.signal.name)
            self.extractor.bind_tools(tools.tools(self.extractor.tools_wanted))
        self.version = self.extractor.full_version
        if expected_version is not None and self.version != expected_version:
            # Rows were hashed for another version: a node with other code or weights.
            raise RuntimeError(
                f"{self.signal.extractor} is {self.version} on this node but the run hashed "
                f"inputs for {expected_version}: every node must run the same image"
            )
        self.contract = self.signal.contract()
        self.schema = self.signal.arrow_schema()
        self.run_id = run_id
        self.event_timestamp = event_timestamp
        self.signal_uri = signal_uri
        self.quarantine_uri = quarantine_uri
        self.storage_options = storage_options

    def _quarantine_rows(
        self, batch: pa.Table, reasons: dict[int, str], stage: str, hashes: list[str] | None
    ) -> list[dict[str, object]]:
        ids = batch.column("content_id").to_pylist()
        updated_column = "updated_at" if "updated_at" in batch.column_names else "input_updated_at"
        updated = batch.column(updated_column).to_pylist()
        now = datetime.now(UTC)
        return [
            {
                "content_id": ids[i],
                "signal": self.signal.ref,
                "stage": stage,
                "reason": reason,
                "input_hash": hashes[i] if hashes else None,
                "input_updated_at": updated[i],
                "extractor_version": self.version,
                "run_id": self.run_id,
                "quarantined_at": now,
            }
            for i, reason in reasons.items()
        ]

    def _applicable(self, batch: pa.Table) -> tuple[pa.Table, int]:
        """Rows the signal applies to (its required inputs present) and how many it does not."""
        required = type(self.extractor).required
        if not required or batch.num_rows == 0:
            return batch, 0
        mask = pc.is_valid(batch.column(required[0]))
        for column in required[1:]:
            mask = pc.and_(mask, pc.is_valid(batch.column(column)))
        kept = batch.filter(mask)
        return kept, batch.num_rows - kept.num_rows

    def _extract(self, batch: pa.Table) -> pa.Table:
        if batch.num_rows == 0:  # a batch of removals only
            return self._no_features(batch, [])
        try:
            out = self.extractor.extract(batch)
        except Exception as exc:  # an extractor must not raise; if it does, no row is lost
            reason = f"extractor failed on the batch: {type(exc).__name__}: {exc}"
            return self._no_features(batch, [reason] * batch.num_rows)
        if out.column("content_id").to_pylist() != batch.column("content_id").to_pylist():
            raise RuntimeError(f"{self.signal.extractor} returned rows out of order")
        return out

    def _no_features(self, batch: pa.Table, errors: list[str]) -> pa.Table:
        nulls = {f.name: pa.nulls(batch.num_rows, f.type) for f in self.extractor.output_schema()}
        return self.extractor.result(batch.column("content_id"), nulls, errors)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Planned rows in (catalog rows to compute, items that left), part metadata out."""
        batch = _plain_strings(batch)
        gone = None
        if KIND in batch.column_names:
            is_gone = pc.equal(batch.column(KIND), GONE)
            gone = batch.filter(is_gone).column("content_id")
            batch = batch.filter(pc.invert(is_gone)).drop_columns(PLAN_COLUMNS)
        # A row the signal does not apply to (no audio for loudness) is skipped before it is
        # judged, so it cannot count against this signal's quarantine rate.
        applicable, skipped = self._applicable(batch)
        catalog_ok, bad = split_valid(applicable, CATALOG_CONTRACT)
        hashes = (
            applicable.column(INPUT_HASH).to_pylist()
            if INPUT_HASH in applicable.column_names
            else None
        )
        quarantined = self._quarantine_rows(applicable, bad, STAGE_CATALOG, hashes)
        return self.process(
            catalog_ok, read=batch.num_rows, skipped=skipped, quarantined=quarantined, gone=gone
        )

    def process(
        self,
        catalog_ok: pa.Table,
        *,
        read: int,
        skipped: int = 0,
        quarantined: list[dict[str, object]] | None = None,
        gone: pa.ChunkedArray | None = None,
    ) -> pa.Table:
        """Extract, validate and write parts for rows that passed admission, and tombstones for
        the `gone` items (they left the catalog) in the same signal part.

        `catalog_ok` holds `content_id`, `updated_at` and the extractor's inputs; jobs whose
        input is not a catalog snapshot (near-duplicates) call this directly.
        """
        quarantined = list(quarantined or [])
        if INPUT_HASH in catalog_ok.column_names:
            hashes = catalog_ok.column(INPUT_HASH).to_pylist()
        else:
            hashes = self.extractor.input_hashes(catalog_ok)
        out = self._extract(catalog_ok)
        errors = out.column(ERROR_COLUMN).to_pylist()
        failed = {i: e for i, e in enumerate(errors) if e is not None}
        quarantined += self._quarantine_rows(catalog_ok, failed, STAGE_EXTRACT, hashes)

        ok = pa.array([e is None for e in errors], pa.bool_())
        ok_rows = catalog_ok.filter(ok)
        n = ok_rows.num_rows
        now = datetime.now(UTC)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "content_id": ok_rows.column("content_id"),
            "event_timestamp": pa.array([self.event_timestamp] * n, TIMESTAMP),
            "created_timestamp": pa.array([now] * n, TIMESTAMP),
            "input_updated_at": ok_rows.column("updated_at").cast(TIMESTAMP),
            "input_hash": pa.array([h for h, e in zip(hashes, errors, strict=True) if e is None]),
            "extractor_version": pa.array([self.version] * n, pa.string()),
            "run_id": pa.array([self.run_id] * n, pa.string()),
        }
        features = out.filter(ok)
        for name in self.signal.features:
            columns[name] = features.column(name)
        rows = pa.table(columns).cast(self.schema)
        valid, violations = split_valid(rows, self.contract)
        quarantined += self._quarantine_rows(
            rows, violations, STAGE_SIGNAL, rows.column("input_hash").to_pylist()
        )

        removed = 0
        if gone is not None and len(gone):
            removed = len(gone)
            dead = tombstones(
                gone,
                self.schema,
                run_id=self.run_id,
                event_timestamp=self.event_timestamp,
                version=self.version,
            )
            valid = pa.concat_tables([valid, dead])
        reasons = Counter(_reason_key(str(q["stage"]), str(q["reason"])) for q in quarantined)
        quarantine_part = (
            write_part(
                self.quarantine_uri,
                pa.Table.from_pylist(quarantined, schema=QUARANTINE_SCHEMA),
                self.run_id,
                self.storage_options,
            )
            if quarantined
            else None
        )
        return part_meta(
            write_part(self.signal_uri, valid, self.run_id, self.storage_options)
            if valid.num_rows
            else None,
            self.version,
            read=read,
            skipped=skipped,
            extracted=valid.num_rows - removed,
            quarantined=len(quarantined),
            removed=removed,
            quarantine_part=quarantine_part,
            reasons=reasons,
            usage=self.extractor.take_usage(),
        )


def part_meta(
    signal_part: Part | None,
    version: str,
    *,
    read: int = 0,
    skipped: int = 0,
    extracted: int = 0,
    quarantined: int = 0,
    removed: int = 0,
    quarantine_part: Part | None = None,
    reasons: Counter[str] | None = None,
    usage: dict[str, int] | None = None,
) -> pa.Table:
    """What a worker tells the driver about one batch: counts and the parts it wrote."""
    return pa.table(
        {
            "read": [read],
            "skipped": [skipped],
            "extracted": [extracted],
            "quarantined": [quarantined],
            "removed": [removed],
            "signal_part": [json.dumps(vars(signal_part)) if signal_part else None],
            "quarantine_part": [json.dumps(vars(quarantine_part)) if quarantine_part else None],
            "reasons": [json.dumps(reasons or {})],
            "extractor_version": [version],
            "usage": [json.dumps(usage or {})],
        }
    )


def hash_batch(
    batch: pa.Table, extractor: str, full_version: str, storage_options: dict[str, str]
) -> pa.Table:
    """Add `input_hash` to catalog rows: a plain task, no model, so unchanged rows cost a hash
    (and a stat of their media) and are dropped before any actor sees them."""
    configure_fsspec(storage_options)
    cls = load_extractor_class(extractor)
    return batch.append_column(
        INPUT_HASH, pa.array(cls.hash_inputs(batch, full_version), pa.string())
    )


def extractor_version(extractor: str, options: dict[str, Any] | None = None) -> str:
    """The extractor's full version (code + weights, or model + prompt), computed where
    extractors run."""
    instance = load_extractor_class(extractor)(device="cpu")
    instance.configure(options or {})
    return instance.full_version


def extractor_options(signal: Signal, env: Mapping[str, str]) -> dict[str, Any]:
    """What every actor's extractor is configured with: the `SIGNALS_*` settings extractors read
    (captured in the driver, so actors on any node see the same) and the schema of the answer
    the signal's contract accepts."""
    return {**env, "answer_schema": answer_schema(contract_document(signal))}


def _snapshot(settings: Settings, uri: str, version: int | None) -> tuple[pa.Schema, int]:
    table = open_table(uri, settings.storage_options)
    if table is None:
        raise SnapshotNotFoundError(f"no catalog snapshot at {uri}")
    if version is not None:
        table.load_as_version(version)
    return pa.schema(table.schema().to_arrow()), table.version()


def snapshot_rows(settings: Settings, uri: str | None, version: int | None = None) -> int:
    """Rows in a snapshot, from the Delta log alone (no data read): the progress bar's total."""
    table = open_table(uri or settings.default_snapshot_uri, settings.storage_options)
    if table is None:
        return 0
    if version is not None:
        table.load_as_version(version)
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


def run_extract(
    settings: Settings,
    request: ExtractRequest,
    *,
    on_progress: Callable[[int], None] | None = None,
    show_ray_progress: bool = False,
) -> RunRecord:
    """Run one signal's extraction over a snapshot and commit the result atomically.

    Raises `SchemaMismatchError` before any work when the snapshot breaks the catalog contract, and
    `QuarantineThresholdError` (after committing the quarantine rows and recording the run) when
    too many rows failed — then nothing lands in the signal table.
    """
    import ray

    from jobs.ray_runtime import cluster_gpus, ensure_ray

    signal = get_signal(request.signal)
    extractor_cls = load_extractor_class(signal.extractor)
    snapshot_uri = request.snapshot_uri or settings.default_snapshot_uri
    schema, snapshot_version = _snapshot(settings, snapshot_uri, request.snapshot_version)
    check_snapshot_schema(schema, extractor_cls.inputs)

    started = datetime.now(UTC)
    run_id = request.run_id or new_run_id(started)
    signal_uri = settings.signal_uri(signal.storage_name)
    quarantine_uri = settings.quarantine_uri(signal.storage_name)
    record = RunRecord(
        run_id=run_id,
        job="extract",
        started_at=started,
        finished_at=started,
        status="running",
        signal=signal.ref,
        snapshot_uri=snapshot_uri,
        snapshot_version=snapshot_version,
    )
    if has_committed(signal_uri, run_id, settings.storage_options):
        record.status = "already-committed"
        record_run(settings, record)
        return record
    record_run(settings, record)  # "running": a run that dies shows as such, with its snapshot

    ensure_ray(settings)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = show_ray_progress
    gpus = request.gpus_per_actor
    if gpus is None:
        gpus = 1 if extractor_cls.wants_gpu and cluster_gpus() > 0 else 0
    options = extractor_options(signal, settings.extractor_env)
    try:
        version = ray.get(ray.remote(extractor_version).remote(signal.extractor, options))
    except ray.exceptions.RayTaskError as exc:
        if not isinstance(exc.cause, ValueError):
            raise
        # A setting the extractor refuses (a misspelt SIGNALS_LLM_* name): the user's to fix.
        raise SignalsError(f"{signal.ref}: {exc.cause}") from None
    total = snapshot_rows(settings, snapshot_uri, snapshot_version)
    partitions = max(1, total // ROWS_PER_JOIN_PARTITION + 1)  # of the anti-joins' shuffles
    columns = list(dict.fromkeys([*_ALWAYS_READ, *extractor_cls.inputs]))
    dataset = ray.data.read_delta(
        snapshot_uri,
        version=snapshot_version,
        columns=columns,
        storage_options=settings.storage_options or None,
    ).map_batches(
        hash_batch,
        fn_kwargs={
            "extractor": signal.extractor,
            "full_version": version,
            "storage_options": settings.storage_options,
        },
        batch_format="pyarrow",
    )
    read_schema = pa.schema([schema.field(c) for c in columns])
    dataset = planned(settings, signal, dataset, read_schema, partitions, full=request.full)
    parts_meta = dataset.map_batches(
        ExtractBatches,
        fn_constructor_kwargs={
            "signal_ref": signal.ref,
            "run_id": run_id,
            "event_timestamp": started,
            "signal_uri": signal_uri,
            "quarantine_uri": quarantine_uri,
            "storage_options": settings.storage_options,
            "device": request.device,
            "threads": request.threads_per_actor or int(request.cpus_per_actor) or None,
            "expected_version": version,
            "options": options,
            "settings": settings,
        },
        batch_size=request.batch_size or extractor_cls.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(
            min_size=request.min_actors, max_size=max(request.max_actors, request.min_actors)
        ),
        num_cpus=request.cpus_per_actor,
        num_gpus=gpus,
    )
    record = commit_run(
        settings,
        signal,
        record,
        parts_meta.iter_batches(batch_format="pyarrow", batch_size=None),
        threshold=request.quarantine_threshold,
        on_progress=on_progress,
        total=total,
    )
    return record


def commit_run(
    settings: Settings,
    signal: Signal,
    record: RunRecord,
    parts_meta: Iterable[pa.Table],
    *,
    threshold: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    total: int | None = None,
) -> RunRecord:
    """Gather the workers' part metadata, commit each table once, record the run.

    `total` is the rows of the input; those that never reached a worker were unchanged (their
    input hash already stored). A quarantine rate over the threshold is a systematic failure:
    the quarantine rows and the run record are written (so the reasons can be read), the signal
    table is left as it was.
    """
    signal_parts: list[Part] = []
    quarantine_parts: list[Part] = []
    reasons: Counter[str] = Counter()
    usage: Counter[str] = Counter()
    for meta in parts_meta:
        for row in meta.to_pylist():
            record.read += row["read"]
            record.skipped += row["skipped"]
            record.extracted += row["extracted"]
            record.quarantined += row["quarantined"]
            record.removed += row["removed"]
            record.extractor_version = row["extractor_version"]
            reasons.update(json.loads(row["reasons"]))
            usage.update(json.loads(row["usage"]))
            if row["signal_part"]:
                signal_parts.append(Part(**json.loads(row["signal_part"])))
            if row["quarantine_part"]:
                quarantine_parts.append(Part(**json.loads(row["quarantine_part"])))
            if on_progress:
                on_progress(row["read"])
    record.reasons = dict(reasons.most_common())
    record.usage = dict(usage)
    if total is not None:
        record.unchanged = total - record.read
        record.read = total
        if on_progress and record.unchanged:
            on_progress(record.unchanged)

    threshold = settings.quarantine_threshold if threshold is None else threshold
    systematic = record.quarantine_rate > threshold
    operation = {
        "job": record.job,
        "signal": signal.ref,
        "snapshot_version": record.snapshot_version,
    }
    quarantine_uri = settings.quarantine_uri(signal.storage_name)
    failpoint(BEFORE_COMMIT)
    if quarantine_parts:
        commit_parts(
            quarantine_uri,
            QUARANTINE_SCHEMA,
            quarantine_parts,
            record.run_id,
            operation=operation,
            storage_options=settings.storage_options,
        )
    failpoint(BETWEEN_COMMITS)
    if signal_parts and not systematic:
        record.signal_table_version = commit_parts(
            settings.signal_uri(signal.storage_name),
            signal.arrow_schema(),
            signal_parts,
            record.run_id,
            operation=operation,
            storage_options=settings.storage_options,
        )
    if record.signal_table_version is not None:
        # What was committed, summarised for drift checks (`signals profile`).
        store_profile(settings, signal, record.run_id, record.signal_table_version, signal_parts)
    failpoint(BEFORE_RUN_RECORD)
    record.finished_at = datetime.now(UTC)
    if systematic:
        record.status = "failed"
        record.error = (
            f"{record.quarantined} of {record.computed} rows quarantined "
            f"({record.quarantine_rate:.1%} > threshold {threshold:.1%})"
        )
        record_run(settings, record)
        raise QuarantineThresholdError(
            f"{signal.ref}: {record.error}; nothing was written to the signal table",
            details=[f"{count} × {reason}" for reason, count in reasons.most_common(5)],
            hint=f"the rows and their reasons are in {quarantine_uri}",
        )
    record.status = "succeeded"
    record_run(settings, record)
    record.queued_for_review = enqueue(settings, signal, record.run_id)
    return record


if __name__ == "__main__":
    import sys

    from jobs.cli import app

    app(["extract", *sys.argv[1:]], prog_name="python -m jobs.extract")
