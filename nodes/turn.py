"""The orchestrator's own nodes: recall, route, ask when unsure, and memory bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.agents import latest_request
from nodes.compaction import needs_compaction
from nodes.embeddings import SharedQueries
from nodes.inbox import (
    GATE_RE,
    REF_RE,
    PendingReview,
    about_a_review,
    named_review,
    pending_of,
    read_decision,
    short_ref,
    shown_alone,
)
from nodes.models import ModelLoader
from nodes.prompts import CLARIFY_CONFIRM, CLARIFY_QUESTION, ROUTER_SYSTEM_PROMPT
from nodes.router import OVERRIDE_RE, Router, correction_target, embedding_text, picked_agent
from nodes.services import Services, TurnRef
from state.context import Context
from state.nova import NovaState
from state.routing import CLARIFY, Candidate, LLMRoute, RouteDecision

LLM_ROUTE_TIMEOUT_S = 20.0
OFFER_RATIO = 0.3  # a clarifying question offers an agent only if it scores this fraction of the best one
HYBRID_TOP_K = 5


class ThreadRouting(TypedDict):
    """What a thread's state tells the router besides the request (Router.decide's keyword arguments)."""

    active_agent: str | None
    pending_clarify: list[str] | None
    after_question: bool


def thread_routing(values: Mapping[str, Any]) -> ThreadRouting:
    """Read a thread's state for routing its next request.

    After small talk ("thanks") the conversation is still with the agent before it, so a follow-up goes there.
    """
    active = values.get("active_agent")
    previous = values.get("route")
    if isinstance(previous, RouteDecision) and previous.method == "small-talk" and active == previous.chosen:
        active = previous.topic_agent
    return ThreadRouting(
        active_agent=active,
        pending_clarify=values.get("pending_clarify"),
        after_question=last_reply_asks(values.get("messages") or []),
    )


def reply_before_request(messages: Sequence[AnyMessage]) -> str | None:
    """Return Nova's reply just before the newest human message, or None when there is none."""
    seen_human = False
    for msg in reversed(messages):
        if isinstance(msg, HumanMessage):
            if seen_human:
                return None
            seen_human = True
        elif isinstance(msg, AIMessage) and seen_human:
            return msg.text
    return None


def last_reply_asks(messages: Sequence[AnyMessage]) -> bool:
    """Return True when the reply before the newest human message ended with a question to the user."""
    reply = reply_before_request(messages)
    return reply is not None and reply.rstrip().endswith("?")


def _thread_id() -> str:
    return str(get_config().get("configurable", {}).get("thread_id", ""))


def carried_request(state: Mapping[str, Any], text: str, known: Sequence[str]) -> str | None:
    """Return the request an answer or a correction carries on, or None when `text` is a request of its own.

    "2", "yes" or "chat.memory" to a clarifying question picks the agent for the request the question asked
    about; "that should have gone to chat.memory" sends the request before it on. The agent then works on that
    request, and recall looks for it, not for "2". An answer that says more than a pick ("list my clients") is
    a request of its own, whichever agent it goes to.
    """
    previous: RouteDecision | None = state.get("route")
    if previous is None or not previous.text:
        return None
    asked: str = previous.request or previous.text
    if correction_target(text, known) and not previous.text.startswith("@"):
        return asked
    pending = state.get("pending_clarify")
    if not pending or not previous.is_clarify:
        return None
    return asked if picked_agent(text, pending, known) is not None else None


def make_recall_memory(
    services: Services, queries: SharedQueries, known: Sequence[str] = ()
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that puts the core profile and relevant archive memories into context."""

    async def recall_memory(state: NovaState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Recall memories for the latest request (its vector is shared with routing: one embedding a turn).

        An answer to a clarifying question, or a route correction, recalls for the request it carries on.
        """
        text = latest_request(state["messages"])
        text = carried_request(state, text, known) or text
        qvec = await queries.vector(embedding_text(text))
        recalled = await services.memory.recall(
            runtime.context.user_id, text, project=runtime.context.project, qvec=qvec
        )
        return {"recalled": recalled, "error": None}

    return recall_memory


async def rerank_with_model(
    models: ModelLoader, decision: RouteDecision, descriptions: dict[str, str]
) -> RouteDecision:
    """Let the chat model re-rank the top candidates; keep the embedding decision if it fails."""
    top = [c for c in decision.candidates[:HYBRID_TOP_K]]
    listing = "\n".join(f"- {c.id}: {descriptions.get(c.id, '')}" for c in top)
    model = models.for_tier("fast").with_structured_output(LLMRoute, method="json_schema")
    try:
        verdict = await asyncio.wait_for(
            model.ainvoke(
                [SystemMessage(ROUTER_SYSTEM_PROMPT.format(candidates=listing)), HumanMessage(decision.text)]
            ),
            timeout=LLM_ROUTE_TIMEOUT_S,
        )
    except Exception as exc:  # timeouts, transport and parse errors all fall back the same way
        return decision.model_copy(
            update={"fallback": f"model re-rank failed: {type(exc).__name__}", "method": "fallback"}
        )
    assert isinstance(verdict, LLMRoute)
    choice = verdict.choice.strip()
    valid = {c.id for c in top} | {CLARIFY}
    if choice not in valid:
        return decision.model_copy(update={"fallback": f"model chose unknown id {choice!r}", "method": "fallback"})
    return decision.model_copy(update={"chosen": choice, "method": "llm", "reason": verdict.reason.strip()[:300]})


def make_route_request(
    router: Router, services: Services, models: ModelLoader, descriptions: dict[str, str], queries: SharedQueries
) -> Callable[..., Awaitable[Command[Any]]]:
    """Build the routing node: decide, log the decision, and go to the chosen agent or ask."""

    async def route_request(state: NovaState, runtime: Runtime[Context]) -> Command[Any]:
        """Route the latest request to one specialist, or to a clarifying question."""
        text = latest_request(state["messages"])
        previous = state.get("route")
        target = correction_target(text, router.ids)
        if target and previous is not None and previous.text and not previous.text.startswith("@"):
            decision = await _apply_correction(previous, target, text, runtime.context.user_id)
            return Command(goto=_beside(target), update={"route": decision, "pending_clarify": None})
        if router.review_inbox and (found := await _review_for(text, state, runtime.context.user_id)):
            review, how = found
            decision = RouteDecision(
                chosen=router.review_inbox,
                method="review-ref",
                text=text,
                candidates=(Candidate(id=router.review_inbox, score=1.0),),
                reason=f"{how} {short_ref(review.thread_id)}, waiting for your review ({review.title})",
            )
            await services.route_log.record(decision, thread_id=_thread_id(), user_id=runtime.context.user_id)
            return Command(goto=_beside(decision.chosen), update={"route": decision, "pending_clarify": None})
        qvec = await queries.vector(embedding_text(text))
        decision = router.decide(text, qvec=qvec, **thread_routing(state))
        if decision.method == "clarify-answer" and (asked := carried_request(state, text, router.ids)):
            decision = decision.model_copy(update={"request": asked, "reason": f"{decision.reason}: {_quoted(asked)}"})
        if runtime.context.router_mode == "hybrid" and decision.method == "embedding":
            decision = await rerank_with_model(models, decision, descriptions)
        await services.route_log.record(decision, thread_id=_thread_id(), user_id=runtime.context.user_id)
        goto = "ask_clarification" if decision.is_clarify else decision.chosen
        return Command(goto=_beside(goto), update={"route": decision, "pending_clarify": None})

    async def _review_for(text: str, state: NovaState, user_id: str) -> tuple[PendingReview, str] | None:
        """Return the waiting review the request is about, and how it names it, or None.

        It names one by its id and asks to see or decide on it, or it answers the one review Nova's last reply
        showed with a decision ("reject it because ...", whatever the reason talks about) or a try at one.
        Reviews are looked up only when the request holds an id-like word or the last reply shows a gate.
        """
        if OVERRIDE_RE.match(text):
            return None
        named = bool(REF_RE.search(text)) and about_a_review(text)
        last_reply = reply_before_request(state["messages"]) or ""
        if not named and not GATE_RE.search(last_reply):
            return None
        pending = pending_of(await services.work.pending_reviews(user_id))
        if named and (review := named_review(text, pending)):
            return review, "names"
        if (alone := shown_alone(last_reply, pending)) is None:
            return None
        read = read_decision(text, pending, last_reply, last_reply)  # a refusal says why it decides nothing
        return (alone, "answers the last reply's") if read.review is not None or read.refusal else None

    async def _apply_correction(previous: RouteDecision, target: str, text: str, user_id: str) -> RouteDecision:
        await services.corrections.add(
            user_id=user_id, text=previous.text, correct=target, wrong=previous.chosen, thread_id=_thread_id()
        )
        decision = RouteDecision(
            chosen=target,
            method="override",
            text=text,
            candidates=(Candidate(id=target, score=1.0),),
            reason=f"you corrected the last route ({previous.chosen} -> {target}); learned for next time",
            request=previous.request or previous.text,
        )
        await services.route_log.record(decision, thread_id=_thread_id(), user_id=user_id)
        return decision

    return route_request


def _quoted(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return repr(one if len(one) <= limit else one[: limit - 1] + "…")


def _beside(target: str) -> list[str]:
    """Return the next step's nodes: the target and, beside it, the memory write path."""
    return [target, "record_memory"]


async def route_at_start(state: NovaState) -> list[str]:
    """Start a turn with recall and routing side by side, and compaction beside them when the thread is long.

    Compaction runs in this first step because no node of it writes messages: a specialist's reply in the
    same step would otherwise carry the removed messages back in. Async though it awaits nothing: under
    `ainvoke` LangGraph runs a sync edge function on a worker thread, a hop on every turn.
    """
    nodes = ["recall_memory", "route_request"]
    if needs_compaction(state.get("messages", [])):
        nodes.append("compact_history")
    return nodes


def offered(candidates: Sequence[Candidate], limit: int = 3, ratio: float = OFFER_RATIO) -> list[Candidate]:
    """Return the agents a clarifying question offers: the best one, and the next ones that fit nearly as well.

    "how do Kestrel pay?" ranked chat.clients 0.17, chat.tech 0.05, orchestration.reviews 0.04: offering the
    last two only adds noise to the question. A flat ranking (a vague request) keeps all `limit`.
    """
    if not candidates:
        return []
    best = candidates[0].score
    return [c for n, c in enumerate(candidates[:limit]) if n == 0 or c.score >= ratio * best]


def clarify_message(candidates: Sequence[Candidate], descriptions: dict[str, str], limit: int = 3) -> str:
    """Write the short clarifying question naming the candidates (a yes/no question when one fits)."""
    if len(candidates) == 1:
        only = candidates[0].id
        return "\n".join(
            [
                CLARIFY_CONFIRM.format(agent=only, scope=short_scope(descriptions.get(only, ""))),
                "Answer yes, name another agent, or say more about what you need.",
            ]
        )
    lines = [CLARIFY_QUESTION]
    for n, cand in enumerate(candidates[:limit], start=1):
        lines.append(f"{n}. {cand.id}: {short_scope(descriptions.get(cand.id, ''))}")
    lines.append("Answer with a number, an agent id, or say more about what you need.")
    return "\n".join(lines)


def short_scope(description: str, limit: int = 90) -> str:
    """Return the first sentence of a card's description, cut to `limit` characters."""
    first = description.split(". ")[0].split(": ")[0].strip().rstrip(".")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def make_ask_clarification(descriptions: dict[str, str]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that asks which agent was meant."""

    async def ask_clarification(state: NovaState) -> dict[str, Any]:
        """Ask a short question naming the candidates; the next turn resolves it."""
        route = state.get("route")
        candidates = offered(route.candidates) if route else []
        text = clarify_message(candidates, descriptions)
        return {
            "messages": [AIMessage(content=text, name="nova", response_metadata={"agent": CLARIFY})],
            "pending_clarify": [c.id for c in candidates],
            "active_agent": None,
        }

    return ask_clarification


SHOWN_WRITES = ("stored", "forgotten")  # what a turn's memory write reports: what it changed in the store


def make_record_memory(services: Services) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the post-reply node that extracts, triages and stores memories from the user's message."""

    async def record_memory(state: NovaState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Run the memory write path for the latest user message."""
        human = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
        if human is None:
            return {}
        route = state.get("route")
        ref = TurnRef(
            user_id=runtime.context.user_id,
            thread_id=_thread_id(),
            message_id=human.id,
            agent_id=route.chosen if route else None,
        )
        outcomes = (await services.memory.observe(ref, human.text)).outcomes
        written = [o.record for o in outcomes if o.kind in SHOWN_WRITES]
        if written:
            return {"remembered": written}
        return {"remembered": None} if state.get("remembered") else {}

    return record_memory
