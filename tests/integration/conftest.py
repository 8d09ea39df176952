"""Real processes on 127.0.0.1: a fake OpenAI-compatible server, and the `nova` CLI as a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import sql

from tests.conftest import CACHE_DIR, free_port


async def generic_plan(pool: Any, query: str, args: Sequence[str], *, analyze: bool = False) -> str:
    """EXPLAIN `query` (text parameters $1, $2 ...) as Postgres plans it generically: the plan a pooled connection
    caches for a prepared statement after a few runs and keeps until the next ANALYZE."""
    types = sql.SQL(", ").join(sql.SQL("text") for _ in args)
    values = sql.SQL(", ").join(sql.Literal(a) for a in args)
    options = sql.SQL("ANALYZE, COSTS OFF" if analyze else "COSTS OFF")
    async with pool.connection() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(sql.SQL("PREPARE planned({}) AS {}").format(types, sql.SQL(query)), prepare=False)
        try:
            cur = await conn.execute(sql.SQL("EXPLAIN ({}) EXECUTE planned({})").format(options, values), prepare=False)
            return "\n".join(row["QUERY PLAN"] for row in await cur.fetchall())
        finally:
            await conn.execute("DEALLOCATE planned", prepare=False)
            await conn.execute("RESET plan_cache_mode")


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[str]:
    """Start the fake OpenAI-compatible server and return its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_openai", "--port", str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture()
def nova_env(tmp_path: Path, pg_url: str, fake_llm: str, vector_cache: object) -> dict[str, str]:
    """Environment for a `nova` subprocess: its own home and database, the fake model endpoint."""
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    for npz in CACHE_DIR.glob("*.npz"):
        shutil.copy(npz, home / "cache" / npz.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVA_", "OPENAI_"))}
    env.update(
        {
            "NOVA_HOME": str(home),
            "NOVA_DATABASE_URL": pg_url,
            "NOVA_LLM_BASE_URL": fake_llm,
            "NOVA_LLM_API_KEY": "test",
            "NOVA_LLM_TIMEOUT_S": "5",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    return env


def nova(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed `nova` entry point."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, input=input, capture_output=True, text=True, timeout=timeout
    )
