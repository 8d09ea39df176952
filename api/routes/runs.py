"""Runs: background, wait and stream (SSE); list, get, join, cancel; stateless runs on a throwaway thread."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse

from api.catalog import ContextError, GraphEntry
from api.deps import ApiDep, UserDep
from api.routes.threads import check_values, config_for, entry_of, owned
from api.run_store import RunNotActive, ThreadBusy, run_json
from api.runs import LocalRun, RunRequest, RunSpec
from api.schemas import THREAD_ID_RE, ErrorBody, Run, RunCreate, RunStatus
from api.threads import JsonResponse, ThreadExists, interrupts_of, jsonable
from nodes.review import ReviewAnswerError, parse_decision
from state.review import ReviewRequest

router = APIRouter(
    tags=["runs"],
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
BUSY = (
    "thread {thread} has a run in progress; wait for it, cancel it, or send multitask_strategy"
    " enqueue, interrupt or rollback"
)


async def _check_command(api: ApiDep, entry: GraphEntry, thread_id: str, body: RunCreate) -> None:
    command = body.command
    if command is None:
        if body.input is None and not (await entry.graph.aget_state(config_for(thread_id))).next:
            raise HTTPException(
                409,
                f"thread {thread_id} has nothing to resume: no step is pending (a chat turn commits whole,"
                " so a turn lost with its worker is sent again with its input)",
            )
        return
    gotos = command.goto if isinstance(command.goto, list) else [command.goto] if command.goto else []
    for target in gotos:
        node = target.get("node") if isinstance(target, dict) else target
        if node not in entry.nodes:
            raise HTTPException(422, f"command.goto names {node!r}, which is not a node of graph {entry.graph_id}")
    if isinstance(command.update, dict):
        check_values(entry, command.update, entry.state_keys, "command.update")
    if "resume" not in command.model_fields_set:
        return
    snapshot = await entry.graph.aget_state(config_for(thread_id))
    pending = {i["id"] for i in interrupts_of(snapshot)}
    if not pending:
        raise HTTPException(409, f"thread {thread_id} is not waiting at an interrupt; there is nothing to resume")
    resume = command.resume
    keyed = isinstance(resume, dict) and bool(resume) and set(resume) <= pending
    if len(pending) > 1 and not keyed:
        raise HTTPException(
            422, f"{len(pending)} interrupts are pending: resume with an object keyed by interrupt id {sorted(pending)}"
        )
    answers = resume if keyed else {next(iter(pending)): resume}
    for intr in interrupts_of(snapshot):
        if intr["id"] in answers:
            _check_review_answer(intr["value"], answers[intr["id"]])


def _check_review_answer(value: Any, answer: Any) -> None:
    """Refuse, with the reason, an answer a review gate would not accept (instead of silently asking again)."""
    try:
        request = ReviewRequest.model_validate(value)
    except ValueError:
        return  # not a review gate: any resume value is the graph's to interpret
    try:
        parse_decision(request, answer)
    except ReviewAnswerError as exc:
        raise HTTPException(422, str(exc)) from None


def _spec(api: ApiDep, user: str, entry: GraphEntry, thread_id: str, body: RunCreate, temporary: bool) -> RunSpec:
    """Validate everything the graph will see and return the run's spec."""
    if body.input is not None:
        check_values(entry, body.input, entry.input_keys, "input")
    try:
        entry.context(api.runtime.context(user), dict(body.context or {}))
    except ContextError as exc:
        raise HTTPException(422, f"context: {exc}") from exc
    for field in ("interrupt_before", "interrupt_after"):
        names = getattr(body, field)
        if isinstance(names, list) and (unknown := sorted(set(names) - entry.nodes)):
            raise HTTPException(422, f"{field} names nodes graph {entry.graph_id} does not have: {unknown}")
    config = body.config
    configurable = dict(config.configurable or {}) if config else {}
    if configurable.get("thread_id") not in (None, thread_id):
        raise HTTPException(422, "config.configurable.thread_id names another thread")
    checkpoint_id = body.checkpoint_id or configurable.get("checkpoint_id")
    if body.checkpoint is not None:
        if body.checkpoint.thread_id not in (None, thread_id):
            raise HTTPException(422, "checkpoint.thread_id names another thread")
        checkpoint_id = body.checkpoint.checkpoint_id or checkpoint_id
    return RunSpec(
        input=body.input,
        command=body.command.model_dump(include=body.command.model_fields_set) if body.command else None,
        context=dict(body.context or {}),
        stream_mode=tuple(body.modes),
        subgraphs=body.stream_subgraphs,
        interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after,
        checkpoint_id=checkpoint_id,
        checkpoint_ns=str(configurable.get("checkpoint_ns") or ""),
        tags=tuple(config.tags or ()) if config else (),
        recursion_limit=config.recursion_limit if config else None,
        run_name=config.run_name if config else None,
        durability=body.durability,
        temporary=temporary,
    )


async def _submit(
    api: ApiDep, user: str, thread_id: str | None, body: RunCreate, *, subscribe: bool, waits: bool = False
) -> tuple[dict[str, Any], LocalRun, Any]:
    """Validate, find or create the thread, and hand the run to the run manager."""
    entry = api.catalog.resolve(body.assistant_id)
    if entry is None:
        raise HTTPException(404, f"assistant {body.assistant_id} not found")
    if thread_id is not None and body.on_completion is not None:
        raise HTTPException(422, "on_completion applies to stateless runs only")
    metadata = {**((body.config.metadata or {}) if body.config else {}), **(body.metadata or {})}
    request = RunRequest(user, entry, body.multitask_strategy, metadata, subscribe, waits)
    if thread_id is not None and body.command is None and body.input is not None:
        # The common case, a new input on the caller's free thread, in one statement; anything else (a busy,
        # missing or foreign thread, a resume) takes the checks below, which say what is wrong.
        try:
            spec = _spec(api, user, entry, thread_id, body, temporary=False)
        except HTTPException:
            pass
        else:
            started = await api.runs.start_if_free(request, thread_id=thread_id, spec=spec)
            if started is not None:
                return started
    create = thread_id is None
    target = thread_id or str(uuid.uuid4())
    if thread_id is not None:
        row = await api.threads.get(thread_id, user)
        if row is None and body.if_not_exists != "create":
            raise HTTPException(404, f"thread {thread_id} not found")
        if row is not None:
            bound = entry_of(api, row)
            if (row["metadata"] or {}).get("graph_id") and bound.graph_id != entry.graph_id:
                raise HTTPException(409, f"thread {thread_id} runs graph {bound.graph_id}, not {entry.graph_id}")
            await _check_command(api, entry, thread_id, body)
        create = row is None
        if create and not THREAD_ID_RE.match(thread_id):
            raise HTTPException(422, "thread_id must be 1-128 letters, digits or . _ : @ -, starting alphanumeric")
    if create and body.command is not None and "resume" in body.command.model_fields_set:
        raise HTTPException(409, "a new thread is not waiting at an interrupt; there is nothing to resume")
    spec = _spec(api, user, entry, target, body, temporary=thread_id is None and body.on_completion != "keep")
    if create:
        try:
            meta = {"graph_id": entry.graph_id, "assistant_id": entry.assistant_id}
            await api.threads.create(target, user, meta, if_exists="do_nothing")
        except ThreadExists as exc:
            raise HTTPException(404, f"thread {target} not found") from exc
    try:
        return await api.runs.submit(request, thread_id=target, spec=spec)
    except ThreadBusy as exc:
        raise HTTPException(409, BUSY.format(thread=exc)) from exc


def _location(row: dict[str, Any]) -> dict[str, str]:
    return {"Content-Location": f"/threads/{row['thread_id']}/runs/{row['run_id']}"}


async def _background(api: ApiDep, user: str, thread_id: str | None, body: RunCreate) -> JsonResponse:
    row, _, _ = await _submit(api, user, thread_id, body, subscribe=False)
    return JsonResponse(jsonable_encoder(run_json(row)), headers=_location(row))


async def run_and_wait(api: ApiDep, user: str, thread_id: str | None, body: RunCreate) -> JsonResponse:
    """Run and answer with the final values: the `runs/wait` routes and api.fast_path's turn route."""
    row, run, _ = await _submit(api, user, thread_id, body, subscribe=False, waits=True)
    await run.done.wait()
    return JsonResponse(run.result(), headers=_location(row))


async def _stream(api: ApiDep, user: str, thread_id: str | None, body: RunCreate) -> StreamingResponse:
    row, run, queue = await _submit(api, user, thread_id, body, subscribe=True)
    events = api.runs.events(run, queue, cancel_on_disconnect=body.on_disconnect == "cancel")
    return StreamingResponse(events, media_type="text/event-stream", headers={**SSE_HEADERS, **_location(row)})


SSE_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}, "description": "SSE events"}}


@router.post("/threads/{thread_id}/runs", response_model=Run)
async def create(api: ApiDep, user: UserDep, thread_id: str, body: RunCreate) -> JsonResponse:
    """Start a run in the background."""
    return await _background(api, user, thread_id, body)


@router.post("/threads/{thread_id}/runs/wait")
async def wait(api: ApiDep, user: UserDep, thread_id: str, body: RunCreate) -> JsonResponse:
    """Run and answer with the final values (or `__error__`)."""
    return await run_and_wait(api, user, thread_id, body)


@router.post("/threads/{thread_id}/runs/stream", response_class=StreamingResponse, responses=SSE_DOC)
async def stream(api: ApiDep, user: UserDep, thread_id: str, body: RunCreate) -> StreamingResponse:
    """Run and stream events (modes values, updates, messages-tuple, custom; `|ns` suffixes with subgraphs)."""
    return await _stream(api, user, thread_id, body)


@router.post("/runs", response_model=Run)
async def create_stateless(api: ApiDep, user: UserDep, body: RunCreate) -> JsonResponse:
    """Start a run on a new thread, deleted afterwards unless on_completion is keep."""
    return await _background(api, user, None, body)


@router.post("/runs/wait")
async def wait_stateless(api: ApiDep, user: UserDep, body: RunCreate) -> JsonResponse:
    """Run on a new thread and answer with the final values."""
    return await run_and_wait(api, user, None, body)


@router.post("/runs/stream", response_class=StreamingResponse, responses=SSE_DOC)
async def stream_stateless(api: ApiDep, user: UserDep, body: RunCreate) -> StreamingResponse:
    """Run on a new thread and stream events."""
    return await _stream(api, user, None, body)


@router.get("/threads/{thread_id}/runs", response_model=list[Run])
async def list_runs(
    api: ApiDep,
    user: UserDep,
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    """List a thread's runs, newest first."""
    await owned(api, user, thread_id)
    return [run_json(r) for r in await api.runs.store.for_thread(thread_id, limit=limit, offset=offset, status=status)]


async def _owned_run(api: ApiDep, user: str, thread_id: str, run_id: str) -> dict[str, Any]:
    await owned(api, user, thread_id)
    row = await api.runs.store.get(run_id, thread_id=thread_id, user_id=user)
    if row is None:
        raise HTTPException(404, f"run {run_id} not found in thread {thread_id}")
    return row


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def get(api: ApiDep, user: UserDep, thread_id: str, run_id: str) -> dict[str, Any]:
    """Return one run."""
    return run_json(await _owned_run(api, user, thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete(api: ApiDep, user: UserDep, thread_id: str, run_id: str) -> Response:
    """Delete a finished run's record (409 while it is active)."""
    row = await _owned_run(api, user, thread_id, run_id)
    if row["status"] in ("pending", "running"):
        raise HTTPException(409, f"run {run_id} is {row['status']}; cancel it first")
    await api.runs.store.delete(run_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel(
    api: ApiDep,
    user: UserDep,
    thread_id: str,
    run_id: str,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Cancel a pending or running run (interrupt keeps its checkpoints, rollback deletes them); 409 if it ended."""
    row = await _owned_run(api, user, thread_id, run_id)
    try:
        await api.runs.cancel(row, action)
    except RunNotActive as exc:
        raise HTTPException(409, f"run {run_id} already ended ({row['status']})") from exc
    if wait:
        await api.runs.wait(run_id)
    return Response(status_code=202)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(api: ApiDep, user: UserDep, thread_id: str, run_id: str) -> JsonResponse:
    """Wait for a run to end and answer with the thread's values (or `__error__`)."""
    row = await _owned_run(api, user, thread_id, run_id)
    await api.runs.wait(run_id)
    final = await api.runs.store.get(run_id) or row
    if final["error"]:
        return JsonResponse({"__error__": final["error"]})
    thread = await owned(api, user, thread_id)
    snapshot = await entry_of(api, thread).graph.aget_state(config_for(thread_id))
    values = jsonable(snapshot.values)
    if isinstance(values, dict) and (pending := interrupts_of(snapshot)):
        values["__interrupt__"] = pending
    return JsonResponse(values)


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_class=StreamingResponse, responses=SSE_DOC)
async def join_stream(
    api: ApiDep, user: UserDep, thread_id: str, run_id: str, cancel_on_disconnect: bool = False
) -> StreamingResponse:
    """Stream a run's events from now on; for a run in another worker, its outcome once it ends."""
    row = await _owned_run(api, user, thread_id, run_id)
    run = api.runs.local.get(run_id)
    if run is not None:
        events = api.runs.events(run, run.subscribe(), cancel_on_disconnect=cancel_on_disconnect)
    else:
        events = api.runs.remote_events(row)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
