"""The HTTP API as LangGraph clients use it: the official langgraph-sdk against a real `nova serve` process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient
from langgraph_sdk.errors import (
    AuthenticationError,
    NotFoundError,
)

from api.catalog import assistant_id_for
from tests.integration.conftest_http import ALICE, BOB, MAX_BODY, WORKERS, ApiServer, api_server

__all__ = ["api_server"]

pytestmark = pytest.mark.slow

TRANSLATE = "translate 'the invoice is overdue' into German"


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture()
async def alice(api_server: ApiServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=api_server.url, api_key=ALICE)
    yield client
    await client.aclose()


@pytest.fixture()
async def bob(api_server: ApiServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=api_server.url, api_key=BOB)
    yield client
    await client.aclose()


@pytest.fixture()
def alice_sync(api_server: ApiServer) -> Iterator[SyncLangGraphClient]:
    client = get_sync_client(url=api_server.url, api_key=ALICE)
    yield client
    client.close()


@pytest.fixture()
async def http(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, headers={"x-api-key": ALICE}, timeout=60) as client:
        yield client


async def fails(status: int, attempt: Awaitable[Any]) -> None:
    """Expect an HTTP error (the SDK raises typed errors, or plain httpx ones from wait and join)."""
    with pytest.raises(httpx.HTTPStatusError) as info:
        await attempt
    assert info.value.response.status_code == status, info.value.response.text


async def until(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            value = await check()
        except httpx.TransportError:  # a pooled connection to a worker the test killed
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_health_is_open_and_everything_else_needs_a_key(api_server: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=api_server.url) as raw:
        assert (await raw.get("/healthz")).json() == {"ok": True}
        assert (await raw.get("/readyz")).status_code == 200
        for path in ("/info", "/openapi.json", "/metrics"):
            denied = await raw.get(path)
            assert denied.status_code == 401 and denied.json()["detail"], path
        assert (await raw.get("/info", headers={"x-api-key": "not-a-real-key"})).status_code == 401
        assert (await raw.get("/info", headers={"Authorization": f"Bearer {BOB}"})).status_code == 200
        spec = (await raw.get("/openapi.json", headers={"x-api-key": ALICE})).json()
        assert "/threads/{thread_id}/runs/stream" in spec["paths"] and "/nova/route" in spec["paths"]
    stranger = get_client(url=api_server.url, api_key="not-a-real-key")
    with pytest.raises(AuthenticationError):
        await stranger.threads.search()
    await stranger.aclose()


async def test_assistants_one_per_graph(alice: LangGraphClient) -> None:
    found = {a["graph_id"]: a for a in await alice.assistants.search(limit=50)}
    assert {"nova", "review", "pair", "sleepy"} <= set(found)
    nova_id = assistant_id_for("nova")
    assert found["nova"]["assistant_id"] == nova_id
    assert (await alice.assistants.get("nova"))["assistant_id"] == nova_id
    assert (await alice.assistants.get(nova_id))["graph_id"] == "nova"
    drawn = await alice.assistants.get_graph("nova")
    assert {"recall_memory", "route_request"} <= {n["id"] for n in drawn["nodes"]}
    schemas = await alice.assistants.get_schemas("nova")
    assert "messages" in schemas["input_schema"]["properties"]
    await fails(404, alice.assistants.get("no-such-graph"))


async def test_wait_then_read_state_history_and_why(
    alice: LangGraphClient, http: httpx.AsyncClient, api_server: ApiServer
) -> None:
    thread = await alice.threads.create(metadata={"purpose": "wait-test"})
    tid = thread["thread_id"]
    assert thread["status"] == "idle" and thread["values"] == {}
    out = await alice.runs.wait(tid, "nova", input=human(TRANSLATE))
    assert out["messages"][-1]["content"] == f"echo: {TRANSLATE}"
    assert out["route"]["chosen"] == "language.translate"
    with psycopg.connect(api_server.db_url) as conn:
        writers = conn.execute(
            "SELECT (SELECT array_agg(DISTINCT xmin::text) FROM checkpoints WHERE thread_id = %s),"
            " (SELECT array_agg(DISTINCT xmin::text) FROM checkpoint_blobs WHERE thread_id = %s),"
            " (SELECT array_agg(xmin::text) FROM nova_runs WHERE thread_id = %s)",
            (tid, tid, tid),
        ).fetchone()
    assert writers is not None and writers[0] == writers[1] == writers[2] and len(writers[0]) == 1, (
        f"the turn's checkpoint and its run's end are one transaction: {writers}"
    )

    got = await alice.threads.get(tid)
    assert got["status"] == "idle" and len(got["values"]["messages"]) == 2
    assert got["metadata"]["graph_id"] == "nova" and got["metadata"]["purpose"] == "wait-test"
    again = await alice.threads.create(thread_id=tid, if_exists="do_nothing")
    assert len(again["values"]["messages"]) == 2, "a thread named by the client may have state: it is read"
    state = await alice.threads.get_state(tid)
    assert state["next"] == [] and state["checkpoint"]["checkpoint_id"]
    history = await alice.threads.get_history(tid, limit=50)
    assert len(history) == 1, "a chat turn commits whole (NOVA_DURABILITY=turn): one checkpoint per turn"
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    stepwise = await alice.runs.wait(tid, "nova", input=human("and into French?"), durability="sync")
    assert stepwise["route"]["chosen"] == "language.translate"
    history = await alice.threads.get_history(tid, limit=50)
    assert len(history) >= 4, "a run asking for sync durability commits every step"
    first = await alice.threads.get_state(tid, checkpoint_id=history[-1]["checkpoint"]["checkpoint_id"])
    assert len(first["values"]["messages"]) == 2, "the oldest checkpoint is the first turn, whole"

    assert tid in {t["thread_id"] for t in await alice.threads.search(metadata={"purpose": "wait-test"})}
    assert tid in {t["thread_id"] for t in await alice.threads.search(status="idle", limit=100)}
    runs = await alice.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "success"]

    why = (await http.get(f"/nova/why/{tid}")).json()
    assert why["decisions"][0]["chosen"] == "language.translate" and why["decisions"][0]["reason"]


async def test_a_chat_turn_that_runs_a_pipeline_answers_with_its_outcome(
    alice: LangGraphClient, api_server: ApiServer
) -> None:
    """The chat run holds its own checkpoint until it ends; the pipeline it starts commits its steps as they go."""
    tid = (await alice.threads.create())["thread_id"]
    notes = "knowledge capture: Wayne says anything with an -R suffix is refurbished and must never be listed as new"
    out = await alice.runs.wait(tid, "nova", input=human(notes))
    assert out["route"]["chosen"] == "pipeline.knowledge_capture", out["route"]
    reply = out["messages"][-1]["content"]
    assert "Done. Result: stored 1 entr(ies)" in reply, reply
    pipeline_thread = reply.split("(thread ", 1)[1].split(")", 1)[0]
    with psycopg.connect(api_server.db_url) as conn:
        steps = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (pipeline_thread,)).fetchone()
    assert steps is not None and steps[0] > 3, "the pipeline committed every step (sync durability), not one at the end"


async def test_a_started_run_is_answered_as_it_is_stored(alice: LangGraphClient) -> None:
    """The start statement returns only what Postgres makes; the rest of the Run is what it was sent."""
    tid = (await alice.threads.create())["thread_id"]
    created = await alice.runs.create(tid, "nova", input=human(TRANSLATE), metadata={"source": "test"})
    await alice.runs.join(tid, created["run_id"])
    stored = await alice.runs.get(tid, created["run_id"])
    keys = ("run_id", "thread_id", "assistant_id", "metadata", "multitask_strategy", "kwargs")
    assert {k: created[k] for k in keys} == {k: stored[k] for k in keys}
    made, read = (datetime.fromisoformat(r["created_at"]) for r in (created, stored))
    assert made == read
    assert created["status"] == "running" and created["metadata"] == {"source": "test"}
    assert created["kwargs"]["input"] == human(TRANSLATE)


async def test_stream_modes(alice: LangGraphClient) -> None:
    tid = (await alice.threads.create())["thread_id"]
    parts = [
        p
        async for p in alice.runs.stream(
            tid, "nova", input=human(TRANSLATE), stream_mode=["values", "updates", "messages-tuple"]
        )
    ]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and events[-1] == "end" and parts[-1].data["status"] == "success"
    assert {"values", "updates", "messages"} <= set(events)
    assert any("route_request" in p.data for p in parts if p.event == "updates")
    final = [p.data for p in parts if p.event == "values"][-1]
    assert final["messages"][-1]["content"] == f"echo: {TRANSLATE}"
    tokens = "".join(
        p.data[0]["content"] for p in parts if p.event == "messages" and p.data[0]["type"] == "AIMessageChunk"
    )
    assert tokens == f"echo: {TRANSLATE}"

    nested = [
        p.event
        async for p in alice.runs.stream(
            tid,
            "nova",
            input=human("@orchestration.explain which agents exist?"),  # a tool agent runs as a subgraph
            stream_mode="updates",
            stream_subgraphs=True,
        )
    ]
    assert any(e.startswith("updates|") for e in nested), nested

    nap = (await alice.threads.create(graph_id="sleepy"))["thread_id"]
    custom = [p async for p in alice.runs.stream(nap, "sleepy", input={"seconds": 0}, stream_mode="custom")]
    assert [p.data for p in custom if p.event == "custom"] == [{"napping": 0}]


def test_background_run_join_list_and_store_with_the_sync_client(
    alice_sync: SyncLangGraphClient, api_server: ApiServer
) -> None:
    tid = alice_sync.threads.create()["thread_id"]
    run = alice_sync.runs.create(tid, "nova", input=human("summarise this: the meeting moved to Friday"))
    assert run["status"] in ("pending", "running", "success") and run["thread_id"] == tid
    joined = alice_sync.runs.join(tid, run["run_id"])
    assert joined["messages"][-1]["content"] == "echo: summarise this: the meeting moved to Friday"
    assert alice_sync.runs.get(tid, run["run_id"])["status"] == "success"
    assert [r["run_id"] for r in alice_sync.runs.list(tid)] == [run["run_id"]]

    alice_sync.store.put_item(["notes", "work"], "renewal", {"text": "the Hartley contract renews every March"})
    item = alice_sync.store.get_item(["notes", "work"], "renewal")
    assert item is not None and item["namespace"] == ["notes", "work"]
    assert item["value"]["text"].startswith("the Hartley")
    hits = alice_sync.store.search_items(["notes"], query="when does the contract renew?")
    assert [h["key"] for h in hits["items"]] == ["renewal"]
    assert alice_sync.store.list_namespaces(prefix=["notes"])["namespaces"] == [["notes", "work"]]
    other = get_sync_client(url=api_server.url, api_key=BOB)
    with pytest.raises(NotFoundError):
        other.store.get_item(["notes", "work"], "renewal")
    assert other.store.search_items(["notes"])["items"] == []
    other.close()
    alice_sync.store.delete_item(["notes", "work"], "renewal")
    with pytest.raises(NotFoundError):
        alice_sync.store.get_item(["notes", "work"], "renewal")


async def _status(client: LangGraphClient, tid: str, run_id: str) -> str:
    return str((await client.runs.get(tid, run_id))["status"])


async def test_one_run_per_thread_enqueue_interrupt_and_cancel(alice: LangGraphClient) -> None:
    tid = (await alice.threads.create(graph_id="sleepy"))["thread_id"]
    slow = await alice.runs.create(tid, "sleepy", input={"seconds": 30})
    assert slow["status"] == "running"  # the thread was free: the run starts as it is created
    await until(lambda: _is(alice, tid, slow["run_id"], "running"))
    await fails(409, alice.runs.create(tid, "sleepy", input={"seconds": 0}))
    await fails(409, alice.runs.wait(tid, "sleepy", input={"seconds": 0}))
    queued = await alice.runs.create(tid, "sleepy", input={"seconds": 0}, multitask_strategy="enqueue")
    assert queued["status"] == "pending"
    assert (await alice.threads.get(tid))["status"] == "busy"
    assert tid in {t["thread_id"] for t in await alice.threads.search(status="busy", limit=100)}

    await alice.runs.cancel(tid, slow["run_id"], wait=True)
    assert await _status(alice, tid, slow["run_id"]) == "interrupted"
    done = await alice.runs.join(tid, queued["run_id"])
    assert done["done"] == ["nap"] and await _status(alice, tid, queued["run_id"]) == "success"
    await fails(409, alice.runs.cancel(tid, queued["run_id"]))

    second = await alice.runs.create(tid, "sleepy", input={"seconds": 30})
    await until(lambda: _is(alice, tid, second["run_id"], "running"))
    takeover = await alice.runs.wait(tid, "sleepy", input={"seconds": 0}, multitask_strategy="interrupt")
    assert takeover["done"] == ["nap", "nap"]
    assert await _status(alice, tid, second["run_id"]) == "interrupted"

    third = await alice.runs.create(tid, "sleepy", input={"seconds": 30})
    await until(lambda: _is(alice, tid, third["run_id"], "running"))
    rolled = await alice.runs.wait(tid, "sleepy", input={"seconds": 0}, multitask_strategy="rollback")
    assert rolled["done"] == ["nap", "nap", "nap"]
    await fails(404, alice.runs.get(tid, third["run_id"]))
    history = await alice.threads.get_history(tid, limit=100)
    assert third["run_id"] not in {h["metadata"].get("run_id") for h in history}
    assert (await alice.threads.get(tid))["status"] == "idle"

    watched = await alice.runs.create(tid, "sleepy", input={"seconds": 1}, stream_mode=["values", "custom"])
    seen = [p.event async for p in alice.runs.join_stream(tid, watched["run_id"])]
    assert seen[0] == "metadata" and seen[-1] == "end"
    assert await _status(alice, tid, watched["run_id"]) == "success"

    stream = alice.runs.stream(tid, "sleepy", input={"seconds": 30}, on_disconnect="cancel")
    first = await anext(stream)
    assert first.event == "metadata"
    await stream.aclose()
    await until(lambda: _is(alice, tid, first.data["run_id"], "interrupted"))


async def test_runs_created_at_once_on_a_free_thread_start_one_and_queue_the_rest(alice: LangGraphClient) -> None:
    tid = (await alice.threads.create(graph_id="sleepy"))["thread_id"]
    made = await asyncio.gather(
        *(alice.runs.create(tid, "sleepy", input={"seconds": 0.2}, multitask_strategy="enqueue") for _ in range(6))
    )
    assert sorted(r["status"] for r in made) == ["pending"] * 5 + ["running"]
    for run in made:
        await alice.runs.join(tid, run["run_id"])
    assert [await _status(alice, tid, r["run_id"]) for r in made] == ["success"] * 6
    assert (await alice.threads.get_state(tid))["values"]["done"] == ["nap"] * 6
    assert (await alice.threads.get(tid))["status"] == "idle"


async def _is(client: LangGraphClient, tid: str, run_id: str, status: str) -> bool:
    return await _status(client, tid, run_id) == status


async def _next_is(client: LangGraphClient, tid: str, nodes: list[str]) -> bool:
    return list((await client.threads.get_state(tid))["next"]) == nodes


async def test_interrupt_list_review_and_resume(alice: LangGraphClient, http: httpx.AsyncClient) -> None:
    tid = (await alice.threads.create(graph_id="review"))["thread_id"]
    paused = await alice.runs.wait(tid, "review", input=human("rename the invoice table"))
    (pending,) = paused["__interrupt__"]
    assert pending["value"]["action_request"]["action"] == "rename_table"
    thread = await alice.threads.get(tid)
    assert thread["status"] == "interrupted"
    assert [i["id"] for batch in thread["interrupts"].values() for i in batch] == [pending["id"]]
    assert tid in {t["thread_id"] for t in await alice.threads.search(status="interrupted", limit=100)}
    reviews = (await http.get("/nova/reviews")).json()["reviews"]
    assert any(r["thread_id"] == tid and r["graph_id"] == "review" for r in reviews)

    resumed = await alice.runs.wait(tid, "review", command={"resume": {"type": "accept"}})
    assert resumed["messages"][-1]["content"] == "decision: accept"
    assert (await alice.threads.get(tid))["status"] == "idle"
    await fails(409, alice.runs.wait(tid, "review", command={"resume": {"type": "accept"}}))

    # A gate inside a subgraph pauses a run that is only waited on (streamed without nested events) just the same.
    inner = (await alice.threads.create(graph_id="nested"))["thread_id"]
    paused = await alice.runs.wait(inner, "nested", input=human("rename the invoice table"))
    assert paused["__interrupt__"][0]["value"]["action_request"]["action"] == "rename_table"
    assert (await alice.threads.get(inner))["status"] == "interrupted"
    resumed = await alice.runs.wait(inner, "nested", command={"resume": {"type": "accept"}})
    assert resumed["messages"][-1]["content"] == "decision: accept"
    assert (await alice.threads.get(inner))["status"] == "idle"

    both = (await alice.threads.create(graph_id="pair"))["thread_id"]
    paused = await alice.runs.wait(both, "pair", input={})
    ids = sorted(i["id"] for i in paused["__interrupt__"])
    assert len(ids) == 2
    await fails(422, alice.runs.wait(both, "pair", command={"resume": "yes"}))
    done = await alice.runs.wait(both, "pair", command={"resume": {ids[0]: "a", ids[1]: "b"}})
    assert sorted(done["answers"]) == ["a", "b"]


async def test_pipeline_gate_over_http_resume_and_failed_step(alice: LangGraphClient, http: httpx.AsyncClient) -> None:
    tid = (await alice.threads.create(graph_id="pipeline"))["thread_id"]
    paused = await alice.runs.wait(tid, "pipeline", input={"pipeline": "issue_fix", "args": {"issue": "101"}})
    (pending,) = paused["__interrupt__"]
    assert pending["value"]["action_request"]["action"] == "apply_patch"
    assert "for_branch(request.branch)" in pending["value"]["action_request"]["args"]["diff"]
    reviews = (await http.get("/nova/reviews")).json()["reviews"]
    assert any(r["thread_id"] == tid and r["graph_id"] == "pipeline" for r in reviews)
    await fails(422, alice.runs.wait(tid, "pipeline", command={"resume": {"type": "approve"}}))
    done = await alice.runs.wait(tid, "pipeline", command={"resume": {"type": "accept"}})
    assert done["status"] == "done" and done["result"].endswith(".patch")
    await fails(409, alice.runs.wait(tid, "pipeline"))  # nothing is pending: a resume is refused, not run
    assert (await alice.threads.get(tid))["status"] == "idle"

    broken = (await alice.threads.create(graph_id="pipeline"))["thread_id"]
    run = await alice.runs.create(broken, "pipeline", input={"pipeline": "issue_fix", "args": {"issue": "106"}})
    await alice.runs.join(broken, run["run_id"])
    assert (await alice.runs.get(broken, run["run_id"]))["status"] == "error"
    state = await alice.threads.get_state(broken)
    assert state["next"] == ["issue_fix.check_patch"]
    assert "no diff to check" in (state["tasks"][0]["error"] or "")
    assert {"read_issue", "gather_context", "draft_fix"} <= set(state["values"]["outputs"])


async def test_other_users_threads_answer_404(alice: LangGraphClient, bob: LangGraphClient) -> None:
    tid = (await alice.threads.create())["thread_id"]
    run = await alice.runs.create(tid, "nova", input=human("what is the capital of Peru?"))
    await alice.runs.join(tid, run["run_id"])
    for attempt in (
        bob.threads.get(tid),
        bob.threads.get_state(tid),
        bob.threads.get_history(tid),
        bob.threads.update(tid, metadata={"x": 1}),
        bob.threads.delete(tid),
        bob.runs.wait(tid, "nova", input=human("hi")),
        bob.runs.list(tid),
        bob.runs.get(tid, run["run_id"]),
        bob.runs.join(tid, run["run_id"]),
        bob.runs.cancel(tid, run["run_id"]),
    ):
        await fails(404, attempt)
    await fails(409, alice.runs.wait(tid, "sleepy", input={"seconds": 0}))  # the thread runs nova
    assert len(await alice.runs.list(tid)) == 1  # neither bob's run nor the other graph's started
    assert tid not in {t["thread_id"] for t in await bob.threads.search(limit=1000)}
    await fails(409, bob.threads.create(thread_id=tid))
    await alice.threads.delete(tid)
    await fails(404, alice.threads.get(tid))


async def test_client_mistakes_get_json_errors_never_500(http: httpx.AsyncClient, alice: LangGraphClient) -> None:
    tid = (await alice.threads.create())["thread_id"]
    wait = f"/threads/{tid}/runs/wait"

    async def expect(status: int, response: httpx.Response) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["detail"] and response.json()["message"]

    huge = {"assistant_id": "nova", "input": human("x" * (MAX_BODY + 1))}
    await expect(413, await http.post(wait, json=huge))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    await expect(413, await http.post(wait, content=chunks(), headers={"content-type": "application/json"}))
    await expect(422, await http.post(wait, content=b"{not json", headers={"content-type": "application/json"}))
    bad_bodies: list[dict[str, Any]] = [
        {"assistant_id": "nova", "bogus": 1},
        {"assistant_id": "nova", "webhook": "http://127.0.0.1:1/hook"},
        {"assistant_id": "nova", "stream_mode": "debug"},
        {"assistant_id": "nova", "input": {"nonsense": 1}},
        {"assistant_id": "nova", "input": {"messages": [{"role": "alien", "content": "x"}]}},
        {"assistant_id": "nova", "input": human("hi"), "context": {"user_id": "mallory"}},
        {"assistant_id": "nova", "input": human("hi"), "multitask_strategy": "sometimes"},
        {"assistant_id": "nova", "input": human("hi"), "config": {"configurable": {"model": "x"}}},
    ]
    for body in bad_bodies:
        await expect(422, await http.post(wait, json=body))
    await expect(404, await http.post(wait, json={"assistant_id": "no-such-graph", "input": human("hi")}))
    await expect(404, await http.post("/threads/no-such-thread/runs/wait", json={"assistant_id": "nova"}))
    await expect(404, await http.get(f"/threads/{tid}/runs/{uuid.uuid4()}"))
    await expect(404, await http.get(f"/threads/{tid}/state/{uuid.uuid4()}"))
    await expect(404, await http.get("/store/items", params={"namespace": "a.b", "key": "missing"}))
    await expect(422, await http.get("/store/items", params={"namespace": "a..b", "key": "k"}))
    await expect(422, await http.post("/threads/search", json={"limit": 0}))
    resume = {"assistant_id": "nova", "command": {"resume": "yes"}}
    await expect(409, await http.post(wait, json=resume))


async def test_nova_route_and_metrics(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/nova/route", json={"text": TRANSLATE})).json()
    assert answer["decision"]["chosen"] == "language.translate" and answer["decision"]["candidates"]
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'nova_runs{graph="nova",status="success"}' in metrics.text
    assert "nova_run_duration_seconds_bucket" in metrics.text and "nova_route_decisions_total{" in metrics.text


async def test_a_run_whose_worker_died_frees_its_thread(alice: LangGraphClient, api_server: ApiServer) -> None:
    tid = (await alice.threads.create(graph_id="sleepy"))["thread_id"]
    await alice.runs.wait(tid, "sleepy", input={"seconds": 0})
    worker = await asyncio.create_subprocess_exec("sleep", "120")
    lost = {"here": str(uuid.uuid4()), "elsewhere": str(uuid.uuid4())}
    insert = (
        "INSERT INTO nova_runs (run_id, thread_id, assistant_id, graph_id, user_id, status, worker_host,"
        " worker_pid, heartbeat_at, started_at) VALUES (%s, %s, %s, 'sleepy', 'alice', 'running', %s, %s,"
        " now() - make_interval(secs => %s), now())"
    )
    async with await psycopg.AsyncConnection.connect(api_server.db_url, autocommit=True) as conn:
        here = (lost["here"], tid, assistant_id_for("sleepy"), socket.gethostname(), worker.pid, 0)
        await conn.execute(insert, here)
        await conn.execute("UPDATE nova_threads SET status = 'busy' WHERE thread_id = %s", (tid,))
    await fails(409, alice.runs.create(tid, "sleepy", input={"seconds": 0}))
    worker.kill()
    await worker.wait()
    await until(lambda: _is(alice, tid, lost["here"], "error"))
    assert (await alice.runs.get(tid, lost["here"]))["error"]["error"] == "WorkerLost"
    assert (await alice.threads.get(tid))["status"] == "error"

    async with await psycopg.AsyncConnection.connect(api_server.db_url, autocommit=True) as conn:
        elsewhere = (lost["elsewhere"], tid, assistant_id_for("sleepy"), "another-host", 1, 3600)
        await conn.execute(insert, elsewhere)
    await until(lambda: _is(alice, tid, lost["elsewhere"], "error"))
    resumed = await alice.runs.wait(tid, "sleepy", input={"seconds": 0})
    assert resumed["done"] == ["nap", "nap"]
    assert (await alice.threads.get(tid))["status"] == "idle"


async def test_stateless_runs_state_updates_and_failed_runs(
    alice: LangGraphClient, http: httpx.AsyncClient, api_server: ApiServer
) -> None:
    before = {t["thread_id"] for t in await alice.threads.search(limit=1000)}
    out = await alice.runs.wait(None, "nova", input=human("what is the capital of Peru?"))
    assert out["messages"][-1]["content"] == "echo: what is the capital of Peru?"
    assert {t["thread_id"] for t in await alice.threads.search(limit=1000)} == before

    tid = (await alice.threads.create(graph_id="sleepy"))["thread_id"]
    written = await alice.threads.update_state(tid, {"seconds": 0.5, "done": ["by hand"]}, as_node="nap")
    assert written["checkpoint"]["checkpoint_id"]
    assert (await alice.threads.get_state(tid))["values"] == {"seconds": 0.5, "done": ["by hand"]}
    await fails(422, alice.threads.update_state(tid, {"seconds": 1}, as_node="no_such_node"))
    await fails(422, alice.threads.update_state(tid, {"nonsense": 1}))

    failing = (await alice.threads.create())["thread_id"]
    out = await alice.runs.wait(
        failing, "nova", input=human("@language.proofread FAIL: their going"), raise_error=False
    )
    assert out["__error__"]["error"] and out["__error__"]["message"]
    assert (await alice.threads.get(failing))["status"] == "error"
    assert [r["status"] for r in await alice.runs.list(failing)] == ["error"]
    again = await alice.runs.wait(failing, "nova", input=human("what is the capital of Peru?"))
    assert again["messages"][-1]["content"] == "echo: what is the capital of Peru?"
    assert (await alice.threads.get(failing))["status"] == "idle"
    with psycopg.connect(api_server.db_url) as conn:
        turns = conn.execute(
            "SELECT agent, status, error_node FROM turn_log WHERE thread_id = %s ORDER BY id", (failing,)
        ).fetchall()
    assert turns == [("language.proofread", "error", "language.proofread"), ("chat.general", "ok", None)], turns
    metrics = (await http.get("/metrics")).text
    assert "nova_run_errors_total{" in metrics
    # each chat run is logged as a turn in the transaction that ends the run, the failed one as an error
    assert 'nova_turns_total{status="error"}' in metrics and 'nova_turns_total{status="ok"}' in metrics


def test_serve_refuses_public_binding_without_keys(api_server: ApiServer) -> None:
    env = {k: v for k, v in api_server.env.items() if k != "NOVA_API_KEYS"}
    result = subprocess.run(
        [sys.executable, "-m", "api.serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "NOVA_API_KEYS" in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "api.serve", "--port", "1"],
        env={**env, "NOVA_API_KEYS": "short=alice"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "at least 8 characters" in bad.stderr


@pytest.mark.skipif(WORKERS < 2, reason="with one worker, killing it stops the server")
async def test_a_killed_worker_is_detected_and_its_thread_resumes(
    alice: LangGraphClient, api_server: ApiServer, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    tid = (await alice.threads.create(graph_id="sleepy"))["thread_id"]
    run = await alice.runs.create(tid, "sleepy", input={"seconds": 120, "hold": str(hold)})
    await until(lambda: _is(alice, tid, run["run_id"], "running"))
    await until(lambda: _next_is(alice, tid, ["nap"]))  # its checkpoint before the nap is written
    async with await psycopg.AsyncConnection.connect(api_server.db_url, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT worker_pid FROM nova_runs WHERE run_id = %s", (run["run_id"],))
        ).fetchone()
    assert row is not None
    os.kill(row[0], signal.SIGKILL)
    await until(lambda: _is(alice, tid, run["run_id"], "error"), within=120)
    fresh = get_client(url=api_server.url, api_key=ALICE)  # alice's pool may hold connections to the dead worker
    assert (await fresh.runs.get(tid, run["run_id"]))["error"]["error"] == "WorkerLost"
    assert (await fresh.threads.get(tid))["status"] == "error"
    assert (await fresh.threads.get_state(tid))["next"] == ["nap"]
    hold.unlink()
    resumed = await fresh.runs.wait(tid, "sleepy")
    assert resumed["done"] == ["nap"]
    assert (await fresh.threads.get(tid))["status"] == "idle"
    await fresh.aclose()
