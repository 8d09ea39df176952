"""Agent cards: the data that declares a specialist."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ModelTier = Literal["fast", "strong"]
ReviewPolicy = Literal["none", "before_final"]

AGENT_ID_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
SCOPE_RE = re.compile(r"^(user|agent|project:[a-z0-9][a-z0-9_-]*)$")


class AgentCard(BaseModel):
    """A specialist declared as data: boundary, examples, prompt, tools, model tier and memory scopes.

    Only `id`, `description` and `examples` are required, so users can evaluate routing over rosters
    of their own; the roster shipped with Nova fills every field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    description: str = Field(min_length=10)
    examples: tuple[str, ...] = Field(min_length=1)
    not_for: tuple[str, ...] = ()
    pattern: str = "chat"
    tools: tuple[str, ...] = ()
    model_tier: ModelTier = "fast"
    memory_scopes: tuple[str, ...] = ("user",)
    review: ReviewPolicy = "none"
    system_prompt: str = ""
    max_steps: int = Field(default=6, ge=1, le=20)
    pipeline: str | None = None
    small_talk: bool = False  # takes greetings, thanks and acknowledgements without scoring (one card at most)
    # takes any request that names a review waiting at a gate by its id ("show me the diff for de763530"), without
    # scoring: ids are no words the scorer could learn (one card at most)
    review_inbox: bool = False
    # tool_agent: tools run with the request as input before the model's first choice, their results in view; one
    # not also in `tools` is never the model's to pick (decide_review acts on the owner's words, once)
    preload: tuple[str, ...] = ()
    # tool_agent: preload tools whose outputs, when any is non-empty, are the whole answer, as the tools gave them
    # (no model call): what a tool did is said as it did it (orchestration.reviews: decide_review, list_reviews)
    answer_from: tuple[str, ...] = ()
    # tool_agent: the answer must rest on a result of this tool; without one Nova says so instead of asking the
    # model, which would guess (erp.query: no number without a query that ran)
    grounded_by: str | None = None
    # tool_agent: tools whose result's first line (its headline: "10 finding(s) in the whole project") is shown
    # under the reply, so the evidence stands beside the model's prose (erp.tenancy: erp_tenancy)
    cites: tuple[str, ...] = ()
    # chat: a request that gives no text of its own and points back ("summarise", "make it more formal", "proofread
    # that") works on the reply before it, which is put in the request the model reads (nodes/agents.py)
    works_on_last_reply: bool = False

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not AGENT_ID_RE.match(value):
            raise ValueError(f"id {value!r} must look like '<domain>.<name>' (lowercase, digits, underscores)")
        return value

    @field_validator("examples")
    @classmethod
    def _examples_clean(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip() for v in value)
        if any(not v for v in cleaned):
            raise ValueError("examples must not be empty strings")
        seen: set[str] = set()
        for v in cleaned:
            key = v.casefold()
            if key in seen:
                raise ValueError(f"example repeated: {v!r}")
            seen.add(key)
        return cleaned

    @model_validator(mode="after")
    def _grounded_by_a_tool(self) -> AgentCard:
        if unknown := [t for t in self.answer_from if t not in self.preload]:
            raise ValueError(f"answer_from names tools the card does not preload: {unknown}")
        if unknown := [t for t in self.cites if t not in (*self.tools, *self.preload)]:
            raise ValueError(f"cites names tools the card does not have: {unknown}")
        if self.grounded_by is not None and self.grounded_by not in (*self.tools, *self.preload):
            raise ValueError(f"grounded_by names a tool the card does not have: {self.grounded_by!r}")
        return self

    @field_validator("memory_scopes")
    @classmethod
    def _scopes_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            if not SCOPE_RE.match(scope):
                raise ValueError(f"memory scope {scope!r} must be 'user', 'agent' or 'project:<slug>'")
        return value

    @property
    def domain(self) -> str:
        """Return the domain part of the id (`erp` for `erp.query`)."""
        return self.id.split(".", 1)[0]
