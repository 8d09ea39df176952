"""Chat tools over graph threads: curation raises its conflicts at a gate, the inbox lists what waits."""

from __future__ import annotations

from typing import Any

from nodes.services import Services, TurnRef
from nodes.tools import ToolCall, ToolDeps, build_tools


class FakeWork:
    def __init__(self, outcome: dict[str, Any], pending: list[dict[str, Any]]) -> None:
        self.outcome, self.pending = outcome, pending
        self.started: list[tuple[TurnRef, str]] = []
        self.decided: list[tuple[str, str, dict[str, Any], str]] = []

    async def start(self, ref: TurnRef, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        self.started.append((ref, graph_id))
        return self.outcome

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        return [p for p in self.pending if p["user"] == user_id]

    async def decide(self, user_id: str, thread_id: str, decision: dict[str, Any], gate: str) -> dict[str, Any]:
        self.decided.append((user_id, thread_id, decision, gate))
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
    assert "2 conflict(s)" in said and "nova reviews show c1" in said and "(gate i)" in said
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
            "interrupts": [{"id": "9f8e7d6c5b4a", "value": {"action_request": {"action": "apply_patch"}}}],
        },
        {"user": "bob", "thread_id": "p2", "graph_id": "improve", "title": "improve nova", "interrupts": []},
    ]
    listed = await tools_with(FakeWork({}, pending))["list_reviews"].run("", CALL)
    assert "p1 [pipeline] apply_patch: issue_fix issue=101 (gate 9f8e7d6c)" in listed and "p2" not in listed
    assert await tools_with(FakeWork({}, []))["list_reviews"].run("", CALL) == "Nothing is waiting for your review."


FIX, UPDATE = "dc2c4715-0b84-4220-8c16-0e2cfd931ce8", "7a1f09be-5d4c-4e0b-9a57-3c2b1e8f6d10"


def waiting(thread: str, title: str, gate: str) -> dict[str, Any]:
    value = {"action_request": {"action": "apply_patch"}}
    return {
        "user": "alice",
        "thread_id": thread,
        "graph_id": "pipeline",
        "title": title,
        "interrupts": [{"id": gate, "value": value}],
    }


async def test_decide_review_acts_on_the_owners_message_and_the_gate_it_saw() -> None:
    work = FakeWork(
        {},
        [
            waiting(FIX, "issue_fix issue=102", "a1b2c3d4e5f6"),
            waiting(UPDATE, "client_update client=kestrel", "0f0e0d0c0b0a"),
        ],
    )
    tool = tools_with(work)["decide_review"]
    listed = await tools_with(work)["list_reviews"].run("", CALL)  # what the conversation shows
    asked = ToolCall("alice", "t1", "orchestration.reviews", request="show me the review queue", conversation=listed)
    assert await tool.run(f"approve {UPDATE}", asked) == "", "the model's input decides nothing"
    said = ToolCall(
        "alice", "t1", "orchestration.reviews", request="approve dc2c4715", conversation=listed, last_reply=listed
    )
    out = await tool.run("", said)
    assert work.decided == [("alice", FIX, {"type": "accept"}, "a1b2c3d4e5f6")]
    assert out == f"Approved: {FIX} (issue_fix issue=102). Finished; result: /out/fix.patch"
    again = await tool.run("", said)
    assert again == "Nothing decided: dc2c4715 matches no review waiting.", "said twice, it is no longer waiting"
    assert len(work.decided) == 1


def test_memory_search_gives_only_the_hits_about_the_query() -> None:
    from nodes.tools import relevant_hits
    from state.memory import MemoryRef

    def hit(text: str, score: float) -> MemoryRef:
        return MemoryRef(id=text[:8], subject="user/x", text=text, tier="archive", score=score)

    # Scores as the offline E5 embedder gives them: the unrelated notes as high as the answer.
    background = [hit("Nova: Sam's personal runtime", 0.809), hit("AIREP tenancy rule", 0.806)]
    background += [hit("Hartley & Co repository", 0.804), hit("AIREP repository", 0.803)]
    assert relevant_hits("who is my accountant?", background) == []
    wayne = hit("Wayne is the domain expert on the Sweeper Parts system.", 0.884)
    assert relevant_hits("who knows the Sweeper Parts system best?", [wayne, *background]) == [wayne]
    # A word in common counts whatever the score; plural and possessive forms are the same word.
    kestrel = hit("Kestrel Logistics pay quarterly, never by card.", 0.801)
    assert relevant_hits("how do Kestrel pay?", [*background, kestrel]) == [kestrel]
    assert relevant_hits("who's our vet", [hit("We take the dog to Oakfield Vets.", 0.79)])[0].score == 0.79
    # No words in common: a hit counts only when it stands out from the farthest of the nearest.
    barber = hit("My barber is Tony on Kirkgate.", 0.853)
    assert relevant_hits("where do I get my hair cut?", [barber, *background]) == [barber]
    assert relevant_hits("where do I get my hair cut?", [barber]) == []  # one hit: no background to stand out of
    # With few memories, one that stands out from the next counts.
    priya = hit("My accountant is Priya Shah.", 0.81)
    assert relevant_hits("who does our books?", [priya, hit("We have two offices.", 0.77)]) == [priya]
    # A query that names someone or something keeps only the memories naming it.
    pennine = hit("Pennine Tiles pay on 30-day terms.", 0.83)
    assert relevant_hits("how does Brightwater pay?", [kestrel, pennine, *background]) == []
    assert relevant_hits("do we have anything on Kestrel?", [*background, kestrel]) == [kestrel]
    # A query that names nothing asks for everything.
    assert relevant_hits("what do you know about me?", background) == background
