"""Running a job on a Ray cluster through Ray's own job submission API (what `ray job submit`
does), with the job named as on a laptop: `signals submit extract text_embedding@2 --actors 2:8`.

Every job runs through the one cluster entry point, `python -m jobs <command> …`, which is the
same CLI a laptop runs, so the cluster runs exactly the code and flags a laptop runs. The submitter forwards its own
`SIGNALS_*` settings (a lake URI, an online store) unless told not to, and uploads this checkout as
the job's working directory unless the cluster's image already holds the code (`--no-upload`).
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from jobs.pipeline.errors import JobRequestError, SubmitError
from jobs.settings import PROJECT_ROOT

# The commands `signals submit` runs on a cluster, each as `python -m jobs <command> …`: the
# batch jobs. Serving, review and reports stay where people are.
JOBS = ("extract", "backfill", "near-duplicates", "materialize", "compact", "vacuum")
ENTRY_POINT = ("python", "-m", "jobs")
# Local state that must not travel with the code (Ray also skips what .gitignore lists).
UPLOAD_EXCLUDES = [".git", ".venv", "lake", "feature_repo/data", "benchmarks/out", "tests", "docs"]
# The job runs on the cluster it was submitted to: Ray sets its address for the driver.
NOT_FORWARDED = ("SIGNALS_RAY_ADDRESS",)


@dataclass(frozen=True)
class JobOutcome:
    """How a submitted job ended, in the words `ray job status` uses."""

    job_id: str
    status: str  # SUCCEEDED, FAILED, STOPPED
    message: str
    exit_code: int  # the driver's exit code; 0 only when the job succeeded


def entrypoint(job: str, args: list[str]) -> str:
    """The shell command the cluster runs for `job`: the entry point with the same flags."""
    if job not in JOBS:
        raise JobRequestError(f"no job {job!r}", hint=f"jobs: {', '.join(JOBS)}")
    return shlex.join([*ENTRY_POINT, job, *args])


def job_env(extra: list[str], forward: bool = True) -> dict[str, str]:
    """The environment of the job: this process's `SIGNALS_*` settings, then `--env K=V` pairs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if forward and k.startswith("SIGNALS_") and k not in NOT_FORWARDED
    }
    for pair in extra:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise JobRequestError(f"--env {pair!r}: use KEY=VALUE")
        env[key] = value
    return env


def runtime_env(env: dict[str, str], upload: bool) -> dict:
    """Ray's runtime environment of the job: its variables and, unless the image holds the code,
    this checkout as the working directory (on `sys.path` of the driver and every worker)."""
    runtime: dict = {"env_vars": env}
    if upload:
        runtime |= {"working_dir": str(PROJECT_ROOT), "excludes": UPLOAD_EXCLUDES}
    return runtime


def submit(
    address: str,
    job: str,
    args: list[str],
    *,
    env: dict[str, str],
    upload: bool = True,
    wait: bool = True,
    on_log: Callable[[str], None] = print,
) -> JobOutcome:
    """Submit `job` to the Ray cluster whose dashboard is at `address`, stream its logs to
    `on_log` until it ends, and return how it ended (the caller exits with `exit_code`)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    try:
        client = JobSubmissionClient(address)
        job_id = client.submit_job(
            entrypoint=entrypoint(job, args), runtime_env=runtime_env(env, upload)
        )
    except JobRequestError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError from the job API
        raise SubmitError(
            f"cannot submit to the Ray job API at {address}: {exc}",
            hint="pass the dashboard address, e.g. --address http://HEAD:8265",
        ) from exc
    on_log(f"submitted {job} as Ray job {job_id}")
    if not wait:
        return JobOutcome(job_id, str(client.get_job_status(job_id)), "not waited for", 0)
    try:
        asyncio.run(_stream(client, job_id, on_log))
    except KeyboardInterrupt:
        on_log(f"detached; the job keeps running (`ray job stop {job_id}` stops it)")
        raise
    info = client.get_job_info(job_id)
    succeeded = info.status == JobStatus.SUCCEEDED
    code = 0 if succeeded else (info.driver_exit_code or 1)
    return JobOutcome(job_id, str(info.status), info.message or "", code)


async def _stream(client: object, job_id: str, on_log: Callable[[str], None]) -> None:
    async for chunk in client.tail_job_logs(job_id):  # type: ignore[attr-defined]
        for line in chunk.rstrip("\n").split("\n"):
            on_log(line)
