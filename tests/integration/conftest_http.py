"""One real `nova serve` process per test module: its own database, the fake model, test graphs beside Nova.

Import the fixtures into a test module (`from tests.integration.conftest_http import api_server`).
NOVA_TEST_API_WORKERS sets the worker count (default 2, so cross-process paths are always exercised).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.db import check_vector, ensure_database
from tests.conftest import CACHE_DIR, ROOT, free_port

ALICE = "alice-key-0001"
BOB = "bob-key-0002"
MAX_BODY = 64 * 1024
WORKERS = int(os.environ.get("NOVA_TEST_API_WORKERS", "2"))


@dataclass(frozen=True)
class ApiServer:
    url: str
    db_url: str
    env: dict[str, str]
    log: Path

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def start_serve(
    pg_admin_url: str, fake_llm: str, home: Path, graphs: tuple[str, ...], **settings: str
) -> tuple[str, dict[str, str], str, Path, subprocess.Popen[bytes]]:
    """Start `python -m api.serve` on a free loopback port over a fresh database, keys for alice and bob, the
    fake model and the named test graphs; return (database URL, environment, server URL, log, process)."""
    db_url = ensure_database(pg_admin_url, f"t_{uuid.uuid4().hex[:12]}")
    check_vector(db_url)
    (home / "cache").mkdir()
    for npz in CACHE_DIR.glob("*.npz"):
        shutil.copy(npz, home / "cache" / npz.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVA_", "OPENAI_", "LANGGRAPH_", "LANGSMITH_"))}
    env.update(
        {
            "NOVA_HOME": str(home),
            "NOVA_DATABASE_URL": db_url,
            "NOVA_LLM_BASE_URL": fake_llm,
            "NOVA_LLM_API_KEY": "test",
            "NOVA_LLM_TIMEOUT_S": "5",
            "NOVA_API_KEYS": f"{ALICE}=alice,{BOB}=bob",
            "NOVA_API_GRAPHS": ",".join(f"{name}=tests.integration.api_graphs:{name}" for name in graphs),
            "NOVA_API_HEARTBEAT_S": "0.5",
            "NOVA_API_STALE_S": "4",
            **settings,
        }
    )
    port = free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.serve", "--port", str(port), "--workers", str(WORKERS)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return db_url, env, f"http://127.0.0.1:{port}", log, proc


@pytest.fixture(scope="module")
def api_server(
    pg_admin_url: str, fake_llm: str, vector_cache: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """Start `python -m api.serve` on a free loopback port and wait until it is ready."""
    graphs = ("review", "nested", "pair", "sleepy")
    db_url, env, url, log, proc = start_serve(
        pg_admin_url, fake_llm, tmp_path_factory.mktemp("api-home"), graphs, NOVA_API_MAX_BODY=str(MAX_BODY)
    )
    server = ApiServer(url, db_url, env, log)
    try:
        _wait_ready(server, proc)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(server: ApiServer, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    ready = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nova serve exited with {proc.returncode}:\n{server.tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2.0).status_code == 200:
                ready += 1
                if ready >= 3:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"nova serve was not ready within {timeout}s:\n{server.tail()}")
