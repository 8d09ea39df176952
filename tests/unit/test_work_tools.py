"""Chat tools over graph threads: curation raises its conflicts at a gate, the inbox lists what waits."""

from __future__ import annotations

from typing import Any

from nodes.services import Services, TurnRef
from nodes.tools import ToolCall, ToolDeps, build_tools


class FakeWork:
    def __init__(self, outcome: dict[str, Any], pending: list[dict[str, Any]]) -> None:
        self.outcome, self.pending = outcome, pending
        self.started: list[tuple[TurnRef, str]] = []

    async def start(self, ref: TurnRef, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        self.started.append((ref, graph_id))
        return self.outcome

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        return [p for p in self.pending if p["user"] == user_id]


CALL = ToolCall(user_id="alice", thread_id="t1", agent_id="orchestration.memory_curator")


def tools_with(work: FakeWork) -> dict[str, Any]:
    services = Services(**{**vars(Services.null()), "work": work})
    return {t.name: t for t in build_tools(["memory_curate", "list_reviews"], ToolDeps(services, ()))}


async def test_curation_from_chat_points_at_the_review_thread() -> None:
    work = FakeWork({"thread_id": "c1", "interrupts": [{"id": "i"}], "values": {"conflicts": [{}, {}]}}, [])
    said = await tools_with(work)["memory_curate"].run("", CALL)
    assert "2 conflict(s)" in said and "nova reviews show c1" in said
    ((ref, graph_id),) = work.started
    assert graph_id == "memory_curate" and ref.user_id == "alice" and ref.thread_id == "t1"
    quiet = FakeWork({"thread_id": "c2", "interrupts": [], "values": {"conflicts": []}}, [])
    assert await tools_with(quiet)["memory_curate"].run("", CALL) == "Curation found no conflicting memories to settle."


async def test_the_inbox_lists_only_the_callers_reviews() -> None:
    pending = [
        {
            "user": "alice",
            "thread_id": "p1",
            "graph_id": "pipeline",
            "title": "issue_fix issue=101",
            "interrupts": [{"value": {"action_request": {"action": "apply_patch"}}}],
        },
        {"user": "bob", "thread_id": "p2", "graph_id": "improve", "title": "improve nova", "interrupts": []},
    ]
    listed = await tools_with(FakeWork({}, pending))["list_reviews"].run("", CALL)
    assert "p1 [pipeline] apply_patch: issue_fix issue=101" in listed and "p2" not in listed
    assert await tools_with(FakeWork({}, []))["list_reviews"].run("", CALL) == "Nothing is waiting for your review."
