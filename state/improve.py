"""The self-improvement loop: findings, proposals, check results, outcomes, and the graph's state.

A run scans a target git repository (and Nova's runtime signals), ranks the findings, drafts proposals as
unified diffs, validates each in a temporary worktree, and puts the survivors one by one behind a review gate.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

FindingKind = Literal[
    "lint",
    "type",
    "complexity",
    "duplicate",
    "test_failure",
    "slow_test",
    "misroute",
    "node_error",
    "slow_turn",
    "memory_conflict",
]
Risk = Literal["low", "medium", "high"]
ProposalAuthor = Literal["ruff", "extract_duplicate", "card_example", "model", "reviewer"]
ProposalStatus = Literal[
    "drafted", "refused", "dropped", "validated", "approved", "applied", "rejected", "ignored", "superseded"
]
OutcomeDecision = Literal["approved", "edited", "rejected", "ignored", "refused", "dropped"]


class Finding(BaseModel):
    """One piece of evidence: where it is, what was measured, and how much it matters.

    Attributes:
        id: Stable key of the finding (kind, place, rule), the same across runs.
        fingerprint: Hash of the evidence itself; a changed fingerprint means the evidence changed.
        measure: The number behind the finding (count, complexity, seconds, lines) in `unit`.
        score: Rank key in [0, 1]; higher is worth more attention.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: FindingKind
    path: str | None = None
    line: int | None = None
    symbol: str = ""
    message: str
    measure: float = 0.0
    unit: str = ""
    score: float = 0.0
    fingerprint: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def location(self) -> str:
        """Return `path:line` (or the symbol for runtime signals)."""
        if self.path:
            return f"{self.path}:{self.line}" if self.line else self.path
        return self.symbol or "-"


class CheckResult(BaseModel):
    """One validation command and what it said."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ok: bool
    command: str
    duration_s: float = 0.0
    returncode: int | None = None
    timed_out: bool = False
    summary: str = ""
    output: str = ""


class Proposal(BaseModel):
    """A change drafted from findings: a unified diff against the target's HEAD, and why.

    Attributes:
        kind: `code` for source changes, `card` for agent-card or prompt data.
        attempts: How many drafts this proposal took (revisions after failed checks count).
        reason: Why it was refused or dropped, or the reviewer's comment.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    kind: Literal["code", "card"] = "code"
    author: ProposalAuthor
    finding_ids: list[str]
    fingerprints: list[str] = Field(default_factory=list)
    diff: str
    rationale: str
    expected_effect: str
    risk: Risk = "low"
    files: list[str] = Field(default_factory=list)
    status: ProposalStatus = "drafted"
    attempts: int = 1
    checks: list[CheckResult] = Field(default_factory=list)
    reason: str = ""
    branch: str | None = None
    commit: str | None = None
    revision_of: str | None = None


class RefactorDraft(BaseModel):
    """What the model returns when it drafts or revises a change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    diff: str = Field(description="a unified diff with a/ and b/ prefixes, against the files as shown")
    rationale: str = Field(description="why this change, citing the evidence")
    expected_effect: str = Field(description="what should measurably improve")
    risk: Risk = "medium"


class Outcome(BaseModel):
    """What happened to a proposal, kept so the next run's selection learns from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proposal_id: str
    target: str
    finding_ids: list[str]
    fingerprints: list[str]
    decision: OutcomeDecision
    comment: str = ""
    branch: str | None = None
    commit: str | None = None
    diff: str = ""


class RunSummary(BaseModel):
    """The proposal-run summary printed by `nova improve`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    findings: int = 0
    selected: int = 0
    proposals: int = 0
    refused: int = 0
    validated: int = 0
    dropped: int = 0
    approved: int = 0
    rejected: int = 0
    ignored: int = 0
    applied: int = 0


class ImproveInput(TypedDict, total=False):
    """What a run is asked to do.

    Attributes:
        target: Path of the git repository to improve (default: the current directory).
        focus: Only look at this path or dotted module inside the target.
        max_proposals: Upper bound on proposals put in front of the reviewer.
        scan_tests: Test paths run during the scan (default `tests/unit` if it exists, else `tests`).
        smoke_tests: Test paths always run during validation, beside the tests affected by the change.
        time_limit_s: Wall-clock limit of each command run by the scan or the validation.
        run_mypy: Type-check during scan and validation (on by default when the target configures mypy).
    """

    target: str
    focus: str | None
    max_proposals: int
    scan_tests: list[str]
    smoke_tests: list[str]
    time_limit_s: float
    run_mypy: bool


class ImproveState(ImproveInput, total=False):
    """The loop's state; `proposals` is replaced whole by each node (the list is small)."""

    head: str
    findings: list[Finding]
    baseline: dict[str, Any]
    selected: list[str]
    skipped: Annotated[list[str], operator.add]
    proposals: list[Proposal]
    current: int
    outcomes: Annotated[list[Outcome], operator.add]
    decision: dict[str, Any] | None
    summary: RunSummary
    log: Annotated[list[str], operator.add]


class ImproveOutput(TypedDict, total=False):
    """What a finished (or paused) run reports."""

    findings: list[Finding]
    proposals: list[Proposal]
    outcomes: list[Outcome]
    skipped: list[str]
    summary: RunSummary
    log: list[str]
