"""Nova's own endpoints: routing decisions without running, explanations, and pending reviews."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from fastapi import APIRouter, Query

from api.deps import ApiDep, UserDep
from api.reviews import pending_reviews
from api.routes.threads import config_for, entry_of, owned
from api.schemas import ErrorBody, Reviews, RouteAnswer, RouteRequest, Why
from api.threads import jsonable
from nodes.turn import thread_routing

router = APIRouter(prefix="/nova", tags=["nova"], responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})


@router.post("/route", response_model=RouteAnswer)
async def route(api: ApiDep, user: UserDep, body: RouteRequest) -> dict[str, Any]:
    """Say where a request would go and why, without running anything or logging the decision."""
    context: dict[str, Any] = {}
    if body.thread_id is not None:
        row = await owned(api, user, body.thread_id)
        values = (await entry_of(api, row).graph.aget_state(config_for(body.thread_id))).values
        if isinstance(values, dict):
            context = dict(thread_routing(values))
    router_ = api.runtime.router
    decision = await asyncio.to_thread(partial(router_.decide, body.text, **context))
    return {"decision": decision.model_dump(mode="json")}


@router.get("/why/{thread_id}", response_model=Why)
async def why(api: ApiDep, user: UserDep, thread_id: str, limit: int = Query(1, ge=1, le=100)) -> dict[str, Any]:
    """Return the routing decisions recorded for a thread, newest first."""
    await owned(api, user, thread_id)
    rows = await api.runtime.route_log.recent(user_id=user, thread_id=thread_id, limit=limit)
    return {"thread_id": thread_id, "decisions": [jsonable(r) for r in rows]}


@router.get("/reviews", response_model=Reviews)
async def reviews(api: ApiDep, user: UserDep, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    """Return the caller's threads paused at an interrupt, across every graph, newest first."""

    def graph_for(graph_id: str) -> Any:
        entry = api.catalog.resolve(graph_id)
        return entry.graph if entry is not None else None

    rows = await pending_reviews(api.runtime.pool, user, graph_for, limit)
    keys = ("thread_id", "graph_id", "assistant_id", "title", "updated_at", "interrupts")
    return {"reviews": [{k: row[k] for k in keys} for row in rows]}
