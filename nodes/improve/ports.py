"""Ports of the improvement loop: Nova's runtime signals in, proposal outcomes out; api/ implements them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from state.improve import Outcome


@dataclass(frozen=True)
class RuntimeSignals:
    """Rows read from Nova's logs; each list is already aggregated and sorted worst first.

    Attributes:
        misroutes: `{text, wrong, correct, count, last_at}` per corrected request.
        node_errors: `{node, kind, count, example, last_at}` per failing node and error kind.
        slow_turns: `{agent, count, p95_ms, max_ms}` per agent whose turns are slowest.
        memory_conflicts: `{user_id, subject, values, texts}` per subject with disagreeing active memories.
    """

    misroutes: list[dict[str, Any]] = field(default_factory=list)
    node_errors: list[dict[str, Any]] = field(default_factory=list)
    slow_turns: list[dict[str, Any]] = field(default_factory=list)
    memory_conflicts: list[dict[str, Any]] = field(default_factory=list)


class SignalsPort(Protocol):
    """Reads Nova's runtime signals (routing corrections, turn log, memories)."""

    async def signals(self, *, limit: int = 20) -> RuntimeSignals:
        """Return the worst runtime signals."""
        ...


class OutcomePort(Protocol):
    """Stores what happened to proposals, so the next selection learns from the reviewer."""

    async def record(self, outcome: Outcome) -> None:
        """Store an outcome (idempotent per proposal and decision)."""
        ...

    async def history(self, target: str) -> list[Outcome]:
        """Return the outcomes recorded for a target repository, oldest first."""
        ...


class NullSignals:
    """No runtime signals (a target other than Nova, or no database)."""

    async def signals(self, *, limit: int = 20) -> RuntimeSignals:
        """Return nothing."""
        return RuntimeSignals()


class MemoryOutcomes:
    """Outcomes kept in the process (tests, Studio without a database)."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    async def record(self, outcome: Outcome) -> None:
        """Keep an outcome once per proposal and decision."""
        if not any(o.proposal_id == outcome.proposal_id and o.decision == outcome.decision for o in self.outcomes):
            self.outcomes.append(outcome)

    async def history(self, target: str) -> list[Outcome]:
        """Return the target's outcomes."""
        return [o for o in self.outcomes if o.target == target]


@dataclass(frozen=True)
class ImproveServices:
    """What the improvement graph reaches outside itself, injected by the builder's caller."""

    signals: SignalsPort = field(default_factory=NullSignals)
    outcomes: OutcomePort = field(default_factory=MemoryOutcomes)
