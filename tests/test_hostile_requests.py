"""Malformed and hostile requests against `signals serve`: a 4xx with a reason, never a 5xx.

One server on a small materialized store (loudness rows and searchable text embeddings), then
about 450 requests spread over every route the app registers, over one keep-alive connection (a
server error that closes the connection shows up as a failed next request), and a few bytes
that are not HTTP at all. The server must still be healthy and answer a good request after.
"""

from __future__ import annotations

import gc
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import copy_repo
from deltalake import write_deltalake
from serve_process import running
from signal_rows import history
from test_serving import LOUDNESS, T1, _append, _loudness
from test_similarity import EMBEDDING, IDS, VECTORS

from jobs.settings import Settings

REF = f"{LOUDNESS.feature_view_name}:integrated_lufs"
VECTOR_REF = f"{EMBEDDING.feature_view_name}:embedding"
BIG_ID = "x" * 100_000
MANY_IDS = [f"track:{i:07d}" for i in range(20_000)]


@dataclass(frozen=True)
class Served:
    url: str
    route_patterns: list[tuple[str, object]]  # (path, compiled regex) of every registered route
    vector_store_id: str
    log: Path


@dataclass
class Case:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        shown = (self.body or b"")[:80]
        return f"{self.method} {self.path[:80]} {shown!r}"


def _json(method: str, path: str, payload: object) -> Case:
    return Case(method, path, json.dumps(payload).encode(), {"content-type": "application/json"})


def _raw(method: str, path: str, body: bytes, content_type: str = "application/json") -> Case:
    return Case(method, path, body, {"content-type": content_type})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`signals serve` (SQLite, LanceDB index) on loudness rows and 240 searchable embeddings."""
    root = tmp_path_factory.mktemp("hostile")
    repo = copy_repo(root)
    env = {"SIGNALS_LAKE_URI": str(root / "lake"), "SIGNALS_FEAST_REPO": str(repo),
           "SIGNALS_ONLINE_STORE": "sqlite", "SIGNALS_VECTOR_STORE": "lance"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = Settings.from_env()
        _append(settings, [("a", T1, _loudness(-14.0)), ("b", T1, _loudness(-20.0))], "r1")
        rows = [(cid, T1, {"embedding": v.tolist()}) for cid, v in zip(IDS, VECTORS, strict=True)]
        write_deltalake(
            settings.signal_uri(EMBEDDING.storage_name), history(EMBEDDING.ref, rows, "r1")
        )
        from jobs.serving.materialize import materialize
        from jobs.serving.server import serving_app

        materialize(settings, [LOUDNESS, EMBEDDING])
        # The routes to cover come from the app itself, built here as the server builds it.
        routes = [(r.path, r.path_regex) for r in serving_app(settings).routes]
        gc.unfreeze()  # serving_app froze this test process's heap, as it does a server's
        log_path = root / "serve.log"
        with running(["serve", "--no-access-log"], log_path) as url:
            stores = httpx.get(f"{url}/v1/vector_stores", timeout=10).json()["data"]
            [store_id] = [s["id"] for s in stores if s["name"] == EMBEDDING.feature_view_name]
            yield Served(url, routes, store_id, log_path)


def _cases(vector_store_id: str) -> list[Case]:
    good_features = {"features": [REF], "entities": {"content_id": ["a"]}}
    good_search = {"features": [VECTOR_REF], "query": VECTORS[0].tolist(), "top_k": 3,
                   "api_version": 2}  # fmt: skip
    good_similar = {"signal": EMBEDDING.ref, "content_id": IDS[0], "k": 3}
    vs = f"/v1/vector_stores/{vector_store_id}"
    post_paths = ["/get-online-features", "/search", "/retrieve-online-documents", "/similar",
                  f"{vs}/search", "/v1/vector_stores/vs_nope/search", "/push",
                  "/write-to-online-store", "/materialize", "/materialize-incremental"]  # fmt: skip
    cases: list[Case] = []

    # Bodies that are not a JSON object of the right shape, on every POST route.
    garbage = [
        b"", b"{", b"}", b'{"features": [', b"null", b"[]", b"42", b'"x"', b"true",
        b"\xff\xfe\x00\x01", b'{"features": ["\xff\xfe"], "entities": {"content_id": ["\xc3"]}}',
        b"1e999999", b"NaN", b'{"a": Infinity}', b"[" * 5_000 + b"]" * 5_000,
        b'{"a":' * 3_000 + b"1" + b"}" * 3_000, b"\x00" * 1_000, b"x" * (3 * 1024 * 1024),
    ]  # fmt: skip
    for path in post_paths:
        cases += [_raw("POST", path, body) for body in garbage]
        cases.append(_raw("POST", path, json.dumps(good_features).encode(), "text/plain"))
        cases.append(Case("POST", path))  # no body, no content type
    for path in ["/push", "/write-to-online-store", "/materialize", "/materialize-incremental"]:
        cases += [
            _json("POST", path, {"push_source_name": "loudness", "df": {"content_id": ["a"]}}),
            _json("POST", path, {"feature_view_name": LOUDNESS.feature_view_name,
                                 "df": {"content_id": ["a"], "integrated_lufs": [0.0]}}),
            _json("POST", path, {"start_ts": "2020-01-01T00:00:00", "end_ts": "2030-01-01"}),
            _json("POST", path, {"end_ts": "2030-01-01T00:00:00"}),
        ]  # fmt: skip

    # /get-online-features: wrong types, unknown names, sizes over the limits.
    for body in [
        {"features": [REF]},
        {"features": [REF], "entities": {}},
        {"features": [REF], "entities": []},
        {"features": [REF], "entities": "content_id"},
        {"features": [REF], "entities": {"content_id": "a"}},
        {"features": [REF], "entities": {"content_id": []}},
        {"features": [REF], "entities": {"content_id": [None]}},
        {"features": [REF], "entities": {"content_id": [["a"]]}},
        {"features": [REF], "entities": {"content_id": [{"a": 1}]}},
        {"features": [REF], "entities": {"content_id": [10**40]}},
        {"features": [REF], "entities": {"content_id": [-(10**30)]}},
        {"features": [REF], "entities": {"content_id": [1e308 * 10]}},
        {"features": [REF], "entities": {"content_id": [BIG_ID]}},
        {"features": [REF], "entities": {"content_id": MANY_IDS}},
        {"features": [REF], "entities": {"wrong_key": ["a"]}},
        {"features": [REF], "entities": {BIG_ID: ["a"]}},
        {"features": [REF], "entities": {"": ["a"]}},
        {"features": [REF], "entities": {"content_id": ["a", "b"], "other": ["a"]}},
        {"features": [], "entities": {"content_id": ["a"]}},
        {"features": "not a list", "entities": {"content_id": ["a"]}},
        {"features": [1, 2], "entities": {"content_id": ["a"]}},
        {"features": [None], "entities": {"content_id": ["a"]}},
        {"features": [{"view": "x"}], "entities": {"content_id": ["a"]}},
        {"features": ["no colon"], "entities": {"content_id": ["a"]}},
        {"features": [":"], "entities": {"content_id": ["a"]}},
        {"features": ["view:"], "entities": {"content_id": ["a"]}},
        {"features": [":feature"], "entities": {"content_id": ["a"]}},
        {"features": ["a:b:c"], "entities": {"content_id": ["a"]}},
        {"features": ["no_such_view:x"], "entities": {"content_id": ["a"]}},
        {"features": [f"{LOUDNESS.feature_view_name}:no_such"], "entities": {"content_id": ["a"]}},
        {"features": [REF, REF], "entities": {"content_id": ["a"]}},
        {"features": [f"v{i}:f" for i in range(2_000)], "entities": {"content_id": ["a"]}},
        {"features": [BIG_ID + ":f"], "entities": {"content_id": ["a"]}},
        {"features": ["view@v99:feature"], "entities": {"content_id": ["a"]}},
        {"feature_service": "no-such-service", "entities": {"content_id": ["a"]}},
        {"feature_service": "", "entities": {"content_id": ["a"]}},
        {"feature_service": BIG_ID, "entities": {"content_id": ["a"]}},
        {"feature_service": 42, "entities": {"content_id": ["a"]}},
        {"feature_service": ["playback"], "entities": {"content_id": ["a"]}},
        {"feature_service": "playback", "entities": {"content_id": MANY_IDS}},
        {**good_features, "full_feature_names": "yes please"},
        {**good_features, "full_feature_names": [True]},
        {**good_features, "include_feature_view_version_metadata": {"x": 1}},
        {"entities": {"content_id": ["a"]}},
        {"entities": {"content_id": ["a"]}, "features": [REF] * 5_000},
    ]:
        cases.append(_json("POST", "/get-online-features", body))
    cases.append(_raw("POST", "/get-online-features",
                      b'{"features": ["%s"], "entities": {"content_id": [NaN]}}' % REF.encode()))  # fmt: skip

    # /search and its deprecated alias: features, vectors, top_k, filters.
    for path in ["/search", "/retrieve-online-documents"]:
        for body in [
            {"entities": {}},
            {**good_search, "features": []},
            {**good_search, "features": ["no_such_view:x"]},
            {**good_search, "features": [REF]},
            {**good_search, "features": [VECTOR_REF, REF]},
            {**good_search, "features": ["no colon"]},
            {**good_search, "feature_service": "search"},
            {**good_search, "feature_service": "no-such-service"},
            {**good_search, "query": None},
            {**good_search, "query": []},
            {**good_search, "query": [0.1, 0.2]},
            {**good_search, "query": ["a"] * 384},
            {**good_search, "query": [[0.1]] * 384},
            {**good_search, "query": [1e308 * 10] * 384},
            {**good_search, "query": [0.0] * 65_536},
            {**good_search, "query": "a string"},
            {**good_search, "query": None, "query_string": "hello"},
            {**good_search, "query": None, "query_string": BIG_ID},
            {**good_search, "top_k": 0},
            {**good_search, "top_k": -1},
            {**good_search, "top_k": 10**30},
            {**good_search, "top_k": "ten"},
            {**good_search, "top_k": None},
            {**good_search, "api_version": 99},
            {**good_search, "api_version": "two"},
            {**good_search, "api_version": 1},
            {**good_search, "distance_metric": BIG_ID},
            {**good_search, "filters": {"type": "xor", "key": "content_type", "value": "t"}},
            {**good_search, "filters": {"type": "eq", "key": "colour", "value": "red"}},
            {**good_search, "filters": {"type": "in", "key": "content_type", "value": "t"}},
            {**good_search, "filters": {"type": "like", "key": "content_type", "value": "t"}},
            {**good_search, "filters": "content_type = track"},
            {**good_search, "filters": _deep_filter(300)},
            {**good_search, "full_feature_names": {"a": 1}},
        ]:
            cases.append(_json("POST", path, body))
        cases.append(_raw("POST", path, json.dumps(good_search).replace("0.", "NaN", 1).encode()))

    # /similar: our own route.
    for body in [
        {},
        {**good_similar, "signal": "no_such@1"},
        {**good_similar, "signal": "text_tags@2"},
        {**good_similar, "signal": BIG_ID},
        {**good_similar, "signal": None},
        {**good_similar, "content_id": BIG_ID},
        {**good_similar, "content_id": 42},
        {**good_similar, "content_id": ["a", "b"]},
        {**good_similar, "content_id": "track:missing"},
        {**good_similar, "vector": VECTORS[0].tolist()},
        {"signal": EMBEDDING.ref, "vector": [0.1, 0.2]},
        {"signal": EMBEDDING.ref, "vector": []},
        {"signal": EMBEDDING.ref, "vector": [1e308 * 10] * 384},
        {"signal": EMBEDDING.ref, "vector": ["x"] * 384},
        {"signal": EMBEDDING.ref, "vector": [0.0] * 70_000},
        {"signal": EMBEDDING.ref},
        {**good_similar, "k": 0},
        {**good_similar, "k": 10**30},
        {**good_similar, "k": "ten"},
        {**good_similar, "k": 2.5},
        {**good_similar, "colour": "red"},
        {**good_similar, "where": {"colour": "red"}},
        {**good_similar, "where": {"content_type": {"nested": ["garbage"]}}},
        {**good_similar, "where": ["content_type", "track"]},
        {**good_similar, "where": {"language": [None]}},
    ]:
        cases.append(_json("POST", "/similar", body))
    cases.append(_raw("POST", "/similar",
                      b'{"signal": "%s", "vector": [NaN, Infinity]}' % EMBEDDING.ref.encode()))  # fmt: skip

    # OpenAI-compatible vector store routes.
    for body in [
        {},
        {"query": ""},
        {"query": BIG_ID},
        {"query": []},
        {"query": ["a"] * 500},
        {"query": 42},
        {"query": "hello"},
        {"query": "hello", "max_num_results": 0},
        {"query": "hello", "max_num_results": 10**30},
        {"query": "hello", "rewrite_query": True},
        {"query": "hello", "ranking_options": {"ranker": "x", "score_threshold": "high"}},
        {"query": "hello", "filters": {"type": "eq"}},
        {"query": "hello", "metadata": {"features_to_retrieve": [BIG_ID]}},
    ]:
        cases.append(_json("POST", f"{vs}/search", body))
    for store in ["vs_nope", "x" * 5_000, "%00", "..%2F..%2Fetc%2Fpasswd", "%ff%fe", "ünïcödé"]:
        cases.append(Case("GET", f"/v1/vector_stores/{store}"))
        cases.append(_json("POST", f"/v1/vector_stores/{store}/search", {"query": "hello"}))

    # Wrong methods, unknown paths, Feast's removed placeholders, the documentation routes.
    for path in ["/get-online-features", "/search", "/retrieve-online-documents", "/similar",
                 "/push", "/write-to-online-store", "/materialize", "/materialize-incremental",
                 f"{vs}/search"]:  # fmt: skip
        cases += [Case(method, path) for method in ("GET", "PUT", "DELETE", "PATCH")]
    for path in ["/health", "/v1/vector_stores", vs, "/docs", "/docs/oauth2-redirect", "/redoc",
                 "/openapi.json"]:  # fmt: skip
        cases += [Case("POST", path), Case("DELETE", path), _json("PUT", path, good_features)]
    for path in ["/chat", "/ws/chat", "/static/index.html", "/static/../../etc/passwd",
                 "/get-online-features/x", "/nope", "/%00", "/" + "a" * 60_000]:  # fmt: skip
        cases += [Case("GET", path), _json("POST", path, {"messages": [{"role": "user"}]})]
    return cases


def _deep_filter(depth: int) -> dict[str, object]:
    node: dict[str, object] = {"type": "eq", "key": "content_type", "value": "track"}
    for _ in range(depth):
        node = {"type": "and", "filters": [node]}
    return node


def _raw_exchange(url: str, data: bytes) -> bytes:
    """Send bytes that are not a well-formed request; the status line of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n", 1)[0]


def test_every_route_refuses_malformed_requests_with_a_4xx_and_a_reason(served: Served) -> None:
    cases = _cases(served.vector_store_id)
    assert len(cases) >= 300
    hit = {path for path, regex in served.route_patterns
           if any(regex.match(c.path.split("?")[0]) for c in cases)}  # fmt: skip
    assert hit == {path for path, _ in served.route_patterns}, "routes no case reaches"

    failures = []
    with httpx.Client(base_url=served.url, timeout=30) as client:  # one keep-alive connection
        for case in cases:
            try:
                reply = client.request(case.method, case.path, content=case.body,
                                       headers=case.headers)  # fmt: skip
            except httpx.HTTPError as exc:
                failures.append(f"{case.describe()}: {type(exc).__name__} {exc}")
                continue
            if not 400 <= reply.status_code < 500 or not reply.text.strip():
                failures.append(f"{case.describe()}: {reply.status_code} {reply.text[:200]!r}")
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:30])

    prefix = b"POST /get-online-features HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
    for data in [
        prefix + b"Content-Length: abc\r\n\r\n{}",
        prefix + b"Content-Length: -1\r\n\r\n{}",
        prefix + b"Content-Length: 99999999999\r\n\r\n{}",
        prefix
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 3,
        b"GARBAGE\r\n\r\n",
        b"\xff\xfe\x00\x01\r\n\r\n",
        b"GET /health HTTP/9.9\r\n\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # longer than httpx sends
    ]:
        status = _raw_exchange(served.url, data)
        assert status.startswith(b"HTTP/1.1 4"), (data[:80], status)

    assert httpx.get(f"{served.url}/health", timeout=10).status_code == 200
    answer = httpx.post(f"{served.url}/get-online-features", timeout=10,
                        json={"features": [REF], "entities": {"content_id": ["a", "zzz"]}})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["results"][1]["values"] == [-14.0, None]
    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:4000]


def test_good_requests_keep_feasts_protocol(served: Served) -> None:
    """The checks refuse only what is malformed: Feast's requests and answers pass as they were."""
    by_service = httpx.post(f"{served.url}/get-online-features", timeout=10, json={
        "feature_service": "playback", "entities": {"content_id": ["b"]},
        "full_feature_names": True})  # fmt: skip
    assert by_service.status_code == 200
    names = by_service.json()["metadata"]["feature_names"]
    assert f"{LOUDNESS.feature_view_name}__integrated_lufs" in names
    search = httpx.post(f"{served.url}/search", timeout=10, json={
        "features": [VECTOR_REF], "query": VECTORS[0].tolist(), "top_k": 3, "api_version": 2})  # fmt: skip
    assert search.status_code == 200
    columns = dict(zip(search.json()["metadata"]["feature_names"], search.json()["results"],
                       strict=True))  # fmt: skip
    assert IDS[0] in columns["content_id"]["values"]  # itself, the nearest
    similar = httpx.post(f"{served.url}/similar", timeout=10,
                         json={"signal": EMBEDDING.ref, "content_id": IDS[0], "k": 3})  # fmt: skip
    assert similar.status_code == 200 and len(similar.json()["results"]) == 3
    missing = httpx.post(f"{served.url}/get-online-features", timeout=10,
                         json={"features": ["no_such_view:x"], "entities": {"content_id": ["a"]}})  # fmt: skip
    # Feast's own error body, which Feast's client turns back into FeatureViewNotFoundException.
    assert missing.status_code == 404
    assert json.loads(missing.json())["class"] == "FeatureViewNotFoundException"
