"""The orchestrator: recall and route, then one specialist (or a clarifying question) beside the memory write.

Three super-steps per turn, the same as a bare router + specialist graph: the input; recall and routing
side by side (routing does not read memories) and, when the thread is long, the move of old turns to
the transcript; the specialist side by side with the memory write path (which reads only the user's
message). One-call specialists are plain nodes, so they add no nested run and no checkpoints of their own.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from graphs.patterns import PATTERNS
from graphs.registry import Registry
from nodes.compaction import make_compact_history
from nodes.embeddings import SharedQueries
from nodes.models import ModelLoader
from nodes.router import Router
from nodes.services import Services
from nodes.tools import ToolDeps
from nodes.turn import (
    make_ask_clarification,
    make_recall_memory,
    make_record_memory,
    make_route_request,
    route_at_start,
)
from state.context import Context
from state.nova import NovaInput, NovaOutput, NovaState

DB_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.2, backoff_factor=2.0)


def build_nova_graph(
    registry: Registry,
    *,
    models: ModelLoader,
    router: Router,
    services: Services,
    queries: SharedQueries | None = None,
) -> StateGraph[NovaState, Context, NovaInput, NovaOutput]:
    """Compose recall, the router, one node per agent card, the clarify step and memory bookkeeping."""
    queries = queries or SharedQueries(router.embed)
    descriptions = {card.id: card.description for card in registry}
    tools = ToolDeps(services=services, roster=tuple(descriptions.items()))
    builder = StateGraph(NovaState, context_schema=Context, input_schema=NovaInput, output_schema=NovaOutput)
    builder.add_node("recall_memory", make_recall_memory(services, queries, router.ids), retry_policy=DB_RETRY)
    builder.add_node(
        "route_request",
        make_route_request(router, services, models, descriptions, queries),
        destinations=(*registry.ids, "ask_clarification", "record_memory"),
        retry_policy=DB_RETRY,
    )
    builder.add_node("ask_clarification", make_ask_clarification(descriptions))
    builder.add_node("record_memory", make_record_memory(services), retry_policy=DB_RETRY)
    builder.add_node("compact_history", make_compact_history(services), retry_policy=DB_RETRY)
    for card in registry:
        agent = PATTERNS[card.pattern](card, models=models, tools=tools)
        builder.add_node(card.id, agent.node, retry_policy=agent.retry)
        builder.add_edge(card.id, END)
    builder.add_conditional_edges(START, route_at_start, ["recall_memory", "route_request", "compact_history"])
    builder.add_edge("recall_memory", END)
    builder.add_edge("ask_clarification", END)
    builder.add_edge("record_memory", END)
    builder.add_edge("compact_history", END)
    return builder
