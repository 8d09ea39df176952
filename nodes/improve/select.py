"""Select: rank findings into candidates, skipping what a reviewer turned down unless the evidence changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from nodes.improve.ports import ImproveServices
from state.improve import Finding, FindingKind, ImproveState, Outcome

ACTIONABLE: frozenset[FindingKind] = frozenset({"lint", "duplicate", "misroute"})
"""Kinds an offline fixer can act on; a model can draft the others."""

DEFAULT_MAX_PROPOSALS = 5
CANDIDATES_PER_PROPOSAL = 3
_FINAL = {"approved": "approved before", "edited": "approved (edited) before", "rejected": "rejected before"}


def remembered(outcomes: Iterable[Outcome]) -> dict[str, tuple[str, str, str]]:
    """Return finding id -> (fingerprint, decision, comment) of the latest reviewed outcome per finding."""
    memory: dict[str, tuple[str, str, str]] = {}
    for o in outcomes:
        if o.decision not in ("approved", "edited", "rejected", "ignored", "dropped"):
            continue
        for i, fid in enumerate(o.finding_ids):
            fp = o.fingerprints[i] if i < len(o.fingerprints) else ""
            memory[fid] = (fp, o.decision, o.comment)
    return memory


def choose(
    findings: list[Finding], outcomes: list[Outcome], *, limit: int, can_draft: bool
) -> tuple[list[str], list[str]]:
    """Return (selected finding ids, skip notes); rejections count only while the evidence is unchanged."""
    memory = remembered(outcomes)
    selected: list[str] = []
    skipped: list[str] = []
    for f in sorted(findings, key=lambda f: (-f.score, f.id)):
        past = memory.get(f.id)
        if past and past[0] == f.fingerprint:
            decision, comment = past[1], past[2]
            note = _FINAL.get(decision, f"{decision} before")
            skipped.append(f"{f.id}: {note}, evidence unchanged" + (f" ({comment})" if comment else ""))
            continue
        if f.kind not in ACTIONABLE and not can_draft:
            continue
        if f.kind in ("lint", "type") and f.path is None:
            continue
        if f.kind == "lint" and not f.detail.get("safe_fixes") and not can_draft:
            continue
        selected.append(f.id)
        if len(selected) >= limit:
            break
    return selected, skipped


def make_select_findings(services: ImproveServices, *, can_draft: bool) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that ranks findings and drops those already decided on unchanged evidence."""

    async def select_findings(state: ImproveState) -> dict[str, Any]:
        """Pick the best candidates for proposals, remembering the reviewer's past answers."""
        history = await services.outcomes.history(state["target"])
        limit = int(state.get("max_proposals") or DEFAULT_MAX_PROPOSALS) * CANDIDATES_PER_PROPOSAL
        selected, skipped = choose(state.get("findings", []), history, limit=limit, can_draft=can_draft)
        return {
            "selected": selected,
            "skipped": skipped,
            "log": [f"selected {len(selected)} findings, skipped {len(skipped)} decided before"],
        }

    return select_findings
