"""Fault tests with real processes: the extract job is crash-safe.

Every fault here is real: SIGKILL of the extractor actor's process, SIGKILL of a driver process
(`python -m jobs extract`, joined to this test session's one Ray cluster), SIGKILL of the driver at
each commit failpoint of `jobs.failpoints`, and separate processes committing to one Delta table at
the same instant. What is proved:

1. An extractor actor killed mid-job is restarted by Ray Data (it creates map actors with
   `max_restarts=-1, max_task_retries=-1`); the batches it had not reported are retried and the run
   succeeds with every eligible item exactly once. Part files the dead actor wrote but never
   reported are orphans that no commit names.
2. A driver killed mid-job changes no table; a rerun lands exactly what an uninterrupted run lands.
3. A driver killed before, between or after its two commits leaves every table (signal, quarantine,
   runs) at its old or its new version, readable and never partial, and the run shows as
   "running"; a rerun with a new or the same run id then completes and serves what an
   uninterrupted run serves, with no duplicate (content_id, input_hash); a retry that finds its
   commits already made leaves nothing for the next run to recompute.
4. Two writers at once: two runs over one snapshot both land, each exactly once; processes
   committing parts to one table at the same instant (a barrier) all land once, or a retry of the
   same run id is refused with a conflict; the table stays valid.

The signal is `text_quality@1` throughout: it loads no model, so a job's length is set by its batch
count and a restarted actor is back in seconds; the fault handling under test is the same for
every extractor. Heavy modules (`jobs.pipeline.extract` imports torch) are imported inside the functions
that need them: the processes spawned by the commit races import this module.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs.lake.parts import app_id, commit_parts, write_part
from jobs.lake.tables import latest_per_key, open_table
from jobs.pipeline.failpoints import (
    BEFORE_COMMIT,
    BEFORE_RUN_RECORD,
    BETWEEN_COMMITS,
    FAILPOINTS_ENV,
)
from jobs.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

    from features.signal import Signal
    from jobs.lake.runs import RunRecord

SIGNAL_REF = "text_quality@1"
MAP_WORKER = "ray::MapWorker"  # the title Ray gives a Ray Data actor's process
WAIT_S = 300.0  # any wait: generous for a loaded 2-core machine, finite so a hang fails
LONG_ITEMS = 960  # with LONG_BATCH rows per batch: 120 batches, a job long enough to kill
LONG_BATCH = 8
COMMIT_ITEMS = 240
CRASHED_RUN = "nightly-crashed"
# Tables a driver killed at each failpoint has committed (in the order it commits them).
COMMITTED_BY = {
    BEFORE_COMMIT: set(),
    BETWEEN_COMMITS: {"quarantine"},
    BEFORE_RUN_RECORD: {"quarantine", "signal"},
}
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Helpers: lakes, tables, outcomes
# --------------------------------------------------------------------------------------------


@cache
def _signal() -> Signal:
    from features import get_signal

    return get_signal(SIGNAL_REF)


def _lake(path: Path) -> Settings:
    path.mkdir(parents=True, exist_ok=True)
    return Settings.from_env({"SIGNALS_LAKE_URI": str(path)})


def _copy_lake(source: str, target: Path) -> Settings:
    """A copy of a whole lake (the Delta logs name files relative to their table)."""
    shutil.copytree(source, target)
    return _lake(target)


def _uris(settings: Settings) -> dict[str, str]:
    storage = _signal().storage_name
    return {
        "signal": settings.signal_uri(storage),
        "quarantine": settings.quarantine_uri(storage),
        "runs": settings.runs_uri,
    }


def _catalog(items: int, seed: int) -> pa.Table:
    """Sample catalog rows with their planted broken ones (blank text, a type not allowed)."""
    from jobs.sample import iter_catalog_batches

    return pa.Table.from_batches(list(iter_catalog_batches(items, seed)))


def _extract(settings: Settings, **request: Any) -> RunRecord:
    """One extract run in this process, on the session's Ray."""
    from jobs.pipeline.extract import ExtractRequest, run_extract

    return run_extract(settings, ExtractRequest(signal=SIGNAL_REF, **request))


def _runs(settings: Settings) -> dict[str, dict[str, Any]]:
    """run_id → the run's last record."""
    from jobs.lake.runs import list_runs

    return {r["run_id"]: r for r in list_runs(settings).to_pylist()}


def _rows(uri: str) -> pa.Table:
    table = open_table(uri)
    assert table is not None, f"no Delta table at {uri}"
    return pa.table(table.to_pyarrow_table())


def _parts_on_disk(table_uri: str) -> set[str]:
    folder = Path(table_uri)
    return {p.name for p in folder.glob("part-*.parquet")} if folder.is_dir() else set()


def _committed_parts(table_uri: str) -> set[str]:
    table = open_table(table_uri)
    return set() if table is None else {uri.rsplit("/", 1)[-1] for uri in table.file_uris()}


def _signal_keys(rows: pa.Table) -> list[tuple[Any, ...]]:
    """(content_id, input_hash, features…) per row."""
    columns = ["content_id", "input_hash", *_signal().features]
    return list(zip(*(rows.column(c).to_pylist() for c in columns), strict=True))


def _quarantine_keys(rows: pa.Table) -> list[tuple[Any, ...]]:
    columns = ["content_id", "input_hash", "stage", "reason"]
    return list(zip(*(rows.column(c).to_pylist() for c in columns), strict=True))


def _served(settings: Settings) -> dict[str, tuple[Any, ...]]:
    """content_id → (input_hash, features…) of the newest row: what serving returns."""
    rows = _rows(_uris(settings)["signal"])
    latest = latest_per_key(rows, order=("event_timestamp", "created_timestamp"))
    return {key[0]: key[1:] for key in _signal_keys(latest)}


def _duplicates(rows: pa.Table) -> list[tuple[str, str]]:
    """(content_id, input_hash) pairs stored more than once."""
    pairs = zip(
        rows.column("content_id").to_pylist(), rows.column("input_hash").to_pylist(), strict=True
    )
    return [pair for pair, n in Counter(pairs).items() if n > 1]


def _of_run(rows: pa.Table, run_id: str) -> pa.Table:
    return rows.filter(pc.equal(rows.column("run_id"), run_id))


def _data_commits(table: DeltaTable) -> list[str]:
    """Run ids of the table's commits, oldest first (each run's commit carries its run id); any
    other commit may only create the table."""
    entries = list(reversed(table.history()))
    stray = [e for e in entries if "run_id" not in e and e.get("operation") != "CREATE TABLE"]
    assert not stray, stray
    return [e["run_id"] for e in entries if "run_id" in e]


@dataclass(frozen=True)
class Outcome:
    """What an uninterrupted run leaves in a lake: the reference a faulted run must match."""

    served: dict[str, tuple[Any, ...]]
    quarantined: set[tuple[Any, ...]]  # distinct (content_id, input_hash, stage, reason)
    new_signal_rows: set[tuple[Any, ...]]  # the run's own rows, as _signal_keys
    new_quarantine_rows: set[tuple[Any, ...]]
    extracted: int


def _outcome(settings: Settings, record: RunRecord) -> Outcome:
    assert record.status == "succeeded", record
    uris = _uris(settings)
    signal_rows, quarantine_rows = _rows(uris["signal"]), _rows(uris["quarantine"])
    return Outcome(
        served=_served(settings),
        quarantined=set(_quarantine_keys(quarantine_rows)),
        new_signal_rows=set(_signal_keys(_of_run(signal_rows, record.run_id))),
        new_quarantine_rows=set(_quarantine_keys(_of_run(quarantine_rows, record.run_id))),
        extracted=record.extracted,
    )


# --------------------------------------------------------------------------------------------
# Helpers: processes
# --------------------------------------------------------------------------------------------


def _wait_for(what: str, condition: Callable[[], T], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _title(process: psutil.Process) -> str:
    """A process's title as `ps` shows it (Ray retitles its workers `ray::…`)."""
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return ""
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _map_workers() -> set[int]:
    """Pids of the Ray Data actors of this session's cluster.

    The session's Ray (GCS, raylet) was started by this test process, so every worker of its
    cluster, whichever driver it serves, is a descendant of this process; Ray instances of other
    processes on the machine are not.
    """
    return {
        p.pid for p in psutil.Process().children(recursive=True) if _title(p).startswith(MAP_WORKER)
    }


@dataclass
class Job:
    """`python -m jobs extract SIGNAL …` as a child process, its output in a log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, lake: Path, ray_address: str, *args: str, failpoint: str | None = None) -> Job:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNALS_", "RAY_ADDR"))}
        env.update(
            SIGNALS_LAKE_URI=str(lake),
            SIGNALS_RAY_ADDRESS=ray_address,
            RAY_AUTH_MODE="disabled",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        if failpoint:
            env[FAILPOINTS_ENV] = failpoint
        log = lake.parent / f"job-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "jobs", "extract", SIGNAL_REF, *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(process, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"job ran over {timeout:.0f} s:\n{self.output()}") from None

    def kill(self) -> None:
        """kill -9, as the OOM killer or a lost node would."""
        if self.running():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(WAIT_S)


@pytest.fixture
def jobs() -> Iterator[list[Job]]:
    """Jobs a test starts; any still running when it ends are killed."""
    started: list[Job] = []
    yield started
    for job in started:
        job.kill()


@pytest.fixture(scope="module")
def ray_address(ray_session: None) -> str:
    """The GCS address of the session's one Ray cluster, for the drivers the tests start."""
    import ray

    return ray.get_runtime_context().gcs_address


def _assert_on_the_session_cluster(job: Job, workers_before: set[int]) -> None:
    """The driver joined the session's Ray instead of starting one: no GCS or raylet of its own,
    and its extractor actor runs in a worker of the session's raylet."""
    own = [_title(p) for p in psutil.Process(job.process.pid).children(recursive=True)]
    assert not [t for t in own if "gcs_server" in t or "raylet" in t], own
    assert _map_workers() - workers_before, "the job's actor is not on the session's cluster"


# --------------------------------------------------------------------------------------------
# 1, 2: kill -9 an actor, kill -9 the driver, mid-job
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_catalog() -> pa.Table:
    return _catalog(LONG_ITEMS, seed=21)


@pytest.fixture(scope="module")
def long_reference(
    ray_session: None, long_catalog: pa.Table, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    """An uninterrupted run over `long_catalog`, in a lake of its own."""
    settings = _lake(tmp_path_factory.mktemp("long-reference") / "lake")
    write_deltalake(settings.default_snapshot_uri, long_catalog)
    return _outcome(settings, _extract(settings))


def _assert_lands_like(settings: Settings, record: RunRecord, reference: Outcome) -> None:
    """The run landed every eligible item exactly once, with the values of an uninterrupted run."""
    uris = _uris(settings)
    rows = _rows(uris["signal"])
    ids = rows.column("content_id").to_pylist()
    assert len(ids) == len(set(ids)) == record.extracted == reference.extracted
    assert set(rows.column("run_id").to_pylist()) == {record.run_id}
    assert _served(settings) == reference.served
    quarantine = _rows(uris["quarantine"])
    assert quarantine.num_rows == record.quarantined
    assert set(_quarantine_keys(quarantine)) == reference.quarantined
    assert record.read == LONG_ITEMS
    assert (record.unchanged, record.skipped) == (0, 0)
    assert record.extracted + record.quarantined == LONG_ITEMS
    stored = _runs(settings)[record.run_id]
    assert stored["status"] == "succeeded"
    assert (stored["read"], stored["extracted"], stored["quarantined"]) == (
        record.read,
        record.extracted,
        record.quarantined,
    )


@pytest.mark.slow
def test_an_extractor_actor_killed_mid_job_is_restarted_and_every_row_lands_once(
    settings: Settings, long_catalog: pa.Table, long_reference: Outcome
) -> None:
    write_deltalake(settings.default_snapshot_uri, long_catalog)
    signal_uri = _uris(settings)["signal"]
    before = _map_workers()
    replacements: set[int] = set()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_extract, settings, batch_size=LONG_BATCH)
        _wait_for(
            "three batches written", lambda: len(_parts_on_disk(signal_uri)) >= 3 or future.done()
        )
        assert not future.done(), f"the job ended before its actor was killed: {future.result()}"
        actors = _map_workers() - before
        assert len(actors) == 1, f"expected the job's one extractor actor, found {actors}"
        (victim,) = actors
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)

        def finished() -> bool:
            replacements.update(_map_workers() - before - {victim})
            return future.done()

        _wait_for("the job to finish after its actor was killed", finished)
        record = future.result()

    assert replacements, "Ray did not restart the killed actor"
    assert record.status == "succeeded"
    _assert_lands_like(settings, record, long_reference)
    committed = _committed_parts(signal_uri)
    on_disk = _parts_on_disk(signal_uri)
    assert committed <= on_disk
    # The restarted actor did the rest of the work: parts written after the kill landed.
    assert any(Path(signal_uri, name).stat().st_mtime > killed_at for name in committed)
    # Parts the dead actor wrote but never reported are named by no commit: their rows landed
    # once, through the part the retried batch wrote.
    landed = set(_rows(signal_uri).column("content_id").to_pylist())
    for name in on_disk - committed:
        orphan = pq.read_table(Path(signal_uri, name))
        assert set(orphan.column("run_id").to_pylist()) == {record.run_id}
        assert set(orphan.column("content_id").to_pylist()) <= landed


@pytest.mark.slow
def test_a_driver_killed_mid_job_changes_no_table_and_a_rerun_lands_everything_once(
    settings: Settings,
    ray_address: str,
    long_catalog: pa.Table,
    long_reference: Outcome,
    jobs: list[Job],
) -> None:
    write_deltalake(settings.default_snapshot_uri, long_catalog)
    uris = _uris(settings)
    before = _map_workers()
    job = Job.start(
        Path(settings.lake_uri), ray_address, "--batch-size", str(LONG_BATCH), "--run-id", "killed"
    )
    jobs.append(job)
    _wait_for("the job's first parts", lambda: _parts_on_disk(uris["signal"]) or not job.running())
    assert job.running(), job.output()
    _assert_on_the_session_cluster(job, before)
    job.kill()
    assert job.process.returncode == -signal.SIGKILL
    # Ray ends the actors of a dead driver: no orphaned worker goes on writing.
    _wait_for("the dead driver's actor to end", lambda: not (_map_workers() - before))
    written = _parts_on_disk(uris["signal"])
    assert written, "the driver was killed before its job wrote anything"
    assert "Started a local Ray instance" not in job.output()

    # Nothing was committed: the signal and quarantine tables do not exist; the runs table is
    # readable and shows the run as it was recorded at its start.
    assert open_table(uris["signal"]) is None
    assert open_table(uris["quarantine"]) is None
    assert {k: r["status"] for k, r in _runs(settings).items()} == {"killed": "running"}

    record = _extract(settings)
    assert record.status == "succeeded"
    _assert_lands_like(settings, record, long_reference)
    assert not written & _committed_parts(uris["signal"]), "a part of the killed run landed"
    statuses = {k: r["status"] for k, r in _runs(settings).items()}
    assert statuses == {"killed": "running", record.run_id: "succeeded"}


# --------------------------------------------------------------------------------------------
# 3: kill -9 the driver at each commit failpoint
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def commit_lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A lake holding only a snapshot, with its planted broken rows: a run over it has signal
    rows and quarantine rows to commit. The tests copy it before they write.

    Why no earlier run in it: every run over an existing signal table pays for an anti-join and
    the removals' shuffles (30–80 s on 2 CPUs), and the crash points are the same.
    """
    settings = _lake(tmp_path_factory.mktemp("commit-lake") / "lake")
    write_deltalake(settings.default_snapshot_uri, _catalog(COMMIT_ITEMS, seed=11))
    return settings.lake_uri


@pytest.fixture(scope="module")
def commit_reference(
    ray_session: None, commit_lake: str, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    """The uninterrupted run over the commit lake's snapshot."""
    settings = _copy_lake(commit_lake, tmp_path_factory.mktemp("commit-reference") / "lake")
    outcome = _outcome(settings, _extract(settings))
    assert outcome.new_signal_rows and outcome.new_quarantine_rows
    return outcome


@pytest.fixture(scope="module")
def crashed_lake(
    commit_lake: str, ray_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    """failpoint → a copy of the commit lake where a driver (run CRASHED_RUN) was killed there.

    One crash per failpoint, shared by the tests that read it; they copy it before they write.
    """
    crashed: dict[str, str] = {}

    def crash(failpoint: str) -> str:
        if failpoint not in crashed:
            lake = tmp_path_factory.mktemp(f"crashed-{failpoint}") / "lake"
            shutil.copytree(commit_lake, lake)
            job = Job.start(lake, ray_address, "--run-id", CRASHED_RUN, failpoint=failpoint)
            try:
                code = job.wait()
            finally:
                job.kill()
            assert code == -signal.SIGKILL, f"no SIGKILL at {failpoint}:\n{job.output()}"
            crashed[failpoint] = str(lake)
        return crashed[failpoint]

    return crash


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", [BEFORE_COMMIT, BETWEEN_COMMITS, BEFORE_RUN_RECORD])
def test_a_driver_killed_at_a_commit_failpoint_leaves_each_table_at_its_old_or_new_version(
    failpoint: str, commit_reference: Outcome, crashed_lake: Callable[[str], str]
) -> None:
    settings = _lake(Path(crashed_lake(failpoint)))
    uris = _uris(settings)
    for name, keys, run_rows in (
        ("signal", _signal_keys, commit_reference.new_signal_rows),
        ("quarantine", _quarantine_keys, commit_reference.new_quarantine_rows),
    ):
        table = open_table(uris[name])
        if name in COMMITTED_BY[failpoint]:
            # The new version: ALL of the run's rows, each once, in one commit tagged with it.
            assert table is not None, name
            assert _data_commits(table) == [CRASHED_RUN], name
            assert table.transaction_version(app_id(CRASHED_RUN)) is not None, name
            rows = pa.table(table.to_pyarrow_table())  # readable: every file it names exists
            assert set(rows.column("run_id").to_pylist()) == {CRASHED_RUN}, name
            assert sorted(keys(rows), key=repr) == sorted(run_rows, key=repr), name
        else:
            # The old version (no table yet): the run's parts lie there, named by no commit.
            assert table is None, name
            assert _parts_on_disk(uris[name]), f"{name}: killed before it wrote its parts"
    assert _rows(uris["runs"]).num_rows == 1  # the record of the run's start, nothing else
    last = _runs(settings)
    assert list(last) == [CRASHED_RUN]
    assert (last[CRASHED_RUN]["status"], last[CRASHED_RUN]["snapshot_version"]) == ("running", 0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failpoint", "same_run_id"),
    [
        pytest.param(BEFORE_COMMIT, False, id="before-commit-new-run-id"),
        pytest.param(BEFORE_COMMIT, True, id="before-commit-same-run-id"),
        pytest.param(BETWEEN_COMMITS, False, id="between-commits-new-run-id"),
        pytest.param(BETWEEN_COMMITS, True, id="between-commits-same-run-id"),
        pytest.param(BEFORE_RUN_RECORD, False, id="before-run-record-new-run-id"),
        pytest.param(BEFORE_RUN_RECORD, True, id="before-run-record-same-run-id"),
    ],
)
def test_a_rerun_after_a_commit_failpoint_serves_what_an_uninterrupted_run_serves(
    failpoint: str,
    same_run_id: bool,
    commit_reference: Outcome,
    crashed_lake: Callable[[str], str],
    tmp_path: Path,
) -> None:
    settings = _copy_lake(crashed_lake(failpoint), tmp_path / "lake")
    uris = _uris(settings)
    record = _extract(settings, run_id=CRASHED_RUN if same_run_id else None)
    both_committed = failpoint == BEFORE_RUN_RECORD
    assert record.status == ("already-committed" if same_run_id and both_committed else "succeeded")
    assert _runs(settings)[record.run_id]["status"] == record.status
    signal_rows, quarantine_rows = _rows(uris["signal"]), _rows(uris["quarantine"])
    assert not _duplicates(signal_rows)
    assert _served(settings) == commit_reference.served
    assert set(_quarantine_keys(quarantine_rows)) == commit_reference.quarantined
    if same_run_id:  # each table holds the run's rows once: a committed table is not written again
        assert _of_run(signal_rows, CRASHED_RUN).num_rows == len(commit_reference.new_signal_rows)
        assert _of_run(quarantine_rows, CRASHED_RUN).num_rows == len(
            commit_reference.new_quarantine_rows
        )
    if record.status == "already-committed":
        # The retry did nothing itself: the lake must still be settled, so that the next
        # scheduled run over the same snapshot finds nothing to compute.
        again = _extract(settings)
        assert again.status == "succeeded"
        assert (again.computed, again.extracted, again.quarantined) == (0, 0, 0)


# --------------------------------------------------------------------------------------------
# 4: two writers at once
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_over_one_snapshot_at_once_both_land_and_the_tables_stay_valid(
    settings: Settings, long_catalog: pa.Table, long_reference: Outcome
) -> None:
    """Two runs of one signal over one snapshot, started together (two threads of this driver:
    worker processes of a new driver take a minute to start on 2 loaded cores; the commit race
    between processes is the subject of the barrier tests below). Neither sees the other's rows
    when it plans its work, so both compute everything and both commit."""
    write_deltalake(settings.default_snapshot_uri, long_catalog)
    # Half a CPU per actor: both actors fit the session's 2 CPUs beside the read tasks.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_extract, settings, cpus_per_actor=0.5) for _ in range(2)]
        records = [future.result(timeout=WAIT_S) for future in futures]
    assert [r.status for r in records] == ["succeeded", "succeeded"]
    assert {r.extracted for r in records} <= {0, long_reference.extracted}  # all or nothing

    runs = _runs(settings)
    assert len(runs) == 2
    assert {r["status"] for r in runs.values()} == {"succeeded"}
    uris = _uris(settings)
    for name in ("signal", "quarantine"):
        table = DeltaTable(uris[name])
        rows = pa.table(table.to_pyarrow_table())
        counted = "extracted" if name == "signal" else "quarantined"
        landing = sorted(k for k, r in runs.items() if r[counted])
        # One commit per run that had rows for the table, each with all of its rows.
        assert sorted(_data_commits(table)) == landing, name
        assert rows.num_rows == sum(runs[k][counted] for k in landing), name
        for run_id in landing:
            assert _of_run(rows, run_id).num_rows == runs[run_id][counted], name
    # Both computed the same values; serving sees what one uninterrupted run lands.
    assert _served(settings) == long_reference.served
    values: dict[str, set[tuple[Any, ...]]] = {}
    for key in _signal_keys(_rows(uris["signal"])):
        values.setdefault(key[0], set()).add(key[1:])
    assert all(len(v) == 1 for v in values.values())
    assert set(_quarantine_keys(_rows(uris["quarantine"]))) == long_reference.quarantined


RACE_SCHEMA = pa.schema([pa.field("content_id", pa.string()), pa.field("value", pa.int64())])
RACE_ROWS = 5
RACE_ROUNDS = 8
# (table URI, run id) of one writer's commit in one round
Round = tuple[str, str]
Result = tuple[int, str, str, int | str | None]  # (round, run id, "committed"|"failed", detail)


def _race_rows(run_id: str) -> pa.Table:
    ids = [f"{run_id}-{i}" for i in range(RACE_ROWS)]
    return pa.table({"content_id": ids, "value": list(range(RACE_ROWS))}, schema=RACE_SCHEMA)


def _commit_at_barrier(rounds: list[Round], barrier: Barrier, results: Queue[Result]) -> None:
    """A spawned writer: per round, write its part, wait for the others, then commit at once."""
    for index, (table_uri, run_id) in enumerate(rounds):
        part = write_part(table_uri, _race_rows(run_id), run_id)
        barrier.wait(timeout=WAIT_S)
        try:
            version = commit_parts(table_uri, RACE_SCHEMA, [part], run_id)
        except Exception as exc:
            results.put((index, run_id, "failed", f"{type(exc).__name__}: {exc}"))
        else:
            results.put((index, run_id, "committed", version))


def _race(writers: list[list[Round]]) -> dict[int, list[Result]]:
    """One spawned process per writer (delta-rs does not survive a fork), all committing each
    round at the same instant; round → every writer's result."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(writers))
    results: Queue[Result] = context.Queue()
    processes = [
        context.Process(target=_commit_at_barrier, args=(rounds, barrier, results))
        for rounds in writers
    ]
    for process in processes:
        process.start()
    try:
        out = [results.get(timeout=WAIT_S) for rounds in writers for _ in rounds]
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    by_round: dict[int, list[Result]] = {}
    for result in out:
        by_round.setdefault(result[0], []).append(result)
    return by_round


def _seeded_table(uri: str) -> None:
    """A table that already exists, with one commit of its own (run "seed")."""
    commit_parts(uri, RACE_SCHEMA, [write_part(uri, _race_rows("seed"), "seed")], "seed")


@dataclass(frozen=True)
class Race:
    tables: list[str]  # one per round
    fresh: list[bool]  # whether the round's table did not exist before it
    results: dict[int, list[Result]]


@pytest.fixture(scope="module")
def distinct_runs_race(tmp_path_factory: pytest.TempPathFactory) -> Race:
    """Two writers with runs of their own, committing to one table at the same instant: a new
    table in half of the rounds (both create it), an existing one in the others."""
    root = tmp_path_factory.mktemp("race-distinct")
    tables = [str(root / f"table-{i}") for i in range(2 * RACE_ROUNDS)]
    fresh = [i < RACE_ROUNDS for i in range(len(tables))]
    for uri, new in zip(tables, fresh, strict=True):
        if not new:
            _seeded_table(uri)
    writers = [[(uri, f"run-{w}-{i}") for i, uri in enumerate(tables)] for w in "ab"]
    return Race(tables, fresh, _race(writers))


def test_two_processes_committing_parts_at_the_same_instant_both_land_once(
    distinct_runs_race: Race,
) -> None:
    race = distinct_runs_race
    for index, uri in enumerate(race.tables):
        results = race.results[index]
        assert [r[2] for r in results] == ["committed", "committed"], results
        table = DeltaTable(uri)
        rows = pa.table(table.to_pyarrow_table())
        seed = 0 if race.fresh[index] else 1
        runs = [r[1] for r in results]
        assert rows.num_rows == RACE_ROWS * (seed + len(runs))
        ids = rows.column("content_id").to_pylist()
        assert len(ids) == len(set(ids))
        for run_id in runs:
            assert table.transaction_version(app_id(run_id)) == 1
            assert sum(i.startswith(f"{run_id}-") for i in ids) == RACE_ROWS
        assert sorted(_data_commits(table)) == sorted(runs + ["seed"] * seed)


def test_commit_parts_reports_the_version_of_its_own_commit(distinct_runs_race: Race) -> None:
    race = distinct_runs_race
    for index, uri in enumerate(race.tables):
        history = DeltaTable(uri).history()
        version_of = {h["run_id"]: h["version"] for h in history if "run_id" in h}
        for _, run_id, outcome, version in race.results[index]:
            assert outcome == "committed"
            assert version == version_of[run_id], (uri, run_id, race.results[index])


def test_a_run_id_committed_by_two_processes_at_once_to_an_existing_table_lands_once(
    tmp_path: Path,
) -> None:
    tables = [str(tmp_path / f"table-{i}") for i in range(RACE_ROUNDS)]
    for uri in tables:
        _seeded_table(uri)
    results = _race([[(uri, "retried") for uri in tables]] * 2)
    for index, uri in enumerate(tables):
        outcomes = results[index]
        committed = [r for r in outcomes if r[2] == "committed" and r[3] is not None]
        assert len(committed) == 1, outcomes
        # The other one saw the commit (None) or lost the race on the run's app transaction.
        (other,) = [r for r in outcomes if r is not committed[0]]
        assert other[3] is None or "Concurrent transaction" in str(other[3]), outcomes
        table = DeltaTable(uri)
        assert _data_commits(table) == ["seed", "retried"]
        assert pa.table(table.to_pyarrow_table()).num_rows == 2 * RACE_ROWS


def test_a_run_id_committed_by_two_processes_at_once_to_a_new_table_lands_once(
    tmp_path: Path,
) -> None:
    tables = [str(tmp_path / f"table-{i}") for i in range(2 * RACE_ROUNDS)]
    results = _race([[(uri, "retried") for uri in tables]] * 2)
    for index, uri in enumerate(tables):
        table = DeltaTable(uri)
        assert pa.table(table.to_pyarrow_table()).num_rows == RACE_ROWS, results[index]
        assert _data_commits(table) == ["retried"], results[index]
