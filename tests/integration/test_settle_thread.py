"""nova_settle_thread: a run's end, its thread's status and the turn's record in one statement (real Postgres)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from api.run_store import RUN_LOCK_CLASS, START_ON_FREE_THREAD_SQL
from api.runs import SETTLE_SQL
from tests.integration.conftest import generic_plan


async def _thread(pool: Any) -> str:
    tid = f"t-{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO nova_threads (thread_id, user_id, metadata, status) VALUES (%s, 'ana', '{}', 'busy')", (tid,)
        )
    return tid


async def _run(pool: Any, tid: str, status: str) -> str:
    rid = str(uuid.uuid4())
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO nova_runs (run_id, thread_id, assistant_id, graph_id, user_id, status)"
            " VALUES (%s, %s, 'a', 'nova', 'ana', %s)",
            (rid, tid, status),
        )
    return rid


async def _settle(pool: Any, tid: str, **kw: Any) -> str | None:
    params = {"lock": RUN_LOCK_CLASS, "thread": tid, "interrupted": False, "run": None, "run_status": None}
    params |= {"run_error": None, "turn": None} | kw
    async with pool.connection() as conn:
        row = await (await conn.execute(SETTLE_SQL, params)).fetchone()
    return None if row is None else row["status"]


async def _row(pool: Any, sql: str, *args: Any) -> dict[str, Any]:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, args)).fetchone()
    assert row is not None
    return dict(row)


async def test_status_follows_the_runs_and_the_turn_is_logged(pool: Any) -> None:
    tid = await _thread(pool)
    first, queued = await _run(pool, tid, "running"), await _run(pool, tid, "pending")

    turn = {"user_id": "ana", "thread_id": tid, "agent": "language.translate", "status": "ok", "duration_ms": 12.5}
    turn |= {"error": None}
    assert await _settle(pool, tid, run=first, run_status="success", turn=Jsonb(turn)) == "busy", "one is queued"
    ended = await _row(pool, "SELECT status, ended_at FROM nova_runs WHERE run_id = %s", first)
    assert ended["status"] == "success" and ended["ended_at"] is not None
    logged = await _row(pool, "SELECT agent, status, duration_ms, error_node FROM turn_log WHERE thread_id = %s", tid)
    assert logged == {"agent": "language.translate", "status": "ok", "duration_ms": 12.5, "error_node": None}

    failure = {"node": "route_request", "kind": "TimeoutError", "message": "model timed out"}
    error = {"error": "TimeoutError", "message": "model timed out"}
    turn |= {"agent": None, "status": "error", "error": failure}
    status = await _settle(pool, tid, run=queued, run_status="error", run_error=Jsonb(error), turn=Jsonb(turn))
    assert status == "error", "the last run failed and none is active"
    assert (await _row(pool, "SELECT error FROM nova_runs WHERE run_id = %s", queued))["error"] == error
    logged = await _row(
        pool, "SELECT error_node, error_kind, error FROM turn_log WHERE thread_id = %s AND status = 'error'", tid
    )
    assert logged == {"error_node": "route_request", "error_kind": "TimeoutError", "error": "model timed out"}

    assert await _settle(pool, tid, interrupted=True) == "interrupted", "a gate waits: not an error any more"
    await _settle(pool, tid, run=await _run(pool, tid, "running"), run_status="success")
    assert (await _row(pool, "SELECT status FROM nova_threads WHERE thread_id = %s", tid))["status"] == "idle"
    assert (await _row(pool, "SELECT count(*) AS n FROM turn_log WHERE thread_id = %s", tid))["n"] == 2


async def test_an_unknown_thread_settles_to_nothing(pool: Any) -> None:
    assert await _settle(pool, "no-such-thread") is None


async def test_the_active_run_check_is_one_lookup_however_many_runs_the_thread_had(pool: Any) -> None:
    """Asked twice a turn; planned generically (as a pooled connection caches it), it must not walk old runs."""
    active = "SELECT 1 FROM nova_runs WHERE thread_id = %s AND status IN ('pending', 'running')"
    assert active in START_ON_FREE_THREAD_SQL
    tid = await _thread(pool)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO nova_runs (run_id, thread_id, assistant_id, graph_id, user_id, status)"
            " SELECT gen_random_uuid()::text, %s, 'a', 'nova', 'ana', 'success' FROM generate_series(1, 500)",
            (tid,),
        )
    plan = await generic_plan(pool, active.replace("%s", "$1"), [tid], analyze=True)
    assert "nova_runs_thread_active" in plan and "Rows Removed by Filter" not in plan, plan
    await _run(pool, tid, "running")
    assert await _settle(pool, tid) == "busy"
