"""The conversation's door to pipelines: a card with `pattern = "pipeline"` starts one from a chat request."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime

from nodes.agents import asked_messages, latest_request
from nodes.pipeline import PipelineInputError, describe_outcome, extract_args, validate_args
from nodes.services import Services, TurnRef
from state.cards import AgentCard
from state.context import Context
from state.pipeline import ArgSpec, PipelineSpec


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
        found = extract_args(spec, text)
        if missing := [a for a in spec.args if a.required and not found.get(a.name)]:
            return _reply(card, missing_args_reply(spec, missing))
        try:
            args = validate_args(spec, found)
        except PipelineInputError as exc:
            return _reply(card, f"I can't start {spec.name} yet: {exc}.")
        thread = str(get_config().get("configurable", {}).get("thread_id", ""))
        ref = TurnRef(runtime.context.user_id, thread, agent_id=card.id)
        outcome = await services.pipelines.start(ref, spec.name, {k: str(v) for k, v in args.items()})
        return _reply(card, describe_outcome(spec.name, outcome, in_chat=True))

    return start_pipeline_run


def missing_args_reply(spec: PipelineSpec, missing: Sequence[ArgSpec]) -> str:
    """Say, for a chat, what a pipeline still needs and how to give it in the next message."""
    lines = [f"I can't start {spec.name} yet: it needs {', '.join(a.name for a in missing)}."]
    lines += [f"- {a.name}: {a.description}" for a in missing if a.description]
    if pasted := [a.name for a in missing if a.from_pasted]:
        lines.append(
            f"Ask again with the {' and '.join(pasted)} after a colon or on the lines below the request"
            f' ("{spec.name.replace("_", " ")}: <the {pasted[0]}>"), or quote them.'
        )
    lines.append(f"From a shell: `nova pipeline run {spec.name} " + " ".join(f"{a.name}=..." for a in missing) + "`.")
    return "\n".join(lines)


def _reply(card: AgentCard, text: str) -> dict[str, Any]:
    return {
        "messages": [AIMessage(content=text, name=card.id.replace(".", "_"), response_metadata={"agent": card.id})],
        "active_agent": card.id,
    }
