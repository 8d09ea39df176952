"""Threads: create, search, read, update state, history, delete; always scoped to the caller."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from langchain_core.messages import convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError

from api.catalog import GraphEntry
from api.deps import ApiDep, UserDep
from api.schemas import (
    CheckpointRef,
    ErrorBody,
    StateUpdated,
    Thread,
    ThreadCount,
    ThreadCreate,
    ThreadHistory,
    ThreadPatch,
    ThreadSearch,
    ThreadState,
    ThreadStateAt,
    ThreadStateUpdate,
)
from api.threads import ThreadExists, ThreadRow, checkpoint_of, state_json, thread_json

router = APIRouter(
    tags=["threads"],
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)


async def owned(api: ApiDep, user: str, thread_id: str) -> ThreadRow:
    """Return the caller's thread, or 404 (another user's thread is as unknown as a missing one)."""
    row = await api.threads.get(thread_id, user)
    if row is None:
        raise HTTPException(404, f"thread {thread_id} not found")
    return row


def entry_of(api: ApiDep, row: ThreadRow) -> GraphEntry:
    """Return the graph a thread runs on (Nova's until a run names another)."""
    graph_id = (row["metadata"] or {}).get("graph_id") or "nova"
    entry = api.catalog.resolve(str(graph_id))
    if entry is None:
        raise HTTPException(409, f"thread {row['thread_id']} belongs to graph {graph_id}, which is not served")
    return entry


def config_for(
    thread_id: str, checkpoint: CheckpointRef | None = None, checkpoint_id: str | None = None
) -> RunnableConfig:
    """Return the config addressing a thread, or one of its checkpoints."""
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint is not None:
        if checkpoint.thread_id not in (None, thread_id):
            raise HTTPException(422, "checkpoint.thread_id names another thread")
        configurable["checkpoint_ns"] = checkpoint.checkpoint_ns
        if checkpoint.checkpoint_id:
            configurable["checkpoint_id"] = checkpoint.checkpoint_id
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def check_values(entry: GraphEntry, values: dict[str, Any], allowed: frozenset[str] | None, what: str) -> None:
    """Refuse keys the graph does not have and messages that are not messages."""
    if allowed is not None:
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise HTTPException(422, f"{what} has keys graph {entry.graph_id} does not accept: {unknown}")
    if "messages" in values:
        messages = values["messages"]
        try:
            convert_to_messages(messages if isinstance(messages, list) else [messages])
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise HTTPException(422, f"{what}.messages: {str(exc).splitlines()[0]}") from exc


async def _thread(api: ApiDep, row: ThreadRow, *, with_state: bool = True) -> dict[str, Any]:
    entry = api.catalog.resolve(str((row["metadata"] or {}).get("graph_id") or "nova"))
    snapshot = await entry.graph.aget_state(config_for(row["thread_id"])) if entry and with_state else None
    return thread_json(row, snapshot)


@router.post("/threads", response_model=Thread)
async def create(api: ApiDep, user: UserDep, body: ThreadCreate) -> dict[str, Any]:
    """Create a thread (409 if the id is taken, unless if_exists is do_nothing and it is yours)."""
    metadata = dict(body.metadata or {})
    if "graph_id" in metadata:
        entry = api.catalog.resolve(str(metadata["graph_id"]))
        if entry is None:
            raise HTTPException(422, f"unknown graph_id {metadata['graph_id']}")
        metadata.update(graph_id=entry.graph_id, assistant_id=entry.assistant_id)
    try:
        row = await api.threads.create(body.thread_id or str(uuid.uuid4()), user, metadata, if_exists=body.if_exists)
    except ThreadExists as exc:
        raise HTTPException(409, f"thread {exc} already exists") from exc
    if body.thread_id is None:  # a new id has no checkpoint yet: nothing to read
        return {**thread_json(row, None), "values": {}}
    return await _thread(api, row)


@router.post("/threads/search", response_model=list[Thread])
async def search(api: ApiDep, user: UserDep, body: ThreadSearch) -> Any:
    """Return the caller's threads matching metadata, ids and status."""
    rows = await api.threads.search(
        user,
        metadata=body.metadata,
        ids=body.ids,
        status=body.status,
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )
    with_state = not body.select or bool({"values", "interrupts"} & set(body.select))
    found = [await _thread(api, row, with_state=with_state) for row in rows]
    if body.select:
        fields = set(body.select)
        return JSONResponse(jsonable_encoder([{k: v for k, v in t.items() if k in fields} for t in found]))
    return found


@router.post("/threads/count", response_model=int)
async def count(api: ApiDep, user: UserDep, body: ThreadCount) -> int:
    """Count the caller's threads matching metadata and status."""
    return await api.threads.count(user, metadata=body.metadata, status=body.status)


@router.get("/threads/{thread_id}", response_model=Thread)
async def get(api: ApiDep, user: UserDep, thread_id: str) -> dict[str, Any]:
    """Return a thread with its latest values and pending interrupts."""
    return await _thread(api, await owned(api, user, thread_id))


@router.patch("/threads/{thread_id}", response_model=Thread)
async def patch(api: ApiDep, user: UserDep, thread_id: str, body: ThreadPatch) -> dict[str, Any]:
    """Merge metadata into a thread."""
    await owned(api, user, thread_id)
    if {"graph_id", "assistant_id"} & set(body.metadata):
        raise HTTPException(422, "graph_id and assistant_id are set by the server")
    row = await api.threads.patch_metadata(thread_id, user, body.metadata)
    if row is None:
        raise HTTPException(404, f"thread {thread_id} not found")
    return await _thread(api, row)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete(api: ApiDep, user: UserDep, thread_id: str) -> Response:
    """Delete a thread, its checkpoints and its runs (409 while a run is active)."""
    await owned(api, user, thread_id)
    if await api.runs.store.has_active(thread_id):
        raise HTTPException(409, f"thread {thread_id} has an active run; cancel it first")
    await api.runs.delete_thread(thread_id, user)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/state", response_model=ThreadState)
async def state(api: ApiDep, user: UserDep, thread_id: str, subgraphs: bool = False) -> dict[str, Any]:
    """Return the thread's latest state."""
    entry = entry_of(api, await owned(api, user, thread_id))
    return state_json(await entry.graph.aget_state(config_for(thread_id), subgraphs=subgraphs), thread_id)


async def _state_at(api: ApiDep, user: str, thread_id: str, config: RunnableConfig, subgraphs: bool) -> dict[str, Any]:
    entry = entry_of(api, await owned(api, user, thread_id))
    snapshot = await entry.graph.aget_state(config, subgraphs=subgraphs)
    if snapshot.created_at is None:
        raise HTTPException(404, f"checkpoint not found in thread {thread_id}")
    return state_json(snapshot, thread_id)


@router.get("/threads/{thread_id}/state/{checkpoint_id}", response_model=ThreadState)
async def state_at(api: ApiDep, user: UserDep, thread_id: str, checkpoint_id: str, subgraphs: bool = False) -> Any:
    """Return the thread's state at a checkpoint."""
    return await _state_at(api, user, thread_id, config_for(thread_id, checkpoint_id=checkpoint_id), subgraphs)


@router.post("/threads/{thread_id}/state/checkpoint", response_model=ThreadState)
async def state_at_checkpoint(api: ApiDep, user: UserDep, thread_id: str, body: ThreadStateAt) -> Any:
    """Return the thread's state at a checkpoint given in full."""
    return await _state_at(api, user, thread_id, config_for(thread_id, body.checkpoint), body.subgraphs)


@router.post("/threads/{thread_id}/state", response_model=StateUpdated)
async def update_state(api: ApiDep, user: UserDep, thread_id: str, body: ThreadStateUpdate) -> dict[str, Any]:
    """Write values into the thread as if `as_node` produced them (409 while a run is active)."""
    row = await owned(api, user, thread_id)
    entry = entry_of(api, row)
    if await api.runs.store.has_active(thread_id):
        raise HTTPException(409, f"thread {thread_id} has an active run")
    if isinstance(body.values, list):
        raise HTTPException(422, "values must be one object")
    if body.values:
        check_values(entry, body.values, entry.state_keys, "values")
    if body.as_node is not None and body.as_node not in entry.nodes:
        raise HTTPException(422, f"as_node {body.as_node!r} is not a node of graph {entry.graph_id}")
    config = config_for(thread_id, body.checkpoint, body.checkpoint_id)
    config["metadata"] = {"user_id": user}
    try:
        written = await entry.graph.aupdate_state(config, body.values, as_node=body.as_node)
    except (InvalidUpdateError, ValueError, TypeError, KeyError) as exc:
        raise HTTPException(422, f"cannot update the state: {str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
    await api.runs.refresh_thread(thread_id)
    return {"checkpoint": checkpoint_of(written, thread_id)}


async def _history(api: ApiDep, user: str, thread_id: str, body: ThreadHistory) -> list[dict[str, Any]]:
    entry = entry_of(api, await owned(api, user, thread_id))
    before: RunnableConfig | None = None
    if isinstance(body.before, str):
        before = config_for(thread_id, checkpoint_id=body.before)
    elif body.before is not None:
        before = config_for(thread_id, body.before)
    config = config_for(thread_id, body.checkpoint)
    states = entry.graph.aget_state_history(config, filter=body.metadata, before=before, limit=body.limit)
    return [state_json(s, thread_id) async for s in states]


@router.post("/threads/{thread_id}/history", response_model=list[ThreadState])
async def history(api: ApiDep, user: UserDep, thread_id: str, body: ThreadHistory) -> list[dict[str, Any]]:
    """Return the thread's checkpoints, newest first."""
    return await _history(api, user, thread_id, body)


@router.get("/threads/{thread_id}/history", response_model=list[ThreadState])
async def history_get(
    api: ApiDep, user: UserDep, thread_id: str, limit: int = 10, before: str | None = None
) -> list[dict[str, Any]]:
    """Return the thread's checkpoints, newest first."""
    try:
        body = ThreadHistory(limit=limit, before=before)
    except ValueError as exc:
        raise HTTPException(422, str(exc).splitlines()[0]) from exc
    return await _history(api, user, thread_id, body)
