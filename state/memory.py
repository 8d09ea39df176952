"""Memory records and what a turn recalled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

MemoryTier = Literal["core", "archive", "discarded"]
MemoryStatus = Literal["active", "superseded"]
MemoryKind = Literal["fact", "preference", "decision", "project", "episode"]
# stored: a new memory (or one this turn's write stored a moment ago); known: merged into one already there;
# discarded: kept out of recall (low value); refused: not stored at all; forgotten / nothing: a forget's result
OutcomeKind = Literal["stored", "known", "discarded", "refused", "forgotten", "nothing"]


class MemoryRef(BaseModel):
    """A memory put into a turn's context, kept in state so the turn can be explained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    subject: str
    text: str
    tier: MemoryTier
    score: float


@dataclass(frozen=True)
class WriteOutcome:
    """What one statement of a remember (or one forget) did: the store's record line and its parts.

    `record` is the line the store logs and returns ("stored in core as user/accountant: ... (replaces: ...)");
    `fact` is the memory's text as stored or already known, `replaces` the texts it superseded.
    """

    kind: OutcomeKind
    record: str
    fact: str = ""
    replaces: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.record


@dataclass(frozen=True)
class Remembered:
    """Every outcome of one remember call, in the message's order; its text is the records joined by "; "."""

    outcomes: tuple[WriteOutcome, ...]

    def __str__(self) -> str:
        return "; ".join(o.record for o in self.outcomes)

    @property
    def stored(self) -> bool:
        """Whether the memory is there now: stored, or already known and merged."""
        return any(o.kind in ("stored", "known") for o in self.outcomes)
