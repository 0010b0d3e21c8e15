"""The extract job: catalog snapshot → Ray Data → extractor actors → contract → one Delta commit.

    python -m jobs extract text_embedding@2 --snapshot lake/catalog

The driver checks the snapshot against the catalog contract, hashes every row's inputs in plain
tasks, plans the work in one shuffle (`plan`: what is unchanged, what left the catalog), runs the
extractor in an actor pool (`worker`) and commits what the actors wrote (`commit`). It only sees
part metadata (streaming; nothing collected).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from extractors.errors import ModelFileError
from features import get_signal
from features.catalog import check_snapshot_schema
from jobs.lake.parts import has_committed
from jobs.lake.runs import RunRecord, new_run_id, record_run
from jobs.lake.snapshots import snapshot_rows, snapshot_schema
from jobs.pipeline.commit import commit_run
from jobs.pipeline.errors import ExtractorSettingsError
from jobs.pipeline.extractors import (
    extractor_class,
    extractor_options,
    extractor_version,
    hash_batch,
)
from jobs.pipeline.plan import planned
from jobs.pipeline.worker import ExtractBatches
from jobs.settings import Settings

# Columns every extract reads besides the extractor's own inputs.
_ALWAYS_READ = ("content_id", "content_type", "updated_at", "duration_ms")
ROWS_PER_JOIN_PARTITION = 250_000  # of the anti-join's hash shuffle


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
    quarantine_min_rows: int | None = None  # None: the setting
    full: bool = False  # recompute every item, even those whose input hash is already stored


def planned_rows(settings: Settings, request: ExtractRequest) -> int:
    """Rows of the snapshot the request reads, from its Delta log: a progress bar's total."""
    uri = request.snapshot_uri or settings.default_snapshot_uri
    return snapshot_rows(uri, request.snapshot_version, settings.storage_options)


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

    from jobs.pipeline.runtime import cluster_gpus, declarations_remote_args, ensure_ray

    signal = get_signal(request.signal)
    extractor_cls = extractor_class(signal)
    snapshot_uri = request.snapshot_uri or settings.default_snapshot_uri
    schema, snapshot_version = snapshot_schema(
        snapshot_uri, request.snapshot_version, settings.storage_options
    )
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
    remote_args = declarations_remote_args()
    try:
        version = ray.get(
            ray.remote(extractor_version).options(**remote_args).remote(signal.ref, options)
        )
    except ray.exceptions.RayTaskError as exc:
        if not isinstance(exc.cause, ValueError | ModelFileError):
            raise
        raise ExtractorSettingsError(f"{signal.ref}: {exc.cause}") from None
    total = snapshot_rows(snapshot_uri, snapshot_version, settings.storage_options)
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
            "signal_ref": signal.ref,
            "full_version": version,
            "storage_options": settings.storage_options,
        },
        batch_format="pyarrow",
        **remote_args,
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
        **remote_args,
    )
    return commit_run(
        settings,
        signal,
        record,
        parts_meta.iter_batches(batch_format="pyarrow", batch_size=None),
        threshold=request.quarantine_threshold,
        min_rows=request.quarantine_min_rows,
        on_progress=on_progress,
        total=total,
    )
