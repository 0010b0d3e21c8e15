"""The extract job on a real two-node Ray cluster, submitted as a Ray job (`ray job submit`, then
`signals submit`): work runs on both nodes, and the Delta table holds what the extractor computes.
No credential of the submitter's settings reaches the job's runtime environment, which Ray shows
to every reader of the job info (the last tests here need no cluster)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from ray_cluster import BIN, LocalRayCluster
from typer.testing import CliRunner

from extractors.text import TextQuality
from features import get_signal
from jobs.cli import app
from jobs.errors import CredentialInJobError
from jobs.pipeline.submit import UPLOAD_EXCLUDES, is_secret_name, runtime_env
from jobs.pipeline.submit import job_env as build_job_env
from jobs.sample import write_sample_catalog
from jobs.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow
SIGNAL = get_signal("text_quality@1")
ITEMS = 40
# One actor per node: an actor takes 2 of a node's 3 CPUs, so the pool of two must span both
# nodes, and the CPU left on each node runs the read tasks.
RESOURCES = ["--actors", "2", "--cpus-per-actor", "2", "--batch-size", "5"]
# Credentials as a submitter's shell may hold them (AWS's documented example keys), and the
# object-store options that are none.
KEY_ID, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PUBLIC_OPTIONS = {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
                  "AWS_ALLOW_HTTP": "true"}  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    cluster = LocalRayCluster(cpus_per_node=3).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def job_env(tmp_path_factory: pytest.TempPathFactory, cluster: LocalRayCluster) -> dict[str, str]:
    """A catalog in a lake both nodes reach (the same disk here; object storage on a real
    cluster), and the environment that points a job at it."""
    root = tmp_path_factory.mktemp("cluster")
    lake = root / "lake"
    write_sample_catalog(str(lake / "catalog"), lake / "media", ITEMS, with_media=False)
    return {**cluster.env, "SIGNALS_LAKE_URI": str(lake), "SIGNALS_FEAST_REPO": str(root / "repo")}


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def submit_job(
    cluster: LocalRayCluster, env: dict[str, str], *command: str
) -> subprocess.CompletedProcess[str]:
    """`ray job submit` of `python -m jobs COMMAND…` with the project as the working directory
    and the `SIGNALS_*` settings of `env` as the job's environment."""
    runtime_env = {"env_vars": {k: v for k, v in env.items() if k.startswith("SIGNALS_")},
                   "excludes": UPLOAD_EXCLUDES}  # fmt: skip
    return run(
        [str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard_url,
         "--working-dir", str(PROJECT_ROOT), "--runtime-env-json", json.dumps(runtime_env),
         "--", "python", "-m", "jobs", *command],
        env,
    )  # fmt: skip


def tasks_per_node(cluster: LocalRayCluster, job_id: str, name: str) -> Counter[str]:
    """How many of the job's tasks whose name contains `name` ran on each node (Ray's state API)."""
    from ray.util.state import list_tasks

    tasks = list_tasks(
        address=cluster.dashboard_url, filters=[("job_id", "=", job_id)], limit=10_000
    )
    return Counter(t.node_id for t in tasks if name in t.name and t.node_id)


def assert_spread(
    cluster: LocalRayCluster, job_id: str, stages: tuple[str, ...], nodes: set[str]
) -> None:
    """The partition stages' tasks ran on every node.

    Across the stages, not per stage: SPREAD is the scheduler's best effort, and one stage of a
    small job may still land on one node when the other is busy with the previous stage."""
    ran: Counter[str] = Counter()
    for stage in stages:
        ran += tasks_per_node(cluster, job_id, stage)
    assert set(ran) == nodes, ran


def test_ray_job_submit_runs_the_extract_job_on_both_nodes(
    cluster: LocalRayCluster, job_env: dict[str, str]
) -> None:
    done = submit_job(cluster, job_env, "extract", SIGNAL.ref, *RESOURCES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout

    from ray.job_submission import JobSubmissionClient

    (job,) = JobSubmissionClient(cluster.dashboard_url).list_jobs()
    per_node = tasks_per_node(cluster, job.job_id, "ExtractBatches")
    nodes = {n.node_id for n in cluster.alive_nodes()}
    assert set(per_node) == nodes and len(nodes) == 2, per_node

    # The table holds exactly what the extractor computes for every item of the snapshot.
    lake = Path(job_env["SIGNALS_LAKE_URI"])
    snapshot = DeltaTable(str(lake / "catalog")).to_pyarrow_table()
    stored = DeltaTable(str(lake / "signals" / SIGNAL.storage_name)).to_pyarrow_table()
    assert sorted(stored["content_id"].to_pylist()) == sorted(snapshot["content_id"].to_pylist())
    wanted = snapshot.filter(pa.compute.is_in(snapshot["content_id"], stored["content_id"]))
    expected = TextQuality(device="cpu").extract(wanted).to_pylist()
    by_id = {r["content_id"]: r for r in stored.to_pylist()}
    for content_id, values in zip(wanted["content_id"].to_pylist(), expected, strict=True):
        for feature in SIGNAL.features:
            assert by_id[content_id][feature] == values[feature], (content_id, feature)


def test_signals_submit_streams_the_logs_and_exits_as_the_job_did(
    cluster: LocalRayCluster, job_env: dict[str, str]
) -> None:
    submit = [str(BIN / "signals"), "submit", "--address", cluster.dashboard_url]
    # The shell holds object-store keys and an API key: they stay behind, the rest travels.
    options = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": KEY_ID,
               "AWS_SECRET_ACCESS_KEY": SECRET_KEY}  # fmt: skip
    shell = {**job_env, "SIGNALS_STORAGE_OPTIONS": json.dumps(options),
             "SIGNALS_LLM_API_KEY": "sk-" + SECRET_KEY}  # fmt: skip
    again = run([*submit, "extract", SIGNAL.ref, *RESOURCES], shell)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    # The job's own output, streamed: the run table of an incremental rerun (nothing changed).
    row = next(line for line in again.stdout.splitlines() if line.strip().startswith(SIGNAL.ref))
    _signal, _run, read, _unchanged, _skipped, extracted, *_, status = row.split()
    assert (read, extracted, status) == (str(ITEMS), "0", "succeeded"), row
    assert "SUCCEEDED" in again.stderr
    assert "not forwarded to the job: AWS_ACCESS_KEY_ID in SIGNALS_STORAGE_OPTIONS" in again.stderr

    # What anyone who reads the cluster's job info sees.
    from ray.job_submission import JobSubmissionClient

    job_id = again.stdout.split("as Ray job ", 1)[1].split()[0]
    seen = JobSubmissionClient(cluster.dashboard_url).get_job_info(job_id).runtime_env
    env_vars = seen["env_vars"]
    assert json.loads(env_vars["SIGNALS_STORAGE_OPTIONS"]) == {"AWS_REGION": "us-east-1"}
    assert env_vars["SIGNALS_LAKE_URI"] == job_env["SIGNALS_LAKE_URI"]
    assert "SIGNALS_LLM_API_KEY" not in env_vars
    assert KEY_ID not in json.dumps(seen) and SECRET_KEY not in json.dumps(seen)

    failed = run([*submit, "extract", "no_such_signal@1"], job_env)
    assert failed.returncode == 1
    assert "no_such_signal" in failed.stdout  # the job's own error, streamed
    assert "FAILED" in failed.stderr

    unreachable = run([*submit, "--address", "http://127.0.0.1:1", "extract"], job_env)
    assert unreachable.returncode == 75  # transient: retry once the cluster answers
    assert "cannot submit to the Ray job API at http://127.0.0.1:1" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_the_ray_engine_materializes_from_delta_on_both_nodes(
    cluster: LocalRayCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`jobs materialize` submitted with the Ray engine: tasks on both nodes read the Delta files
    (the offline store's `to_ray_dataset`) and write Redis; Feast then serves each item's newest
    Delta row, and a tombstoned item is gone."""
    import shutil
    from datetime import UTC, datetime, timedelta

    import numpy as np
    from deltalake import write_deltalake
    from ray.job_submission import JobSubmissionClient
    from redis_server import RedisServer
    from signal_rows import history

    from jobs.serving.client import get_signals
    from jobs.settings import Settings

    embedding = get_signal("text_embedding@1")
    root = tmp_path_factory.mktemp("materialize")
    (root / "repo").mkdir()
    for name in ("definitions.py", "feature_store.redis.yaml", ".feastignore"):
        shutil.copy(PROJECT_ROOT / "feature_repo" / name, root / "repo" / name)
    redis = RedisServer(root / "redis")
    redis.start()
    env = {**cluster.env, "SIGNALS_LAKE_URI": str(root / "lake"),
           "SIGNALS_FEAST_REPO": str(root / "repo"), "SIGNALS_ONLINE_STORE": "redis",
           "SIGNALS_REDIS_URL": redis.url, "SIGNALS_MATERIALIZE_ENGINE": "ray",
           "SIGNALS_MATERIALIZE_BATCH_ROWS": "4"}  # fmt: skip
    settings = Settings.from_env(env)
    uri = settings.signal_uri(embedding.storage_name)
    rng = np.random.default_rng(7)
    start = datetime.now(UTC) - timedelta(hours=1)
    ids = [f"track:{i:02d}" for i in range(24)]
    for step in range(4):  # a file per run: the read tasks have files to spread over
        rows = [(c, start + timedelta(minutes=step), {"embedding": rng.standard_normal(384).tolist()})
                for c in ids[step * 6 : step * 6 + 6]]  # fmt: skip
        write_deltalake(uri, history(embedding.ref, rows, f"r{step}"), mode="append")
    later = start + timedelta(minutes=10)
    newer = [(c, later, {"embedding": rng.standard_normal(384).tolist()}) for c in ids[:3]]
    write_deltalake(uri, history(embedding.ref, [*newer, (ids[23], later, None)], "r4"), mode="append")  # fmt: skip
    try:
        done = submit_job(cluster, env, "materialize", embedding.ref)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        job = next(
            j
            for j in JobSubmissionClient(cluster.dashboard_url).list_jobs()
            if "materialize" in j.entrypoint
        )
        per_node = tasks_per_node(cluster, job.job_id, "_read_delta_files")
        nodes = {n.node_id for n in cluster.alive_nodes()}
        assert set(per_node) == nodes and len(nodes) == 2, per_node

        stored = DeltaTable(uri).to_pyarrow_table().to_pylist()
        newest: dict[str, dict] = {}
        for row in sorted(stored, key=lambda r: (r["event_timestamp"], r["created_timestamp"])):
            newest[row["content_id"]] = row
        served = get_signals(ids, signals=[embedding.ref], settings=settings)
        values = served.column(f"{embedding.feature_view_name}__embedding").to_pylist()
        expected = [newest[c]["embedding"] for c in ids[:23]]
        assert values == [*expected, None]  # the newest row of each item; the tombstone gone
        assert newest[ids[0]]["event_timestamp"] == later
    finally:
        redis.stop()


def test_the_near_duplicates_job_runs_its_stages_on_both_nodes(
    cluster: LocalRayCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`jobs near-duplicates` submitted to the cluster in 7 partitions: bucket and verify tasks
    run on both nodes, and the groups equal those of exact all-pairs search."""
    import numpy as np
    from deltalake import write_deltalake
    from ray.job_submission import JobSubmissionClient
    from signal_rows import current_inputs, duplicate_catalog, duplicate_changes

    from extractors.duplicates import NearDuplicates
    from features import get_signal
    from jobs.lake.tables import latest_signal_values

    lake = tmp_path_factory.mktemp("duplicates") / "lake"
    art, audio = duplicate_catalog(np.random.default_rng(5))
    write_deltalake(str(lake / "signals" / "artwork_hash" / "v1"), art)
    write_deltalake(str(lake / "signals" / "audio_fingerprint" / "v1"), audio)
    env = {**cluster.env, "SIGNALS_LAKE_URI": str(lake),
           "SIGNALS_NEAR_DUPLICATES_PARTITION_ITEMS": "64"}  # fmt: skip
    done = submit_job(cluster, env, "near-duplicates")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = next(
        j
        for j in JobSubmissionClient(cluster.dashboard_url).list_jobs()
        if "near-duplicates" in j.entrypoint
    )
    nodes = {n.node_id for n in cluster.alive_nodes()}
    assert_spread(cluster, job.job_id, ("build_items", "bucket_candidates", "verify"), nodes)

    exact = NearDuplicates().extract(
        pa.table({"content_id": art.column("content_id"), "artwork_phash": art.column("phash"),
                  "artwork_layout": art.column("colour_layout"),
                  "audio_fingerprint": audio.column("fingerprint")})
    ).to_pylist()  # fmt: skip
    stored = DeltaTable(str(lake / "signals" / "near_duplicates" / "v1")).to_pyarrow_table()
    groups = dict(
        zip(stored["content_id"].to_pylist(), stored["group_id"].to_pylist(), strict=True)
    )
    assert groups == {r["content_id"]: r["group_id"] for r in exact}

    # A day later: the daily run's stages run on both nodes too, and its groups are exact.
    day_art, day_audio = duplicate_changes(art, audio, np.random.default_rng(6))
    write_deltalake(str(lake / "signals" / "artwork_hash" / "v1"), day_art, mode="append")
    write_deltalake(str(lake / "signals" / "audio_fingerprint" / "v1"), day_audio, mode="append")
    daily = submit_job(cluster, env, "near-duplicates")
    assert daily.returncode == 0, daily.stdout[-3000:] + daily.stderr[-3000:]
    second = max(
        (j for j in JobSubmissionClient(cluster.dashboard_url).list_jobs()
         if "near-duplicates" in j.entrypoint),
        key=lambda j: j.start_time or 0,
    )  # fmt: skip
    assert_spread(cluster, second.job_id, ("refresh_items", "lookup_buckets", "verify_touching"),
                  nodes)  # fmt: skip
    signal = get_signal("near_duplicates@1")
    served = latest_signal_values(
        str(lake / "signals" / "near_duplicates" / "v1"), signal.arrow_schema(), ["group_id"]
    )
    now = NearDuplicates().extract(
        current_inputs(pa.concat_tables([art, day_art]), pa.concat_tables([audio, day_audio]))
    )
    assert {r["content_id"]: r["group_id"] for r in served.to_pylist() if r["group_id"]} == {
        r["content_id"]: r["group_id"] for r in now.to_pylist()
    }


def test_the_ray_training_set_engine_joins_on_both_nodes_as_the_local_engine_does(
    cluster: LocalRayCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`jobs training-set --engine ray` submitted to the cluster: the join tasks (a key
    partition each) run on both nodes, and the rows equal the local engine's."""
    import shutil
    from datetime import UTC, datetime, timedelta

    import pandas as pd
    from deltalake import write_deltalake
    from ray.job_submission import JobSubmissionClient
    from signal_rows import history

    from jobs.serving.training_set import build_training_set
    from jobs.settings import Settings

    loudness = get_signal("audio_loudness@1")
    root = tmp_path_factory.mktemp("training")
    (root / "repo").mkdir()
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(PROJECT_ROOT / "feature_repo" / name, root / "repo" / name)
    env = {**cluster.env, "SIGNALS_LAKE_URI": str(root / "lake"),
           "SIGNALS_FEAST_REPO": str(root / "repo")}  # fmt: skip
    settings = Settings.from_env(env)
    start = datetime.now(UTC) - timedelta(days=3)
    ids = [f"track:{i:02d}" for i in range(16)]
    for step in range(3):  # a file per run, each item's value changing
        rows = [(c, start + timedelta(days=step), {"integrated_lufs": -20.0 + step + i / 10,
                 "loudness_range_lu": 5.0, "true_peak_dbtp": -1.0}) for i, c in enumerate(ids)]  # fmt: skip
        uri = settings.signal_uri(loudness.storage_name)
        write_deltalake(uri, history(loudness.ref, rows, f"r{step}"), mode="append")
    times = [start - timedelta(hours=1), start + timedelta(hours=1), start + timedelta(days=2)]
    labels = root / "labels.parquet"
    pd.DataFrame({"content_id": [c for c in ids for _ in times],
                  "event_timestamp": pd.to_datetime([t for _ in ids for t in times], utc=True),
                  "label": range(len(ids) * len(times))}).to_parquet(labels)  # fmt: skip

    out = root / "train"
    done = submit_job(cluster, env, "training-set", str(labels), "--out", str(out),
                      "--signal", loudness.ref, "--engine", "ray")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = next(
        j
        for j in JobSubmissionClient(cluster.dashboard_url).list_jobs()
        if "training-set" in j.entrypoint
    )
    nodes = {n.node_id for n in cluster.alive_nodes()}
    assert set(tasks_per_node(cluster, job.job_id, "_join_partition")) == nodes and len(nodes) == 2

    local = build_training_set(settings, labels, root / "local", signals=[loudness.ref])
    expected = pq.read_table(root / "local").to_pylist()
    got = sorted(pq.read_table(out).to_pylist(), key=lambda r: r["label"])
    assert got == expected and local.rows == len(got)
    assert sum(r["audio_loudness_v1__integrated_lufs"] is not None for r in got) == 2 * len(ids)


# --- credentials stay on the cluster side (no cluster needed) -------------------------------------


@pytest.mark.parametrize(
    "name",
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "aws_secret_access_key",
     "azure_storage_account_key", "azure_storage_sas_key", "sasToken", "GOOGLE_APPLICATION_CREDENTIALS",
     "key", "secret", "SIGNALS_LLM_API_KEY", "password"],
)  # fmt: skip
def test_names_of_credentials_are_told_apart(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["AWS_REGION", "aws_region", "AWS_ENDPOINT_URL", "endpoint_url", "AWS_ALLOW_HTTP", "allow_http",
     "SIGNALS_LLM_MAX_TOKENS", "SIGNALS_LLM_BASE_URL", "SIGNALS_LAKE_URI", "SIGNALS_REDIS_URL"],
)  # fmt: skip
def test_other_names_are_not_credentials(name: str) -> None:
    assert not is_secret_name(name)


def test_storage_options_without_secrets_travel_as_they_are() -> None:
    """(a) Region, endpoint and allow_http reach the job unchanged, with nothing to say."""
    environ = {
        "SIGNALS_STORAGE_OPTIONS": json.dumps(PUBLIC_OPTIONS),
        "SIGNALS_LAKE_URI": "s3://b/l",
    }
    forwarded = build_job_env([], environ=environ)
    env_vars = runtime_env(forwarded.env, upload=False)["env_vars"]
    assert env_vars == environ
    assert json.loads(env_vars["SIGNALS_STORAGE_OPTIONS"]) == PUBLIC_OPTIONS
    assert forwarded.notice == ""


def test_forwarded_settings_lose_their_credentials_and_keep_the_rest() -> None:
    environ = {
        "SIGNALS_STORAGE_OPTIONS": json.dumps(
            {**PUBLIC_OPTIONS, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        ),
        "SIGNALS_LLM_API_KEY": "sk-" + SECRET_KEY,
        "SIGNALS_LLM_MAX_TOKENS": "400",
        "SIGNALS_REDIS_URL": "redis:6379,db=0,password=hunter2",
        "SIGNALS_LAKE_URI": "s3://content/lake",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,  # not a setting: never forwarded
    }
    forwarded = build_job_env([], environ=environ)
    assert json.loads(forwarded.env["SIGNALS_STORAGE_OPTIONS"]) == PUBLIC_OPTIONS
    assert forwarded.env["SIGNALS_LLM_MAX_TOKENS"] == "400"
    assert forwarded.env["SIGNALS_LAKE_URI"] == "s3://content/lake"
    assert not {"SIGNALS_LLM_API_KEY", "SIGNALS_REDIS_URL", "AWS_SECRET_ACCESS_KEY"} & set(
        forwarded.env
    )
    assert forwarded.withheld == [
        "AWS_ACCESS_KEY_ID in SIGNALS_STORAGE_OPTIONS",
        "AWS_SECRET_ACCESS_KEY in SIGNALS_STORAGE_OPTIONS",
        "SIGNALS_LLM_API_KEY",
        "password=… in SIGNALS_REDIS_URL",
    ]
    # Only secrets: the variable stays behind whole, so the cluster's own options apply.
    only_keys = {"SIGNALS_STORAGE_OPTIONS": json.dumps({"AWS_SECRET_ACCESS_KEY": SECRET_KEY})}
    assert build_job_env([], environ=only_keys).env == {}


def test_no_value_of_a_credential_reaches_the_runtime_environment() -> None:
    """(c) Whatever names they hide under, no secret's value is in what Ray would store."""
    token = "ghp_r3kHV4bDYLL8EcyCZHbCZ5dvpFDO1jrbQJyU"
    secrets = [KEY_ID, SECRET_KEY, "hunter2", "s3cr3t", token, "ASIAY34FZKBOKMUTVV7A"]
    environ = {
        "SIGNALS_STORAGE_OPTIONS": json.dumps(
            {**PUBLIC_OPTIONS, "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET_KEY,
             "aws_session_token": token, "profile_hint": "ASIAY34FZKBOKMUTVV7A"}
        ),
        "SIGNALS_REDIS_URL": "redis:6379,password=hunter2",
        "SIGNALS_VECTOR_URI": "http://root:s3cr3t@milvus:19530",
        "SIGNALS_LLM_BASE_URL": f"https://llm.example/v1?token={token}",
        "SIGNALS_VECTOR_PATH": f"/cache/{token}",
        "SIGNALS_LAKE_URI": "s3://content/lake",
    }  # fmt: skip
    runtime = json.dumps(runtime_env(build_job_env([], environ=environ).env, upload=True))
    assert not [s for s in secrets if s in runtime]
    assert "us-east-1" in runtime and "s3://content/lake" in runtime


def test_a_credential_given_explicitly_is_refused_and_nothing_is_submitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(b) `--env` with a secret: exit 1, no traceback, a hint to put it on the cluster, and the
    job API is never called."""
    import ray.job_submission

    clients: list[str] = []
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", clients.append)
    for extra in (f"AWS_SECRET_ACCESS_KEY={SECRET_KEY}",
                  "SIGNALS_STORAGE_OPTIONS=" + json.dumps({"AWS_SECRET_ACCESS_KEY": SECRET_KEY}),
                  f"SIGNALS_LAKE_URI=s3://{KEY_ID}@bucket/lake"):  # fmt: skip
        result = CliRunner().invoke(app, ["submit", "--no-upload", "--env", extra, "extract"])
        said = " ".join(result.output.split())
        assert result.exit_code == 1, said
        assert "would be readable in the Ray job's info" in said
        assert "Kubernetes Secret mounted on the head and every worker" in said
        assert "IAM role" in said
        assert "Traceback" not in said and SECRET_KEY not in said and KEY_ID not in said
    assert clients == []


def test_submit_refuses_an_environment_holding_a_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last guard, for callers that build the environment themselves."""
    import ray.job_submission

    from jobs.pipeline.submit import submit

    clients: list[str] = []
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", clients.append)
    with pytest.raises(CredentialInJobError, match="AWS_SECRET_ACCESS_KEY"):
        submit("http://127.0.0.1:1", "extract", [], env={"AWS_SECRET_ACCESS_KEY": SECRET_KEY})
    assert clients == []
