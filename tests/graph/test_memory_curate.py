"""The memory-curation graph: conflicts raised at the review gate, one at a time, and each decision's outcome."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from graphs.memory_curate import build_memory_curate_graph
from nodes.memory_records import Conflict, MemoryInputError, MemoryRecord
from state.context import Context

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def record(text: str, value: str, *, days: int, subject: str = "client:hartley/support_hours") -> MemoryRecord:
    return MemoryRecord(
        id=str(uuid.uuid4()),
        user_id="owner",
        namespace="project:client-hartley",
        text=text,
        kind="fact",
        subject=subject,
        value=value,
        tier="archive",
        status="active",
        thread_id="t-old",
        message_id="m1",
        agent_id="chat.memory",
        extracted_at=T0 + timedelta(days=days),
        method="rules",
        confidence=0.7,
        valid_from=T0 + timedelta(days=days),
        superseded_by=None,
        superseded_at=None,
        last_used_at=None,
        use_count=0,
        pinned=False,
        reason="stated in passing",
        created_at=T0 + timedelta(days=days),
    )


class FakeMemory:
    """The curation port over two conflicts; records every operation."""

    def __init__(self) -> None:
        old, new = (
            record("Hartley's support hours are 9 to 5.", "9 to 5", days=0),
            record("Hartley's support hours are 8 to 6.", "8 to 6", days=3),
        )
        a, b = (
            record("Standup is at 9:30.", "9:30", days=1, subject="general/standup"),
            record("Daily standup is at 10:15.", "10:15", days=2, subject="general/daily_standup"),
        )
        self.hours = Conflict(new.subject, (old, new), new.id, "it is the newest statement")
        self.standup = Conflict(b.subject, (a, b), b.id, "it is the newest statement")
        self.calls: list[tuple[str, str, tuple[str, ...], dict[str, Any]]] = []

    async def conflicts(self, user_id: str) -> list[Conflict]:
        return [self.hours, self.standup] if user_id == "owner" else []

    async def resolve_conflict(
        self,
        user_id: str,
        ids: Sequence[str],
        *,
        keep: str | None = None,
        text: str | None = None,
        reason: str,
        thread_id: str | None = None,
    ) -> str:
        if keep is not None and keep not in ids:
            raise MemoryInputError("not one of them")
        self.calls.append(("resolve", user_id, tuple(ids), {"keep": keep, "text": text, "thread_id": thread_id}))
        return f"kept {keep}" if keep else f"stored {text}"

    async def note_conflict(
        self, user_id: str, ids: Sequence[str], comment: str, *, thread_id: str | None = None
    ) -> str:
        self.calls.append(("note", user_id, tuple(ids), {"comment": comment}))
        return f"left as is: {comment}"


@pytest.fixture()
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture()
def graph(memory: FakeMemory, saver: BaseCheckpointSaver[Any]) -> Any:
    return build_memory_curate_graph(memory).compile(checkpointer=saver)


def config() -> Any:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


async def start(graph: Any, cfg: Any) -> dict[str, Any]:
    await graph.ainvoke({}, cfg, context=Context(user_id="owner"))
    state = await graph.aget_state(cfg)
    assert state.next == ("review_conflict",)
    [pending] = state.interrupts
    payload: dict[str, Any] = pending.value
    return payload


async def resume(graph: Any, cfg: Any, decision: Any) -> dict[str, Any] | None:
    await graph.ainvoke(Command(resume=decision), cfg, context=Context(user_id="owner"))
    state = await graph.aget_state(cfg)
    return state.interrupts[0].value if state.interrupts else None


async def test_each_conflict_is_raised_at_the_gate_with_provenance_and_a_suggestion(
    graph: Any, memory: FakeMemory
) -> None:
    cfg = config()
    payload = await start(graph, cfg)
    request = payload["action_request"]
    assert request["action"] == "resolve_memory_conflict"
    args = request["args"]
    assert args["subject"] == "client:hartley/support_hours"
    assert [m["text"] for m in args["memories"]] == [r.text for r in memory.hours.records]
    assert args["memories"][0]["provenance"] == {
        "thread_id": "t-old",
        "message_id": "m1",
        "agent_id": "chat.memory",
        "method": "rules",
        "extracted_at": memory.hours.records[0].extracted_at.isoformat(),
    }
    assert args["suggestion"]["keep"] == memory.hours.keep
    assert args["suggestion"]["supersede"] == [memory.hours.records[0].id]
    assert payload["config"] == {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True}
    assert "8 to 6" in payload["description"]
    assert memory.calls == []


async def test_accept_applies_the_suggestion_then_the_next_conflict_is_raised(graph: Any, memory: FakeMemory) -> None:
    cfg = config()
    await start(graph, cfg)
    second = await resume(graph, cfg, {"type": "accept"})
    assert second is not None and second["action_request"]["args"]["subject"] == "general/daily_standup"
    assert memory.calls == [
        (
            "resolve",
            "owner",
            memory.hours.ids,
            {"keep": memory.hours.keep, "text": None, "thread_id": cfg["configurable"]["thread_id"]},
        )
    ]
    assert await resume(graph, cfg, {"type": "ignore", "args": None}) is None
    state = await graph.aget_state(cfg)
    assert state.next == ()
    assert state.values["outcomes"] == [
        f"client:hartley/support_hours: kept {memory.hours.keep}",
        "general/daily_standup: ignored: left as is, raised again next time",
    ]
    assert len(memory.calls) == 1


async def test_edit_keeps_the_reviewers_choice_or_stores_the_corrected_text(graph: Any, memory: FakeMemory) -> None:
    cfg = config()
    await start(graph, cfg)
    older = memory.hours.records[0].id
    await resume(graph, cfg, {"type": "edit", "args": {"keep": older[:8]}})
    await resume(
        graph,
        cfg,
        {"type": "edit", "args": {"action": "resolve_memory_conflict", "args": {"text": "Standup is at 10:00."}}},
    )
    assert [(c[0], c[3]["keep"], c[3]["text"]) for c in memory.calls] == [
        ("resolve", older, None),
        ("resolve", None, "Standup is at 10:00."),
    ]
    assert (await graph.aget_state(cfg)).next == ()


async def test_an_unusable_edit_is_asked_again_with_the_reason(graph: Any, memory: FakeMemory) -> None:
    cfg = config()
    await start(graph, cfg)
    again = await resume(graph, cfg, {"type": "edit", "args": {"keep": "deadbeef"}})
    assert again is not None and again["action_request"]["args"]["subject"] == "client:hartley/support_hours"
    assert "keep must be one of the conflicting memory ids" in again["description"]
    again = await resume(graph, cfg, {"type": "edit", "args": {"keep": "x", "text": "y"}})
    assert again is not None and "exactly one of" in again["description"]
    assert memory.calls == []
    nxt = await resume(graph, cfg, {"type": "accept"})
    assert nxt is not None and nxt["action_request"]["args"]["subject"] == "general/daily_standup"
    assert len(memory.calls) == 1


async def test_respond_leaves_the_memories_and_records_the_comment(graph: Any, memory: FakeMemory) -> None:
    cfg = config()
    await start(graph, cfg)
    await resume(graph, cfg, {"type": "respond", "args": "both are right: 8 to 6 in winter"})
    assert memory.calls == [("note", "owner", memory.hours.ids, {"comment": "both are right: 8 to 6 in winter"})]
    outcomes = (await graph.aget_state(cfg)).values["outcomes"]
    assert outcomes == ["client:hartley/support_hours: left as is: both are right: 8 to 6 in winter"]


async def test_nothing_to_review_ends_without_a_gate(graph: Any) -> None:
    cfg = config()
    out = await graph.ainvoke({}, cfg, context=Context(user_id="someone-else"))
    assert out == {"conflicts": [], "outcomes": []}
    assert (await graph.aget_state(cfg)).next == ()


async def test_limit_raises_only_the_first_conflicts(graph: Any, memory: FakeMemory) -> None:
    cfg = config()
    await graph.ainvoke({"limit": 1}, cfg, context=Context(user_id="owner"))
    assert await resume(graph, cfg, {"type": "accept"}) is None
    assert (await graph.aget_state(cfg)).values["outcomes"] == [
        f"client:hartley/support_hours: kept {memory.hours.keep}"
    ]
