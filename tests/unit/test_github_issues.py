"""issue_fix reads GitHub issues with a token: a real HTTP server on loopback stands in for the GitHub API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from api.pipelines import GitHubIssues
from nodes.pipeline import StepRefused


class FakeGitHub(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        FakeGitHub.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.path == "/repos/acme/erp/issues/7":
            body = {
                "number": 7,
                "title": "Branch leak",
                "body": "orders/views.py",
                "labels": [{"name": "bug"}],
                "state": "open",
            }
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def github() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


async def test_issues_come_from_the_api_with_the_token(github: str) -> None:
    source = GitHubIssues("t0k3n", github)
    issue = await source.issue("acme/erp", 7)
    assert issue == {"number": 7, "title": "Branch leak", "body": "orders/views.py", "labels": ["bug"], "state": "open"}
    assert FakeGitHub.seen[-1] == ("/repos/acme/erp/issues/7", "Bearer t0k3n")
    with pytest.raises(StepRefused, match="GitHub answered 404"):
        await source.issue("acme/erp", 8)
    with pytest.raises(StepRefused, match="must look like owner/name"):
        await source.issue("../etc", 1)
