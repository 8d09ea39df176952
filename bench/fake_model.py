"""The tests' fake OpenAI-compatible server with a reply delay that a benchmark can change while it runs.

    .venv/bin/python -m bench.fake_model --port P [--delay-ms 0]

Chat completions answer as `tests/fake_openai.py` does, after the current delay. `POST /bench/delay?ms=N`
changes the delay; `GET /bench/stats` returns the delay and the number of chat completions served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.common import ROOT


class Delayed:
    """ASGI middleware: hold each chat completion for the current delay, and answer the /bench endpoints."""

    def __init__(self, app: ASGIApp, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/bench/delay" and scope["method"] == "POST":
                ms = parse_qs(scope["query_string"].decode()).get("ms", ["0"])[0]
                self.delay_s = float(ms) / 1000
                await self._json(send, self._stats())
                return
            if path == "/bench/stats":
                await self._json(send, self._stats())
                return
            if path.endswith("/chat/completions"):
                self.calls += 1
                if self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)

    def _stats(self) -> dict[str, Any]:
        return {"delay_ms": self.delay_s * 1000, "calls": self.calls}

    @staticmethod
    async def _json(send: Send, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class FakeModel:
    """A running fake model server process."""

    proc: subprocess.Popen[bytes]
    url: str

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL for NOVA_LLM_BASE_URL."""
        return f"{self.url}/v1"

    def set_delay(self, ms: float) -> None:
        """Change the reply delay."""
        httpx.post(f"{self.url}/bench/delay", params={"ms": ms}, timeout=5).raise_for_status()

    def calls(self) -> int:
        """Return how many chat completions were served so far."""
        return int(httpx.get(f"{self.url}/bench/stats", timeout=5).json()["calls"])

    def stop(self) -> None:
        """Stop the server."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_fake_model(port: int, log: Path, delay_ms: float = 0.0) -> FakeModel:
    """Start the server on 127.0.0.1:port, its output in `log` (a killed client's request logs a traceback)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_model", "--port", str(port), "--delay-ms", str(delay_ms)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = FakeModel(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the fake model server exited with {proc.returncode}:\n{tail}")
        try:
            server.calls()
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise TimeoutError("the fake model server did not start within 30 s")


def main() -> None:
    from tests.fake_openai import app

    parser = argparse.ArgumentParser(prog="bench.fake_model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(Delayed(app, args.delay_ms / 1000), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
