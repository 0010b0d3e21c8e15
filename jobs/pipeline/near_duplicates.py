"""The near-duplicates job: find items whose artwork hashes or audio fingerprints lie within a
threshold of each other, across the whole catalog, and write their groups.

    python -m jobs near-duplicates

Sub-quadratic and distributed: LSH tables (`extractors.near_index`) put items in buckets; Ray tasks
compare only items that share one, verify the candidates exactly with the extractor's `Rule`, and
join the groups as connected components of the verified pairs (`duplicate_tasks` draws the
stages). The driver holds task references and one row of metadata per partition, never the
catalog or the pairs; the rows go through the same contract check, quarantine and atomic commit as
every other signal. Items that had a group and lost both their hash and their fingerprint (they
left the catalog) get a tombstone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import ray

from extractors.near_index import Bands
from features import get_signal
from jobs.lake.runs import RunRecord, new_run_id
from jobs.lake.snapshots import snapshot_rows
from jobs.lake.tables import file_count, table_version
from jobs.pipeline import duplicate_tasks as tasks
from jobs.pipeline.commit import commit_run
from jobs.pipeline.extractors import extractor_options, load_extractor_class
from jobs.pipeline.runtime import ensure_ray
from jobs.pipeline.shuffle import fan_out, inbox
from jobs.settings import Settings

SIGNAL = "near_duplicates@1"
# Every partition stage spreads over the nodes: data locality alone would pile a small job's
# tasks onto the node that holds most of its inputs.
_spread = ray.remote(scheduling_strategy="SPREAD")
_read_source = _spread(tasks.read_source)
_build_items = _spread(tasks.build_items)
_bucket_candidates = _spread(tasks.bucket_candidates)
_attach_first = _spread(tasks.attach_first)
_verify = _spread(tasks.verify)
_group = ray.remote(tasks.group)
_write = _spread(tasks.write_partition)
# Signal → (feature, extractor input column) pairs whose latest values feed the job.
SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "artwork_hash@1": (("phash", "artwork_phash"), ("colour_layout", "artwork_layout")),
    "audio_fingerprint@1": (("fingerprint", "audio_fingerprint"),),
    SIGNAL: (("group_id", tasks.PREVIOUS),),  # who had a group: tombstones for those gone
}
ROWS_PER_SHARE = 250_000


def pinned_sources(settings: Settings) -> list[tuple[tasks.Source, int]]:
    """The sources that exist, pinned to their current versions, with their row counts."""
    found = []
    for ref, columns in SOURCES.items():
        uri = settings.signal_uri(get_signal(ref).storage_name)
        version = table_version(uri, settings.storage_options)
        if version is not None:
            rows = snapshot_rows(uri, version, settings.storage_options)
            found.append((tasks.Source(uri, version, columns), rows))
    return found


def plan_layout(settings: Settings, items: int) -> tasks.Layout:
    """Partitions sized so each task holds a bounded share, LSH tables sized for the catalog."""
    signal = get_signal(SIGNAL)
    extractor = load_extractor_class(signal.extractor)()
    extractor.configure(extractor_options(signal, settings.extractor_env))
    partitions = max(1, math.ceil(items / settings.near_duplicates_partition_items))
    bands = Bands.for_catalog(items, min_cosine=extractor.rule.min_cosine)
    return tasks.Layout(partitions, partitions, bands, extractor.rule)


def writer_arguments(settings: Settings, run_id: str) -> dict[str, object]:
    """What each write task builds its part writer from (the signal's contract and tables)."""
    signal = get_signal(SIGNAL)
    return {
        "signal_ref": signal.ref,
        "run_id": run_id,
        "signal_uri": settings.signal_uri(signal.storage_name),
        "quarantine_uri": settings.quarantine_uri(signal.storage_name),
        "storage_options": settings.storage_options,
        "options": extractor_options(signal, settings.extractor_env),
    }


def run_near_duplicates(
    settings: Settings,
    run_id: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunRecord:
    """Recompute the near-duplicate groups of the whole catalog as one run and one commit."""
    signal = get_signal(SIGNAL)
    started = datetime.now(UTC)
    run_id = run_id or new_run_id(started)
    stage = on_stage or (lambda _: None)
    sources = pinned_sources(settings)
    record = RunRecord(
        run_id=run_id,
        job="near_duplicates",
        started_at=started,
        finished_at=started,
        status="running",
        signal=signal.ref,
        snapshot_uri=", ".join(SOURCES),
    )
    inputs = [(s, rows) for s, rows in sources if s.columns != SOURCES[SIGNAL]]
    if not any(rows for _, rows in inputs):
        return commit_run(settings, signal, record, [])
    ensure_ray(settings)
    layout = plan_layout(settings, max(rows for _, rows in inputs))
    options = settings.storage_options
    parts_n, buckets_n = layout.partitions, layout.bucket_partitions
    stage(f"reading {len(sources)} source tables into {layout.partitions} partitions")
    parts, counts = [], []
    for source, rows in sources:
        count = max(1, min(file_count(source.uri, source.version, options),
                           math.ceil(rows / ROWS_PER_SHARE)))  # fmt: skip
        parts.append([fan_out(_read_source, parts_n, source, i, count, layout, options)
                      for i in range(count)])  # fmt: skip
        counts.append(count)
    stage(f"bucketing items in {layout.bands.tables} LSH tables")
    built = [
        fan_out(
            _build_items,
            1 + buckets_n,
            p,
            layout,
            [s for s, _ in sources],
            counts,
            *(share[p] for shares in parts for share in shares),
        )
        for p in range(parts_n)
    ]
    items = [refs[0] for refs in built]
    buckets = [refs[1:] for refs in built]
    del built, parts  # each stage's inputs are freed once its consumers are done with them
    stage("comparing the items that share a bucket, verifying candidates")
    candidates = [
        fan_out(_bucket_candidates, parts_n, layout, *inbox(buckets, q)) for q in range(buckets_n)
    ]
    del buckets
    attached = [
        fan_out(_attach_first, parts_n, layout, items[p], *inbox(candidates, p))
        for p in range(parts_n)
    ]
    edges = [_verify.remote(layout, items[p], *inbox(attached, p)) for p in range(parts_n)]
    del candidates, attached
    stage("joining verified pairs into groups")
    groups = fan_out(_group, parts_n, layout, *edges)
    writer = writer_arguments(settings, run_id)
    pending = [_write.remote(writer, started, items[p], groups[p]) for p in range(parts_n)]
    del edges, groups
    metas = []
    while pending:  # the stages run as their inputs arrive; report as partitions are written
        ready, pending = ray.wait(pending, num_returns=1)
        metas += ray.get(ready)
        stage(f"wrote {len(metas)} of {parts_n} partitions")
    return commit_run(settings, signal, record, metas)
