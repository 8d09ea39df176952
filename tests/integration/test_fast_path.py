"""The turn route's fast path (api/fast_path.py) answers as the FastAPI route does, and only the plain case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.deps import ApiSettings
from api.fast_path import TurnFastPath
from api.settings import Settings

KEY = "fast-path-key-0001"
HEADERS = {"x-api-key": KEY, "content-type": "application/json"}


@pytest.fixture()
async def clients(pg_url: str, fake_llm: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Two apps on one database, with and without the fast path, each with its lifespan running."""
    settings = Settings(home=tmp_path, database_url=pg_url, llm_base_url=fake_llm, llm_api_key="x", embedder="hash")
    options = ApiSettings(keys=f"{KEY}=owner", max_body=4096)
    apps = [create_app(settings, options, fast_path=flag) for flag in (True, False)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        made = [httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://nova") for app in apps]
        try:
            yield tuple(made)
        finally:
            for client in made:
                await client.aclose()


def served(client: httpx.AsyncClient) -> int:
    """Requests the client's app answered on its fast path."""
    app: Any = client._transport.app  # type: ignore[attr-defined]
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, TurnFastPath):
        layer = getattr(layer, "app", None)
    return layer.served if layer is not None else -1


def turn(text: str, **extra: Any) -> dict[str, Any]:
    return {"assistant_id": "nova", "input": {"messages": [{"role": "user", "content": text}]}, **extra}


async def new_thread(client: httpx.AsyncClient) -> str:
    response = await client.post("/threads", json={}, headers={"x-api-key": KEY})
    assert response.status_code == 200, response.text
    return str(response.json()["thread_id"])


def same_answer(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.headers.get("content-type")) == (b.status_code, b.headers.get("content-type"))
    if a.status_code == 200:
        assert a.json()["messages"][-1]["content"] == b.json()["messages"][-1]["content"]
        assert a.headers["content-location"].startswith("/threads/") == b.headers["content-location"].startswith("/")
    else:
        assert a.json() == b.json()
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")


async def test_a_plain_turn_is_served_on_the_fast_path_with_the_routes_answer(clients: Any) -> None:
    fast, plain = clients
    text = "translate 'good morning' into French"
    answers = []
    for client in (fast, plain):
        tid = await new_thread(client)
        answers.append(await client.post(f"/threads/{tid}/runs/wait", json=turn(text), headers=HEADERS))
    same_answer(*answers)
    assert answers[0].json()["messages"][-1]["content"] == f"echo: {text}"
    assert served(fast) == 1 and served(plain) == -1


@pytest.mark.parametrize(
    ("case", "body", "headers"),
    [
        ("no key", turn("hi"), {"content-type": "application/json"}),
        ("wrong key", turn("hi"), {**HEADERS, "x-api-key": "not-a-key"}),
        ("unknown field", turn("hi", colour="red"), HEADERS),
        ("unsupported option", turn("hi", webhook="http://x"), HEADERS),
        ("not json", b"{not json", HEADERS),
        ("too large", turn("x" * 5000), HEADERS),
        ("form body", b"a=1", {**HEADERS, "content-type": "application/x-www-form-urlencoded"}),
    ],
)
async def test_a_request_it_does_not_serve_gets_the_apps_answer(
    clients: Any, case: str, body: Any, headers: Any
) -> None:
    fast, plain = clients
    answers = []
    for client in (fast, plain):
        tid = await new_thread(client)
        content = body if isinstance(body, bytes) else None
        answers.append(
            await client.post(
                f"/threads/{tid}/runs/wait", json=None if content else body, content=content, headers=headers
            )
        )
    same_answer(*answers)
    assert answers[0].status_code in (401, 413, 415, 422), (case, answers[0].text)
    assert served(fast) == 0


async def test_a_failure_on_the_fast_path_is_answered_by_the_apps_handlers(clients: Any) -> None:
    fast, plain = clients
    answers = [
        await client.post("/threads/no-such-thread/runs/wait", json=turn("hi"), headers=HEADERS) for client in clients
    ]
    same_answer(*answers)
    assert answers[0].status_code == 404 and "no-such-thread" in answers[0].json()["message"]
    missing = [
        await c.post("/threads/x1/runs/wait", json={**turn("hi"), "assistant_id": "nope"}, headers=HEADERS)
        for c in clients
    ]
    same_answer(*missing)
    assert missing[0].status_code == 404
    assert served(fast) == 2
