"""Ports through which nodes reach persistence; api/ supplies Postgres-backed implementations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.messages import AnyMessage

from state.memory import MemoryRef, Remembered, WriteOutcome
from state.pipeline import PipelineSpec
from state.routing import RouteDecision


@dataclass(frozen=True)
class TurnRef:
    """Where a memory or a decision came from."""

    user_id: str
    thread_id: str
    message_id: str | None = None
    agent_id: str | None = None


class MemoryPort(Protocol):
    """Long-term memory: recall before routing, observe after the reply, and explicit operations."""

    async def recall(self, user_id: str, text: str, *, project: str | None = None, qvec: Any = None) -> list[MemoryRef]:
        """Return the core profile plus the archive matches for a request (`qvec`: its query vector, if known)."""
        ...

    async def observe(self, ref: TurnRef, text: str) -> Remembered:
        """Extract, triage and store memories from a user message; return what each candidate did."""
        ...

    async def search(self, user_id: str, query: str, *, limit: int = 8) -> list[MemoryRef]:
        """Search active memories."""
        ...

    async def remember(self, ref: TurnRef, text: str) -> Remembered:
        """Store an explicit memory; return what each statement of it did."""
        ...

    async def forget(self, user_id: str, query: str) -> str:
        """Discard (recoverably) the best match for a query and say what happened."""
        ...


class RouteLogPort(Protocol):
    """The routing log: every decision, so "why did this go there?" is answerable."""

    async def record(self, decision: RouteDecision, *, thread_id: str, user_id: str) -> None:
        """Append a decision."""
        ...

    async def recent(self, *, user_id: str, thread_id: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Return the latest decisions, newest first."""
        ...


class CorrectionsPort(Protocol):
    """Routing corrections: "that should have gone to erp.query" becomes a labelled example."""

    async def add(self, *, user_id: str, text: str, correct: str, wrong: str | None, thread_id: str | None) -> int:
        """Record a correction and return its id."""
        ...


class HealthPort(Protocol):
    """System checks for the health agent and `nova doctor`."""

    async def checks(self) -> list[dict[str, Any]]:
        """Return `{name, ok, detail, fix}` per check."""
        ...


class PipelinePort(Protocol):
    """Pipelines a conversation can start; each runs on its own thread so its review gate waits in the inbox."""

    def definitions(self) -> dict[str, PipelineSpec]:
        """Return the loaded pipeline definitions by name."""
        ...

    async def start(self, ref: TurnRef, name: str, args: dict[str, str]) -> dict[str, Any]:
        """Run a pipeline to its end, its review gate or its failure; return the outcome as JSON."""
        ...


class WorkPort(Protocol):
    """Graph threads a conversation can start or look at: curation runs, work paused at review gates."""

    async def start(self, ref: TurnRef, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        """Run a served graph on a new thread of the user's until it ends or pauses; return the outcome."""
        ...

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        """Return the user's threads waiting at a review gate, newest first."""
        ...

    async def decide(self, user_id: str, thread_id: str, decision: dict[str, Any], gate: str) -> dict[str, Any]:
        """Answer the thread's pending gate `gate` (refused if another is pending now) and run on; the outcome."""
        ...


class NullWork:
    """No graph threads in this process."""

    async def start(self, ref: TurnRef, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        """Refuse: there is nowhere to run it."""
        raise RuntimeError(f"graph {graph_id} is not available in this process")

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        """Return nothing."""
        return []

    async def decide(self, user_id: str, thread_id: str, decision: dict[str, Any], gate: str) -> dict[str, Any]:
        """Refuse: there is no gate to answer."""
        raise RuntimeError(f"thread {thread_id} is not available in this process")


class ErpPort(Protocol):
    """The ERP the erp.* agents work on: its schema, its data (scoped read-only SQL), its code and issues."""

    async def schema(self, query: str) -> str:
        """Describe the models matching the query (all models when it is empty)."""
        ...

    async def query(self, user_id: str, sql: str) -> str:
        """Run read-only SQL scoped to the user's tenant and branch, or say why it was refused."""
        ...

    async def tenancy(self, query: str) -> str:
        """Audit the code for reads missing a tenant or branch filter (optionally one file or model)."""
        ...

    async def issues(self, query: str) -> str:
        """List the open issues, or show the one the query names."""
        ...


class NullErp:
    """No ERP configured in this process."""

    async def schema(self, query: str) -> str:
        """Say so."""
        return "no ERP project is configured in this process"

    async def query(self, user_id: str, sql: str) -> str:
        """Say so."""
        return "no ERP database is configured in this process"

    async def tenancy(self, query: str) -> str:
        """Say so."""
        return "no ERP project is configured in this process"

    async def issues(self, query: str) -> str:
        """Say so."""
        return "no ERP issues are configured in this process"


class NullPipelines:
    """No pipelines in this process (graphs compiled without persistence)."""

    def definitions(self) -> dict[str, PipelineSpec]:
        """Return nothing."""
        return {}

    async def start(self, ref: TurnRef, name: str, args: dict[str, str]) -> dict[str, Any]:
        """Refuse: there is nowhere to run it."""
        raise RuntimeError("pipelines are not available in this process; use `nova pipeline run`")


class TranscriptPort(Protocol):
    """The full transcript of a thread, kept outside the checkpoint once turns are compacted."""

    async def append(self, thread_id: str, messages: Sequence[AnyMessage]) -> None:
        """Append messages moved out of the thread's state."""
        ...


class NullTranscript:
    """A transcript that keeps nothing (graphs compiled without persistence)."""

    async def append(self, thread_id: str, messages: Sequence[AnyMessage]) -> None:
        """Keep nothing."""


class NullRouteLog:
    """A routing log that keeps nothing (graphs compiled without persistence, e.g. for Studio)."""

    async def record(self, decision: RouteDecision, *, thread_id: str, user_id: str) -> None:
        """Discard the decision."""

    async def recent(self, *, user_id: str, thread_id: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Return nothing."""
        return []


class NullMemory:
    """A memory that remembers nothing."""

    async def recall(self, user_id: str, text: str, *, project: str | None = None, qvec: Any = None) -> list[MemoryRef]:
        """Return nothing."""
        return []

    async def observe(self, ref: TurnRef, text: str) -> Remembered:
        """Store nothing."""
        return Remembered(())

    async def search(self, user_id: str, query: str, *, limit: int = 8) -> list[MemoryRef]:
        """Return nothing."""
        return []

    async def remember(self, ref: TurnRef, text: str) -> Remembered:
        """Refuse politely."""
        return Remembered((WriteOutcome("refused", "memory is not configured in this process"),))

    async def forget(self, user_id: str, query: str) -> str:
        """Refuse politely."""
        return "memory is not configured in this process"


class NullCorrections:
    """Corrections that are acknowledged but not kept."""

    async def add(self, *, user_id: str, text: str, correct: str, wrong: str | None, thread_id: str | None) -> int:
        """Keep nothing."""
        return 0


class NullHealth:
    """No checks available."""

    async def checks(self) -> list[dict[str, Any]]:
        """Return nothing."""
        return []


@dataclass(frozen=True)
class Services:
    """Everything a node may touch outside the graph, injected by the builder's caller."""

    memory: MemoryPort
    route_log: RouteLogPort
    health: HealthPort
    corrections: CorrectionsPort = field(default_factory=NullCorrections)
    pipelines: PipelinePort = field(default_factory=NullPipelines)
    transcript: TranscriptPort = field(default_factory=NullTranscript)
    work: WorkPort = field(default_factory=NullWork)
    erp: ErpPort = field(default_factory=NullErp)

    @classmethod
    def null(cls) -> Services:
        """Return services that persist nothing."""
        return cls(memory=NullMemory(), route_log=NullRouteLog(), health=NullHealth())
