"""Running a job on a Ray cluster through Ray's own job submission API (what `ray job submit`
does), with the job named as on a laptop: `signals submit extract text_embedding@2 --actors 2:8`.

Every job runs through the one cluster entry point, `python -m jobs <command> …`, which is the
same CLI a laptop runs, so the cluster runs exactly the code and flags a laptop runs. The submitter forwards its own
`SIGNALS_*` settings (a lake URI, an online store) unless told not to, and uploads this checkout as
the job's working directory unless the cluster's image already holds the code (`--no-upload`).

No credential travels with a job: Ray keeps a job's runtime environment in its job info, which
anyone who can read the dashboard or `ray job list` reads. Credentials among the forwarded settings
(storage options' keys, an API key, a password in a connection string) are left out, the rest
still travels, and the job uses the cluster's own (a Secret, a role); one passed explicitly
(`--env`) is refused.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shlex
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from jobs.errors import CredentialInJobError
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

# A name is a credential's when one of its words (split at `_`, `-`, `.` and camelCase) holds
# SECRET, PASSWORD or CREDENTIAL, ends in KEY or TOKEN (`ACCOUNTKEY`, `SASTOKEN`), or is SAS,
# SESSION or PWD. `SIGNALS_LLM_MAX_TOKENS`, `AWS_REGION` and `endpoint_url` are not.
_SECRET_INFIXES = ("SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_SECRET_SUFFIXES = ("KEY", "TOKEN")
_SECRET_WORDS = frozenset({"SAS", "SESSION", "PWD"})
# A credential in a value, whatever the setting is called.
_AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_URI_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:[^/?#@\s]+@")
_NAMED_VALUE = re.compile(r"([A-Za-z][\w.-]*)\s*=\s*[^\s,;&]")  # `password=…` in a Redis URL
# A random token: long, mixed case and digits, near the entropy of random base64 (paths,
# model names and hex digests stay below it; `/` and `.` split a path into short words).
_TOKEN = re.compile(r"[A-Za-z0-9+=_-]{32,}")
_TOKEN_MIN_BITS_PER_CHAR = 4.3


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


@dataclass(frozen=True)
class JobEnv:
    """A job's environment, and the credentials of this shell's settings left out of it (named,
    never shown), so that the submitter can say the job will use the cluster's own."""

    env: dict[str, str]
    withheld: list[str] = field(default_factory=list)

    @property
    def notice(self) -> str:
        """What the submitter tells its user about the credentials it left out ("" if none)."""
        if not self.withheld:
            return ""
        return (
            f"not forwarded to the job: {', '.join(self.withheld)}; it uses the cluster's own "
            "credentials (its Secret's AWS_* variables, its nodes' role)"
        )


def is_secret_name(name: str) -> bool:
    """Whether `name` (a setting, a storage option, a `key=` inside a value) names a credential,
    whose value must never reach a job's runtime environment."""
    words = re.split(r"[^A-Z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper())
    return any(
        word in _SECRET_WORDS
        or word.endswith(_SECRET_SUFFIXES)
        or any(infix in word for infix in _SECRET_INFIXES)
        for word in words
        if word
    )


def credentials(name: str, value: str) -> list[str]:
    """The credentials that setting `name` to `value` would put in a job's runtime environment,
    each named (`AWS_SECRET_ACCESS_KEY in SIGNALS_STORAGE_OPTIONS`), never shown: [] if none."""
    return _without_credentials(name, value)[1]


def job_env(
    extra: list[str], forward: bool = True, environ: Mapping[str, str] | None = None
) -> JobEnv:
    """The environment of the job: this process's `SIGNALS_*` settings less their credentials,
    then `--env K=V` pairs.

    A forwarded setting loses what is a credential and keeps the rest (a region, an endpoint),
    because the shell holds credentials for its own use and the cluster has its own; an `--env`
    pair that is one is refused, because someone asked for it to travel in clear.
    """
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    withheld: dict[str, list[str]] = {}
    for key, value in environ.items():
        if not forward or not key.startswith("SIGNALS_") or key in NOT_FORWARDED:
            continue
        kept, left_out = _without_credentials(key, value)
        if left_out:
            withheld[key] = left_out
        if kept is not None:
            env[key] = kept
    for pair in extra:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise JobRequestError(f"--env {pair!r}: use KEY=VALUE")
        if found := credentials(key, value):
            raise CredentialInJobError(
                f"refusing --env {key}: {', '.join(found)} would be readable in the Ray job's "
                "info (the dashboard, `ray job list`)"
            )
        env[key] = value
        withheld.pop(key, None)
    return JobEnv(env, [label for labels in withheld.values() for label in labels])


def runtime_env(env: dict[str, str], upload: bool) -> dict:
    """Ray's runtime environment of the job: its variables and, unless the image holds the code,
    this checkout as the working directory (on `sys.path` of the driver and every worker).

    Refuses variables holding a credential, whoever built them: Ray shows this to every reader
    of the cluster's job info.
    """
    found = [label for key, value in env.items() for label in credentials(key, value)]
    if found:
        raise CredentialInJobError(
            f"a Ray job's environment would hold credentials: {', '.join(found)}"
        )
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

    command, runtime = entrypoint(job, args), runtime_env(env, upload)
    try:
        client = JobSubmissionClient(address)
        job_id = client.submit_job(entrypoint=command, runtime_env=runtime)
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


def _without_credentials(name: str, value: str) -> tuple[str | None, list[str]]:
    """`value` less its credentials (None: no part of it may travel) and what was left out.

    A JSON object (`SIGNALS_STORAGE_OPTIONS`) loses the keys that are credentials; any other
    value holding one is left out whole, since its credential cannot be cut out of it safely.
    """
    if is_secret_name(name):
        return None, [name]
    if value.lstrip().startswith("{"):
        try:
            options = json.loads(value)
        except ValueError:
            raise JobRequestError(
                f"{name} is not valid JSON, so its credentials cannot be told from the rest",
                hint="fix it, or submit with --no-forward-settings",
            ) from None
        if isinstance(options, dict):
            secret = [
                key
                for key, option in options.items()
                if is_secret_name(key)
                or _credential_in(option if isinstance(option, str) else json.dumps(option))
            ]
            if not secret:
                return value, []
            kept = {k: v for k, v in options.items() if k not in secret}
            return (json.dumps(kept) if kept else None), [f"{k} in {name}" for k in secret]
    if reason := _credential_in(value):
        return None, [f"{reason} in {name}"]
    return value, []


def _credential_in(value: str) -> str | None:
    """What credential `value` holds, whatever its name says (None: none seen)."""
    if _AWS_KEY_ID.search(value):
        return "an AWS access key id"
    if _URI_PASSWORD.search(value):
        return "a URI's password"
    for named in _NAMED_VALUE.finditer(value):
        if is_secret_name(named.group(1)):
            return f"{named.group(1)}=…"
    if any(_is_random(token) for token in _TOKEN.findall(value)):
        return "a random token"
    return None


def _is_random(token: str) -> bool:
    """Whether `token` looks generated (a key, a secret) rather than written by a person."""
    if not (re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"\d", token)):
        return False
    counts = Counter(token)
    bits = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return bits >= _TOKEN_MIN_BITS_PER_CHAR
