"""Routing decisions: what was chosen, from which candidates, and why."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CLARIFY = "clarify"
RouteMethod = Literal[
    "embedding", "llm", "override", "follow-up", "fallback", "clarify-answer", "small-talk", "review-ref"
]
RouterMode = Literal["embedding", "hybrid"]


class Candidate(BaseModel):
    """One agent's score for a request, with the examples that matched it best."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    score: float
    matched: tuple[str, ...] = ()


class RouteDecision(BaseModel):
    """The router's verdict for one request, kept in state and in the routing log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chosen: str
    candidates: tuple[Candidate, ...] = ()
    reason: str
    method: RouteMethod
    latency_ms: float = 0.0
    fallback: str | None = Field(default=None, description="why a hybrid decision fell back to embeddings")
    text: str = ""
    topic_agent: str | None = Field(
        default=None, description="small talk: the agent the conversation was with, whom a follow-up goes back to"
    )
    request: str | None = Field(
        default=None,
        description="the request the chosen agent works on when this message is none: the one a clarifying "
        "question asked about, or the one a route correction sends on",
    )

    @property
    def is_clarify(self) -> bool:
        """Return True when the router asks instead of choosing."""
        return self.chosen == CLARIFY


class LLMRoute(BaseModel):
    """Structured output the chat model returns when it re-ranks candidates."""

    model_config = ConfigDict(extra="forbid")

    choice: str = Field(description="the chosen agent id from the candidates, or 'clarify'")
    reason: str = Field(description="one short sentence")
