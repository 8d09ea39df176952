"""The review gate every graph shares: interrupt with a `ReviewRequest`, return a validated `ReviewDecision`."""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt
from pydantic import ValidationError

from state.review import ReviewDecision, ReviewRequest


class ReviewAnswerError(ValueError):
    """A reviewer's answer is not a decision this gate accepts."""


def parse_decision(request: ReviewRequest, answer: Any) -> ReviewDecision:
    """Validate a resume value against the gate's request; raise `ReviewAnswerError` naming the problem."""
    if isinstance(answer, str):
        answer = {"type": answer}
    try:
        decision = ReviewDecision.model_validate(answer)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "decision"
        raise ReviewAnswerError(f"invalid review decision: {where}: {first['msg']}") from None
    if not decision.allowed_by(request.config):
        allowed = [t for t in ("accept", "edit", "respond", "ignore") if getattr(request.config, f"allow_{t}")]
        raise ReviewAnswerError(f"decision {decision.type!r} is not allowed at this gate; allowed: {allowed}")
    if decision.type == "edit" and not isinstance(decision.args, dict):
        raise ReviewAnswerError("an edit decision needs args: the edited action arguments as an object")
    if decision.type == "respond" and not (isinstance(decision.args, str) and decision.args.strip()):
        raise ReviewAnswerError("a respond decision needs args: the reviewer's comment as text")
    return decision


def request_review(request: ReviewRequest) -> ReviewDecision:
    """Pause for a reviewer and return their decision; an invalid answer asks again with the reason.

    Call this only from a gate node that has no side effects before it: the node re-runs from its start
    when the thread resumes.
    """
    payload = request.model_dump(mode="json")
    while True:
        answer = interrupt(payload)
        try:
            return parse_decision(request, answer)
        except ReviewAnswerError as exc:
            payload = {**request.model_dump(mode="json"), "description": f"{request.description}\n\n({exc})"}
