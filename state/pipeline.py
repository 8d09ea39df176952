"""Pipelines as data: a definition (steps, inputs, conditions, retry, timeout) and the state it runs on.

A definition lives in `graphs/pipelines/<name>.toml`; the format is documented in graphs/pipelines/README.md.
Values flow between steps through references: `args.NAME`, `steps.STEP` (a step's whole output) and
`steps.STEP.KEY`. `{ref?}` is optional: it may name a later step (a redraft reads the review's
comment) and is empty until that step has run. A step input that is exactly one `{reference}`
receives the value itself; any other text is a template where each `{reference}` becomes the value's text.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypedDict

from state.reducers import merge_dict

StepKind = Literal["agent", "tool", "review"]
PipelineStatus = Literal["running", "done", "failed", "awaiting_review", "rejected", "ignored"]

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
REF_RE = re.compile(r"\{([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)(\?)?\}")
CONDITION_RE = re.compile(
    r"^\s*(?P<neg>not\s+)?(?P<ref>[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)\s*(?:(?P<op>==|!=)\s*'(?P<value>[^']*)')?\s*$"
)


def references(text: str) -> list[tuple[str, bool]]:
    """Return the `{reference}` names in a template, each with whether it is optional (`{ref?}`)."""
    return [(name, bool(optional)) for name, optional in REF_RE.findall(text)]


class RetrySpec(BaseModel):
    """How often a step is tried before the pipeline stops at it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=2, ge=1, le=10)
    initial_interval: float = Field(default=0.5, ge=0.0, le=60.0)
    backoff_factor: float = Field(default=2.0, ge=1.0, le=10.0)


class ArgSpec(BaseModel):
    """One pipeline argument; `extract` is a regex whose first group finds it in a chat request.

    `from_pasted`: when `extract` finds nothing, the text the request pastes (after a colon, quoted, or on the
    lines after the first) is the value, as in "AIREP bug: <what happens>. Take it through to a fix."
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    required: bool = True
    default: str | None = None
    extract: str | None = None
    from_pasted: bool = False

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"argument name {value!r} must be lowercase letters, digits and underscores")
        return value

    @field_validator("extract")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if re.compile(value).groups < 1:
                    raise ValueError("needs one capturing group")
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class ReviewSpec(BaseModel):
    """What a review step shows and what a reviewer may do there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    description: str = ""
    allow_edit: bool = True
    allow_respond: bool = True
    allow_ignore: bool = True
    check_tool: str | None = None
    redraft_from: str | None = None
    max_redrafts: int = Field(default=1, ge=0, le=5)


class RedraftSpec(BaseModel):
    """A tool step's answer to a refusal (StepRefused): back to an earlier agent step with the reason, N times.

    The agent step's prompt reads the reason as `{steps.STEP.refused?}`; once the run has used up its redrafts
    (counted over the whole run), the refusal stops the run as any other would.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    redraft_from: str
    max_redrafts: int = Field(default=1, ge=1, le=5)


class StepSpec(BaseModel):
    """One step: an agent call, a tool call or a review gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: StepKind
    description: str = ""
    agent: str | None = None
    prompt: str = ""
    tool: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)
    when: str | None = None
    retry: RetrySpec = RetrySpec()
    timeout_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    review: ReviewSpec | None = None
    on_refused: RedraftSpec | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"step id {value!r} must be lowercase letters, digits and underscores")
        return value

    @field_validator("when")
    @classmethod
    def _condition_shape(cls, value: str | None) -> str | None:
        if value is not None and not CONDITION_RE.match(value):
            raise ValueError(
                f"condition {value!r} must be `REF`, `not REF`, `REF == 'text'` or `REF != 'text'`"
                " (REF like steps.check.applies)"
            )
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> StepSpec:
        if self.kind == "agent" and not self.agent:
            raise ValueError(f"step {self.id}: an agent step needs `agent` (an agent card id)")
        if self.kind == "agent" and not self.prompt:
            raise ValueError(f"step {self.id}: an agent step needs `prompt`")
        if self.kind == "tool" and not self.tool:
            raise ValueError(f"step {self.id}: a tool step needs `tool`")
        if self.kind == "review" and self.review is None:
            raise ValueError(f"step {self.id}: a review step needs a [steps.review] table")
        if self.kind != "review" and self.review is not None:
            raise ValueError(f"step {self.id}: only review steps take `review`")
        if self.kind != "tool" and self.on_refused is not None:
            raise ValueError(f"step {self.id}: only tool steps take `on_refused`")
        return self

    def templates(self) -> list[str]:
        """Return every text of this step that may hold references."""
        texts = [*self.inputs.values(), self.prompt]
        if self.review is not None:
            texts.append(self.review.description)
        return texts


class PipelineSpec(BaseModel):
    """A pipeline: arguments, ordered steps, and the reference that is its result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = Field(min_length=10)
    args: tuple[ArgSpec, ...] = ()
    steps: tuple[StepSpec, ...] = Field(min_length=1)
    result: str

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"pipeline name {value!r} must be lowercase letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> PipelineSpec:
        arg_names = {a.name for a in self.args}
        every = [s.id for s in self.steps]
        seen: list[str] = []
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            refs = [r for t in step.templates() for r in references(t)]
            if step.when:
                match = CONDITION_RE.match(step.when)
                assert match is not None
                refs.append((match["ref"], False))
            for ref, optional in refs:
                self._check_ref(ref, arg_names, every if optional else seen, f"step {step.id}")
            if step.review and step.review.redraft_from and step.review.redraft_from not in seen:
                raise ValueError(f"step {step.id}: redraft_from {step.review.redraft_from!r} is not an earlier step")
            if step.on_refused and step.on_refused.redraft_from not in seen:
                raise ValueError(
                    f"step {step.id}: on_refused.redraft_from {step.on_refused.redraft_from!r} is not an earlier step"
                )
            seen.append(step.id)
        for ref, _ in references(self.result) or [(self.result, False)]:
            self._check_ref(ref, arg_names, seen, "result")
        return self

    @staticmethod
    def _check_ref(ref: str, arg_names: set[str], steps: list[str], where: str) -> None:
        parts = ref.split(".")
        if parts[0] == "args" and len(parts) == 2 and parts[1] in arg_names:
            return
        if parts[0] == "steps" and len(parts) >= 2 and parts[1] in steps:
            return
        raise ValueError(
            f"{where}: reference {{{ref}}} must be args.<declared argument> or steps.<earlier step>[.key];"
            f" arguments: {sorted(arg_names)}, earlier steps: {steps}"
        )

    def step(self, step_id: str) -> StepSpec:
        """Return a step by id."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"pipeline {self.name} has no step {step_id!r}; steps: {[s.id for s in self.steps]}")


class StepRecord(TypedDict):
    """What happened at one step, for progress, status and failure reports."""

    step: str
    status: Literal["done", "skipped", "decided", "refused"]
    summary: str
    ms: float


class PipelineInput(TypedDict):
    """Which pipeline to run and its arguments."""

    pipeline: str
    args: dict[str, Any]


class PipelineOutput(TypedDict, total=False):
    """What a finished (or stopped) pipeline hands back."""

    pipeline: str
    status: PipelineStatus
    result: Any
    steps: list[StepRecord]


class PipelineState(TypedDict, total=False):
    """A pipeline run's checkpointed state.

    Attributes:
        pipeline: The definition's name.
        args: The validated arguments.
        outputs: Each completed step's output by step id (kept when a later step fails).
        steps: The log of completed, skipped and decided steps, in order.
        redrafts: How often a reviewer's comment has sent the run back to redraft.
        status: Where the run stands; `done` only once the result is complete.
        result: The pipeline's result, set only when every step has finished.
    """

    pipeline: str
    args: dict[str, Any]
    outputs: Annotated[dict[str, Any], merge_dict]
    steps: Annotated[list[StepRecord], operator.add]
    redrafts: int
    status: PipelineStatus
    result: Any
