"""Assistants: one default assistant per served graph; its id and the graph name both resolve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.catalog import GraphEntry
from api.deps import ApiDep
from api.schemas import Assistant, AssistantCount, AssistantSearch, ErrorBody, GraphSchemas
from api.threads import jsonable

router = APIRouter(tags=["assistants"], responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})


def entry_for(api: ApiDep, assistant_id: str) -> GraphEntry:
    """Return the graph an assistant id or graph name refers to, or answer 404."""
    entry = api.catalog.resolve(assistant_id)
    if entry is None:
        raise HTTPException(404, f"assistant {assistant_id} not found")
    return entry


def _matches(entry: GraphEntry, graph_id: str | None, name: str | None, metadata: dict[str, Any] | None) -> bool:
    if graph_id and entry.graph_id != graph_id:
        return False
    if name and name.lower() not in entry.graph_id.lower():
        return False
    return not metadata or metadata.items() <= {"created_by": "system"}.items()


@router.post("/assistants/search", response_model=list[Assistant])
async def search(api: ApiDep, body: AssistantSearch) -> list[dict[str, Any]]:
    """List the assistants matching the filters."""
    found = [
        e.assistant(api.catalog.created_at) for e in api.catalog if _matches(e, body.graph_id, body.name, body.metadata)
    ]
    if body.sort_by:
        found.sort(key=lambda a: str(a[body.sort_by or "graph_id"]), reverse=body.sort_order == "desc")
    return found[body.offset : body.offset + body.limit]


@router.post("/assistants/count", response_model=int)
async def count(api: ApiDep, body: AssistantCount) -> int:
    """Count the assistants matching the filters."""
    return sum(1 for e in api.catalog if _matches(e, body.graph_id, body.name, body.metadata))


@router.post("/assistants", status_code=422, response_model=ErrorBody)
async def create() -> None:
    """Refuse: assistants are fixed, one per graph in langgraph.json."""
    raise HTTPException(
        422, "assistants cannot be created here: each graph in langgraph.json has one default assistant"
    )


@router.get("/assistants/{assistant_id}", response_model=Assistant)
async def get(api: ApiDep, assistant_id: str) -> dict[str, Any]:
    """Return one assistant."""
    return entry_for(api, assistant_id).assistant(api.catalog.created_at)


@router.get("/assistants/{assistant_id}/graph")
async def graph(api: ApiDep, assistant_id: str, xray: int | bool = False) -> dict[str, Any]:
    """Return the graph's nodes and edges for drawing."""
    drawable = await entry_for(api, assistant_id).graph.aget_graph(xray=xray)
    out: dict[str, Any] = jsonable(drawable.to_json())
    return out


@router.get("/assistants/{assistant_id}/schemas", response_model=GraphSchemas)
async def schemas(api: ApiDep, assistant_id: str) -> dict[str, Any]:
    """Return the JSON schemas of the graph's input, output, state and context."""
    return entry_for(api, assistant_id).schemas()
