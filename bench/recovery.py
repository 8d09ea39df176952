"""Recovery: kill -9 of the `nova serve` worker in the middle of a turn; time until the thread is resumable and done.

    .venv/bin/python -m bench.run --only recovery

`nova serve --workers 2` on loopback, heartbeat and stale settings shortened as the HTTP tests do, the fake
model answering after 2 s. Each trial starts a Nova turn in the background (`runs.create`), waits until the
model call is in flight, SIGKILLs the worker process recorded on the run, then polls until the run is
marked lost and the thread is no longer busy (resumable), and resumes it with `runs.wait` and no input
(from its last checkpoint). Baseline: the same turn uninterrupted (`runs.wait`) on the same server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import Row, proc_stats
from bench.fake_model import FakeModel, start_fake_model
from bench.http import API_KEY, Served, free_port, nova_env, nova_serve, tree_cpu_s

MODEL_DELAY_MS = 2000
KILL_AFTER_S = 1.0  # into the model call
TRIALS = 3
WORKERS = 2  # killing the only worker would stop the server
HEARTBEAT_S = "0.5"
STALE_S = "4"
GIVE_UP_S = 120.0


@dataclass
class Trial:
    """One killed run: seconds from the kill until the thread is resumable, for the resumed run, and in all."""

    resumable_s: float
    resumed_s: float
    total_s: float
    how: str  # resumed from a checkpoint (its next nodes), or the request re-sent when none was committed
    resumed_on: str = "-"
    error: str | None = None


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def live_children(pid: int) -> set[int]:
    """Return the pids of a process's children that are not zombies."""
    return {child for child, fields in proc_stats() if int(fields[1]) == pid and fields[0] not in ("Z", "X")}


async def _until(check: Any, what: str, every: float = 0.02) -> Any:
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            value = await check()
        except httpx.TransportError:  # a connection to the worker just killed
            value = None
        if value:
            return value
        await asyncio.sleep(every)
    raise TimeoutError(f"{what} did not happen within {GIVE_UP_S:.0f} s")


async def _workers_back(server: Served, before: set[int]) -> None:
    """Wait until uvicorn has replaced the killed worker and the replacement has finished starting.

    A replacement still starting cannot sweep, and its start-up (imports, router fit) takes the cores, so the
    next trial waits until its CPU use falls to idle.
    """
    fresh: set[int] = set()

    async def replaced() -> bool:
        nonlocal fresh
        now = await asyncio.to_thread(live_children, server.proc.pid)
        fresh = now - before
        return len(now) >= len(before) and bool(fresh)

    await _until(replaced, "the worker's replacement", every=0.1)
    for pid in fresh:
        last = await asyncio.to_thread(tree_cpu_s, pid)
        while True:
            await asyncio.sleep(0.5)
            now = await asyncio.to_thread(tree_cpu_s, pid)
            if now - last < 0.05:
                break
            last = now
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        await _until(lambda: _ok(http, "/readyz"), "readiness", every=0.2)


async def _ok(http: httpx.AsyncClient, path: str) -> bool:
    return (await http.get(path)).status_code == 200


async def trials(server: Served, model: FakeModel, db_url: str) -> tuple[list[float], list[Trial]]:
    """Measure the uninterrupted baseline runs, then the killed-and-resumed ones."""
    from langgraph_sdk import get_client

    def client() -> Any:
        return get_client(url=server.url, api_key=API_KEY, timeout=(10, 300, 300, 60))

    # A fresh connection per request, so polling never waits on one to the worker that was killed.
    raw = httpx.AsyncClient(
        base_url=server.url,
        headers={"x-api-key": API_KEY},
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    sdk = client()
    try:
        await asyncio.to_thread(model.set_delay, 0)
        # Warm the workers' first turn: concurrent requests on fresh connections reach both.
        warm = [
            raw.post("/runs/wait", json={"assistant_id": "nova", "input": human(f"translate 'warm {i}' into French")})
            for i in range(4 * WORKERS)
        ]
        for answer in await asyncio.gather(*warm):
            answer.raise_for_status()
        await asyncio.to_thread(model.set_delay, MODEL_DELAY_MS)
        baseline = []
        for i in range(TRIALS):
            tid = (await sdk.threads.create())["thread_id"]
            text = f"translate 'baseline {i}' into French"
            start = time.perf_counter()
            out = await sdk.runs.wait(tid, "nova", input=human(text))
            if out["messages"][-1]["content"] != f"echo: {text}":
                raise RuntimeError(f"the uninterrupted run answered {out['messages'][-1]['content']!r}")
            baseline.append(time.perf_counter() - start)
        results = []
        for i in range(TRIALS):
            text = f"translate 'recover {i}' into French"
            workers = live_children(server.proc.pid)
            results.append(await _trial(client, raw, model, db_url, text, workers))
            await _workers_back(server, workers)
        return baseline, results
    finally:
        await sdk.aclose()
        await raw.aclose()


async def _trial(
    client: Any, raw: httpx.AsyncClient, model: FakeModel, db_url: str, text: str, workers: set[int]
) -> Trial:
    sdk = client()
    try:
        tid = (await sdk.threads.create())["thread_id"]
        calls = await asyncio.to_thread(model.calls)
        start = time.perf_counter()
        run = await sdk.runs.create(tid, "nova", input=human(text))
    finally:
        await sdk.aclose()
    run_id = run["run_id"]
    await _until(lambda: asyncio.to_thread(lambda: model.calls() > calls), "the model call")
    await asyncio.sleep(KILL_AFTER_S)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT worker_pid, status FROM nova_runs WHERE run_id = %s", (run_id,))
        row = await cur.fetchone()
    if row is None or row[1] != "running":
        return Trial(0, 0, 0, "-", error=f"the run was {row[1] if row else 'missing'} when the worker was to be killed")
    os.kill(int(row[0]), signal.SIGKILL)
    killed = time.perf_counter()

    async def resumable() -> bool:
        got = (await raw.get(f"/threads/{tid}/runs/{run_id}")).json()
        if got.get("status") in ("pending", "running"):
            return False
        return bool((await raw.get(f"/threads/{tid}")).json().get("status") != "busy")

    await _until(resumable, "the lost run's detection")
    freed = time.perf_counter()
    lost = (await raw.get(f"/threads/{tid}/runs/{run_id}")).json()
    state = (await raw.get(f"/threads/{tid}/state")).json()
    pending = list(state.get("next") or [])
    # With turn durability no step of the lost turn was committed: the client sends the request again.
    how = f"resumed before {','.join(pending)}" if pending else "re-sent (no step of the turn was committed)"
    sdk = client()  # the old client may hold connections to the killed worker
    try:
        resumed = time.perf_counter()
        out = await sdk.runs.wait(tid, "nova", input=None if pending else human(text), raise_error=False)
    finally:
        await sdk.aclose()
    done = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT worker_pid FROM nova_runs WHERE thread_id = %s ORDER BY seq DESC LIMIT 1", (tid,)
        )
        last = await cur.fetchone()
    where = "the surviving worker" if last is not None and last[0] in workers else "the replacement worker"
    error = None
    if (lost.get("error") or {}).get("error") != "WorkerLost":
        error = f"the killed run ended {lost.get('status')} with {lost.get('error')}"
    elif not isinstance(out, dict) or out.get("messages", [{}])[-1].get("content") != f"echo: {text}":
        error = f"the resumed run answered {str(out)[:200]}"
    return Trial(freed - killed, done - resumed, done - start, how, where, error)


def run(pg_url: str) -> tuple[list[Row], list[str]]:
    """Measure recovery after kill -9 against the same turn uninterrupted."""
    home = Path(tempfile.mkdtemp(prefix="nova-bench-recovery-"))
    model = start_fake_model(free_port(), home / "fake-model.log")
    env = nova_env(home, pg_url, model.base_url, NOVA_API_HEARTBEAT_S=HEARTBEAT_S, NOVA_API_STALE_S=STALE_S)
    try:
        with nova_serve(env, workers=WORKERS) as server:
            baseline, results = asyncio.run(trials(server, model, pg_url))
    finally:
        model.stop()
        shutil.rmtree(home, ignore_errors=True)
    good = [t for t in results if t.error is None]
    base = statistics.median(baseline)

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    resumable, resumed, total = (med([getattr(t, k) for t in good]) for k in ("resumable_s", "resumed_s", "total_s"))
    rows = [
        Row(
            f"recovery: kill -9 of the worker {KILL_AFTER_S:g} s into a {MODEL_DELAY_MS / 1000:g} s model call, "
            f"{WORKERS} workers, heartbeat {HEARTBEAT_S} s / stale {STALE_S} s, median of {TRIALS} "
            "(s: until resumable; resumed run; start to answer)",
            f"{resumable:.2f}; {resumed:.2f}; {total:.2f}",
            f"{base:.2f} uninterrupted",
            f"{total / base:.2f}x",
            "every killed run detected and its thread resumed to the answer",
            len(good) == len(results),
        )
    ]
    notes = [
        "Recovery trials (s until resumable / resumed run / start to answer): "
        + "; ".join(
            f"{t.resumable_s:.2f} / {t.resumed_s:.2f} / {t.total_s:.2f}, {t.how} on {t.resumed_on}"
            if t.error is None
            else f"failed: {t.error}"
            for t in results
        )
        + f"; uninterrupted: {', '.join(f'{b:.2f}' for b in baseline)}. On one host a lost run is found by its "
        "dead pid at the next sweep (every min(stale/3, 2 s)); a worker on another host is declared lost only "
        "after NOVA_API_STALE_S without a heartbeat.",
    ]
    return rows, notes
