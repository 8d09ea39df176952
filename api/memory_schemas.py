"""HTTP models of the `/nova/memory` endpoints (the records themselves live in nodes/memory_records.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import RequestBody, Response, ThreadId
from nodes.memory_records import MemoryRecord
from nodes.memory_rules import MAX_MEMORY_CHARS
from state.memory import MemoryTier


class Provenance(Response):
    """Where a memory came from."""

    thread_id: str | None
    message_id: str | None
    agent_id: str | None
    method: str
    extracted_at: datetime


class MemoryOut(Response):
    """One stored memory with its standing, history link and provenance."""

    id: str
    text: str
    kind: str
    subject: str
    value: str | None
    tier: str
    status: str
    namespace: str
    pinned: bool
    confidence: float
    reason: str
    use_count: int
    last_used_at: datetime | None
    valid_from: datetime
    superseded_by: str | None
    superseded_at: datetime | None
    created_at: datetime
    provenance: Provenance

    @classmethod
    def of(cls, r: MemoryRecord) -> MemoryOut:
        """Render a record."""
        return cls(
            id=r.id,
            text=r.text,
            kind=r.kind,
            subject=r.subject,
            value=r.value,
            tier=r.tier,
            status=r.status,
            namespace=r.namespace,
            pinned=r.pinned,
            confidence=r.confidence,
            reason=r.reason,
            use_count=r.use_count,
            last_used_at=r.last_used_at,
            valid_from=r.valid_from,
            superseded_by=r.superseded_by,
            superseded_at=r.superseded_at,
            created_at=r.created_at,
            provenance=Provenance(
                thread_id=r.thread_id,
                message_id=r.message_id,
                agent_id=r.agent_id,
                method=r.method,
                extracted_at=r.extracted_at,
            ),
        )


class MemoryCounts(Response):
    """How many memories the caller has: live ones per tier, and the superseded and discarded history."""

    core: int
    archive: int
    superseded: int
    discarded: int
    total: int


class MemoryOverview(Response):
    """The caller's core profile (active core memories, pinned first) and counts."""

    user_id: str
    core: list[MemoryOut]
    counts: MemoryCounts


class MemoryHit(Response):
    """A search result."""

    id: str
    subject: str
    text: str
    tier: MemoryTier
    score: float


class MemoryHits(Response):
    """Search results, best first."""

    query: str
    results: list[MemoryHit]


class MemoryEvent(Response):
    """Something that happened to a memory."""

    created_at: datetime
    action: str
    reason: str
    thread_id: str | None
    detail: dict[str, Any]


class MemoryDetailOut(Response):
    """A memory, what it replaced, what replaced it, and its events."""

    memory: MemoryOut
    replaced: list[MemoryOut]
    replaced_by: MemoryOut | None
    events: list[MemoryEvent]


class SubjectHistory(Response):
    """Every memory ever stored about a subject, oldest first: the supersession chain."""

    subject: str
    memories: list[MemoryOut]


class RememberRequest(RequestBody):
    """Store a memory as if the user had said "remember that ..."."""

    text: str = Field(min_length=1, max_length=MAX_MEMORY_CHARS)
    thread_id: ThreadId | None = None


class RememberResult(Response):
    """What the write path did with each statement in the text."""

    outcome: str
    stored: bool


class ForgetResult(Response):
    """A forgotten (discarded, recoverable) or purged memory."""

    id: str
    purged: bool
    outcome: str
    memory: MemoryOut | None


class PinRequest(BaseModel):
    """Pin (the default) or unpin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pinned: bool = True


class ImportResult(Response):
    """What an import wrote (all of it, in one transaction)."""

    created: int
    skipped: int
