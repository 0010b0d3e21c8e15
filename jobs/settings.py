"""Where things are: the lake, the Ray cluster, the Feast repository — environment first, local defaults."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from features.profile import DriftThresholds

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _is_uri(value: str) -> bool:
    return "://" in value


def _absolute(value: str) -> str:
    return value if _is_uri(value) else str(Path(value).expanduser().resolve())


@dataclass(frozen=True)
class Settings:
    """Every location and knob a job needs, read once from the environment.

    Defaults give the embedded set-up `make demo` runs: a lake folder on local disk, a local Ray,
    the Feast repository in this checkout with its SQLite online store.
    """

    lake_uri: str = field(default_factory=lambda: _absolute("lake"))
    ray_address: str | None = None
    feast_repo: Path = PROJECT_ROOT / "feature_repo"
    storage_options: dict[str, str] = field(default_factory=dict)
    ray_num_cpus: int | None = None
    # A local Ray's object store (MiB; Ray's default is 30 % of memory). Shuffles spill to disk
    # beyond it, so a catalog-wide job's memory stays bounded on one machine.
    ray_object_store_mb: int | None = None
    # Items per partition of the near-duplicates job: what one of its tasks holds.
    near_duplicates_partition_items: int = 25_000
    # A run fails as systematic (lands nothing) when more than `quarantine_threshold` of its rows
    # are quarantined and at least `quarantine_min_rows` of them: one bad file in a small daily
    # run is a large share of few rows, while a broken extractor fails many rows.
    quarantine_threshold: float = 0.05
    quarantine_min_rows: int = 10
    online_store: str = "sqlite"  # or "redis": which feature_store*.yaml of the repository
    redis_url: str = "localhost:6379"  # Feast's connection string: host:port[,db=0,password=…]
    materialize_engine: str = "local"  # or "ray": Feast's Ray compute engine, on `ray_address`
    # Rows per online write while materializing: memory holds a few batches, never the window.
    materialize_batch_rows: int = 10_000
    # Where Feast's registry lives when not in the repository's YAML: `s3://…/registry.db` shares
    # one registry between the jobs that materialize and the servers that read.
    feast_registry: str | None = None
    drift: DriftThresholds = field(default_factory=DriftThresholds)  # `signals profile`
    llm: dict[str, str] = field(default_factory=dict)  # SIGNALS_LLM_*: the LLM extractor's
    safety: dict[str, str] = field(default_factory=dict)  # SIGNALS_SAFETY_*: flag thresholds
    # Where a training set's point-in-time join runs: "local" (one process, out of core) or
    # "ray" (partitioned by entity key over the Ray cluster on `ray_address`).
    training_set_engine: str = "local"
    # The vector index beside the online store (`signals similar`): None keeps the repository's
    # YAML; "lance" (embedded), "milvus" (a server at `vector_uri`, or Milvus Lite on
    # `vector_path`) or "none" (no similarity search) override it.
    vector_store: str | None = None
    vector_uri: str | None = None
    vector_path: str | None = None
    # Access control of the feature server (`signals serve`): "none" on a laptop, "oidc" on a
    # cluster — Feast's OIDC auth: bearer tokens checked against the issuer's keys, the token's
    # roles against the repository's permissions (`feature_repo/permissions.py`).
    auth: str = "none"
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None  # Keycloak puts roles under resource_access.<client>.roles
    oidc_audience: str | None = None
    token: str | None = None  # the bearer token a client sends to a feature server

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from `SIGNALS_*` variables; unset ones keep their local default."""
        env = os.environ if environ is None else environ
        base = cls()
        cpus = env.get("SIGNALS_RAY_NUM_CPUS")
        return replace(
            base,
            lake_uri=_absolute(env.get("SIGNALS_LAKE_URI", base.lake_uri)),
            ray_address=env.get("SIGNALS_RAY_ADDRESS") or env.get("RAY_ADDRESS") or None,
            feast_repo=Path(env.get("SIGNALS_FEAST_REPO", str(base.feast_repo))).resolve(),
            storage_options=json.loads(env.get("SIGNALS_STORAGE_OPTIONS", "{}")),
            ray_num_cpus=int(cpus) if cpus else None,
            ray_object_store_mb=int(env["SIGNALS_RAY_OBJECT_STORE_MB"])
            if env.get("SIGNALS_RAY_OBJECT_STORE_MB")
            else None,
            near_duplicates_partition_items=int(
                env.get(
                    "SIGNALS_NEAR_DUPLICATES_PARTITION_ITEMS", base.near_duplicates_partition_items
                )
            ),
            online_store=env.get("SIGNALS_ONLINE_STORE", base.online_store),
            redis_url=env.get("SIGNALS_REDIS_URL", base.redis_url),
            materialize_engine=env.get("SIGNALS_MATERIALIZE_ENGINE", base.materialize_engine),
            materialize_batch_rows=int(
                env.get("SIGNALS_MATERIALIZE_BATCH_ROWS", base.materialize_batch_rows)
            ),
            feast_registry=env.get("SIGNALS_FEAST_REGISTRY") or None,
            llm={k: v for k, v in env.items() if k.startswith("SIGNALS_LLM_")},
            safety={k: v for k, v in env.items() if k.startswith("SIGNALS_SAFETY_")},
            quarantine_threshold=float(
                env.get("SIGNALS_QUARANTINE_THRESHOLD", base.quarantine_threshold)
            ),
            quarantine_min_rows=int(
                env.get("SIGNALS_QUARANTINE_MIN_ROWS", base.quarantine_min_rows)
            ),
            training_set_engine=env.get("SIGNALS_TRAINING_SET_ENGINE", base.training_set_engine),
            vector_store=env.get("SIGNALS_VECTOR_STORE") or None,
            vector_uri=env.get("SIGNALS_VECTOR_URI") or None,
            vector_path=env.get("SIGNALS_VECTOR_PATH") or None,
            auth=env.get("SIGNALS_AUTH") or base.auth,
            oidc_discovery_url=env.get("SIGNALS_OIDC_DISCOVERY_URL") or None,
            oidc_client_id=env.get("SIGNALS_OIDC_CLIENT_ID") or None,
            oidc_audience=env.get("SIGNALS_OIDC_AUDIENCE") or None,
            token=env.get("SIGNALS_TOKEN") or None,
            drift=DriftThresholds(
                psi=float(env.get("SIGNALS_DRIFT_PSI", base.drift.psi)),
                ks=float(env.get("SIGNALS_DRIFT_KS", base.drift.ks)),
                null_rate=float(env.get("SIGNALS_DRIFT_NULL_RATE", base.drift.null_rate)),
            ),
        )

    @property
    def extractor_env(self) -> dict[str, str]:
        """The settings extractors read, handed to every actor: the LLM endpoint and its answer
        cache (in the lake unless `SIGNALS_LLM_CACHE_URI` says otherwise), and the safety
        signals' thresholds."""
        return {"SIGNALS_LLM_CACHE_URI": self.lake_path("_llm_cache"), **self.llm, **self.safety}

    @property
    def feature_store_yaml(self) -> Path:
        """The repository's configuration for the chosen online store."""
        # The embedded default is Feast's own file name; every other store has its own file.
        name = (
            "feature_store.yaml"
            if self.online_store == "sqlite"
            else f"feature_store.{self.online_store}.yaml"
        )
        return self.feast_repo / name

    def lake_path(self, *parts: str) -> str:
        """A URI below the lake root."""
        return "/".join([self.lake_uri.rstrip("/"), *parts])

    @property
    def default_snapshot_uri(self) -> str:
        return self.lake_path("catalog")

    @property
    def media_dir(self) -> str:
        return self.lake_path("media")

    def signal_uri(self, storage_name: str) -> str:
        return self.lake_path("signals", storage_name)

    def quarantine_uri(self, storage_name: str) -> str:
        return self.lake_path("quarantine", storage_name)

    @property
    def runs_uri(self) -> str:
        return self.lake_path("_runs")

    @property
    def profiles_uri(self) -> str:
        return self.lake_path("_profiles")
