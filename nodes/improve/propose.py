"""Propose: turn selected findings into diffs, with deterministic fixers offline or a model when configured.

Fixers run in a scratch worktree of the target's HEAD; the diff is `git diff` of that worktree, so every
proposal is a real, applicable change against HEAD. Revisions (after failed checks, or once after a
reviewer's comment) are drafted by the model; deterministic fixers are not retried, their proposal is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from nodes.improve.analysis import BlockSite, Duplicate
from nodes.improve.fixers import (
    FixerError,
    add_card_example,
    card_path,
    extract_duplicate,
    formatted,
    ruff_fix,
    tidy,
)
from nodes.improve.gitops import reset_tree, tree_diff, worktree
from nodes.improve.prompts import IMPROVE_SYSTEM_PROMPT, REVISE_PROMPT
from nodes.improve.safety import diff_paths
from nodes.improve.scan import short_hash
from nodes.improve.select import DEFAULT_MAX_PROPOSALS
from nodes.models import ModelLoader
from state.improve import Finding, ImproveState, Proposal, RefactorDraft, Risk

MAX_ATTEMPTS = 3
EXCERPT_CHARS = 12_000


def proposal_id(head: str, diff: str) -> str:
    """Return the id of a proposal: the same diff on the same commit is the same proposal."""
    return short_hash(head, diff)[:10]


def _proposal(head: str, findings: list[Finding], diff: str, **fields: Any) -> Proposal:
    return Proposal(
        id=proposal_id(head, diff),
        finding_ids=[f.id for f in findings],
        fingerprints=[f.fingerprint for f in findings],
        diff=diff,
        files=list(diff_paths(diff).paths),
        **fields,
    )


def _evidence(findings: list[Finding]) -> str:
    return "; ".join(f"{f.location}: {f.message}" for f in findings)


def draft_offline(tree: Path, target: Path, head: str, findings: list[Finding], chosen: list[str]) -> list[Proposal]:
    """Run the deterministic fixers on the chosen findings in the scratch worktree `tree`."""
    by_id = {f.id: f for f in findings}
    out: list[Proposal] = []
    done: set[str] = set()
    for fid in chosen:
        f = by_id.get(fid)
        if f is None or fid in done:
            continue
        try:
            if f.kind == "lint" and f.path and f.detail.get("safe_fixes"):
                group = [g for g in findings if g.kind == "lint" and g.path == f.path and g.detail.get("safe_fixes")]
                group = [g for g in group if g.id in chosen] or [f]
                ruff_fix(tree, target, [f.path])
                diff = tree_diff(tree)
                if diff.strip():
                    codes = ", ".join(sorted(str(g.symbol) for g in group))
                    out.append(
                        _proposal(
                            head,
                            group,
                            diff,
                            title=f"ruff safe fixes in {f.path} ({codes})",
                            author="ruff",
                            rationale=f"ruff reports {_evidence(group)}; its safe fixes do not change behaviour.",
                            expected_effect=f"{sum(int(g.detail['safe_fixes']) for g in group)} fewer lint violations",
                            risk="low",
                        )
                    )
                done.update(g.id for g in group)
            elif f.kind == "duplicate" and f.path:
                dup = Duplicate(
                    key=str(f.detail["key"]),
                    lines=int(f.measure),
                    statements=int(f.detail["statements"]),
                    sites=[BlockSite(**s) for s in f.detail["sites"]],
                )
                path = tree / f.path
                was_formatted = formatted(tree, target, f.path)
                path.write_text(extract_duplicate(path.read_text(encoding="utf-8"), dup), encoding="utf-8")
                tidy(tree, target, f.path, was_formatted=was_formatted)
                diff = tree_diff(tree)
                out.append(
                    _proposal(
                        head,
                        [f],
                        diff,
                        title=f"extract the block duplicated in {f.symbol} into a function",
                        author="extract_duplicate",
                        rationale=f"{f.message}. One function keeps the copies from drifting apart.",
                        expected_effect=f"{int(f.measure)} repeated lines removed; one place to change the logic",
                        risk="medium",
                    )
                )
            elif f.kind == "misroute":
                correct = str(f.detail["correct"])
                card = card_path(tree, correct)
                if not card.exists():
                    raise FixerError(f"no card file for {correct}")
                card.write_text(add_card_example(card.read_text(encoding="utf-8"), str(f.detail["text"])), "utf-8")
                diff = tree_diff(tree)
                out.append(
                    _proposal(
                        head,
                        [f],
                        diff,
                        title=f"add a misrouted request as an example of {correct}",
                        kind="card",
                        author="card_example",
                        rationale=f"{f.message}. The router learns from card examples; the request belongs here.",
                        expected_effect=f"requests like this one route to {correct} without a correction",
                        risk="low",
                    )
                )
        except FixerError as exc:
            out.append(
                Proposal(
                    id=f"x{short_hash(head, fid)[:9]}",
                    title=f"no offline fix for {fid}",
                    author="extract_duplicate" if f.kind == "duplicate" else "card_example",
                    finding_ids=[fid],
                    fingerprints=[f.fingerprint],
                    diff="",
                    rationale="",
                    expected_effect="",
                    status="dropped",
                    reason=str(exc),
                )
            )
        finally:
            reset_tree(tree)
        done.add(fid)
    return out


def _excerpt(root: Path, paths: list[str]) -> str:
    parts = []
    for rel in paths:
        p = root / rel
        if p.is_file():
            parts.append(f"=== {rel}\n{p.read_text(encoding='utf-8', errors='replace')[:EXCERPT_CHARS]}")
    return "\n\n".join(parts)


async def draft_with_model(models: ModelLoader, root: Path, finding: Finding, *, previous: Proposal | None = None,
                           reason: str = "") -> RefactorDraft:  # fmt: skip
    """Ask the strong model for a diff that fixes one finding (or revises a previous diff)."""
    model = models.for_tier("strong").with_structured_output(RefactorDraft)
    files = [finding.path] if finding.path else []
    if previous:
        files = list(dict.fromkeys([*files, *previous.files]))
    messages = [
        SystemMessage(IMPROVE_SYSTEM_PROMPT),
        HumanMessage(
            f"Finding ({finding.kind}, score {finding.score}): {finding.location}: {finding.message}\n"
            f"Measure: {finding.measure} {finding.unit}\n\n{_excerpt(root, files)}"
        ),
    ]
    if previous:
        messages.append(HumanMessage(REVISE_PROMPT.format(reason=reason[:4000], diff=previous.diff[:EXCERPT_CHARS])))
    draft = await model.ainvoke(messages)
    if not isinstance(draft, RefactorDraft):
        draft = RefactorDraft.model_validate(draft)
    return draft


def make_propose_changes(models: ModelLoader | None) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that drafts proposals: fixers for what they can do, the model (if any) for the rest."""

    async def propose_changes(state: ImproveState) -> dict[str, Any]:
        """Draft up to `max_proposals` proposals from the selected findings."""
        target, head = Path(state["target"]), state["head"]
        limit = int(state.get("max_proposals") or DEFAULT_MAX_PROPOSALS)
        findings = state.get("findings", [])
        by_id = {f.id: f for f in findings}
        chosen = state.get("selected", [])
        offline = [fid for fid in chosen if by_id[fid].kind in ("lint", "duplicate", "misroute")]

        def run_fixers() -> list[Proposal]:
            with worktree(target, head) as tree:
                return draft_offline(tree, target, head, findings, offline)

        proposals = await asyncio.to_thread(run_fixers)
        covered = {fid for p in proposals for fid in p.finding_ids}
        if models is not None:
            for fid in chosen:
                if fid in covered or sum(p.status != "dropped" for p in proposals) >= limit:
                    continue
                f = by_id[fid]
                draft = await draft_with_model(models, target, f)
                proposals.append(
                    _proposal(
                        head,
                        [f],
                        draft.diff,
                        title=f"{f.kind} fix for {f.location}",
                        author="model",
                        rationale=draft.rationale,
                        expected_effect=draft.expected_effect,
                        risk=_risk(draft.risk, f),
                    )
                )
        kept = [p for p in proposals if p.status != "dropped"][:limit]
        dropped = [p for p in proposals if p.status == "dropped"]
        return {
            "proposals": [*kept, *dropped],
            "log": [f"drafted {len(kept)} proposals" + (f", {len(dropped)} findings had no fix" if dropped else "")],
        }

    return propose_changes


def _risk(risk: Risk, finding: Finding) -> Risk:
    return "high" if finding.kind in ("complexity", "test_failure") and risk == "low" else risk


def make_revise_proposals(models: ModelLoader | None) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that asks the model to redraft failed proposals, and rejected ones once with the comment."""

    async def revise_proposals(state: ImproveState) -> dict[str, Any]:
        """Redraft revisable proposals; each revision is a new draft that is checked again."""
        if models is None:
            return {}
        target, head = Path(state["target"]), state["head"]
        by_id = {f.id: f for f in state.get("findings", [])}
        out: list[Proposal] = []
        notes: list[str] = []
        for p in state.get("proposals", []):
            out.append(p)
            if not revisable(p, state.get("proposals", [])):
                continue
            finding = by_id.get(p.finding_ids[0])
            if finding is None:
                continue
            draft = await draft_with_model(models, target, finding, previous=p, reason=p.reason)
            revised = _proposal(
                head,
                [finding],
                draft.diff,
                title=p.title,
                author="model",
                rationale=draft.rationale,
                expected_effect=draft.expected_effect,
                risk=_risk(draft.risk, finding),
                attempts=p.attempts + 1,
                revision_of=p.id,
            )
            out.append(revised)
            notes.append(
                f"revised {p.id} as {revised.id} ({'reviewer comment' if p.status == 'rejected' else 'checks'})"
            )
        return {"proposals": out, "log": notes}

    return revise_proposals


def revisable(p: Proposal, proposals: list[Proposal]) -> bool:
    """Return True when a proposal gets another draft: failed model drafts under the limit, rejections once."""
    if any(q.revision_of == p.id for q in proposals):
        return False
    if p.status == "dropped" and p.author == "model" and p.diff:
        return p.attempts < MAX_ATTEMPTS
    if p.status == "rejected" and p.reason and p.author in ("model", "ruff", "extract_duplicate", "card_example"):
        chain = {q.id: q for q in proposals}
        return p.revision_of is None or chain.get(p.revision_of, p).status != "rejected"
    return False
