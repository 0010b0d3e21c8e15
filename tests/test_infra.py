"""The deployment side (infra/): container image, Kubernetes and KubeRay manifests.

Static and offline, in seconds: every manifest validates against the schema its API server
would apply, every job a manifest names exists and accepts the flags it is given, the image runs
the same `signals` CLI as a laptop, and the ConfigMap sets only settings the code reads. No
cluster, no docker, no Ray.
"""

from __future__ import annotations

import copy
import functools
import gzip
import importlib.util
import json
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from typer.exceptions import TyperException

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
DOCKERFILE = INFRA / "Dockerfile"
SCHEMAS = INFRA / "kuberay" / "schemas"
VENDOR_SCRIPT = INFRA / "kuberay" / "vendor_schemas.py"
SHARED_CRDS = ROOT.parent / "shared" / "kuberay-crds"
KUSTOMIZATION = K8S / "kustomization.yaml"
# A Kubernetes version kubernetes-validate ships schemas for; strict rejects unknown fields.
KUBERNETES_VERSION = "1.32"
IMAGE_REPO = "ghcr.io/content-signals/content-signals"
RAY_KINDS = ("RayCluster", "RayJob", "RayCronJob")
# The one entry point of cluster jobs: `python -m jobs COMMAND ARGS` runs `signals COMMAND ARGS`.
ENTRY_POINT = ["python", "-m", "jobs"]
SHELLS = {"sh", "bash"}
SHELL_OPERATORS = {"&&", "||", ";", ";;", "|", "&", "(", ")", "<", ">", ">>"}

Doc = dict[str, Any]
Schema = dict[str, Any]


# --- manifests ---------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest under infra/k8s (kustomization.yaml is kustomize's, not one)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p != KUSTOMIZATION)


@functools.cache
def _documents() -> tuple[tuple[str, Doc], ...]:
    found = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                name = doc["metadata"].get("name") or doc["metadata"].get("generateName", "?")
                found.append((f"{path.relative_to(K8S)}:{doc['kind']}/{name}", doc))
    return tuple(found)


def documents(*kinds: str) -> list[tuple[str, Doc]]:
    """(label, a fresh copy of the document) for every manifest document, or those of `kinds`."""
    return [
        (label, copy.deepcopy(d)) for label, d in _documents() if not kinds or d["kind"] in kinds
    ]


def params(*kinds: str) -> list[Any]:
    return [pytest.param(doc, id=label) for label, doc in documents(*kinds)]


def one(kind: str, name: str | None = None) -> Doc:
    """The one manifest document of `kind` (named `name`), for cross-references and mutations."""
    matches = [d for _, d in documents(kind) if name is None or d["metadata"].get("name") == name]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


# --- validation, as the API server does it ------------------------------------------------------


@functools.cache
def ray_schema(kind: str) -> Schema:
    """KubeRay's v1 schema of `kind`, as vendored by infra/kuberay/vendor_schemas.py."""
    path = SCHEMAS / f"{kind.lower()}.v1.schema.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))


def _subschema(schema: Schema, key: str) -> Schema:
    extra = schema.get("additionalProperties")
    return schema.get("properties", {}).get(key, extra if isinstance(extra, dict) else {})


def as_stored(value: Any, schema: Schema) -> Any:
    """`value` as the API server holds it when it validates a custom resource: nulls of fields
    that are not `nullable` dropped, then schema `default`s filled, recursively through objects,
    maps and array items. Without it, a valid manifest fails on a required field that has a
    default (a worker group's minReplicas), and a `field: null` fails its type."""
    if isinstance(value, dict):
        kept = {
            key: item
            for key, item in value.items()
            if item is not None or _subschema(schema, key).get("nullable", False)
        }
        for key, sub in schema.get("properties", {}).items():
            if key not in kept and "default" in sub:
                kept[key] = copy.deepcopy(sub["default"])
        return {key: as_stored(item, _subschema(schema, key)) for key, item in kept.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [as_stored(item, schema["items"]) for item in value]
    return value


def strict(schema: Schema) -> Schema:
    """The schema as `kubectl apply` enforces it (strict field validation, its default): an
    unknown field is an error, not silently pruned. Also spells OpenAPI's
    `nullable` the JSON Schema way. Otherwise a misspelled field passes unnoticed."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {key: strict(sub) for key, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields", False
        ):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [strict(sub) for sub in out[key]]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def ray_validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(strict(ray_schema(kind)))


def validate(doc: Doc) -> None:
    """Raise `jsonschema.ValidationError` unless the API server would accept `doc`.

    Core kinds through kubernetes-validate's bundled schemas; KubeRay's kinds through the
    vendored CRD schemas (their CEL rules are not checked). An unknown kind raises too.
    """
    if doc["apiVersion"] == "ray.io/v1":
        if doc["kind"] not in RAY_KINDS:
            raise AssertionError(f"no vendored schema for ray.io/v1 {doc['kind']}")
        ray_validator(doc["kind"]).validate(as_stored(doc, ray_schema(doc["kind"])))
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("doc", params())
def test_manifest_validates(doc: Doc) -> None:
    validate(doc)
    meta = doc["metadata"]
    assert "namespace" not in meta, "namespace-less: the namespace is chosen at apply time"
    assert meta.get("name") or (doc["kind"] == "RayJob" and meta.get("generateName"))


def test_every_kind_has_a_manifest() -> None:
    kinds = {d["kind"] for _, d in documents()}
    expected = {"ConfigMap", "Secret", "StatefulSet", "Service", "Deployment", "CronJob"}
    assert kinds >= expected | set(RAY_KINDS)


def _error(doc: Doc) -> str:
    with pytest.raises(jsonschema.ValidationError) as caught:
        validate(doc)
    return f"{'.'.join(map(str, caught.value.absolute_path))}: {caught.value.message}"


def test_raycluster_with_a_misspelled_worker_field_fails() -> None:
    cluster = one("RayCluster")
    group = cluster["spec"]["workerGroupSpecs"][0]
    group["minReplica"] = group.pop("minReplicas")
    assert "'minReplica' was unexpected" in _error(cluster)


def test_raycluster_with_a_number_for_a_ray_start_param_fails() -> None:
    cluster = one("RayCluster")
    cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be the string "0"
    assert "is not of type 'string'" in _error(cluster)


def test_rayjob_with_a_wrong_type_fails() -> None:
    _, job = documents("RayJob")[0]
    job["spec"]["shutdownAfterJobFinishes"] = "true"
    assert "shutdownAfterJobFinishes" in _error(job)


def test_raycronjob_with_a_batch_style_job_template_fails() -> None:
    # batch/v1 CronJob nests jobTemplate.spec; RayCronJob's jobTemplate *is* the RayJob spec.
    cron = one("RayCronJob")
    cron["spec"]["jobTemplate"] = {"spec": cron["spec"]["jobTemplate"]}
    assert "'spec' was unexpected" in _error(cron)


def test_raycronjob_without_a_schedule_fails() -> None:
    cron = one("RayCronJob")
    del cron["spec"]["schedule"]
    assert "'schedule' is a required property" in _error(cron)


def test_deployment_with_string_replicas_fails() -> None:
    deployment = one("Deployment")
    deployment["spec"]["replicas"] = "2"
    assert "replicas" in _error(deployment)


def test_cronjob_with_a_misspelled_field_fails() -> None:
    cron = one("CronJob")
    cron["spec"]["concurrencyPolicyy"] = cron["spec"].pop("concurrencyPolicy")
    assert "'concurrencyPolicyy' was unexpected" in _error(cron)


def test_unknown_kind_is_not_skipped() -> None:
    with pytest.raises(AssertionError, match="no vendored schema"):
        validate({"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "x"}})
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}})


def test_defaults_are_filled_in_array_items() -> None:
    # minReplicas / maxReplicas are required and defaulted: valid only once defaults are filled.
    cluster = one("RayCluster")
    for group in cluster["spec"]["workerGroupSpecs"]:
        del group["minReplicas"], group["maxReplicas"]
    raw = list(ray_validator("RayCluster").iter_errors(cluster))
    assert any("'minReplicas' is a required property" in e.message for e in raw)
    stored = as_stored(cluster, ray_schema("RayCluster"))
    assert [g["minReplicas"] for g in stored["spec"]["workerGroupSpecs"]] == [0, 0]
    validate(cluster)


def test_nulls_that_are_not_nullable_are_dropped() -> None:
    job = one("RayCronJob")
    job["spec"]["suspend"] = None
    assert any(ray_validator("RayCronJob").iter_errors(job))
    assert "suspend" not in as_stored(job, ray_schema("RayCronJob"))["spec"]
    validate(job)


# --- vendored schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RAY_KINDS)
def test_vendored_schema_is_small_and_whole(kind: str) -> None:
    path = SCHEMAS / f"{kind.lower()}.v1.schema.json.gz"
    assert path.stat().st_size < 200_000, "committed to git: keep it well under 1 MB"
    schema = ray_schema(kind)
    assert schema["properties"]["kind"]["type"] == "string"
    assert "spec" in schema["properties"]
    assert (SCHEMAS / "README.md").read_text().count("Apache-2.0") >= 1


def test_vendored_schemas_match_the_crds() -> None:
    if not SHARED_CRDS.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {SHARED_CRDS}: the committed schemas are used")
    spec = importlib.util.spec_from_file_location("vendor_schemas", VENDOR_SCRIPT)
    assert spec and spec.loader
    vendor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendor)
    for kind, name in vendor.CRD_FILES.items():
        fresh = vendor.encode(vendor.v1_schema(vendor.load_crd(SHARED_CRDS / name), kind))
        committed = vendor.schema_path(SCHEMAS, kind).read_bytes()
        assert fresh == committed, f"{kind}: rerun infra/kuberay/vendor_schemas.py"


# --- the jobs the manifests run ------------------------------------------------------------------


def shell_tokens(script: str) -> list[str]:
    """Words and control operators, as a POSIX shell splits them."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def shell_commands(script: str) -> list[list[str]]:
    """The commands of an `A && B && C` script, each as argv; `sh -c '…'` is unwrapped."""
    commands: list[list[str]] = [[]]
    for token in shell_tokens(script):
        if token == "&&":
            commands.append([])
        elif token in SHELL_OPERATORS:
            raise AssertionError(f"{script!r}: only `&&` chains are expected, found {token!r}")
        else:
            commands[-1].append(token)
    assert all(commands), f"{script!r}: an empty command"
    out: list[list[str]] = []
    for argv in commands:
        if len(argv) == 3 and Path(argv[0]).name in SHELLS and argv[1] == "-c":
            out += shell_commands(argv[2])
        else:
            out.append(argv)
    return out


def ray_job_commands(spec: Doc) -> list[list[str]]:
    """The commands a RayJob spec's Ray job runs, following how KubeRay submits it."""
    entrypoint = spec["entrypoint"]
    if spec["submissionMode"] == "K8sJobMode":
        # KubeRay pastes the entrypoint unquoted into its submitter's bash script,
        # `ray job submit … -- ENTRYPOINT ; fi`: it has to be one simple command there.
        tokens = shell_tokens(entrypoint)
        operators = [t for t in tokens if t in SHELL_OPERATORS]
        if operators:
            raise AssertionError(
                f"{entrypoint!r}: in K8sJobMode the submitter's shell runs {operators} itself; "
                "wrap the chain in bash -c '…'"
            )
        entrypoint = subprocess.list2cmdline(tokens)  # what `ray job submit -- ARGV` sends
    return shell_commands(entrypoint)  # the Ray job runs its entrypoint with a shell


@functools.cache
def cli() -> Any:
    """The `signals` command tree (typer vendors its own click: its types, not click's)."""
    from jobs.cli import app

    return typer.main.get_command(app)


def check_cli(command: str, args: list[str], where: str) -> Any:
    """`signals COMMAND ARGS` parses: the command exists and takes these arguments and flags."""
    sub = cli().commands.get(command)
    if sub is None:
        raise AssertionError(
            f"{where}: `signals {command}` is not a command (have: {', '.join(cli().commands)})"
        )
    try:
        return sub.make_context(command, list(args))
    except TyperException as exc:  # typer's UsageError: no such option, missing argument
        raise AssertionError(
            f"{where}: `signals {shlex.join([command, *args])}`: {exc.format_message()}"
        ) from exc


def check_python_module(argv: list[str], where: str) -> None:
    """`python -m jobs COMMAND ARGS`: the entry point runs the CLI, and COMMAND takes ARGS."""
    assert argv[:3] == ENTRY_POINT, f"{where}: {argv} is not `python -m jobs COMMAND …`"
    assert len(argv) > 3, f"{where}: `python -m jobs` needs the command as its first argument"
    main = (ROOT / "jobs" / "__main__.py").read_text()
    assert "from jobs.cli import app" in main, f"{where}: jobs/__main__.py does not run the CLI"
    check_cli(argv[3], argv[4:], where)


def check_signals(argv: list[str], where: str) -> None:
    """`signals COMMAND ARGS`; for `signals submit … JOB ARGS`, the module the cluster runs too."""
    assert argv[0] == "signals" and len(argv) > 1, f"{where}: {argv}"
    context = check_cli(argv[1], argv[2:], where)
    if argv[1] == "submit":
        from features.errors import SignalsError
        from jobs.pipeline.submit import entrypoint

        try:
            job = entrypoint(context.params["job"], list(context.params["args"] or []))
        except SignalsError as exc:
            raise AssertionError(f"{where}: {exc}") from exc
        check_python_module(shlex.split(job), f"{where} (submitted)")


def check_command(argv: list[str], where: str) -> None:
    if argv[0] == "signals":
        check_signals(argv, where)
    else:
        check_python_module(argv, where)


def pod_specs(doc: Doc) -> Iterator[Doc]:
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "Job"):
        yield spec["template"]["spec"]
    elif kind == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "RayCluster":
        yield spec["headGroupSpec"]["template"]["spec"]
        for group in spec.get("workerGroupSpecs", []):
            yield group["template"]["spec"]


def containers(doc: Doc) -> Iterator[Doc]:
    for pod in pod_specs(doc):
        yield from pod.get("initContainers", [])
        yield from pod["containers"]


def container_commands(container: Doc) -> list[list[str]]:
    """What a container of the project's image runs: its command, or the image's entrypoint
    (`signals`) with its args. Nothing for Ray pods: KubeRay supplies their `ray start`."""
    if not container["image"].startswith(f"{IMAGE_REPO}:"):
        return []
    if "command" in container:
        argv = [*container["command"], *container.get("args", [])]
    elif "args" in container:
        argv = ["signals", *container["args"]]
    else:
        return []
    if len(argv) == 3 and Path(argv[0]).name in SHELLS and argv[1] == "-c":
        return shell_commands(argv[2])
    return [argv]


def _ray_job_params() -> list[Any]:
    found = []
    for label, doc in documents("RayJob", "RayCronJob"):
        spec = doc["spec"]["jobTemplate"] if doc["kind"] == "RayCronJob" else doc["spec"]
        found.append(pytest.param(spec, doc["kind"], id=label))
    return found


@pytest.mark.parametrize(("spec", "kind"), _ray_job_params())
def test_ray_job_entrypoints_exist(spec: Doc, kind: str) -> None:
    stored = as_stored({"spec": spec}, ray_schema("RayJob"))["spec"]  # submissionMode default
    commands = ray_job_commands(stored)
    assert commands
    for argv in commands:
        check_python_module(argv, f"{kind} entrypoint {spec['entrypoint']!r}")


@pytest.mark.parametrize("doc", params("Deployment", "StatefulSet", "CronJob", "RayCluster"))
def test_container_commands_exist(doc: Doc) -> None:
    for container in containers(doc):
        for argv in container_commands(container):
            check_command(argv, f"{doc['kind']} container {container['name']}")


def test_every_submittable_job_has_a_rayjob() -> None:
    from jobs.pipeline.submit import JOBS

    commands = {
        argv[3]
        for _, doc in documents("RayJob")
        for argv in ray_job_commands(as_stored(doc, ray_schema("RayJob"))["spec"])
    }
    assert set(JOBS) <= commands


def test_a_flag_the_cli_lacks_is_caught() -> None:
    with pytest.raises(AssertionError, match="No such option"):
        check_python_module([*ENTRY_POINT, "extract", "--actor", "2:8"], "test")
    with pytest.raises(AssertionError, match="not a command"):
        check_python_module([*ENTRY_POINT, "extrakt"], "test")
    with pytest.raises(AssertionError, match="is not `python -m jobs"):
        check_python_module(["python", "-m", "jobs.extract"], "test")
    with pytest.raises(AssertionError, match="not a command"):
        check_signals(["signals", "extrakt"], "test")
    with pytest.raises(AssertionError, match="Missing argument"):
        check_python_module([*ENTRY_POINT, "backfill"], "test")


def test_a_submitted_jobs_flags_are_checked() -> None:
    with pytest.raises(AssertionError, match="No such option"):
        check_signals(["signals", "submit", "--no-upload", "extract", "--actor", "2:8"], "test")
    with pytest.raises(AssertionError, match="No such option"):
        check_signals(["signals", "submit", "--no-upload", "compact", "--z-orderr"], "test")
    with pytest.raises(AssertionError, match="no job 'compactt'"):
        check_signals(["signals", "submit", "--no-upload", "compactt"], "test")


def test_an_and_chain_in_k8s_job_mode_is_caught() -> None:
    spec = {"entrypoint": "python -m jobs extract && python -m jobs materialize"}
    with pytest.raises(AssertionError, match="submitter's shell"):
        ray_job_commands({**spec, "submissionMode": "K8sJobMode"})
    assert len(ray_job_commands({**spec, "submissionMode": "HTTPMode"})) == 2
    wrapped = {"entrypoint": f"bash -c '{spec['entrypoint']}'", "submissionMode": "K8sJobMode"}
    assert [argv[3] for argv in ray_job_commands(wrapped)] == ["extract", "materialize"]


# --- how the pieces refer to each other ---------------------------------------------------------


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_images_are_the_projects_at_its_version() -> None:
    version = _pyproject()["project"]["version"]
    for _, doc in documents():
        for container in containers(doc):
            image = container["image"]
            if image.startswith(f"{IMAGE_REPO}:"):
                assert image.split(":", 1)[1] in (version, f"{version}-cuda"), image


def test_ray_version_is_the_one_the_image_installs() -> None:
    ray_pin = next(d for d in _pyproject()["project"]["dependencies"] if d.startswith("ray["))
    pinned = re.search(r"~=\s*([\d.]+)", ray_pin)
    assert pinned, ray_pin
    assert one("RayCluster")["spec"]["rayVersion"] == pinned.group(1)


def test_gpu_workers_ask_for_gpus_and_tolerate_gpu_nodes() -> None:
    groups = {g["groupName"]: g for g in one("RayCluster")["spec"]["workerGroupSpecs"]}
    gpu = groups["gpu"]["template"]["spec"]
    (worker,) = gpu["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["image"].endswith("-cuda")
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    assert groups["gpu"]["minReplicas"] == 0


def test_every_container_has_requests_and_limits() -> None:
    for _, doc in documents():
        for container in containers(doc):
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), container["name"]
        if doc["kind"] == "RayCluster" and doc["spec"].get("enableInTreeAutoscaling"):
            autoscaler = doc["spec"]["autoscalerOptions"]["resources"]
            assert autoscaler["requests"] and autoscaler["limits"]


def test_references_resolve() -> None:
    configmaps = {d["metadata"]["name"] for _, d in documents("ConfigMap")}
    secrets = {d["metadata"]["name"] for _, d in documents("Secret")}
    for _, doc in documents():
        for container in containers(doc):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
    cluster = one("RayCluster")["metadata"]["name"]
    for _, doc in documents("RayJob", "RayCronJob"):
        spec = doc["spec"].get("jobTemplate", doc["spec"])
        assert spec["clusterSelector"] == {"ray.io/cluster": cluster}
        assert "shutdownAfterJobFinishes" not in spec, "only for a RayJob that owns its cluster"
    # KubeRay names the head Service <cluster>-head-svc; the CronJob submits to its dashboard.
    (submit,) = containers(one("CronJob"))
    for argv in container_commands(submit):
        assert argv[argv.index("--address") + 1] == f"http://{cluster}-head-svc:8265"
    # Services select the pods they front, on a port those pods open.
    pods = [d for _, d in documents("Deployment", "StatefulSet")]
    for _, service in documents("Service"):
        selector = service["spec"]["selector"]
        backends = [
            p
            for p in pods
            if selector.items() <= p["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert backends, service["metadata"]["name"]
        ports = {port["name"] for p in backends for c in containers(p) for port in c["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports
    host, port = one("ConfigMap")["data"]["SIGNALS_REDIS_URL"].split(":")
    redis = one("Service", host)
    assert int(port) in {p["port"] for p in redis["spec"]["ports"]}


def test_the_two_nightly_schedules_agree_and_never_overlap() -> None:
    cron, ray_cron = one("CronJob"), one("RayCronJob")
    assert cron["spec"]["schedule"] == ray_cron["spec"]["schedule"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    commands = ray_job_commands(
        as_stored(ray_cron, ray_schema("RayCronJob"))["spec"]["jobTemplate"]
    )
    (submit,) = containers(cron)
    submitted = [argv[-1] for argv in container_commands(submit)]
    assert [argv[3] for argv in commands] == submitted


def test_kustomization_lists_the_long_lived_stack() -> None:
    listed = yaml.safe_load(KUSTOMIZATION.read_text())["resources"]
    assert all((K8S / name).is_file() for name in listed)
    # One-shot RayJobs, the placeholder Secret and the alternative CronJob stay out.
    assert not {"secret-example.yaml", "cronjob-nightly.yaml"} & set(listed)
    assert not any(name.startswith("rayjobs") for name in listed)


# --- settings -----------------------------------------------------------------------------------


def _settings_read() -> set[str]:
    """The SIGNALS_* names the code reads from the environment: in Settings.from_env, or as
    `${NAME}` in the Feast repository's YAML (expanded from the environment)."""
    names = set(re.findall(r'"(SIGNALS_[A-Z0-9_]+)"', (ROOT / "jobs/settings.py").read_text()))
    for path in (ROOT / "feature_repo").glob("feature_store*.yaml"):
        names |= set(re.findall(r"\$\{(SIGNALS_[A-Z0-9_]+)\}", path.read_text()))
    return names


@pytest.mark.parametrize("doc", params("ConfigMap"))
def test_configmap_sets_only_settings_the_code_reads(doc: Doc) -> None:
    unread = sorted(set(doc["data"]) - _settings_read())
    assert not unread, f"not read by jobs/settings.py: {unread} (a typo, or a setting to add)"


@pytest.mark.parametrize("doc", params("ConfigMap"))
def test_configmap_values_parse_as_settings(doc: Doc) -> None:
    from jobs.settings import Settings

    settings = Settings.from_env(doc["data"])
    assert settings.lake_uri == doc["data"]["SIGNALS_LAKE_URI"]
    assert settings.online_store == "redis"
    assert settings.materialize_engine == "ray"
    secret_keys = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert not secret_keys & set(settings.storage_options), "credentials belong in the Secret"


def test_example_secret_is_marked_and_has_placeholders() -> None:
    path = K8S / "secret-example.yaml"
    assert "EXAMPLE" in path.read_text()
    secret = one("Secret", "content-signals-s3")
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert all("placeholder" in value for value in secret["stringData"].values())


# --- the container image ------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of infra/Dockerfile, continuation lines joined."""
    # Docker drops comment lines first (a trailing backslash in a comment continues nothing).
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    steps = []
    for line in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction:
            steps.append((instruction.upper(), rest.strip()))
    return steps


def instructions(name: str) -> list[str]:
    return [rest for instruction, rest in dockerfile() if instruction == name]


def test_image_entrypoint_is_the_signals_cli() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    assert json.loads(entrypoint) == ["signals"]
    assert _pyproject()["project"]["scripts"]["signals"] == "jobs.cli:app"
    assert json.loads(instructions("CMD")[-1]) == ["--help"]


def test_image_base_workdir_env_and_user() -> None:
    assert instructions("FROM") == ["python:3.11-slim-bookworm"]
    assert instructions("WORKDIR") == ["/app"]
    env = " ".join(instructions("ENV"))
    for setting in ("HF_HUB_OFFLINE=1", "RAY_AUTH_MODE=disabled", "PYTHONPATH=/app"):
        assert setting in env.split(), setting
    user = instructions("USER")[-1].split(":")[0]
    # Numeric and not root: Kubernetes' runAsNonRoot can only verify a numeric user.
    assert user.isdigit() and int(user) != 0


def test_image_copies_only_what_exists() -> None:
    copies = instructions("COPY")
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    copied = {shlex.split(a)[0].rstrip("/") for a in copies}
    assert {"features", "extractors", "jobs", "feature_repo", "pyproject.toml"} <= copied


def test_image_installs_cpu_torch_by_default_then_the_project() -> None:
    args = dict(a.split("=", 1) for a in instructions("ARG"))
    makefile = (ROOT / "Makefile").read_text()
    for name in ("TORCH_SPEC", "TORCH_INDEX"):
        default = re.search(rf"^{name} \?= (\S+)", makefile, re.M)
        assert default and args[name] == default.group(1), f"{name}: the Makefile's default"
    assert args["TORCH_SPEC"].endswith("+cpu") and args["TORCH_INDEX"].endswith("/cpu")
    runs = instructions("RUN")
    torch = next(i for i, r in enumerate(runs) if "${TORCH_SPEC}" in r)
    assert "--no-deps" in runs[torch] and "${TORCH_INDEX}" in runs[torch]
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert torch < project, "torch first, so the project's torch==2.13.0 finds the CPU build"
    # KubeRay's head needs Ray's dashboard and job API, which ray[data] alone lacks.
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("ray[") and "default" in d.split("]")[0] for d in deps)


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "lake", "feature_repo/data", "benchmarks/out"} <= ignored
    assert not {"pyproject.toml", "README.md", "jobs", "features", "extractors"} & ignored


@pytest.mark.parametrize("doc", params("RayJob"))
def test_job_environments_name_real_settings(doc: Doc) -> None:
    """A RayJob's runtime environment sets only settings the code reads (a misspelt LLM setting
    would otherwise be noticed only when the job starts on the cluster)."""
    from extractors.llm import LLMConfig

    env = yaml.safe_load(doc["spec"].get("runtimeEnvYAML") or "{}").get("env_vars", {})
    known = _settings_read()
    for key in env:
        assert key in known or key.startswith("SIGNALS_LLM_"), f"{key}: not a setting"
    LLMConfig.from_options(env)  # raises on an LLM setting that does not exist
