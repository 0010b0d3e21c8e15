"""`similar`: `get_signals`' companion — the items most like one item, from the vector index.

    from jobs.serving import similar
    table = similar("track:000042", signal="audio_fingerprint@1", k=10)              # local store
    rows = similar("episode:000007", signal="text_embedding@2", where={"language": "de"},
                   url="http://features:6566", output="dicts")                       # feature server

Both go through Feast's own document retrieval (`retrieve_online_documents_v2`): by content ID
the item's own vector is read from the online store first, then searched for, the item itself
left out. Over HTTP that runs inside the server (`POST /similar` of `signals serve`, one round
trip); Feast's own `POST /search` answers a search by vector from any Feast client. One row per
neighbour, nearest first: `content_id`, `distance` (the signal's metric: 1 − cosine, or squared
L2), `rank` from 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from features import JOIN_KEY, Signal, all_signals, get_signal
from jobs.serving.client import Output, bearer, fetch_local, post_json, shared_store
from jobs.serving.errors import FeatureRequestError, NotServedError
from jobs.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

FILTER_KEYS = ("content_type", "language")
MAX_K = 1000
SCHEMA = pa.schema(
    [pa.field(JOIN_KEY, pa.string()), pa.field("distance", pa.float32()), ("rank", pa.int32())]
)


def similar(
    content_id: str | None = None,
    *,
    signal: str,
    k: int = 10,
    vector: Sequence[float] | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    url: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
    output: Output = "arrow",
) -> pa.Table | pd.DataFrame | list[dict[str, Any]]:
    """The `k` items nearest to `content_id` (or to `vector`) by the signal's searchable
    embedding, under `where` (`{"content_type": "track", "language": ["de", "fr"]}`).

    Why a function beside `get_signals`: "more like this" is the question product teams compute
    embeddings for; answered here, from the same store and server, no team keeps its own index.
    """
    if url is None:
        table = nearest(settings or Settings.from_env(), signal, content_id, vector, k, where)
    else:
        check_request(signal, content_id, vector, k)
        table = _similar_remote(url, bearer(token, settings), signal, content_id, vector, k, where)
    if output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    return table.to_pylist()


def check_request(
    signal: str, content_id: str | None, vector: Sequence[float] | None, k: int
) -> Signal:
    """The searchable signal, once the request is one that can be answered."""
    chosen = searchable(signal)
    if (content_id is None) == (vector is None):
        raise FeatureRequestError("give a content ID or a vector to search from, not both")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise FeatureRequestError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
    return chosen


def nearest(
    settings: Settings,
    signal: str,
    content_id: str | None,
    vector: Sequence[float] | None,
    k: int,
    where: Mapping[str, Any] | None,
) -> pa.Table:
    """`similar` on this process's store: what the local client and the server's `/similar` run.

    By content ID, the item's own vector is read from the online store and the search, Feast's
    `retrieve_online_documents_v2`, leaves the item out.
    """
    chosen = check_request(signal, content_id, vector, k)
    assert chosen.searchable is not None
    if vector is None:
        vector = _own_vector(settings, str(content_id), chosen)
    filters = feast_filters(where or {}, exclude=content_id)
    feature = f"{chosen.feature_view_name}:{chosen.searchable.feature}"
    found = _search(settings, feature, list(vector), k, filters)
    # Feast's response lists the entities in its own order, not the search's.
    pairs = sorted(zip(*found, strict=True), key=lambda pair: pair[1])
    return pa.table(
        {
            JOIN_KEY: [p[0] for p in pairs],
            "distance": [p[1] for p in pairs],
            "rank": list(range(1, len(pairs) + 1)),
        },
        schema=SCHEMA,
    )


def searchable(ref: str) -> Signal:
    """The signal, which must declare a searchable embedding."""
    chosen = get_signal(ref)
    if chosen.searchable is None:
        names = ", ".join(s.ref for s in all_signals() if s.searchable)
        raise FeatureRequestError(
            f"{chosen.ref} is not searchable", hint=f"searchable signals: {names}"
        )
    return chosen


def feast_filters(where: Mapping[str, Any], exclude: str | None) -> dict[str, Any] | None:
    """`where` as Feast's filter model (JSON): `eq` or `in` per key, all `and`-ed, and the
    item itself left out."""
    parts = []
    for key, value in where.items():
        if key not in FILTER_KEYS:
            raise FeatureRequestError(
                f"cannot filter on {key!r}", hint=f"filter on: {', '.join(FILTER_KEYS)}"
            )
        many = not isinstance(value, str)
        parts.append({"type": "in" if many else "eq", "key": key,
                      "value": list(value) if many else value})  # fmt: skip
    if exclude is not None:
        parts.append({"type": "ne", "key": JOIN_KEY, "value": exclude})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"type": "and", "filters": parts}


def _own_vector(settings: Settings, content_id: str, signal: Signal) -> list[float]:
    assert signal.searchable is not None
    ref = f"{signal.feature_view_name}:{signal.searchable.feature}"
    fetched = fetch_local(settings, [content_id], [ref], None)
    (value,) = fetched.columns[ref.replace(":", "__")]
    if value is None:
        raise NotServedError(
            f"{content_id} has no {signal.ref} served",
            hint="is the ID right, and has `signals materialize` run since it was computed?",
        )
    return value


def _search(
    settings: Settings, feature: str, vector: list[float], k: int, filters: dict | None
) -> tuple[list[str], list[float]]:
    from feast.filter_models import ComparisonFilter, CompoundFilter
    from pydantic import TypeAdapter

    from jobs.serving.store import online_store_errors

    model = TypeAdapter(ComparisonFilter | CompoundFilter)
    parsed = model.validate_python(filters) if filters else None
    store = shared_store(settings)
    with online_store_errors(settings, "searching"):
        try:
            response = store.retrieve_online_documents_v2(
                features=[feature], query=vector, top_k=k, filters=parsed
            ).to_dict()
        except ValueError as exc:
            raise FeatureRequestError(str(exc)) from exc
    return response.get(JOIN_KEY, []), response.get("distance", [])


def _similar_remote(
    url: str,
    token: str | None,
    signal: str,
    content_id: str | None,
    vector: Sequence[float] | None,
    k: int,
    where: Mapping[str, Any] | None,
) -> pa.Table:
    """One round trip to the server's `/similar` (its own-vector lookup and search in-process):
    a client-side lookup and then `/search` would cost two, and carry every neighbour's vector."""
    body: dict[str, Any] = {"signal": signal, "k": k}
    if content_id is not None:
        body["content_id"] = content_id
    if vector is not None:
        body["vector"] = list(vector)
    if where:
        body["where"] = {key: v if isinstance(v, str) else list(v) for key, v in where.items()}
    rows = post_json(url, "/similar", body, token)["results"]
    return pa.Table.from_pylist(rows, schema=SCHEMA)
