"""Memory records, their export format, errors and the SQL fragments the memory modules share."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nodes.memory_rules import MAX_MEMORY_CHARS, SUBJECT_RE
from state.memory import MemoryKind, MemoryRef, MemoryStatus, MemoryTier

FindingKind = Literal["duplicate", "conflict", "stale", "promote"]
NAMESPACE_RE = re.compile(r"^(user|project:[a-z0-9][a-z0-9-]*|agent:[a-z0-9][a-z0-9_.-]*)$")
COLUMNS = (
    "id, user_id, namespace, text, kind, subject, value, tier, status, thread_id, message_id, agent_id, "
    "extracted_at, method, confidence, valid_from, superseded_by, superseded_at, last_used_at, use_count, "
    "pinned, reason, created_at"
)
LIVE = "status = 'active' AND tier <> 'discarded'"  # the predicate of the per-user vector indexes, verbatim


class ConnectionFactory(Protocol):
    """Anything with `.connection()` yielding an autocommit psycopg async connection (the api/ pool)."""

    def connection(self, timeout: float | None = None) -> AbstractAsyncContextManager[Any]:
        """Lend a connection."""
        ...


class MemoryInputError(ValueError):
    """Bad input to a memory operation; the message says what and where."""


class MemoryTooLong(MemoryInputError):
    """A memory text longer than MAX_MEMORY_CHARS."""


class UnknownMemory(MemoryInputError):
    """No memory of this user has that id (or the prefix is ambiguous)."""


class UnknownSubject(MemoryInputError):
    """No memory of this user has that subject."""


class ImportFailed(MemoryInputError):
    """An import was rejected; nothing was written."""


@dataclass(frozen=True)
class MemoryRecord:
    """One stored memory with its provenance and history links."""

    id: str
    user_id: str
    namespace: str
    text: str
    kind: str
    subject: str
    value: str | None
    tier: str
    status: str
    thread_id: str | None
    message_id: str | None
    agent_id: str | None
    extracted_at: datetime
    method: str
    confidence: float
    valid_from: datetime
    superseded_by: str | None
    superseded_at: datetime | None
    last_used_at: datetime | None
    use_count: int
    pinned: bool
    reason: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MemoryRecord:
        """Build from a `memories` row."""
        return cls(
            **{k: row[k] for k in cls.__dataclass_fields__ if k not in ("id", "superseded_by")},
            id=str(row["id"]),
            superseded_by=str(row["superseded_by"]) if row["superseded_by"] else None,
        )

    def ref(self, score: float) -> MemoryRef:
        """Return what a turn's state records about this memory."""
        return MemoryRef(id=self.id, subject=self.subject, text=self.text, tier=as_tier(self.tier), score=score)


@dataclass(frozen=True)
class MemoryDetail:
    """A memory, what it replaced, what replaced it, and what happened to it."""

    record: MemoryRecord
    replaced: list[MemoryRecord]
    replaced_by: MemoryRecord | None
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class Finding:
    """One curation finding and the action proposed (or taken)."""

    kind: FindingKind
    ids: tuple[str, ...]
    subject: str
    texts: tuple[str, ...]
    action: str


@dataclass(frozen=True)
class Conflict:
    """Active memories about one subject that disagree, and the resolution curation proposes.

    Attributes:
        subject: The subject of the newest memory.
        records: The conflicting memories, oldest first.
        keep: The id the suggestion keeps current (pinned first, then the newest statement).
        reason: Why that one.
    """

    subject: str
    records: tuple[MemoryRecord, ...]
    keep: str
    reason: str

    @property
    def ids(self) -> tuple[str, ...]:
        """Return the ids of the conflicting memories."""
        return tuple(r.id for r in self.records)


@dataclass
class CurationReport:
    """What `curate` found and, with `apply`, did."""

    findings: list[Finding] = field(default_factory=list)
    applied: int = 0

    def count(self, kind: FindingKind) -> int:
        """Return how many findings of a kind there are."""
        return sum(f.kind == kind for f in self.findings)


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote."""

    created: int
    skipped: int


class MemoryExport(BaseModel):
    """One line of `nova memory export`; the user id is never exported or imported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    namespace: str
    text: str = Field(min_length=1)
    kind: MemoryKind
    subject: str
    value: str | None = None
    tier: MemoryTier
    status: MemoryStatus = "active"
    thread_id: str | None = None
    message_id: str | None = None
    agent_id: str | None = None
    extracted_at: datetime
    method: str = Field(min_length=1, max_length=40)
    confidence: float = Field(ge=0.0, le=1.0)
    valid_from: datetime
    superseded_by: uuid.UUID | None = None
    superseded_at: datetime | None = None
    last_used_at: datetime | None = None
    use_count: int = Field(default=0, ge=0)
    pinned: bool = False
    reason: str = ""
    created_at: datetime

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if len(value) > MAX_MEMORY_CHARS:
            raise ValueError(f"is {len(value)} characters; a memory holds at most {MAX_MEMORY_CHARS}")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not NAMESPACE_RE.match(value):
            raise ValueError("must be user, project:<slug> or agent:<id>")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not SUBJECT_RE.match(value):
            raise ValueError("must look like entity/attribute, e.g. user/home_city")
        return value

    @model_validator(mode="after")
    def _status(self) -> MemoryExport:
        if (self.status == "superseded") != (self.superseded_at is not None):
            raise ValueError("superseded_at must be set exactly when status is 'superseded'")
        return self


def as_tier(value: str) -> MemoryTier:
    """Narrow a tier column value to the MemoryTier literal."""
    if value == "core":
        return "core"
    if value == "archive":
        return "archive"
    return "discarded"


def index_lists(rows: int) -> int:
    """Return the IVFFlat list count of a per-user index over `rows` memories: sqrt(rows), as pgvector advises."""
    return max(1, round(math.sqrt(rows)))


def vector_literal(values: Sequence[float] | np.ndarray[Any, Any]) -> str:
    """Format a vector as a pgvector literal (sent as text and cast with ::vector)."""
    return "[" + ",".join(f"{float(x):.7g}" for x in values) + "]"


def estimate_tokens(text: str) -> int:
    """Estimate tokens as characters / 4 (English prose), at least one."""
    return len(text) // 4 + 1


def as_aware(ts: datetime | None) -> datetime | None:
    """Treat a naive timestamp as UTC."""
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def age_days(ts: datetime | None, now: datetime) -> float:
    """Return how many days ago a timestamp was (0 when unknown)."""
    ts = as_aware(ts)
    return max(0.0, (now - ts).total_seconds() / 86400) if ts else 0.0
