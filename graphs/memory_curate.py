"""Memory curation with a review gate: START → find_conflicts → (review_conflict → apply_resolution)* → END."""

from __future__ import annotations

from langgraph.graph import START, StateGraph

from nodes.memory_curate import (
    CurationPort,
    MemoryCurateInput,
    MemoryCurateOutput,
    MemoryCurateState,
    make_apply_resolution,
    make_find_conflicts,
    review_conflict,
    route_after_apply_resolution,
    route_after_find_conflicts,
)
from state.context import Context


def build_memory_curate_graph(
    memory: CurationPort,
) -> StateGraph[MemoryCurateState, Context, MemoryCurateInput, MemoryCurateOutput]:
    """Raise each memory conflict curation cannot settle at a `resolve_memory_conflict` gate, one at a time."""
    builder = StateGraph(
        MemoryCurateState, context_schema=Context, input_schema=MemoryCurateInput, output_schema=MemoryCurateOutput
    )
    builder.add_node("find_conflicts", make_find_conflicts(memory))
    builder.add_node("review_conflict", review_conflict)
    builder.add_node("apply_resolution", make_apply_resolution(memory))
    builder.add_edge(START, "find_conflicts")
    builder.add_conditional_edges("find_conflicts", route_after_find_conflicts)
    builder.add_edge("review_conflict", "apply_resolution")
    builder.add_conditional_edges("apply_resolution", route_after_apply_resolution)
    return builder
