"""Feast from the jobs: open the store with the settings' online store and engine, apply the
repository, and turn what a store raises into errors a person can act on."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml
from feast import FeatureStore
from feast.repo_config import RepoConfig

from features.errors import SignalsError
from jobs.serving.batch_engine import RAY_TYPE
from jobs.serving.batch_engine import TYPE as STREAMING_TYPE
from jobs.serving.errors import OnlineStoreError, ServingConfigError
from jobs.settings import Settings
from jobs.storage import export_for_boto3

ONLINE_STORES = ("sqlite", "redis")
VECTOR_STORES = ("lance", "milvus", "none")
ENGINES = ("local", "ray")
RAY_WRITERS = 4  # concurrent online-write tasks of the Ray engine into Redis


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    # Feast prints apply diffs and progress to stdout; the CLI shows its own summary instead.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def online_store_name(settings: Settings) -> str:
    """The online store in a person's words: `Redis at host:port` or `SQLite`."""
    return f"Redis at {settings.redis_url}" if settings.online_store == "redis" else "SQLite"


@contextlib.contextmanager
def online_store_errors(settings: Settings, action: str) -> Iterator[None]:
    """Turn what the online store raises (a refused connection, a locked file) into one
    `OnlineStoreError` that says which store and what was being done, without a traceback."""
    try:
        yield
    except SignalsError:
        raise
    except Exception as exc:
        raise OnlineStoreError(
            f"{action}: {online_store_name(settings)} failed: {exc}",
            hint="nothing was half-done: rerun once the online store is reachable",
        ) from exc


def repo_config(settings: Settings) -> RepoConfig:
    """The repository's YAML for the chosen online store, read as Feast reads it (`${VAR}`
    expanded), with the settings' storage options and registry location, and the batch engine
    the settings ask for: this project's streaming engine (`local`) or Feast's Ray compute
    engine (`ray`), both writing `materialize_batch_rows` rows at a time.

    The engine is a setting rather than a third YAML: the same repository materializes locally on
    a laptop and on the Ray cluster a scheduled job runs on.
    """
    raw = yaml.safe_load(os.path.expandvars(settings.feature_store_yaml.read_text()))
    # The lake's storage options reach the Delta offline store as they reach every other reader.
    offline = raw.setdefault("offline_store", {})
    offline["storage_options"] = {**offline.get("storage_options", {}), **settings.storage_options}
    if settings.feast_registry:
        raw["registry"] = settings.feast_registry
    _choose_vector_index(raw.setdefault("online_store", {}), settings)
    raw["auth"] = auth_config(settings)
    # Both engines read the newest row per entity of the window, and write it in batches.
    raw["materialization"] = {
        **raw.get("materialization", {}),
        "pull_latest_features": True,
        "online_write_batch_size": settings.materialize_batch_rows,
    }
    if settings.materialize_engine == "ray":
        raw["batch_engine"] = {
            "type": RAY_TYPE,  # not Feast's `ray.engine`: it swallows write errors
            "ray_address": settings.ray_address,
            # One writer for a SQLite file; Redis takes writes from a task per CPU in parallel.
            "write_concurrency": 1 if settings.online_store == "sqlite" else RAY_WRITERS,
        }
    else:
        raw["batch_engine"] = {"type": STREAMING_TYPE}
    return RepoConfig(repo_path=settings.feast_repo, **raw)


def auth_config(settings: Settings) -> dict[str, str]:
    """Feast's `auth:` block from the settings: none, or OIDC against the issuer's discovery
    document — the server checks each request's bearer token and the repository's permissions
    (`feature_repo/permissions.py`)."""
    if settings.auth in ("none", "no_auth"):
        return {"type": "no_auth"}
    if settings.auth != "oidc":
        raise ServingConfigError(
            f"unknown SIGNALS_AUTH {settings.auth!r}", hint="set SIGNALS_AUTH to none or oidc"
        )
    if not settings.oidc_discovery_url:
        raise ServingConfigError(
            "SIGNALS_AUTH=oidc needs the issuer's discovery document",
            hint="set SIGNALS_OIDC_DISCOVERY_URL=https://issuer/.well-known/openid-configuration",
        )
    config = {"type": "oidc", "auth_discovery_url": settings.oidc_discovery_url}
    if settings.oidc_client_id:
        config["client_id"] = settings.oidc_client_id
    if settings.oidc_audience:
        config["audience"] = settings.oidc_audience
    return config


def _choose_vector_index(online: dict, settings: Settings) -> None:
    """The settings' vector store over the YAML's: the same repository searches an embedded
    index on a laptop and a Milvus server on a cluster."""
    kind = settings.vector_store
    if kind is None and not (settings.vector_uri or settings.vector_path):
        return
    if kind == "none":
        online.pop("vector_index", None)
        return
    index = dict(online.get("vector_index") or {})
    if kind is not None and kind != index.get("type"):
        index = {"type": kind}  # another store: the YAML's path was the other store's
    if settings.vector_uri:
        index["uri"] = settings.vector_uri
    if settings.vector_path:
        index["path"] = settings.vector_path
    if index.get("type") == "milvus" and not (index.get("uri") or index.get("path")):
        index["path"] = "data/vectors.db"  # Milvus Lite
    online["vector_index"] = index


def feature_store(settings: Settings) -> FeatureStore:
    """The project's Feast store, reading the lake these settings point at.

    The offline-store plugin resolves relative source paths against `SIGNALS_LAKE_URI`, so one
    repository serves any lake: local disk for the demo, object storage on a cluster.
    """
    if settings.online_store not in ONLINE_STORES:
        raise ServingConfigError(
            f"unknown online store {settings.online_store!r}",
            hint=f"set SIGNALS_ONLINE_STORE to one of: {', '.join(ONLINE_STORES)}",
        )
    if settings.vector_store not in (None, *VECTOR_STORES):
        raise ServingConfigError(
            f"unknown vector store {settings.vector_store!r}",
            hint=f"set SIGNALS_VECTOR_STORE to one of: {', '.join(VECTOR_STORES)}",
        )
    if settings.materialize_engine not in ENGINES:
        raise ServingConfigError(
            f"unknown materialization engine {settings.materialize_engine!r}",
            hint=f"set SIGNALS_MATERIALIZE_ENGINE to one of: {', '.join(ENGINES)}",
        )
    os.environ["SIGNALS_LAKE_URI"] = settings.lake_uri
    os.environ["SIGNALS_REDIS_URL"] = settings.redis_url  # ${SIGNALS_REDIS_URL} in the yaml
    if (settings.feast_registry or "").startswith("s3://"):
        export_for_boto3(settings.storage_options)
    try:
        config = repo_config(settings)
    except Exception as exc:  # a missing or malformed feature_store.yaml
        raise ServingConfigError(
            f"cannot open the Feast repository at {settings.feast_repo}: {exc}"
        ) from exc
    try:
        return FeatureStore(repo_path=str(settings.feast_repo), config=config)
    except Exception as exc:  # a registry that cannot be reached or read
        raise OnlineStoreError(
            f"cannot open the Feast repository at {settings.feast_repo}: {exc}"
        ) from exc


def apply_repo(settings: Settings) -> FeatureStore:
    """`feast apply` from Python: register every object the repository defines, drop the rest."""
    from feast.repo_operations import extract_objects_for_apply_delete, parse_repo

    store = feature_store(settings)
    repo_path = Path(settings.feast_repo)
    # Feast names repository modules relative to the working directory.
    with contextlib.chdir(repo_path), quiet_stdout():
        if str(repo_path) not in sys.path:
            sys.path.insert(0, str(repo_path))
        # Feast imports the repository's modules and never reloads them: a process that applied
        # before would register the declarations of then (`SIGNALS_DECLARATIONS` may have added
        # some since), so the definitions are read anew.
        sys.modules.pop("definitions", None)
        repo = parse_repo(repo_path)
        to_apply, to_delete, _, _ = extract_objects_for_apply_delete(
            store.project, store.registry, repo
        )
        store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return store
