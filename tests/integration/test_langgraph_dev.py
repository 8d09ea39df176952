"""`langgraph dev` loads the graphs in langgraph.json and the official SDK can drive a run on it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client

from tests.conftest import free_port
from tests.integration.conftest import wait_http

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).with_name("langgraph")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not LANGGRAPH.exists(), reason="langgraph-cli not installed")]


@pytest.fixture()
def dev_server(nova_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**nova_env, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
    proc = subprocess.Popen(
        [str(LANGGRAPH), "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ok", timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(ROOT / ".langgraph_api", ignore_errors=True)


def test_langgraph_dev_serves_nova_and_the_sdk_runs_it(dev_server: str) -> None:
    client = get_sync_client(url=dev_server)
    assistants = client.assistants.search()
    assert {a["graph_id"] for a in assistants} >= {"nova", "pipeline"}
    thread = client.threads.create()
    out = client.runs.wait(
        thread["thread_id"],
        "nova",
        input={"messages": [{"role": "user", "content": "translate 'good night' into Welsh"}]},
    )
    assert isinstance(out, dict)
    assert out["route"]["chosen"] == "language.translate"
    assert out["messages"][-1]["content"] == "echo: translate 'good night' into Welsh"
