"""Pipeline step nodes: references, conditions, and one node factory per step kind (agent, tool, review)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy

from nodes.inbox import short_ref
from nodes.models import ModelLoader, is_transient
from nodes.prompts import SPECIALIST_FRAME
from nodes.review import ReviewAnswerError, request_review
from nodes.router import pasted_text
from state.cards import AgentCard
from state.context import Context
from state.pipeline import CONDITION_RE, REF_RE, PipelineSpec, PipelineState, StepRecord, StepSpec
from state.review import ActionRequest, ReviewConfig, ReviewDecision, ReviewRequest


class PipelineInputError(ValueError):
    """Arguments or a reference that cannot work: retrying would not help."""


class StepError(RuntimeError):
    """A step failed in a way a retry may fix (a tool's I/O, a malformed model reply)."""


class StepRefused(ValueError):
    """A step's inputs lead nowhere (no applicable diff, no such issue): stop without retrying."""


@dataclass(frozen=True)
class StepCall:
    """Run-scoped facts a pipeline tool may use (never shown to a model)."""

    user_id: str
    thread_id: str
    pipeline: str
    step: str


PipelineTool = Callable[[dict[str, Any], StepCall], Awaitable[dict[str, Any]]]


def should_retry(exc: Exception) -> bool:
    """Retry what a second attempt may fix: tool and I/O errors, timeouts, transient model errors."""
    if isinstance(exc, PipelineInputError | StepRefused | ReviewAnswerError):
        return False
    return isinstance(exc, StepError | TimeoutError | OSError) or is_transient(exc)


def step_retry(step: StepSpec) -> RetryPolicy:
    """Return the step's declared retry policy."""
    return RetryPolicy(
        max_attempts=step.retry.max_attempts,
        initial_interval=step.retry.initial_interval,
        backoff_factor=step.retry.backoff_factor,
        max_interval=30.0,
        jitter=False,
        retry_on=should_retry,
    )


def resolve(ref: str, state: Mapping[str, Any]) -> Any:
    """Return the value of `args.X`, `steps.S` or `steps.S.KEY` in a pipeline's state."""
    parts = ref.split(".")
    if parts[0] == "args":
        args = state.get("args") or {}
        if parts[1] not in args:
            raise PipelineInputError(f"argument {parts[1]!r} was not given")
        return args[parts[1]]
    outputs = state.get("outputs") or {}
    if parts[1] not in outputs:
        raise PipelineInputError(f"step {parts[1]!r} has no output yet (skipped or not run)")
    value: Any = outputs[parts[1]]
    for key in parts[2:]:
        if not isinstance(value, Mapping) or key not in value:
            raise PipelineInputError(f"{{{ref}}}: step output has no key {key!r}")
        value = value[key]
    return value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


def render(template: str, state: Mapping[str, Any]) -> Any:
    """Fill a template; a template that is exactly one `{ref}` yields the value itself, not its text."""
    whole = REF_RE.fullmatch(template.strip())
    if whole:
        return _lookup(whole, state)
    return REF_RE.sub(lambda m: _text(_lookup(m, state)), template)


def _lookup(match: re.Match[str], state: Mapping[str, Any]) -> Any:
    try:
        return resolve(match.group(1), state)
    except PipelineInputError:
        if match.group(2):
            return ""
        raise


def condition_holds(when: str | None, state: Mapping[str, Any]) -> bool:
    """Evaluate a step's `when`; a reference that has no value counts as empty."""
    if when is None:
        return True
    match = CONDITION_RE.match(when)
    if match is None:
        raise PipelineInputError(f"bad condition {when!r}")
    try:
        value = resolve(match["ref"], state)
    except PipelineInputError:
        value = None
    if match["op"] == "==":
        held = _text(value) == match["value"]
    elif match["op"] == "!=":
        held = _text(value) != match["value"]
    else:
        held = bool(value)
    return not held if match["neg"] else held


def _record(
    step: StepSpec, status: Literal["done", "skipped", "decided", "refused"], summary: str, started: float
) -> StepRecord:
    return {
        "step": step.id,
        "status": status,
        "summary": summary[:300],
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _summary(output: Mapping[str, Any]) -> str:
    if "summary" in output:
        return str(output["summary"])
    return ", ".join(f"{k}: {_text(v)[:60]}" for k, v in list(output.items())[:3])


def first_line(text: str) -> str:
    """Summarise a reply by its first line with words in it; a reply that is JSON by how many objects it holds.

    A code fence (```json) or a lone bracket says nothing of what follows.
    """
    body = text.strip().removeprefix("```json").removeprefix("```").lstrip()
    if body.startswith(("[", "{")) and (objects := json_objects(body)):
        return f"{len(objects)} JSON object(s)"
    lines = [line.strip() for line in text.splitlines() if re.search(r"\w", line)]
    said = [line for line in lines if not line.startswith("```")]
    return (said or [text.strip()])[0]


def json_objects(text: str) -> list[dict[str, Any]]:
    """Return the JSON objects a model's answer holds, outermost only, however laid out.

    One per line, in an array, pretty-printed over many lines, inside a ```json fence, or between sentences: each
    `{` that starts a valid object is read whole and the scan goes on after it.
    """
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = text.find("{")
    while at != -1:
        try:
            item, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at = text.find("{", at + 1)
            continue
        if isinstance(item, dict):
            found.append(item)
        at = text.find("{", end)
    return found


def _thread_id() -> str:
    return str(get_config().get("configurable", {}).get("thread_id", ""))


NodeFn = Callable[[PipelineState, Runtime[Context]], Awaitable[dict[str, Any]]]


def make_start_pipeline(specs: Mapping[str, PipelineSpec]) -> Callable[[PipelineState], dict[str, Any]]:
    """Build the node that validates a run's arguments against its definition."""

    def start_pipeline(state: PipelineState) -> dict[str, Any]:
        """Check the pipeline exists and its arguments are complete; fill defaults."""
        name = state.get("pipeline", "")
        spec = specs.get(name)
        if spec is None:
            raise PipelineInputError(f"unknown pipeline {name!r}; known: {sorted(specs)}")
        return {"args": validate_args(spec, state.get("args") or {}), "status": "running", "redrafts": 0}

    return start_pipeline


def validate_args(spec: PipelineSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Return the arguments with defaults filled, or raise naming what is unknown or missing."""
    declared = {a.name: a for a in spec.args}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise PipelineInputError(f"pipeline {spec.name} has no argument(s) {unknown}; it takes {sorted(declared)}")
    args = {k: v for k, v in given.items() if v is not None and v != ""}
    for arg in spec.args:
        if arg.name not in args and not arg.required:
            args[arg.name] = arg.default if arg.default is not None else ""
    missing = [a.name for a in spec.args if a.required and a.name not in args]
    if missing:
        raise PipelineInputError(
            f"pipeline {spec.name} needs {missing}; e.g. `nova pipeline run {spec.name} "
            + " ".join(f"{m}=..." for m in missing)
            + "`"
        )
    return args


def make_agent_step(step: StepSpec, card: AgentCard, models: ModelLoader) -> NodeFn:
    """Build an agent step: the card's prompt as system message, the step's rendered prompt as the request."""

    async def run_agent_step(state: PipelineState, runtime: Runtime[Context]) -> dict[str, Any]:
        started = time.perf_counter()
        if not condition_holds(step.when, state):
            return {"steps": [_record(step, "skipped", f"skipped: {step.when} is false", started)]}
        prompt = _text(render(step.prompt, state))
        system = SPECIALIST_FRAME.format(
            agent_id=card.id, description=card.description, system_prompt=card.system_prompt.strip()
        )
        model = models.for_tier(card.model_tier)
        try:
            reply = await asyncio.wait_for(
                model.ainvoke([SystemMessage(system), HumanMessage(prompt)]), timeout=step.timeout_s
            )
        except TimeoutError:
            raise TimeoutError(f"{card.id} did not answer within {step.timeout_s:g} s") from None
        text = reply.text.strip()
        if not text:
            raise StepError(f"{card.id} returned an empty reply")
        output = {"text": text, "agent": card.id}
        return {"outputs": {step.id: output}, "steps": [_record(step, "done", first_line(text), started)]}

    run_agent_step.__name__ = step.id
    return run_agent_step


def make_tool_step(step: StepSpec, tool: PipelineTool) -> NodeFn:
    """Build a tool step: rendered inputs in, a dict out, within the step's timeout."""

    async def run_tool_step(state: PipelineState, runtime: Runtime[Context]) -> dict[str, Any]:
        started = time.perf_counter()
        if not condition_holds(step.when, state):
            return {"steps": [_record(step, "skipped", f"skipped: {step.when} is false", started)]}
        inputs = {k: render(v, state) for k, v in step.inputs.items()}
        call = StepCall(runtime.context.user_id, _thread_id(), state.get("pipeline", ""), step.id)
        try:
            output = await asyncio.wait_for(tool(inputs, call), timeout=step.timeout_s)
        except TimeoutError:
            raise TimeoutError(f"tool {step.tool} did not finish within {step.timeout_s:g} s") from None
        except StepRefused as exc:
            redo = step.on_refused
            refusals = sum(1 for r in state.get("steps") or [] if r["step"] == step.id and r["status"] == "refused")
            if redo is None or refusals >= redo.max_redrafts:  # the run's budget, not reset by a later pass
                raise
            summary = f"refused: {exc}; back to {redo.redraft_from} with the reason"
            return {"outputs": {step.id: {"refused": str(exc)}}, "steps": [_record(step, "refused", summary, started)]}
        return {"outputs": {step.id: output}, "steps": [_record(step, "done", _summary(output), started)]}

    run_tool_step.__name__ = step.id
    return run_tool_step


def make_review_step(step: StepSpec, check: PipelineTool | None = None) -> NodeFn:
    """Build a review gate: interrupt with the rendered request; an edit is checked again before it passes.

    `check` (the review's `check_tool`) must be read-only: the node re-runs from its start on resume.
    """
    review = step.review
    assert review is not None

    async def review_step(state: PipelineState, runtime: Runtime[Context]) -> dict[str, Any]:
        started = time.perf_counter()
        if not condition_holds(step.when, state):
            return {"steps": [_record(step, "skipped", f"skipped: {step.when} is false", started)]}
        args = {k: render(v, state) for k, v in step.inputs.items()}
        redrafts = state.get("redrafts", 0)
        request = ReviewRequest(
            action_request=ActionRequest(action=review.action, args=args),
            config=ReviewConfig(
                allow_edit=review.allow_edit,
                allow_respond=review.allow_respond,
                allow_ignore=review.allow_ignore,
            ),
            description=_text(render(review.description, state)) if review.description else step.description,
        )
        while True:
            decision = request_review(request)
            if decision.type != "edit" or check is None:
                break
            edited = {**args, **decision.args}
            call = StepCall(runtime.context.user_id, _thread_id(), state.get("pipeline", ""), step.id)
            try:
                await check(edited, call)
                break
            except (StepRefused, StepError) as exc:
                request = request.model_copy(
                    update={"description": f"{request.description}\n\nYour edit was not accepted: {exc}"}
                )
        output = decision_output(decision, args)
        update: dict[str, Any] = {
            "outputs": {step.id: output},
            "steps": [_record(step, "decided", f"{decision.type}", started)],
        }
        if decision.type == "respond":
            can_redraft = review.redraft_from is not None and redrafts < review.max_redrafts
            update["redrafts"] = redrafts + 1 if can_redraft else redrafts
            if not can_redraft:
                update["status"] = "rejected"
        elif decision.type == "ignore":
            update["status"] = "ignored"
        return update

    review_step.__name__ = step.id
    return review_step


def decision_output(decision: ReviewDecision, args: Mapping[str, Any]) -> dict[str, Any]:
    """Return what later steps read from a review: the decision, the (edited) arguments, the comment."""
    edited = decision.args if decision.type == "edit" and isinstance(decision.args, dict) else {}
    return {
        "decision": decision.type,
        "args": {**args, **edited},
        "edited": bool(edited),
        "comment": decision.args if decision.type == "respond" else "",
    }


def make_finish_pipeline(specs: Mapping[str, PipelineSpec]) -> Callable[[PipelineState], dict[str, Any]]:
    """Build the node that assembles the result once every step has finished."""

    def finish_pipeline(state: PipelineState) -> dict[str, Any]:
        """Set the result from the definition's `result` reference; a stopped run keeps its status."""
        if state.get("status") in ("rejected", "ignored"):
            return {}
        spec = specs[state["pipeline"]]
        return {"result": render(spec.result, state), "status": "done"}

    return finish_pipeline


def extract_args(spec: PipelineSpec, text: str) -> dict[str, str]:
    """Find a pipeline's arguments in a chat request: each argument's `extract` pattern, else pasted text."""
    found: dict[str, str] = {}
    for arg in spec.args:
        match = re.search(arg.extract, text, re.IGNORECASE) if arg.extract is not None else None
        if match and match.group(1):
            found[arg.name] = match.group(1)
        elif arg.from_pasted and (pasted := pasted_text(text)):
            found[arg.name] = pasted
    return found


def describe_outcome(name: str, outcome: Mapping[str, Any], *, with_steps: bool = True, in_chat: bool = False) -> str:
    """Say in a few lines what a pipeline run did and what the owner can do next.

    `with_steps=False` leaves out the step list (already shown as progress). `in_chat`: the owner reads this in a
    conversation, where a review can be shown and decided on by message.
    """
    thread = outcome.get("thread_id", "?")
    values = outcome.get("values") or {}
    done = [s for s in values.get("steps") or [] if s.get("status") != "skipped"]
    lines = [f"Pipeline {name} (thread {thread}):"]
    if with_steps:
        lines += [f"- {s['step']}: {s.get('summary', '')}" for s in done]
    if outcome.get("interrupts"):
        gate = str(outcome["interrupts"][0].get("id", ""))[:8]
        if in_chat:
            lines.append(
                f"Paused for your review (gate {gate}): say 'show {short_ref(str(thread))}' to read it here (or"
                f" `nova reviews show {thread}`), then 'approve it' or 'reject it because ...'."
            )
        else:
            lines.append(
                f"Paused for your review (gate {gate}): `nova reviews show {thread}`, then approve, edit or reject."
            )
    elif outcome.get("error"):
        err = outcome["error"]
        lines.append(f"Stopped at {err.get('step')}: {err.get('error')}")
        lines.append(f"Earlier steps' outputs are kept; after fixing the cause: `nova pipeline resume {thread}`.")
    elif values.get("status") == "done":
        lines.append(f"Done. Result: {_text(values.get('result'))}")
    else:
        lines.append(f"Ended with status {values.get('status')}.")
    return "\n".join(lines)
