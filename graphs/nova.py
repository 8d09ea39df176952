"""The orchestrator: recall -> route -> one specialist subgraph (or a clarifying question) -> memory."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from graphs.patterns import PATTERNS
from graphs.registry import Registry
from nodes.models import ModelLoader
from nodes.router import Router
from nodes.services import Services
from nodes.tools import ToolDeps
from nodes.turn import make_ask_clarification, make_recall_memory, make_record_memory, make_route_request
from state.context import Context
from state.nova import NovaInput, NovaOutput, NovaState

DB_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.2, backoff_factor=2.0)


def build_nova_graph(
    registry: Registry, *, models: ModelLoader, router: Router, services: Services
) -> StateGraph[NovaState, Context, NovaInput, NovaOutput]:
    """Compose recall, the router, one subgraph per agent card, the clarify step and memory bookkeeping."""
    descriptions = {card.id: card.description for card in registry}
    tools = ToolDeps(services=services, roster=tuple(descriptions.items()))
    builder = StateGraph(NovaState, context_schema=Context, input_schema=NovaInput, output_schema=NovaOutput)
    builder.add_node("recall_memory", make_recall_memory(services), retry_policy=DB_RETRY)
    builder.add_node(
        "route_request",
        make_route_request(router, services, models, descriptions),
        destinations=(*registry.ids, "ask_clarification"),
        retry_policy=DB_RETRY,
    )
    builder.add_node("ask_clarification", make_ask_clarification(descriptions))
    builder.add_node("record_memory", make_record_memory(services), retry_policy=DB_RETRY)
    for card in registry:
        builder.add_node(card.id, PATTERNS[card.pattern](card, models=models, tools=tools))
        builder.add_edge(card.id, "record_memory")
    builder.add_edge(START, "recall_memory")
    builder.add_edge("recall_memory", "route_request")
    builder.add_edge("ask_clarification", END)
    builder.add_edge("record_memory", END)
    return builder
