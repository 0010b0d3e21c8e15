"""The near-duplicates job: find items whose artwork hashes or audio fingerprints lie within a
threshold of each other, across the whole catalog, and write their groups.

    python -m jobs near-duplicates [--full]

Sub-quadratic and distributed: LSH tables (`extractors.near_index`) put items in buckets; Ray tasks
compare only items that share one, verify the candidates exactly with the extractor's `Rule`, and
join the groups as connected components of the verified pairs (`duplicate_tasks` draws the
stages). The driver holds task references and one row of metadata per partition, never the
catalog or the pairs; the rows go through the same contract check, quarantine and atomic commit as
every other signal. Items that had a group and lost both their hash and their fingerprint (they
left the catalog) get a tombstone.

A run keeps its buckets and groups (`duplicate_state`). The next run is a daily one
(`duplicate_daily`): it reads only the source files committed since, compares only the items in
them against the stored buckets, and writes only the items whose groups they touch. A full run
rebuilds everything when asked (`full=True`), when there is no state or it is incomplete, when the
rule changed, or when the sources have grown past twice what the state was sized for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import ray

from extractors.duplicates import NearDuplicates
from extractors.near_index import Bands
from features import get_signal
from jobs.lake.runs import RunRecord, new_run_id
from jobs.lake.snapshots import snapshot_rows
from jobs.lake.tables import added_files, file_count, table_version
from jobs.pipeline import duplicate_daily as daily
from jobs.pipeline import duplicate_state as kept
from jobs.pipeline import duplicate_tasks as tasks
from jobs.pipeline.commit import commit_run
from jobs.pipeline.extractors import extractor_class, extractor_options
from jobs.pipeline.runtime import ensure_ray
from jobs.pipeline.shuffle import fan_out, inbox
from jobs.settings import Settings

SIGNAL = kept.SIGNAL
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
_store_items = _spread(kept.store_items)
_store_buckets = _spread(kept.store_buckets)
_read_changes = _spread(daily.read_changes)
_refresh = _spread(daily.refresh_items)
_lookup = _spread(daily.lookup_buckets)
_verify_touching = _spread(daily.verify_touching)
_touched_groups = ray.remote(daily.touched_groups)
_members = _spread(daily.members_in)
_group_edges = _spread(daily.group_edges)
_write_touched = _spread(daily.write_touched)
# Signal → (feature, extractor input column) pairs whose latest values feed the job.
SOURCES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "artwork_hash@1": (
        "artwork",
        (("phash", "artwork_phash"), ("colour_layout", "artwork_layout")),
    ),
    "audio_fingerprint@1": ("audio", (("fingerprint", "audio_fingerprint"),)),
    SIGNAL: ("previous", (("group_id", tasks.PREVIOUS),)),  # who had a group: tombstones
}
ROWS_PER_SHARE = 250_000


def pinned_sources(settings: Settings) -> list[tuple[tasks.Source, int]]:
    """The sources that exist, pinned to their current versions, with their row counts."""
    found = []
    for ref, (name, columns) in SOURCES.items():
        uri = settings.signal_uri(get_signal(ref).storage_name)
        version = table_version(uri, settings.storage_options)
        if version is not None:
            rows = snapshot_rows(uri, version, settings.storage_options)
            found.append((tasks.Source(name, uri, version, columns), rows))
    return found


def _extractor(settings: Settings) -> NearDuplicates:
    signal = get_signal(SIGNAL)
    extractor = extractor_class(signal)()
    extractor.configure(extractor_options(signal, settings.extractor_env))
    return extractor  # type: ignore[return-value]


def plan_layout(settings: Settings, items: int) -> tasks.Layout:
    """Partitions sized so each task holds a bounded share, LSH tables sized for the catalog."""
    extractor = _extractor(settings)
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
    *,
    full: bool = False,
) -> RunRecord:
    """Bring the near-duplicate groups up to date as one run and one commit: a daily run over
    what changed when the last run's state allows it, a full run over the catalog otherwise."""
    signal = get_signal(SIGNAL)
    started = datetime.now(UTC)
    run_id = run_id or new_run_id(started)
    stage = on_stage or (lambda _: None)
    sources = pinned_sources(settings)
    inputs = [(s, rows) for s, rows in sources if s.name != SOURCES[SIGNAL][0]]
    record = RunRecord(
        run_id=run_id,
        job="near_duplicates",
        started_at=started,
        finished_at=started,
        status="running",
        signal=signal.ref,
        snapshot_uri=", ".join(SOURCES),
    )
    if not any(rows for _, rows in inputs):
        return commit_run(settings, signal, record, [])
    ensure_ray(settings)
    tables = kept.StateTables.of(settings, run_id, started)
    extractor = _extractor(settings).full_version
    catalog = max(rows for _, rows in inputs)
    state = None if full else kept.last_state(settings)
    daily_run = (
        state is not None and state.extractor == extractor and catalog <= 2 * state.catalog_items
    )
    if state is not None and daily_run:
        stage("daily run: comparing what changed since the last run")
        metas, item_parts, bucket_parts = _daily(settings, tables, state, inputs, stage)
        layout, catalog = state.layout, state.catalog_items
    else:
        layout = plan_layout(settings, catalog)
        metas, item_parts, bucket_parts = _full(settings, tables, layout, sources, stage)
    record = commit_run(settings, signal, record, metas)
    kept.record_state(
        tables,
        full=not daily_run,
        layout=layout,
        extractor=extractor,
        catalog_items=catalog,
        sources={s.uri: s.version for s, _ in inputs},
        item_parts=item_parts,
        bucket_parts=bucket_parts,
    )
    return record


def _shares(source: tasks.Source, rows: int, options: dict[str, str]) -> int:
    """How many tasks read a source: a bounded number of rows each, at most one per file."""
    files = file_count(source.uri, source.version, options)
    return max(1, min(files, math.ceil(rows / ROWS_PER_SHARE)))


def _written(pending: list[ray.ObjectRef], stage: Callable[[str], None], of: int) -> list[Any]:
    """The write tasks' results as they finish, reported partition by partition."""
    done: list[Any] = []
    while pending:  # the stages run as their inputs arrive
        ready, pending = ray.wait(pending, num_returns=1)
        done += ray.get(ready)
        stage(f"wrote {len(done)} of {of} partitions")
    return done


def _full(
    settings: Settings,
    tables: kept.StateTables,
    layout: tasks.Layout,
    sources: list[tuple[tasks.Source, int]],
    stage: Callable[[str], None],
) -> tuple[list[pa.Table], list[str], list[str]]:
    """Every item bucketed, compared and grouped; the state rebuilt beside the output."""
    options = settings.storage_options
    parts_n, buckets_n = layout.partitions, layout.bucket_partitions
    stage(f"reading {len(sources)} source tables into {layout.partitions} partitions")
    parts, counts = [], []
    for source, rows in sources:
        count = _shares(source, rows, options)
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
    bucket_parts = [_store_buckets.remote(tables, q, *inbox(buckets, q)) for q in range(buckets_n)]
    del buckets
    attached = [
        fan_out(_attach_first, parts_n, layout, items[p], *inbox(candidates, p))
        for p in range(parts_n)
    ]
    edges = [_verify.remote(layout, items[p], *inbox(attached, p)) for p in range(parts_n)]
    del candidates, attached
    stage("joining verified pairs into groups")
    groups = fan_out(_group, parts_n, layout, *edges)
    writer = writer_arguments(settings, tables.run_id)
    started = tables.written_at
    pending = [_write.remote(writer, started, items[p], groups[p]) for p in range(parts_n)]
    item_parts = [_store_items.remote(tables, p, items[p], groups[p]) for p in range(parts_n)]
    del edges, groups
    metas = _written(pending, stage, parts_n)
    return metas, ray.get(item_parts), ray.get(bucket_parts)


def _new_files(source: tasks.Source, state: kept.State, options: dict[str, str]) -> list[str]:
    """The source's files committed since the last run read it (all of them for a new source)."""
    since = state.sources.get(source.uri)
    if since == source.version:
        return []
    return added_files(source.uri, since, source.version, options)


def _daily(
    settings: Settings,
    tables: kept.StateTables,
    state: kept.State,
    inputs: list[tuple[tasks.Source, int]],
    stage: Callable[[str], None],
) -> tuple[list[pa.Table], list[str], list[str]]:
    """Only the items in the sources' new files bucketed and compared against the stored
    buckets; only the groups they touch joined again and written."""
    options = settings.storage_options
    layout = state.layout
    parts_n, buckets_n = layout.partitions, layout.bucket_partitions
    sources = [source for source, _ in inputs]
    files = [_new_files(source, state, options) for source in sources]
    if not any(files):
        stage("nothing changed since the last run")
        return [], [], []
    stage(f"reading {sum(map(len, files))} new files into {parts_n} partitions")
    parts, counts = [], []
    for source, new in zip(sources, files, strict=True):
        count = min(len(new), parts_n)  # none: the source's stored values stand
        parts.append([fan_out(_read_changes, parts_n, source, new[i::count], layout, options)
                      for i in range(count)])  # fmt: skip
        counts.append(count)
    refreshed = [
        fan_out(
            _refresh,
            2 + buckets_n,
            p,
            layout,
            tables,
            state,
            sources,
            counts,
            *(share[p] for shares in parts for share in shares),
        )
        for p in range(parts_n)
    ]
    items = [refs[0] for refs in refreshed]
    changed = [refs[1] for refs in refreshed]
    buckets = [refs[2:] for refs in refreshed]
    del refreshed, parts
    stage("looking the changed items up in the stored buckets, verifying candidates")
    looked = [
        fan_out(_lookup, parts_n + 1, q, layout, tables, state, *inbox(buckets, q))
        for q in range(buckets_n)
    ]
    candidates = [refs[:parts_n] for refs in looked]
    bucket_parts = [refs[parts_n] for refs in looked]
    del buckets, looked
    attached = [
        fan_out(_attach_first, parts_n, layout, items[p], *inbox(candidates, p))
        for p in range(parts_n)
    ]
    verified = [
        fan_out(_verify_touching, 2, layout, items[p], *inbox(attached, p)) for p in range(parts_n)
    ]
    del candidates, attached
    stage("joining the groups the changed items touch")
    touched = _touched_groups.remote(*changed, *(refs[1] for refs in verified))
    members = [
        fan_out(_members, 1 + parts_n, layout, items[p], changed[p], touched)
        for p in range(parts_n)
    ]
    inner = [_group_edges.remote(layout, *(refs[1 + r] for refs in members))
             for r in range(parts_n)]  # fmt: skip
    groups = fan_out(_group, parts_n, layout, *(refs[0] for refs in verified), *inner)
    writer = writer_arguments(settings, tables.run_id)
    pending = [
        _write_touched.remote(
            writer, tables, tables.written_at, p, items[p], members[p][0], groups[p]
        )
        for p in range(parts_n)
    ]
    del verified, members, inner, groups
    written = _written(pending, stage, parts_n)
    return [meta for meta, _ in written], [part for _, part in written], ray.get(bucket_parts)
