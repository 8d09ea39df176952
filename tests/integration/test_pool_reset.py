"""A connection a cancelled task left in pipeline mode never goes back into service: the pool discards it."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import pq

from api.db import open_pool

STALE_TRANSACTION = (
    "SELECT statement_timestamp() - xact_start > interval '50 ms' AS stale FROM pg_stat_activity"
    " WHERE pid = pg_backend_pid()"
)


async def test_a_connection_returned_in_pipeline_mode_is_replaced(pg_url: str) -> None:
    async with open_pool(pg_url, max_size=1) as pool:
        async with pool.connection() as conn:
            first = conn.info.backend_pid
            conn.pgconn.enter_pipeline_mode()  # what a cancelled `conn.pipeline()` block can leave behind
            # libpq still says idle, so the pool's own status check would let it through.
            assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        async with pool.connection() as conn:
            assert conn.info.backend_pid != first
            assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
            await asyncio.sleep(0.1)
            row = await (await conn.execute(STALE_TRANSACTION)).fetchone()
            assert row is not None and row["stale"] is False


async def test_runs_cancelled_inside_pipelined_transactions_leave_no_transaction_behind(pool: Any) -> None:
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE cancelled_writes (x int, y text)")
    rows = [(i, "x" * 200) for i in range(300)]

    async def write() -> None:
        async with pool.connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as cur:
            await cur.executemany("INSERT INTO cancelled_writes VALUES (%s, %s)", rows)

    for step in range(60):  # cancel at every point from before the first statement to after the commit
        task = asyncio.create_task(write())
        await asyncio.sleep(step * 0.0002)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with pool.connection() as conn:
            assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
            row = await (await conn.execute(STALE_TRANSACTION)).fetchone()
            assert row is not None and row["stale"] is False
    async with pool.connection() as conn:
        count = (await (await conn.execute("SELECT count(*) AS n FROM cancelled_writes")).fetchone())["n"]
    assert count % len(rows) == 0  # each write committed whole or not at all
