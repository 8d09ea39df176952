"""Chat tools over graph threads: curation raises its conflicts at a gate, the inbox lists what waits."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.services import Services, TurnRef
from nodes.tools import ReviewDecision, ToolCall, ToolDeps, build_tools, read_decision, short_ref


class FakeWork:
    def __init__(self, outcome: dict[str, Any], pending: list[dict[str, Any]]) -> None:
        self.outcome, self.pending = outcome, pending
        self.started: list[tuple[TurnRef, str]] = []
        self.decided: list[tuple[str, str, dict[str, Any]]] = []

    async def start(self, ref: TurnRef, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        self.started.append((ref, graph_id))
        return self.outcome

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        return [p for p in self.pending if p["user"] == user_id]

    async def decide(self, user_id: str, thread_id: str, decision: dict[str, Any]) -> dict[str, Any]:
        self.decided.append((user_id, thread_id, decision))
        self.pending = [p for p in self.pending if p["thread_id"] != thread_id]
        return {"thread_id": thread_id, "interrupts": [], "error": None, "values": {"result": "/out/fix.patch"}}


CALL = ToolCall(user_id="alice", thread_id="t1", agent_id="orchestration.memory_curator")


def tools_with(work: FakeWork) -> dict[str, Any]:
    services = Services(**{**vars(Services.null()), "work": work})
    names = ["memory_curate", "list_reviews", "decide_review"]
    return {t.name: t for t in build_tools(names, ToolDeps(services, ()))}


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


FIX, UPDATE = "dc2c4715-0b84-4220-8c16-0e2cfd931ce8", "7a1f09be-5d4c-4e0b-9a57-3c2b1e8f6d10"
PENDING = {FIX: "issue_fix issue=102", UPDATE: "client_update client=kestrel"}
SHOWN = f"Pipeline issue_fix (thread {FIX}): ... Paused for your review: `nova reviews show {FIX}`"


@pytest.mark.parametrize(
    ("message", "thread", "decision"),
    [
        ("approve it", FIX, {"type": "accept"}),  # the one this conversation showed
        ("LGTM, ship it", FIX, {"type": "accept"}),
        ("approve dc2c4715", FIX, {"type": "accept"}),
        (f"accept {UPDATE}", UPDATE, {"type": "accept"}),
        ("the Kestrel draft is fine, approve and finalise", UPDATE, {"type": "accept"}),
        ("ignore the fix for 102", FIX, {"type": "ignore"}),
        (
            "reject it because it should use for_branch, and drop the raw join",  # "drop" is part of the reason
            FIX,
            {"type": "respond", "args": "it should use for_branch, and drop the raw join"},
        ),
        (
            "reject 7a1f09be: too much jargon for Kestrel",
            UPDATE,
            {"type": "respond", "args": "too much jargon for Kestrel"},
        ),
    ],
)
def test_a_decision_is_read_from_the_owners_words(message: str, thread: str, decision: dict[str, Any]) -> None:
    read = read_decision(message, PENDING, SHOWN)
    assert (read.thread_id, read.decision, read.refusal) == (thread, decision, "")


@pytest.mark.parametrize(
    ("message", "shown", "refusal"),
    [
        ("should I approve it?", SHOWN, "asks or holds off"),
        ("don't approve it yet", SHOWN, "asks or holds off"),
        ("wait, before you approve, show me the diff", SHOWN, "asks or holds off"),
        ("approve it", "", "say which review"),  # nothing shown in this conversation: "it" is nobody
        ("approve abc123", SHOWN, "matches none"),
        ("reject it", SHOWN, "needs its reason"),
        ("approve the facade fix", "", "say which review"),  # a hex-looking word is not an id
        ("I can't accept this, reject it because it leaks", SHOWN, "asks or holds off"),
        ("if the tests pass, approve it", SHOWN, "asks or holds off"),
    ],
)
def test_anything_less_than_a_clear_decision_decides_nothing(message: str, shown: str, refusal: str) -> None:
    read = read_decision(message, PENDING, shown)
    assert read.thread_id is None and read.decision is None and refusal in read.refusal


@pytest.mark.parametrize("message", ["what is waiting for my review", "drop the raw join and then it is fine"])
def test_a_message_without_a_decision_has_nothing_to_say(message: str) -> None:
    assert read_decision(message, PENDING, SHOWN) == ReviewDecision()


def test_it_is_never_the_next_review_in_the_queue() -> None:
    """Replayed after approving the fix (say after a crash), "approve it" must not approve the next review."""
    assert read_decision("approve it", {UPDATE: PENDING[UPDATE]}, SHOWN).thread_id is None
    assert "nothing is waiting" in read_decision("approve it", {}, SHOWN).refusal


async def test_decide_review_acts_on_the_owners_message_not_on_its_input() -> None:
    pending = [
        {"user": "alice", "thread_id": FIX, "graph_id": "pipeline", "title": PENDING[FIX], "interrupts": []},
        {"user": "alice", "thread_id": UPDATE, "graph_id": "pipeline", "title": PENDING[UPDATE], "interrupts": []},
    ]
    work = FakeWork({}, pending)
    tool = tools_with(work)["decide_review"]
    asked = ToolCall("alice", "t1", "orchestration.reviews", request="show me the review queue", conversation=SHOWN)
    assert await tool.run(f"approve {UPDATE}", asked) == "", "the model's input decides nothing"
    assert work.decided == []
    said = ToolCall("alice", "t1", "orchestration.reviews", request="approve it", conversation=SHOWN)
    out = await tool.run("", said)
    assert work.decided == [("alice", FIX, {"type": "accept"})]
    assert out == f"Approved: {FIX} (issue_fix issue=102). Finished; result: /out/fix.patch"
    assert (await tool.run("", said)).startswith("Nothing decided"), "said again, the fix is no longer waiting"
    assert len(work.decided) == 1


def test_the_short_ref_the_inbox_suggests_is_read_back_as_that_review() -> None:
    no_digit_head = "abcdefab-cdef-4abc-8def-abcdefabcdef"
    assert short_ref(FIX) == "dc2c4715" and short_ref(no_digit_head) == "abcdefab-cdef-4"
    for thread in (FIX, no_digit_head):
        pending = {thread: "issue_fix issue=9", UPDATE: PENDING[UPDATE]}
        assert read_decision(f"approve {short_ref(thread)}", pending).thread_id == thread
