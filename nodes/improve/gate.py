"""The review gate of the improvement loop: one proposal at a time, in the agent-inbox shape.

Decisions (a `ReviewDecision`, as passed to `Command(resume=...)`):
    accept: apply the proposal (commit it to `nova/improve-<id>`). `args` may be `{"proposal_id": ID}` to make
        sure the decision lands on that proposal; another id is refused and the gate asks again.
    edit: `args` is the edited action arguments, at least `{"diff": ...}` (or `{"args": {"diff": ...}}`); the
        reviewer's diff is checked and validated again, then comes back to this gate.
    respond: reject, with `args` the reviewer's comment (recorded; with a model configured the proposal is
        redrafted once with the comment).
    ignore: skip without a verdict (recorded, so the same evidence is not proposed again).
"""

from __future__ import annotations

from typing import Any, Literal

from nodes.review import request_review
from state.improve import CheckResult, ImproveState, Proposal
from state.review import ActionRequest, ReviewConfig, ReviewDecision, ReviewRequest

ACTION = "apply_patch"


def checks_text(checks: list[CheckResult]) -> str:
    """Return one line per check for display."""
    return "\n".join(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.summary} ({c.duration_s:.1f}s)" for c in checks)


def review_request(state: ImproveState, proposal: Proposal) -> ReviewRequest:
    """Build what the reviewer sees: diff, rationale, evidence, check results, risk and target."""
    by_id = {f.id: f for f in state.get("findings", [])}
    evidence = [
        {"id": fid, "kind": f.kind, "location": f.location, "message": f.message, "measure": f.measure, "unit": f.unit}
        for fid in proposal.finding_ids
        if (f := by_id.get(fid)) is not None
    ]
    good = proposal.status == "validated"
    description = (
        f"{proposal.title}\n{proposal.rationale}\nExpected effect: {proposal.expected_effect}\n"
        f"Risk: {proposal.risk}. Checks:\n{checks_text(proposal.checks)}"
    )
    if not good:
        description += f"\nThis edited diff FAILED validation ({proposal.reason}); edit it again, reject or ignore."
    return ReviewRequest(
        action_request=ActionRequest(
            action=ACTION,
            args={
                "proposal_id": proposal.id,
                "title": proposal.title,
                "diff": proposal.diff,
                "rationale": proposal.rationale,
                "expected_effect": proposal.expected_effect,
                "evidence": evidence,
                "checks": [c.model_dump(mode="json") for c in proposal.checks],
                "risk": proposal.risk,
                "target": state["target"],
                "base": state["head"],
                "branch": f"nova/improve-{proposal.id}",
            },
        ),
        config=ReviewConfig(allow_accept=good),
        description=description,
    )


def wrong_proposal(decision: ReviewDecision, proposal: Proposal) -> str | None:
    """Return why a decision addressed to another proposal is refused, or None."""
    args = decision.args if isinstance(decision.args, dict) else {}
    named = args.get("proposal_id") or (args.get("args") or {}).get("proposal_id")
    if named and named != proposal.id:
        return f"this gate reviews proposal {proposal.id}, not {named}; nothing was done"
    if decision.type == "edit" and not edited_diff(decision):
        return "an edit needs the changed diff in args.diff"
    return None


def edited_diff(decision: ReviewDecision) -> str:
    """Return the reviewer's diff from an edit decision (agent-inbox `{args: {...}}` or the args themselves)."""
    args = decision.args if isinstance(decision.args, dict) else {}
    inner = args.get("args") if isinstance(args.get("args"), dict) else args
    diff = inner.get("diff") if isinstance(inner, dict) else None
    return diff if isinstance(diff, str) else ""


def current_proposal(state: ImproveState) -> Proposal:
    """Return the proposal at the gate."""
    return state["proposals"][state["current"]]


async def review_proposal(state: ImproveState) -> dict[str, Any]:
    """Show the current proposal to the reviewer and wait for a decision (no side effects here)."""
    proposal = current_proposal(state)
    request = review_request(state, proposal)
    while True:
        decision = request_review(request)
        problem = wrong_proposal(decision, proposal)
        if problem is None:
            return {"decision": {**decision.model_dump(mode="json"), "proposal_id": proposal.id}}
        request = request.model_copy(update={"description": f"{request.description}\n\n({problem})"})


def route_after_review(state: ImproveState) -> Literal["apply_proposal", "accept_edit", "record_outcome"]:
    """Send an approval to apply, an edit to re-validation, a rejection or an ignore to the record."""
    kind = (state.get("decision") or {}).get("type")
    if kind == "accept":
        return "apply_proposal"
    if kind == "edit":
        return "accept_edit"
    return "record_outcome"
