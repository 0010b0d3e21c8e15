"""`signals ui`: Feast's own web UI (`feast ui`'s server: its React app and the REST registry API
under /api/v1) on the store the settings choose, so that SIGNALS_* settings reach it as they
reach `signals serve`, and the registry it shows is the one `signals materialize` applied.

What it shows of a signal comes from its Feast feature view `<name>_v<major>`: the declared
description, owner and tags (the `signal` tag is `name@version`) and the feature services of the
consumer groups that pin it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from jobs.serving.errors import OnlineStoreError, ServingConfigError
from jobs.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

REGISTRY_TTL_S = 5  # how soon a `signals materialize` elsewhere reaches a running UI
# Feast's UI server imports these, from its grpcio extra (grpcio-health-checking, -reflection).
GRPC_MODULES = ("grpc_health", "grpc_reflection")


def ui_store(settings: Settings) -> FeatureStore:
    """The settings' Feast store, ready for the UI: Feast's UI server importable, and a registry
    read again every few seconds rather than Feast's 10 minutes, so that a signal materialized
    while the UI runs appears without a restart."""
    try:
        # The UI server's REST API is Feast's registry server, which imports gRPC's health and
        # reflection services; without Feast's grpcio extra it fails only as the server starts.
        import feast.registry_server  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in GRPC_MODULES:
            raise
        raise ServingConfigError(
            f"Feast's UI needs Feast's grpcio extra: {exc}",
            hint="pip install grpcio-health-checking grpcio-reflection (Feast's grpcio extra)",
        ) from exc
    from jobs.serving.store import feature_store

    store = feature_store(settings)
    registry = store.registry
    if hasattr(registry, "cached_registry_proto_ttl"):  # Feast's registries that cache: file, SQL
        registry.cached_registry_proto_ttl = timedelta(seconds=REGISTRY_TTL_S)
    return store


def registered_views(store: FeatureStore) -> list[str]:
    """The feature views the registry holds, so the CLI can say when there is nothing to show
    yet (no `signals materialize` against this registry) instead of serving an empty page."""
    try:
        return sorted(view.name for view in store.list_feature_views())
    except Exception as exc:  # a registry on object storage that cannot be reached or read
        raise OnlineStoreError(f"cannot read the Feast registry: {exc}") from exc


def run_ui(store: FeatureStore, host: str, port: int) -> None:
    """Serve the UI until interrupted, exactly as `feast ui` does (`FeatureStore.serve_ui`)."""
    store.serve_ui(host=host, port=port)
