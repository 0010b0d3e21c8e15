"""`POST /similar` of `signals serve`: the items most like one item, in one round trip.

Feast's `/search` takes a vector and returns each neighbour's features: "more like this" by
content ID would cost the caller a lookup first and carry every neighbour's vector back. Here
the item's own vector is read and Feast's `retrieve_online_documents_v2` runs inside the server
(`jobs.serving.similarity.nearest`, what the local client runs), under the permission Feast's own
endpoints check: read-online on the signal's feature view.

    POST /similar {"content_id": "track:000042", "signal": "audio_fingerprint@1", "k": 10,
                   "where": {"content_type": "track"}}
    → {"results": [{"content_id": "track:000917", "distance": 0.031, "rank": 1}, …]}
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from feast.permissions.action import AuthzedAction
from feast.permissions.security_manager import (
    assert_permissions,
    get_security_manager,
    is_auth_necessary,
)
from feast.permissions.server.rest import inject_user_details
from pydantic import BaseModel, ConfigDict, Field

from features import get_signal
from features.errors import SignalsError
from jobs.serving.client import shared_store
from jobs.serving.errors import NotServedError
from jobs.serving.similarity import MAX_K, nearest
from jobs.settings import Settings


class SimilarRequest(BaseModel):
    """The body of `POST /similar`: `similar`'s arguments."""

    model_config = ConfigDict(extra="forbid")
    signal: str = Field(max_length=200)
    content_id: str | None = Field(default=None, max_length=1000)
    vector: list[float] | None = Field(default=None, max_length=65_536)
    k: int = Field(default=10, ge=1, le=MAX_K)
    where: dict[str, str | list[str]] | None = None


def add_similar_route(app: FastAPI, settings: Settings) -> None:
    """Mount `POST /similar` on Feast's app, answering from the server's own store."""
    store = shared_store(settings)

    def answer(request: SimilarRequest) -> JSONResponse:
        try:
            if is_auth_necessary(get_security_manager()):
                view = store.get_feature_view(get_signal(request.signal).feature_view_name)
                assert_permissions(resource=view, actions=[AuthzedAction.READ_ONLINE])
            table = nearest(
                settings, request.signal, request.content_id, request.vector, request.k,
                request.where,
            )  # fmt: skip
        except SignalsError as exc:
            status = 503 if exc.retryable else 404 if isinstance(exc, NotServedError) else 400
            return JSONResponse(status_code=status, content={"error": exc.render()})
        return JSONResponse(content={"results": table.to_pylist()})

    @app.post("/similar", dependencies=[Depends(inject_user_details)])
    async def similar(request: SimilarRequest) -> JSONResponse:
        return await run_in_threadpool(answer, request)
