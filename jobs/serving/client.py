"""`get_signals`: what downstream code calls to read signals by content ID.

    from jobs.serving import get_signals
    table = get_signals(["track:000042"], service="playback")                    # local store
    frame = get_signals(ids, signals=["text_embedding@2"], url="http://features:6566",
                        output="pandas")                                           # feature server

One call, the same answer from the local online store (SQLite or Redis, as configured) and from a
remote `feast serve`: one row per content ID, in the order asked, a column `content_id` and one
column per feature named as Feast names it with full names (`audio_loudness_v1__integrated_lufs`),
typed as the signal declares it. An ID without a served value gets nulls, never an error: a
product page renders without the signal rather than failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from features import JOIN_KEY, Signal, all_signals, get_signal
from features.standard import SERVED_AT
from jobs.serving.errors import (
    AccessDeniedError,
    FeatureRequestError,
    NotRegisteredError,
    OnlineStoreError,
)
from jobs.serving.request_guard import MAX_ENTITY_ROWS
from jobs.settings import Settings

if TYPE_CHECKING:
    import httpx
    import pandas as pd
    from feast import FeatureStore

Output = Literal["arrow", "pandas", "dicts"]
TIMEOUT_S = 10.0
REQUEST_IDS = MAX_ENTITY_ROWS  # IDs per request to a feature server: what it accepts


@dataclass(frozen=True)
class Fetched:
    """Online values as columns: `{full feature name: values}` plus each one's event time."""

    columns: dict[str, list[Any]]
    event_times: dict[str, list[datetime | None]]


def get_signals(
    content_ids: Sequence[str],
    *,
    signals: Sequence[str] | None = None,
    service: str | None = None,
    url: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
    output: Output = "arrow",
) -> pa.Table | pd.DataFrame | list[dict[str, Any]]:
    """Latest served values of `signals` (NAME@VERSION) or of a feature `service`.

    Why one function for both places: downstream code written against the local store in a
    notebook runs unchanged against the production feature server by passing `url` (and, where
    the server checks access, a bearer `token`; default `SIGNALS_TOKEN`).
    """
    if (signals is None) == (service is None):
        raise FeatureRequestError("name either signals or a feature service, not both or neither")
    ids = list(content_ids)
    refs = _feature_refs(signals) if signals is not None else None
    if url is None:
        fetched = fetch_local(settings or Settings.from_env(), ids, refs, service)
    else:
        fetched = fetch_remote(url, ids, refs, service, bearer(token, settings))
    order = [r.replace(":", "__") for r in refs] if refs is not None else list(fetched.columns)
    table = _to_arrow(ids, fetched, order)
    if output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    return table.to_pylist()


def _feature_refs(signals: Sequence[str]) -> list[str]:
    chosen = [get_signal(s) for s in signals]
    return [f"{s.feature_view_name}:{f}" for s in chosen for f in s.features]


def fetch_local(
    settings: Settings, content_ids: list[str], refs: list[str] | None, service: str | None
) -> Fetched:
    """Read the configured online store through Feast's Python API."""
    from feast.errors import FeastObjectNotFoundException

    from jobs.serving.store import online_store_errors

    store = shared_store(settings)
    with online_store_errors(settings, "reading signals"):
        for attempt in (1, 2):
            try:
                features = refs if refs is not None else store.get_feature_service(str(service))
                response = store.get_online_features(
                    features=features,
                    entity_rows=[{JOIN_KEY: cid} for cid in content_ids],
                    full_feature_names=True,
                ).to_dict(include_event_timestamps=True)
                break
            except FeastObjectNotFoundException as exc:
                if attempt == 1:  # applied since this process cached the registry: reload it
                    store.refresh_registry()
                    continue
                if service is not None:
                    raise _unknown_service(service) from exc
                raise NotRegisteredError(f"the Feast registry does not know it: {exc}") from exc
    names = [n for n in response if n != JOIN_KEY and not n.endswith("__ts")]
    return Fetched(
        columns={n: response[n] for n in names},
        event_times={n: [_from_epoch(t) for t in response[f"{n}__ts"]] for n in names},
    )


def fetch_remote(
    url: str,
    content_ids: list[str],
    refs: list[str] | None,
    service: str | None,
    token: str | None = None,
) -> Fetched:
    """Ask a `feast serve` feature server (POST /get-online-features), at most
    `REQUEST_IDS` IDs a request (the server refuses larger ones)."""
    columns: dict[str, list[Any]] = {}
    times: dict[str, list[datetime | None]] = {}
    for start in range(0, max(len(content_ids), 1), REQUEST_IDS):
        chunk = content_ids[start : start + REQUEST_IDS]
        body: dict[str, Any] = {"entities": {JOIN_KEY: chunk}, "full_feature_names": True}
        if refs is not None:
            body["features"] = refs
        else:
            body["feature_service"] = service
        payload = post_json(url, "/get-online-features", body, token)
        names = payload["metadata"]["feature_names"]
        for name, result in zip(names, payload["results"], strict=True):
            if name == JOIN_KEY:
                continue
            columns.setdefault(name, []).extend(result["values"])
            times.setdefault(name, []).extend(_from_iso(t) for t in result["event_timestamps"])
    return Fetched(columns, times)


def bearer(token: str | None, settings: Settings | None) -> str | None:
    """The token to send: the caller's, else the settings' (`SIGNALS_TOKEN`)."""
    return token if token is not None else (settings or Settings.from_env()).token


def post_json(
    url: str, path: str, body: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    """POST to a feature server and return its JSON answer; a refusal becomes the error that
    says whose mistake it is."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        reply = _http(url).post(f"{url.rstrip('/')}{path}", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise OnlineStoreError(f"the feature server at {url} could not be reached: {exc}") from exc
    if reply.status_code in (401, 403):
        raise AccessDeniedError(f"the feature server answered {reply.status_code}: {reply.text}")
    if reply.status_code != 200:
        # 4xx: the request is wrong and will stay wrong; 5xx: the server may recover.
        error = FeatureRequestError if reply.status_code < 500 else OnlineStoreError
        raise error(f"the feature server answered {reply.status_code}: {reply.text}")
    return reply.json()


_STORES: dict[tuple[str, ...], FeatureStore] = {}


@cache
def _http(url: str) -> httpx.Client:
    """One keep-alive connection pool per feature server: a new TCP connection per call would
    cost more than the lookup."""
    import httpx

    return httpx.Client(timeout=TIMEOUT_S)


def shared_store(settings: Settings) -> FeatureStore:
    """One open Feast store per configuration and process: opening one reads the YAML and the
    registry (milliseconds), which a per-call open would add to every lookup. The feature server
    serves from this one too, so its own endpoints and Feast's share caches and connections."""
    from jobs.serving.store import feature_store

    key = (str(settings.feature_store_yaml), settings.lake_uri, settings.redis_url)
    if key not in _STORES:
        _STORES[key] = feature_store(settings)
    return _STORES[key]


def _unknown_service(service: str | None) -> NotRegisteredError:
    known = sorted({g for s in all_signals() for g in s.consumers})
    return NotRegisteredError(
        f"unknown feature service {service!r}",
        details=[f"feature services: {', '.join(known)}"],
        hint="has `signals materialize` (feast apply) run against this registry?",
    )


def _from_epoch(seconds: int | float | None) -> datetime | None:
    return None if not seconds else datetime.fromtimestamp(seconds, UTC)


def _from_iso(value: str | None) -> datetime | None:
    if not value or value.startswith("1970-01-01"):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@cache
def feature_types() -> dict[str, pa.DataType]:
    """`view__feature` → the Arrow type its signal declares."""
    return {
        f"{s.feature_view_name}__{name}": t.arrow_type()
        for s in all_signals()
        for name, t in s.features.items()
    }


def online_values(
    settings: Settings,
    content_ids: list[str],
    signals: list[Signal] | None = None,
    url: str | None = None,
    token: str | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """Online values per content ID, as `{signal_ref: {feature: value}}` dicts (the CLI's shape),
    from the local online store or, with `url`, a feature server.

    Each signal's dict also holds `SERVED_AT`, the event time of the value (the run that computed
    it). A signal whose every feature is null for an ID is left out of that ID's dict.
    """
    signals = signals or list(all_signals())
    refs = [f"{s.feature_view_name}:{f}" for s in signals for f in s.features]
    if url is None:
        fetched = fetch_local(settings, content_ids, refs, None)
    else:
        fetched = fetch_remote(url, content_ids, refs, None, bearer(token, settings))
    results: list[dict[str, dict[str, Any]]] = []
    for i in range(len(content_ids)):
        by_signal: dict[str, dict[str, Any]] = {}
        for signal in signals:
            names = {f: f"{signal.feature_view_name}__{f}" for f in signal.features}
            values = {f: fetched.columns[n][i] for f, n in names.items()}
            if any(v is not None for v in values.values()):
                first = next(iter(names.values()))
                by_signal[signal.ref] = {**values, SERVED_AT: fetched.event_times[first][i]}
        results.append(by_signal)
    return results


def _to_arrow(content_ids: list[str], fetched: Fetched, order: list[str]) -> pa.Table:
    """Declared types, in declared order (Feast's own order is not the declaration's)."""
    types = feature_types()
    columns: dict[str, pa.Array] = {JOIN_KEY: pa.array(content_ids, pa.string())}
    for name in order:
        columns[name] = pa.array(fetched.columns[name], types.get(name))
    return pa.table(columns)


def served_values(
    settings: Settings,
    content_ids: list[str],
    signals: Sequence[Signal] | None = None,
    as_of: str | None = None,
    url: str | None = None,
    token: str | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """What `signals get` shows: the online store's (or the feature server's at `url`) values
    now, or — with `as_of` (a table version or a time) — what serving returned then, read from
    the lake's history. Both in `online_values`' shape, so the two print alike."""
    if as_of is None:
        chosen = list(signals) if signals else None
        return online_values(settings, content_ids, chosen, url, token)
    if url is not None:
        raise FeatureRequestError(
            "--as-of reads the lake's history, not a feature server: leave out --url"
        )
    from jobs.lake.lineage import values_as_of
    from jobs.lake.maintenance import resolve_as_of

    refs = [s.ref for s in signals or all_signals()]
    return values_as_of(settings, content_ids, refs, resolve_as_of(as_of))
