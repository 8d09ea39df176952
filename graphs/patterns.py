"""Patterns turn an agent card into the orchestrator's node for it; a new agent is a card, not code.

A one-call specialist is a plain node (a subgraph of one node only adds a nested run and, with a
checkpointer, its own checkpoints); a tool loop is a subgraph, so Studio shows its steps.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import RetryPolicy
from typing_extensions import TypedDict

from nodes.agents import (
    ToolResult,
    make_choose_tool,
    make_preload_tools,
    make_respond,
    make_run_tool,
    route_after_choose_tool,
    route_after_preload,
)
from nodes.models import ModelLoader, is_transient
from nodes.pipeline_agent import make_start_pipeline_run
from nodes.tools import ToolDeps, build_tools
from state.cards import AgentCard
from state.context import Context
from state.memory import MemoryRef
from state.routing import RouteDecision

MODEL_RETRY = RetryPolicy(
    max_attempts=3, initial_interval=0.5, backoff_factor=2.0, max_interval=8.0, jitter=True, retry_on=is_transient
)


class AgentInput(TypedDict):
    """What a specialist reads from the parent."""

    messages: Annotated[list[AnyMessage], add_messages]
    recalled: list[MemoryRef]
    summary: str | None
    route: RouteDecision | None  # its `request`: what an answer to a clarifying question carries on


class AgentOutput(TypedDict):
    """What a specialist hands back."""

    messages: Annotated[list[AnyMessage], add_messages]
    active_agent: str | None


class ChatAgentState(AgentInput, AgentOutput):
    """A prompted specialist's state."""


class ToolAgentState(ChatAgentState, total=False):
    """A tool-using specialist's state: the loop's tool results stay inside the subgraph."""

    tool_results: Annotated[list[ToolResult], operator.add]
    next_tool: dict[str, str] | None


@dataclass(frozen=True)
class AgentNode:
    """What a pattern adds to the orchestrator for one card: a node (function or subgraph) and its retry policy."""

    node: Any
    retry: RetryPolicy | None = None


Pattern = Callable[..., AgentNode]


def chat_pattern(card: AgentCard, *, models: ModelLoader, tools: ToolDeps) -> AgentNode:
    """Build a specialist that answers with one prompted model call: a single node, no subgraph to checkpoint."""
    return AgentNode(make_respond(card, models), MODEL_RETRY)


def tool_agent_pattern(card: AgentCard, *, models: ModelLoader, tools: ToolDeps) -> AgentNode:
    """Build a specialist that picks tools through structured output for at most `max_steps` steps (a subgraph)."""
    bound = build_tools(card.tools, tools)
    builder = StateGraph(ToolAgentState, context_schema=Context, input_schema=AgentInput, output_schema=AgentOutput)
    builder.add_node("choose_tool", make_choose_tool(card, models, bound), retry_policy=MODEL_RETRY)
    builder.add_node("run_tool", make_run_tool(card, bound))
    builder.add_node("respond", make_respond(card, models, tool_results_key="tool_results"), retry_policy=MODEL_RETRY)
    if card.preload:
        builder.add_node("preload_tools", make_preload_tools(card, build_tools(card.preload, tools)))
        builder.add_edge(START, "preload_tools")
        if card.answer_from:
            builder.add_conditional_edges("preload_tools", route_after_preload, ["choose_tool", END])
        else:
            builder.add_edge("preload_tools", "choose_tool")
    else:
        builder.add_edge(START, "choose_tool")
    builder.add_conditional_edges("choose_tool", route_after_choose_tool, ["run_tool", "respond"])
    builder.add_edge("run_tool", "choose_tool")
    builder.add_edge("respond", END)
    return AgentNode(builder.compile(name=card.id))


def pipeline_pattern(card: AgentCard, *, models: ModelLoader, tools: ToolDeps) -> AgentNode:
    """Build a specialist that starts a pipeline (`card.pipeline`, or the one the request names) on its own thread."""
    return AgentNode(make_start_pipeline_run(card, tools.services))


PATTERNS: dict[str, Pattern] = {
    "chat": chat_pattern,
    "tool_agent": tool_agent_pattern,
    "pipeline": pipeline_pattern,
}
