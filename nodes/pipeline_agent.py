"""The conversation's door to pipelines: a card with `pattern = "pipeline"` starts one from a chat request."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime

from nodes.agents import asked_messages, latest_request
from nodes.pipeline import PipelineInputError, describe_outcome, extract_args, validate_args
from nodes.services import Services, TurnRef
from state.cards import AgentCard
from state.context import Context
from state.pipeline import PipelineSpec


def pick_pipeline(card: AgentCard, specs: dict[str, PipelineSpec], text: str) -> PipelineSpec | None:
    """Return the card's pipeline, or the one the request names (for `pipeline.run`)."""
    if card.pipeline:
        return specs.get(card.pipeline)
    words = set(re.findall(r"[a-z]+", text.casefold()))
    named = [s for n, s in specs.items() if all(part in words for part in n.split("_"))]
    return named[0] if len(named) == 1 else None


def make_start_pipeline_run(card: AgentCard, services: Services) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that starts a pipeline from the latest request, or says what it still needs."""

    async def start_pipeline_run(state: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        """Start the pipeline the request asks for on its own thread and report how far it got."""
        text = latest_request(asked_messages(state)) if state.get("messages") else ""
        specs = services.pipelines.definitions()
        spec = pick_pipeline(card, specs, text)
        if spec is None:
            listing = "\n".join(f"- {n}: {s.description}" for n, s in sorted(specs.items()))
            reply = f"Which pipeline? Name one of these:\n{listing}" if specs else "No pipelines are loaded."
            return _reply(card, reply)
        try:
            args = validate_args(spec, extract_args(spec, text))
        except PipelineInputError as exc:
            needs = "; ".join(f"{a.name}: {a.description}" for a in spec.args if a.required)
            return _reply(card, f"I can't start {spec.name} yet: {exc}.\nIt needs {needs}.")
        thread = str(get_config().get("configurable", {}).get("thread_id", ""))
        ref = TurnRef(runtime.context.user_id, thread, agent_id=card.id)
        outcome = await services.pipelines.start(ref, spec.name, {k: str(v) for k, v in args.items()})
        return _reply(card, describe_outcome(spec.name, outcome))

    return start_pipeline_run


def _reply(card: AgentCard, text: str) -> dict[str, Any]:
    return {
        "messages": [AIMessage(content=text, name=card.id.replace(".", "_"), response_metadata={"agent": card.id})],
        "active_agent": card.id,
    }
