"""After the gate: apply approved proposals to a new branch, take edits back to validation, record outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from nodes.improve.gate import current_proposal, edited_diff
from nodes.improve.gitops import BRANCH_PREFIX, GitError, branch_exists, commit_branch, git
from nodes.improve.ports import ImproveServices
from nodes.improve.propose import proposal_id, revisable
from nodes.improve.safety import diff_paths
from state.improve import ImproveState, Outcome, Proposal, RunSummary
from state.review import ReviewDecision


def _replace(state: ImproveState, index: int, proposal: Proposal) -> list[Proposal]:
    proposals = list(state["proposals"])
    proposals[index] = proposal
    return proposals


def commit_message(state: ImproveState, proposal: Proposal) -> str:
    """Return a commit message citing the evidence, the checks and the proposal id."""
    by_id = {f.id: f for f in state.get("findings", [])}
    evidence = "\n".join(
        f"- {f.location}: {f.message} ({f.measure:g} {f.unit})" for fid in proposal.finding_ids if (f := by_id.get(fid))
    )
    checks = "\n".join(f"- {c.name}: {c.summary}" for c in proposal.checks)
    return (
        f"{proposal.title}\n\n{proposal.rationale}\n\nExpected effect: {proposal.expected_effect}\n\n"
        f"Evidence:\n{evidence or '- (none recorded)'}\n\nChecks:\n{checks}\n\n"
        f"Proposal: {proposal.id}\nProposed-by: nova improve ({proposal.author}), approved by review"
    )


def applied_commit(repo: Path, branch: str, pid: str) -> str | None:
    """Return the branch tip when it already carries this proposal (a re-run after a crash), else None."""
    if not branch_exists(repo, branch):
        return None
    body = git(repo, "log", "-1", "--format=%H%n%B", f"refs/heads/{branch}")
    sha, _, message = body.partition("\n")
    return sha if f"Proposal: {pid}" in message else None


def make_apply_proposal(services: ImproveServices) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that commits an approved proposal to `nova/improve-<id>` (never pushed)."""

    async def apply_proposal(state: ImproveState) -> dict[str, Any]:
        """Commit the approved diff on a new branch from the scanned HEAD; refuse a second apply."""
        index, proposal = state["current"], current_proposal(state)
        repo, branch = Path(state["target"]), f"{BRANCH_PREFIX}{proposal.id}"
        history = await services.outcomes.history(state["target"])
        done = next((o for o in history if o.proposal_id == proposal.id and o.decision in ("approved", "edited")), None)
        existing = await asyncio.to_thread(applied_commit, repo, branch, proposal.id)
        if done is not None or existing is not None:
            where = existing or (done.commit if done else None)
            note = f"refused: proposal {proposal.id} was applied already ({branch} {str(where)[:10]})"
            updated = proposal.model_copy(update={"status": "applied", "branch": branch, "commit": where})
            return {"proposals": _replace(state, index, updated), "log": [note]}
        if proposal.status != "validated":
            note = f"refused: proposal {proposal.id} is {proposal.status}, not validated"
            return {"proposals": _replace(state, index, proposal.model_copy(update={"reason": note})), "log": [note]}
        try:
            sha = await asyncio.to_thread(
                commit_branch, repo, state["head"], branch, proposal.diff, commit_message(state, proposal)
            )
        except GitError as exc:
            updated = proposal.model_copy(update={"status": "dropped", "reason": f"apply failed: {exc}"})
            return {"proposals": _replace(state, index, updated), "log": [f"{proposal.id}: apply failed: {exc}"]}
        updated = proposal.model_copy(update={"status": "applied", "branch": branch, "commit": sha})
        return {
            "proposals": _replace(state, index, updated),
            "log": [f"{proposal.id}: committed {sha[:10]} on {branch}"],
        }

    return apply_proposal


async def accept_edit(state: ImproveState) -> dict[str, Any]:
    """Turn the reviewer's edited diff into a new draft, which goes through safety and validation again."""
    index, proposal = state["current"], current_proposal(state)
    decision = ReviewDecision.model_validate(
        {k: v for k, v in (state.get("decision") or {}).items() if k != "proposal_id"}
    )
    diff = edited_diff(decision)
    diff = diff if diff.endswith("\n") else diff + "\n"
    edited = proposal.model_copy(
        update={
            "id": proposal_id(state["head"], diff),
            "diff": diff,
            "files": list(diff_paths(diff).paths),
            "author": "reviewer",
            "status": "drafted",
            "checks": [],
            "reason": "",
            "revision_of": proposal.id,
            "attempts": proposal.attempts + 1,
            "title": proposal.title if proposal.title.endswith("(edited)") else f"{proposal.title} (edited)",
        }
    )
    proposals = _replace(state, index, proposal.model_copy(update={"status": "superseded", "reason": "edited"}))
    proposals.insert(index + 1, edited)  # reviewed next, before the proposals still waiting
    return {"proposals": proposals, "log": [f"{proposal.id}: edited by the reviewer as {edited.id}"]}


def outcome_for(state: ImproveState, proposal: Proposal, decision: str, comment: str = "") -> Outcome:
    """Return the stored form of a proposal's fate."""
    return Outcome(
        proposal_id=proposal.id,
        target=state["target"],
        finding_ids=proposal.finding_ids,
        fingerprints=proposal.fingerprints,
        decision=decision,
        comment=comment,
        branch=proposal.branch,
        commit=proposal.commit,
        diff=proposal.diff,
    )


def make_record_outcome(services: ImproveServices) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that stores the reviewer's verdict on the current proposal."""

    async def record_outcome(state: ImproveState) -> dict[str, Any]:
        """Store approved, edited-and-approved, rejected (with the comment) or ignored."""
        index, proposal = state["current"], current_proposal(state)
        decision = state.get("decision") or {}
        kind = decision.get("type")
        update: dict[str, Any] = {}
        if kind == "respond":
            comment = str(decision.get("args") or "")
            proposal = proposal.model_copy(update={"status": "rejected", "reason": comment})
            outcome = outcome_for(state, proposal, "rejected", comment)
        elif kind == "ignore":
            proposal = proposal.model_copy(update={"status": "ignored"})
            outcome = outcome_for(state, proposal, "ignored")
        elif proposal.status == "applied":
            outcome = outcome_for(state, proposal, "edited" if proposal.author == "reviewer" else "approved")
        else:
            outcome = outcome_for(state, proposal, "dropped", proposal.reason)
        await services.outcomes.record(outcome)
        update["proposals"] = _replace(state, index, proposal)
        update["outcomes"] = [outcome]
        update["decision"] = None
        return update

    return record_outcome


def make_record_drops(services: ImproveServices) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that stores refused and dropped proposals (so unchanged evidence is not retried)."""

    async def record_drops(state: ImproveState) -> dict[str, Any]:
        """Record each refused or finally dropped proposal once."""
        seen = {(o.proposal_id, o.decision) for o in state.get("outcomes", [])}
        proposals = state.get("proposals", [])
        fresh: list[Outcome] = []
        for p in proposals:
            if p.status not in ("refused", "dropped") or p.author == "reviewer" or revisable(p, proposals):
                continue
            decision = "refused" if p.status == "refused" else "dropped"
            if (p.id, decision) in seen:
                continue
            outcome = outcome_for(state, p, decision, p.reason)
            await services.outcomes.record(outcome)
            fresh.append(outcome)
        return {"outcomes": fresh} if fresh else {}

    return record_drops


def next_for_review(proposals: list[Proposal]) -> int | None:
    """Return the index of the next proposal for the gate: validated, or a reviewer's edit that failed checks."""
    for i, p in enumerate(proposals):
        if p.status == "validated" or (p.status in ("dropped", "refused") and p.author == "reviewer"):
            return i
    return None


async def pick_proposal(state: ImproveState) -> dict[str, Any]:
    """Point the gate at the next proposal to review, or finish with the run summary."""
    index = next_for_review(state.get("proposals", []))
    if index is None:
        return {"current": -1, "summary": summarise(state)}
    return {"current": index}


def route_after_pick(state: ImproveState) -> Literal["review_proposal", "__end__"]:
    """Go to the gate while proposals await review."""
    return "review_proposal" if state.get("current", -1) >= 0 else "__end__"


def make_route_after_record(can_draft: bool) -> Callable[[ImproveState], Literal["revise_proposals", "pick_proposal"]]:
    """Build the edge that re-proposes a rejected proposal once (with a model), else moves on."""

    def route_after_record(state: ImproveState) -> Literal["revise_proposals", "pick_proposal"]:
        proposals = state.get("proposals", [])
        if can_draft and any(p.status == "rejected" and revisable(p, proposals) for p in proposals):
            return "revise_proposals"
        return "pick_proposal"

    return route_after_record


def summarise(state: ImproveState) -> RunSummary:
    """Count findings, proposals and their fates (for the CLI and the run's output)."""
    proposals = state.get("proposals", [])
    drafted = [p for p in proposals if p.diff and p.author != "reviewer"]

    def count(*statuses: str) -> int:
        return sum(p.status in statuses for p in drafted)

    return RunSummary(
        findings=len(state.get("findings", [])),
        selected=len(state.get("selected", [])),
        proposals=len(drafted),
        refused=count("refused"),
        validated=sum(bool(p.checks) and all(c.ok for c in p.checks) for p in drafted),
        dropped=count("dropped"),
        approved=count("applied", "approved") + sum(p.status == "applied" for p in proposals if p.author == "reviewer"),
        rejected=count("rejected"),
        ignored=count("ignored"),
        applied=sum(p.status == "applied" for p in proposals),
    )
