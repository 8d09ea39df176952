"""The self-improvement loop: scan, select, propose, check, validate, review, apply, learn.

```
START -> scan_repository -> select_findings -> propose_changes -> check_safety -> validate_proposals
      -> (revise_proposals -> check_safety ...) | record_drops -> pick_proposal -> review_proposal (gate)
      -> apply_proposal -> record_outcome | accept_edit -> check_safety ... | record_outcome -> pick_proposal ...
```

Proposals reach the gate one at a time, in rank order; the run ends when none is left.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from nodes.improve.apply import (
    accept_edit,
    make_apply_proposal,
    make_record_drops,
    make_record_outcome,
    make_route_after_record,
    pick_proposal,
    route_after_pick,
)
from nodes.improve.gate import review_proposal, route_after_review
from nodes.improve.ports import ImproveServices
from nodes.improve.propose import make_propose_changes, make_revise_proposals, revisable
from nodes.improve.scan import ScanFn, make_scan_repository, scan
from nodes.improve.select import make_select_findings
from nodes.improve.validate import ValidateFn, check_safety, make_validate_proposals, validate
from nodes.models import ModelLoader
from state.improve import ImproveInput, ImproveOutput, ImproveState


def build_improve_graph(
    *,
    services: ImproveServices | None = None,
    models: ModelLoader | None = None,
    scanner: ScanFn = scan,
    validator: ValidateFn = validate,
) -> StateGraph[ImproveState, None, ImproveInput, ImproveOutput]:
    """Compose the improvement loop; `models` None means offline (deterministic fixers only)."""
    services = services or ImproveServices()
    can_draft = models is not None

    def route_after_validate(state: ImproveState) -> Literal["revise_proposals", "record_drops"]:
        proposals = state.get("proposals", [])
        if can_draft and any(p.status == "dropped" and revisable(p, proposals) for p in proposals):
            return "revise_proposals"
        return "record_drops"

    builder = StateGraph(ImproveState, input_schema=ImproveInput, output_schema=ImproveOutput)
    builder.add_node("scan_repository", make_scan_repository(services, scanner=scanner))
    builder.add_node("select_findings", make_select_findings(services, can_draft=can_draft))
    builder.add_node("propose_changes", make_propose_changes(models))
    builder.add_node("check_safety", check_safety)
    builder.add_node("validate_proposals", make_validate_proposals(validator=validator))
    builder.add_node("revise_proposals", make_revise_proposals(models))
    builder.add_node("record_drops", make_record_drops(services))
    builder.add_node("pick_proposal", pick_proposal)
    builder.add_node("review_proposal", review_proposal)
    builder.add_node("apply_proposal", make_apply_proposal(services))
    builder.add_node("accept_edit", accept_edit)
    builder.add_node("record_outcome", make_record_outcome(services))

    builder.add_edge(START, "scan_repository")
    builder.add_edge("scan_repository", "select_findings")
    builder.add_edge("select_findings", "propose_changes")
    builder.add_edge("propose_changes", "check_safety")
    builder.add_edge("check_safety", "validate_proposals")
    builder.add_conditional_edges("validate_proposals", route_after_validate)
    builder.add_edge("revise_proposals", "check_safety")
    builder.add_edge("record_drops", "pick_proposal")
    builder.add_conditional_edges(
        "pick_proposal", route_after_pick, {"review_proposal": "review_proposal", "__end__": END}
    )
    builder.add_conditional_edges("review_proposal", route_after_review)
    builder.add_edge("apply_proposal", "record_outcome")
    builder.add_edge("accept_edit", "check_safety")
    builder.add_conditional_edges("record_outcome", make_route_after_record(can_draft))
    return builder


graph = build_improve_graph().compile(name="improve")
"""Offline, in-memory outcomes, no checkpointer: for `langgraph dev` / Studio; api/ compiles its own."""
