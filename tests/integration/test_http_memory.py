"""`/nova/memory` against a real `nova serve` process: the operations of `nova memory`, scoped per API key."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest_http import ALICE, BOB, MAX_BODY, ApiServer, api_server

__all__ = ["api_server"]

pytestmark = pytest.mark.slow


@pytest.fixture()
async def alice(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, headers={"x-api-key": ALICE}, timeout=60) as client:
        yield client


@pytest.fixture()
async def bob(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, headers={"x-api-key": BOB}, timeout=60) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["detail"] and body["message"]
    return str(body["message"])


async def test_remember_search_history_pin_forget_restore(alice: httpx.AsyncClient) -> None:
    first = ok(await alice.post("/nova/memory", json={"text": "my home city is Sheffield", "thread_id": "t-1"}), 201)
    assert first["stored"] and first["outcome"].startswith("stored in core as user/home_city")
    ok(await alice.post("/nova/memory", json={"text": "I've moved to York"}), 201)

    hits = ok(await alice.get("/nova/memory/search", params={"q": "where do I live?"}))["results"]
    assert any("York" in h["text"] for h in hits)
    assert not any("Sheffield" in h["text"] for h in hits)

    chain = ok(await alice.get("/nova/memory/subjects/user/home_city/history"))
    assert chain["subject"] == "user/home_city"
    old, new = chain["memories"]
    assert (old["status"], new["status"]) == ("superseded", "active")
    assert old["superseded_by"] == new["id"]
    assert old["provenance"]["thread_id"] == "t-1" and old["provenance"]["agent_id"] == "http"
    assert old["provenance"]["method"] == "explicit"

    detail = ok(await alice.get(f"/nova/memory/{new['id']}"))
    assert [r["id"] for r in detail["replaced"]] == [old["id"]]
    assert [e["action"] for e in detail["events"]] == ["created"]
    assert ok(await alice.get(f"/nova/memory/{old['id'][:8]}"))["replaced_by"]["id"] == new["id"]

    overview = ok(await alice.get("/nova/memory"))
    assert overview["user_id"] == "alice"
    assert any(m["id"] == new["id"] for m in overview["core"])
    assert overview["counts"]["superseded"] == 1

    assert ok(await alice.post(f"/nova/memory/{new['id']}/pin"))["pinned"] is True
    assert ok(await alice.get("/nova/memory"))["core"][0]["id"] == new["id"]
    assert ok(await alice.post(f"/nova/memory/{new['id']}/pin", json={"pinned": False}))["pinned"] is False

    forgotten = ok(await alice.post(f"/nova/memory/{new['id']}/forget"))
    assert (forgotten["purged"], forgotten["memory"]["tier"]) == (False, "discarded")
    hits = ok(await alice.get("/nova/memory/search", params={"q": "where do I live?"}))["results"]
    assert not any(h["id"] == new["id"] for h in hits)
    restored = ok(await alice.post(f"/nova/memory/{new['id']}/restore"))
    assert restored["tier"] == "core" and restored["status"] == "active"
    error(await alice.post(f"/nova/memory/{new['id']}/restore"), 422)

    purged = ok(await alice.post(f"/nova/memory/{old['id']}/forget", params={"purge": "true"}))
    assert purged == {"id": old["id"], "purged": True, "outcome": "deleted for good", "memory": None}
    error(await alice.get(f"/nova/memory/{old['id']}"), 404)


async def test_another_users_memory_is_unknown(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    mine = ok(
        await alice.post("/nova/memory", json={"text": "remember that the Kestrel retainer is £2,400 a month"}), 201
    )
    assert mine["stored"]
    record = ok(await alice.get("/nova/memory/search", params={"q": "Kestrel retainer"}))["results"][0]
    assert "2,400" in record["text"]
    for attempt in (
        bob.get(f"/nova/memory/{record['id']}"),
        bob.post(f"/nova/memory/{record['id']}/pin"),
        bob.post(f"/nova/memory/{record['id']}/forget"),
        bob.post(f"/nova/memory/{record['id']}/forget", params={"purge": "true"}),
        bob.post(f"/nova/memory/{record['id']}/restore"),
        bob.get(f"/nova/memory/subjects/{record['subject']}/history"),
    ):
        error(await attempt, 404)
    assert not any(
        "2,400" in h["text"] for h in ok(await bob.get("/nova/memory/search", params={"q": "Kestrel"}))["results"]
    )
    assert "2,400" not in (await bob.get("/nova/memory/export")).text
    assert ok(await alice.get(f"/nova/memory/{record['id']}"))["memory"]["tier"] == "archive"


async def test_export_import_round_trip_in_one_transaction(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    ok(await alice.post("/nova/memory", json={"text": "my editor is Vim"}), 201)
    ok(await alice.post("/nova/memory", json={"text": "I switched from Vim to Helix"}), 201)
    exported = await alice.get("/nova/memory/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.text.splitlines()
    records = [json.loads(line) for line in lines]
    assert {"My editor is Vim.", "My editor is Helix."} <= {r["text"] for r in records}
    assert all("user_id" not in r for r in records)

    report = ok(
        await bob.post("/nova/memory/import", content=exported.text, headers={"content-type": "application/x-ndjson"})
    )
    assert (report["created"], report["skipped"]) == (len(lines), 0)
    chain = ok(await bob.get("/nova/memory/subjects/user/editor/history"))["memories"]
    assert [m["text"] for m in chain] == ["My editor is Vim.", "My editor is Helix."]
    assert chain[0]["superseded_by"] == chain[1]["id"]
    own = (await bob.get("/nova/memory/export")).text
    again = ok(await bob.post("/nova/memory/import", content=own))
    assert again == {"created": 0, "skipped": len(own.splitlines())}

    after_first = (await bob.get("/nova/memory/export")).text
    broken = lines[0] + "\n" + "{not json\n"
    message = error(await bob.post("/nova/memory/import", content=broken), 422)
    assert "line 2: not valid JSON" in message and "nothing imported" in message
    good = json.loads(lines[0]) | {"id": str(uuid.uuid4()), "text": "A new fact about the van."}
    bad = json.loads(lines[0]) | {"id": str(uuid.uuid4()), "tier": "attic"}
    message = error(await bob.post("/nova/memory/import", content=json.dumps(good) + "\n" + json.dumps(bad)), 422)
    assert message.startswith("line 2: tier")
    assert (await bob.get("/nova/memory/export")).text == after_first
    error(await bob.post("/nova/memory/import", content=b"\xff\xfe garbage"), 422)
    error(await bob.post("/nova/memory/import", content=b""), 422)


async def test_bad_input_gets_clear_json_errors_never_500(alice: httpx.AsyncClient) -> None:
    assert "at most 2000 characters" in error(await alice.post("/nova/memory", json={"text": "a" * 2001}), 422)
    error(await alice.post("/nova/memory", json={"text": ""}), 422)
    error(await alice.post("/nova/memory", json={"text": "hi", "user_id": "bob"}), 422)
    error(await alice.post("/nova/memory", content=b"{nope", headers={"content-type": "application/json"}), 422)
    error(await alice.get(f"/nova/memory/{uuid.uuid4()}"), 404)
    error(await alice.get("/nova/memory/not-an-id"), 404)
    error(await alice.post(f"/nova/memory/{uuid.uuid4()}/forget"), 404)
    assert "no memory has subject" in error(await alice.get("/nova/memory/subjects/user/nothing_here/history"), 404)
    error(await alice.get("/nova/memory/search"), 422)
    error(await alice.get("/nova/memory/search", params={"q": "x", "limit": 0}), 422)
    error(await alice.post("/nova/memory/import", content=b"x" * (MAX_BODY + 1)), 413)
    refused = ok(await alice.post("/nova/memory", json={"text": "my AIREP admin password is hunter22"}), 201)
    assert not refused["stored"] and "looks like a secret" in refused["outcome"]
    async with httpx.AsyncClient(base_url=str(alice.base_url)) as anonymous:
        error(await anonymous.get("/nova/memory"), 401)
