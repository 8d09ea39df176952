"""Router pieces: instruction extraction, clarify answers, follow-ups, corrections, and decisions."""

from __future__ import annotations

import pytest

from nodes.router import (
    Router,
    correction_target,
    is_follow_up,
    is_small_talk,
    resolve_clarify_answer,
    routing_text,
)
from state.routing import CLARIFY

IDS = ("erp.query", "erp.schema", "erp.tenancy", "language.rewrite")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "summarise this: 'The Leeds branch raised 40 invoices and the tenant migration finished on time today'",
            "summarise this: <text>",
        ),
        (
            "tl;dr please:\nwe met the client and agreed on a new schedule for the stock import and invoices",
            "tl;dr please: <text>",
        ),
        ("translate 'the invoice for tenant acme is overdue by two weeks' into German", "translate <text> into German"),
        ("which model stores the branch on an invoice?", "which model stores the branch on an invoice?"),
        ("note: short one", "note: short one"),
        (  # what to do with pasted text, said after it
            "AIREP bug: the invoice list shows invoices from other branches to branch managers. "
            "Take it through to a fix.",
            "AIREP bug: <text> Take it through to a fix.",
        ),
        (  # a last sentence too long to be an instruction is part of the pasted text
            "summarise this: The meeting moved to Friday. The client was ill, so we rebooked the room for the whole "
            "team and moved the demo to the week after that",
            "summarise this: <text>",
        ),
    ],
)
def test_routing_text_keeps_the_instruction(text: str, expected: str) -> None:
    assert routing_text(text) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("2", "erp.schema"),
        ("option 1", "erp.query"),
        ("#3", "erp.tenancy"),
        ("erp.tenancy", "erp.tenancy"),
        ("@erp.schema", "erp.schema"),
        ("the schema one", "erp.schema"),
        ("7", None),
        ("no idea", None),
        ("the second one", "erp.schema"),
        ("First", "erp.query"),
        ("3rd", "erp.tenancy"),
        ("the last one please", "erp.tenancy"),
        ("fourth", None),
        ("first thing tomorrow", None),
    ],
)
def test_clarify_answers(answer: str, expected: str | None) -> None:
    assert resolve_clarify_answer(answer, ["erp.query", "erp.schema", "erp.tenancy"]) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("yes", "chat.clients"),
        ("Yes please", "chat.clients"),
        ("yep, that one", "chat.clients"),
        ("1", "chat.clients"),
        ("that's right", "chat.clients"),
        ("That\u2019s right", "chat.clients"),
        ("yes thank you", "chat.clients"),
        ("yes exactly", "chat.clients"),
        ("yes do it", "chat.clients"),
        ("sure thing", "chat.clients"),
        ("absolutely", "chat.clients"),
        ("yes pls", "chat.clients"),
        ("👍", "chat.clients"),
        ("yes correct", "chat.clients"),
        ("no", None),
        ("please don't", None),
        ("yes but about Hartley", None),
        ("chat.memory", None),
    ],
)
def test_a_question_offering_one_agent_is_answered_by_yes(answer: str, expected: str | None) -> None:
    assert resolve_clarify_answer(answer, ["chat.clients"]) == expected


def test_yes_picks_nothing_when_several_agents_were_offered() -> None:
    assert resolve_clarify_answer("yes", ["chat.clients", "chat.memory"]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("and the Bristol branch?", True),
        ("and on an order?", True),
        ("what about last month", True),
        ("same for northwind", True),
        ("it should be shorter", True),
        ("how many open orders does Leeds have", False),
        ("and " + "word " * 20, False),
        ("", False),
    ],
)
def test_follow_up_detection(text: str, expected: bool) -> None:
    assert is_follow_up(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("that should have gone to erp.query", "erp.query"),
        ("This should've been sent to @erp.schema", "erp.schema"),
        ("it ought to have been routed to erp.tenancy!", "erp.tenancy"),
        ("that should have gone to erp.nope", None),
        ("should we route invoices to erp.query", None),
    ],
)
def test_correction_phrases(text: str, expected: str | None) -> None:
    assert correction_target(text, IDS) == expected


def test_decisions_record_candidates_evidence_and_latency(router: Router) -> None:
    d = router.decide("how many open orders does the Leeds branch have right now?")
    assert d.chosen == "erp.query" and d.method == "embedding"
    assert d.candidates[0].id == "erp.query" and d.candidates[0].matched
    assert d.candidates[0].score > d.candidates[1].score and d.latency_ms > 0
    assert "erp.query" in d.reason and d.text.startswith("how many")


def test_vague_request_asks(router: Router) -> None:
    d = router.decide("can you sort that out for me")
    assert d.chosen == CLARIFY and len(d.candidates) >= 2


def test_override_follow_up_and_clarify_answer_paths(router: Router) -> None:
    assert router.decide("@language.rewrite make this friendlier").method == "override"
    assert router.decide("@nobody.here hi").method != "override"
    follow = router.decide("and for the Glasgow branch?", active_agent="erp.query")
    assert (follow.chosen, follow.method) == ("erp.query", "follow-up")
    elsewhere = router.decide("translate 'see you on Monday' into Italian", active_agent="erp.query")
    assert elsewhere.chosen == "language.translate"
    picked = router.decide("2", pending_clarify=["erp.query", "erp.schema"])
    assert (picked.chosen, picked.method) == ("erp.schema", "clarify-answer")
    free = router.decide("give me the count of open orders", pending_clarify=["erp.schema", "erp.query"])
    assert free.chosen == "erp.query" and free.method == "clarify-answer"


@pytest.mark.parametrize(
    ("text", "small"),
    [
        ("thanks", True),
        ("ok, cheers Nova :)", True),
        ("Hi Nova!", True),
        ("good morning", True),
        ("got it, thanks", True),
        ("thanks for the summary, now translate it into French", False),
        ("ok so what about the Leeds branch", False),
        ("hey, are you there?", False),
        ("yes", False),
    ],
)
def test_small_talk_detection(text: str, small: bool) -> None:
    assert is_small_talk(text) is small


def test_small_talk_goes_to_the_small_talk_card_unless_it_answers_a_question(router: Router) -> None:
    d = router.decide("thanks!", active_agent="erp.query")
    assert (d.chosen, d.method, d.topic_agent) == ("chat.general", "small-talk", "erp.query")
    d = router.decide("ok, sounds good", active_agent="chat.planner", after_question=True)
    assert (d.chosen, d.method) == ("chat.planner", "follow-up") and "question" in d.reason
    assert router.decide("@erp.query thanks").method == "override"


@pytest.mark.parametrize(
    ("answer", "chosen", "method"),
    [
        # Short answers that name an offered agent in other words pick it, even when another agent ranks first.
        ("the memory one", "chat.memory", "clarify-answer"),
        ("the drafting one please", "language.draft", "clarify-answer"),
        ("summary", "language.summarise", "clarify-answer"),
        # Short new requests that no offered agent fits are routed afresh, not forced onto an offered agent.
        ("how many open orders in Leeds", "erp.query", "embedding"),
        ("translate hello into French", "language.translate", "embedding"),
        ("help me with the invoice", CLARIFY, "embedding"),
    ],
)
def test_an_answer_no_offered_agent_fits_is_a_new_request(
    router: Router, answer: str, chosen: str, method: str
) -> None:
    offered = ["chat.memory", "language.summarise", "language.draft"]
    d = router.decide(answer, pending_clarify=offered)
    assert (d.chosen, d.method) == (chosen, method), d.reason
    if chosen == CLARIFY:  # asked again, about the agents this answer fits, not the ones offered before
        assert [c.id for c in d.candidates][:3] != offered


def test_corrections_take_effect_after_refit(registry, embedder, vector_cache) -> None:  # type: ignore[no-untyped-def]
    from graphs.registry import build_router

    text = "zorblax the quarterly frobnicator for Wendell"
    fresh = build_router(registry, embedder, vector_cache)
    fresh.add_corrections([(text, "erp.domain"), ("unknown agents are ignored", "nope.nope")])
    assert fresh.corrections == [(text, "erp.domain")]
    assert fresh.decide(text).chosen == "erp.domain"


def test_two_agent_roster_scores_both_sides(embedder, vector_cache) -> None:  # type: ignore[no-untyped-def]
    from state.cards import AgentCard

    cards = (
        AgentCard(
            id="home.garden",
            description="Plants, lawns and the garden.",
            examples=("when should I prune roses", "my lawn has yellow patches", "which plants like shade"),
        ),
        AgentCard(
            id="home.cooking",
            description="Recipes and cooking.",
            examples=("how long to roast a chicken", "a quick pasta recipe", "substitute for buttermilk"),
        ),
    )
    router = Router(cards, embedder, vector_cache)
    assert router.decide("how do I keep basil alive in the garden").chosen == "home.garden"
    assert router.decide("easy recipe for a roast dinner").chosen == "home.cooking"


def test_a_clarifying_question_offers_only_the_agents_that_nearly_fit() -> None:
    from nodes.turn import clarify_message, offered
    from state.routing import Candidate

    kestrel = [Candidate(id="chat.clients", score=0.17), Candidate(id="chat.tech", score=0.05)]
    assert [c.id for c in offered(kestrel)] == ["chat.clients"]
    scopes = {"chat.clients": "Client relationships: who a client is. More."}
    assert clarify_message(offered(kestrel), scopes) == (
        "I'm not sure I read this right. Did you mean chat.clients: Client relationships?\n"
        "Answer yes, name another agent, or say more about what you need."
    )
    flat = [Candidate(id=f"a.{n}", score=0.02 - n * 0.002) for n in range(5)]
    assert [c.id for c in offered(flat)] == ["a.0", "a.1", "a.2"]
    assert clarify_message(offered(flat), {}).startswith("I can take this a few ways. Which did you mean?\n1. a.0")
    assert offered([]) == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("2", "chat.projects"),
        ("the projects one please", "chat.projects"),
        ("chat.clients", "chat.clients"),
        ("no, chat.memory", "chat.memory"),  # not offered, but named as the question invites
        ("@chat.memory", "chat.memory"),
        ("list my clients", None),  # names chat.clients' word, and asks for something of its own
        ("show all projects", None),
        ("open projects for Brightwater", None),
        ("chat.memory and chat.clients", None),
    ],
)
def test_an_answer_picks_an_agent_only_when_it_does_nothing_else(answer: str, expected: str | None) -> None:
    from nodes.router import picked_agent

    known = ["chat.clients", "chat.projects", "chat.memory"]
    assert picked_agent(answer, ["chat.clients", "chat.projects"], known) == expected
