"""Feast from the jobs: open the store, apply the repository, materialize, read online values."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feast import FeatureStore

from features import JOIN_KEY, Signal, all_signals
from features.standard import SERVED_AT
from jobs.errors import OnlineStoreError
from jobs.settings import Settings


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    # Feast prints apply diffs and progress to stdout; the CLI shows its own summary instead.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def feature_store(settings: Settings) -> FeatureStore:
    """The project's Feast store, reading the lake these settings point at.

    The offline-store plugin resolves relative source paths against `SIGNALS_LAKE_URI`, so one
    repository serves any lake: local disk for the demo, object storage on a cluster.
    """
    os.environ["SIGNALS_LAKE_URI"] = settings.lake_uri
    try:
        return FeatureStore(repo_path=str(settings.feast_repo))
    except Exception as exc:  # a malformed feature_store.yaml or an unreachable registry
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
        repo = parse_repo(repo_path)
        to_apply, to_delete, _, _ = extract_objects_for_apply_delete(
            store.project, store.registry, repo
        )
        store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return store


def online_values(
    settings: Settings, content_ids: list[str], signals: list[Signal] | None = None
) -> list[dict[str, Any]]:
    """Online feature values per content ID, as `{signal_ref: {feature: value}}` dicts.

    Each signal's dict also holds `SERVED_AT`, the event time of the value (the run that computed
    it). A signal whose every feature is null for an ID is left out of that ID's dict.
    """
    signals = signals or list(all_signals())
    store = feature_store(settings)
    refs = [f"{s.feature_view_name}:{f}" for s in signals for f in s.features]
    try:
        response = store.get_online_features(
            features=refs,
            entity_rows=[{JOIN_KEY: cid} for cid in content_ids],
            full_feature_names=True,
        ).to_dict(include_event_timestamps=True)
    except Exception as exc:
        raise OnlineStoreError(f"the online store could not be read: {exc}") from exc
    results: list[dict[str, Any]] = []
    for i, _ in enumerate(content_ids):
        by_signal: dict[str, Any] = {}
        for signal in signals:
            values = {f: response[f"{signal.feature_view_name}__{f}"][i] for f in signal.features}
            if any(v is not None for v in values.values()):
                first = next(iter(signal.features))
                seconds = response[f"{signal.feature_view_name}__{first}__ts"][i]
                values[SERVED_AT] = datetime.fromtimestamp(seconds, UTC)
                by_signal[signal.ref] = values
        results.append(by_signal)
    return results
