"""Small graphs the HTTP tests serve beside Nova (NOVA_API_GRAPHS).

Review gates (one inside a subgraph), two gates at once, a slow node.
"""

from __future__ import annotations

import asyncio
import operator
import os
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict

from state.review import ActionRequest, ReviewDecision, ReviewRequest


class ReviewState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    decision: dict[str, Any] | None


async def propose_change(state: ReviewState) -> dict[str, Any]:
    return {"messages": [AIMessage("I propose renaming table invoice to invoices.")]}


async def review_gate(state: ReviewState) -> dict[str, Any]:
    request = ReviewRequest(
        action_request=ActionRequest(action="rename_table", args={"from": "invoice", "to": "invoices"}),
        description="Rename the table?",
    )
    decision = ReviewDecision.model_validate(interrupt(request.model_dump()))
    return {"decision": decision.model_dump()}


async def apply_change(state: ReviewState) -> dict[str, Any]:
    decision = state.get("decision") or {}
    return {"messages": [AIMessage(f"decision: {decision.get('type')}")]}


review = StateGraph(ReviewState)
review.add_node("propose_change", propose_change)
review.add_node("review_gate", review_gate)
review.add_node("apply_change", apply_change)
review.add_edge(START, "propose_change")
review.add_edge("propose_change", "review_gate")
review.add_edge("review_gate", "apply_change")
review.add_edge("apply_change", END)


# The review graph as a node of another graph: its gate is raised inside a subgraph.
nested = StateGraph(ReviewState)
nested.add_node("inner", review.compile())
nested.add_edge(START, "inner")
nested.add_edge("inner", END)


class PairState(TypedDict, total=False):
    answers: Annotated[list[str], operator.add]


async def first_gate(state: PairState) -> dict[str, Any]:
    return {"answers": [str(interrupt("first?"))]}


async def second_gate(state: PairState) -> dict[str, Any]:
    return {"answers": [str(interrupt("second?"))]}


pair = StateGraph(PairState)
pair.add_node("first_gate", first_gate)
pair.add_node("second_gate", second_gate)
pair.add_edge(START, "first_gate")
pair.add_edge(START, "second_gate")
pair.add_edge("first_gate", END)
pair.add_edge("second_gate", END)


class SleepyState(TypedDict, total=False):
    seconds: float
    hold: str | None
    done: Annotated[list[str], operator.add]


async def nap(state: SleepyState) -> dict[str, Any]:
    """Sleep `seconds`, or less once the file named by `hold` is gone."""
    seconds = float(state.get("seconds") or 0)
    hold = state.get("hold")
    get_stream_writer()({"napping": seconds})
    if hold is None:
        await asyncio.sleep(seconds)
        return {"done": ["nap"]}
    for _ in range(int(seconds / 0.05)):
        if not await asyncio.to_thread(os.path.exists, hold):
            break
        await asyncio.sleep(0.05)
    return {"done": ["nap"]}


sleepy = StateGraph(SleepyState)
sleepy.add_node("nap", nap)
sleepy.add_edge(START, "nap")
sleepy.add_edge("nap", END)


PATCH_DIFF = """--- a/nodes/router.py
+++ b/nodes/router.py
@@ -57,7 +57,7 @@ class Thresholds:
     min_score: float = 0.2
-    margin: float = 0.02
+    margin: float = 0.03
     follow_up_max: float = 0.75
     clarify_ratio: float = 0.5
"""


class PatchState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    decision: dict[str, Any] | None


async def propose_patch(state: PatchState) -> dict[str, Any]:
    return {"messages": [AIMessage("I propose widening the router's clarify margin.")]}


async def review_patch(state: PatchState) -> dict[str, Any]:
    request = ReviewRequest(
        action_request=ActionRequest(
            action="apply_patch",
            args={
                "diff": PATCH_DIFF,
                "target": "nodes/router.py",
                "rationale": "Two agents within 0.03 of each other were routed without asking.",
                "evidence": ["dev set: 4 confident-wrong decisions had margins between 0.02 and 0.03"],
                "checks": [{"name": "pytest tests/unit", "ok": True, "detail": "212 passed"}],
                "risk": "low",
            },
        ),
        description="Widen the clarify margin to 0.03",
    )
    decision = ReviewDecision.model_validate(interrupt(request.model_dump()))
    return {"decision": decision.model_dump()}


async def apply_patch(state: PatchState) -> dict[str, Any]:
    decision = state.get("decision") or {}
    kind = decision.get("type")
    if kind == "accept":
        text = "Applied the patch to nodes/router.py."
    elif kind == "edit":
        diff = str((decision.get("args") or {}).get("diff", ""))
        text = f"Applied the edited patch ({len(diff.splitlines())} lines)."
    elif kind == "respond":
        text = f"Not applied. Your comment: {decision.get('args')}"
    else:
        text = "Ignored."
    return {"messages": [AIMessage(text)]}


patch = StateGraph(PatchState)
patch.add_node("propose_patch", propose_patch)
patch.add_node("review_patch", review_patch)
patch.add_node("apply_patch", apply_patch)
patch.add_edge(START, "propose_patch")
patch.add_edge("propose_patch", "review_patch")
patch.add_edge("review_patch", "apply_patch")
patch.add_edge("apply_patch", END)
