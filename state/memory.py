"""Memory records and what a turn recalled."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

MemoryTier = Literal["core", "archive", "discarded"]
MemoryStatus = Literal["active", "superseded"]
MemoryKind = Literal["fact", "preference", "decision", "project", "episode"]


class MemoryRef(BaseModel):
    """A memory put into a turn's context, kept in state so the turn can be explained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    subject: str
    text: str
    tier: MemoryTier
    score: float
