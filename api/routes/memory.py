"""`/nova/memory`: what Nova remembers about the caller, through the operations `nova memory` uses.

Every handler is scoped to the authenticated user: another user's memory id is as unknown as a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from api.deps import ApiDep, UserDep
from api.memory_schemas import (
    ForgetResult,
    ImportResult,
    MemoryCounts,
    MemoryDetailOut,
    MemoryEvent,
    MemoryHit,
    MemoryHits,
    MemoryOut,
    MemoryOverview,
    PinRequest,
    RememberRequest,
    RememberResult,
    SubjectHistory,
)
from api.schemas import ErrorBody
from api.threads import jsonable
from nodes.memory import MemoryStore
from nodes.memory_records import MemoryInputError, UnknownMemory, UnknownSubject
from nodes.services import TurnRef

router = APIRouter(
    prefix="/nova/memory",
    tags=["memory"],
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)


async def get_memory(request: Request, api: ApiDep, user: UserDep) -> MemoryStore:
    """Return this worker's memory store (built once over the runtime's pool) with the caller's packs loaded."""
    from api.memory_cli import memory_store_for

    store: MemoryStore | None = getattr(request.app.state, "memory_store", None)
    if store is None:
        store = memory_store_for(api.runtime)
        request.app.state.memory_store = store
    await store.prepare_user(user)
    return store


MemoryDep = Annotated[MemoryStore, Depends(get_memory)]


def _http_error(exc: MemoryInputError) -> HTTPException:
    """Map a memory error: an unknown id or subject (or another user's) is 404, anything else invalid is 422."""
    return HTTPException(404 if isinstance(exc, UnknownMemory | UnknownSubject) else 422, str(exc))


@router.get("", response_model=MemoryOverview)
async def overview(
    memory: MemoryDep, user: UserDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> MemoryOverview:
    """Return the caller's core profile (pinned first, then newest) and memory counts."""
    core = await memory.list_memories(user, tier="core", limit=limit)
    core.sort(key=lambda r: not r.pinned)
    return MemoryOverview(
        user_id=user, core=[MemoryOut.of(r) for r in core], counts=MemoryCounts(**await memory.counts(user))
    )


@router.get("/search", response_model=MemoryHits)
async def search(
    memory: MemoryDep,
    user: UserDep,
    q: Annotated[str, Query(min_length=1, max_length=4000, description="what to look for")],
    limit: Annotated[int, Query(ge=1, le=100)] = 8,
) -> MemoryHits:
    """Search the caller's active memories by meaning."""
    hits = await memory.search(user, q, limit=limit)
    return MemoryHits(query=q, results=[MemoryHit(**h.model_dump()) for h in hits])


@router.get("/export")
async def export(memory: MemoryDep, user: UserDep) -> Response:
    """Return all the caller's memories, history included, as JSON lines (what `import` reads back)."""
    lines = await memory.export_lines(user)
    return Response(
        "".join(line + "\n" for line in lines),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="nova-memory.jsonl"'},
    )


@router.post("/import", response_model=ImportResult)
async def import_lines(memory: MemoryDep, user: UserDep, request: Request) -> ImportResult:
    """Import JSON lines from `export` in one transaction: all of it, or nothing (422 names the bad line)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"the body is not UTF-8 text (byte {exc.start}); nothing imported") from None
    if not text.strip():
        raise HTTPException(422, "the body is empty: send JSON lines from GET /nova/memory/export; nothing imported")
    try:
        report = await memory.import_lines(user, text.splitlines())
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    return ImportResult(created=report.created, skipped=report.skipped)


@router.post("", response_model=RememberResult, status_code=201)
async def remember(memory: MemoryDep, user: UserDep, body: RememberRequest) -> RememberResult:
    """Remember a statement through the write path (extraction, triage, supersession, duplicates merged)."""
    ref = TurnRef(user_id=user, thread_id=body.thread_id or "", agent_id="http")
    try:
        remembered = await memory.remember(ref, body.text)
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    return RememberResult(outcome=str(remembered), stored=remembered.stored)


@router.get("/subjects/{subject:path}/history", response_model=SubjectHistory)
async def history(memory: MemoryDep, user: UserDep, subject: str) -> SubjectHistory:
    """Return every memory ever stored about a subject, oldest first, with supersession links and provenance."""
    try:
        records = await memory.history(user, subject)
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    return SubjectHistory(subject=subject, memories=[MemoryOut.of(r) for r in records])


@router.get("/{memory_id}", response_model=MemoryDetailOut)
async def show(memory: MemoryDep, user: UserDep, memory_id: str) -> MemoryDetailOut:
    """Return one memory with what it replaced, what replaced it, and its events."""
    try:
        detail = await memory.show(user, memory_id)
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    return MemoryDetailOut(
        memory=MemoryOut.of(detail.record),
        replaced=[MemoryOut.of(r) for r in detail.replaced],
        replaced_by=MemoryOut.of(detail.replaced_by) if detail.replaced_by else None,
        events=[MemoryEvent(**_event(e)) for e in detail.events],
    )


@router.post("/{memory_id}/pin", response_model=MemoryOut)
async def pin(memory: MemoryDep, user: UserDep, memory_id: str, body: PinRequest | None = None) -> MemoryOut:
    """Pin a memory into the core profile (`{"pinned": false}` unpins)."""
    try:
        record = await memory.pin(user, memory_id, pinned=body.pinned if body else True)
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    return MemoryOut.of(record)


@router.post("/{memory_id}/forget", response_model=ForgetResult)
async def forget(
    memory: MemoryDep,
    user: UserDep,
    memory_id: str,
    purge: Annotated[bool, Query(description="delete for good instead of discarding")] = False,
) -> ForgetResult:
    """Discard a memory (recoverable with `restore`), or delete it for good with `?purge=true`."""
    try:
        if purge:
            gone = await memory.purge(user, memory_id)
            return ForgetResult(id=gone, purged=True, outcome="deleted for good", memory=None)
        record = await memory.discard(user, memory_id)
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    outcome = f"forgotten (recoverable with POST /nova/memory/{record.id}/restore)"
    return ForgetResult(id=record.id, purged=False, outcome=outcome, memory=MemoryOut.of(record))


@router.post("/{memory_id}/restore", response_model=MemoryOut)
async def restore(memory: MemoryDep, user: UserDep, memory_id: str) -> MemoryOut:
    """Undo a forget, or reinstate a superseded memory over the one that replaced it."""
    try:
        record = await memory.restore(user, memory_id)
    except MemoryInputError as exc:
        raise _http_error(exc) from None
    return MemoryOut.of(record)


def _event(row: dict[str, Any]) -> dict[str, Any]:
    detail = jsonable(row.get("detail") or {})
    return {
        "created_at": row["created_at"],
        "action": row["action"],
        "reason": row["reason"],
        "thread_id": row["thread_id"],
        "detail": detail if isinstance(detail, dict) else {"value": detail},
    }
