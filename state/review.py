"""Review-gate payloads in the agent-inbox shape.

Actions used across Nova, so inboxes can render them:
    apply_patch: args `diff` (unified diff), `rationale`, `evidence`, `checks`, `risk`, `target`.
    publish_text: args `text` (the draft), `audience`, `sources`.
    resolve_memory_conflict: args `subject`, `memories` (the conflicting records), `suggestion`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DecisionType = Literal["accept", "edit", "respond", "ignore"]


class ReviewConfig(BaseModel):
    """Which decisions a reviewer may take at this gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_accept: bool = True
    allow_edit: bool = True
    allow_respond: bool = True
    allow_ignore: bool = True


class ActionRequest(BaseModel):
    """The action awaiting review and its arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    args: dict[str, Any] = Field(default_factory=dict)


class ReviewRequest(BaseModel):
    """What a gate shows the reviewer (the payload of `interrupt`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_request: ActionRequest
    config: ReviewConfig = ReviewConfig()
    description: str = ""


class ReviewDecision(BaseModel):
    """The reviewer's answer, as passed to `Command(resume=...)`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: DecisionType
    args: Any = None

    def allowed_by(self, config: ReviewConfig) -> bool:
        """Return True when the gate's config permits this decision."""
        return {
            "accept": config.allow_accept,
            "edit": config.allow_edit,
            "respond": config.allow_respond,
            "ignore": config.allow_ignore,
        }[self.type]
