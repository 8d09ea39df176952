"""An exhausted connection pool is overload, not a bug: the API answers 503 with Retry-After, not a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from api.db import make_pool
from api.settings import Settings


async def test_a_request_that_gets_no_connection_answers_503_and_the_pool_recovers(pg_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, database_url=pg_url))
    pool: AsyncConnectionPool[Any] = make_pool(pg_url, timeout_s=0.2, statement_timeout_ms=5000, max_size=1)
    await pool.open(wait=True)

    @app.get("/probe")
    async def probe() -> dict[str, int]:  # what every route does: take a connection from the pool
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT 1 AS one")).fetchone()
        return {"one": int(row["one"])}

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://nova")
    try:
        async with pool.connection():  # the only connection is taken
            busy = await client.get("/probe")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert "database is busy" in busy.json()["message"]
        again = await client.get("/probe")  # the connection is back: the same request succeeds
        assert again.status_code == 200 and again.json() == {"one": 1}
    finally:
        await client.aclose()
        await pool.close()
