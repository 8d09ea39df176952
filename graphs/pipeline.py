"""Pipelines: definitions loaded from graphs/pipelines/*.toml and compiled into one LangGraph graph.

Every step of every pipeline is a node named `<pipeline>.<step>`; `start_pipeline` checks the arguments
and jumps to the named pipeline's first step; `finish_pipeline` sets the result. A step that still fails
after its retries stops the run at that step: its checkpoint keeps the earlier outputs, and invoking the
thread again (`nova pipeline resume`) re-runs only the failed step onwards.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from pydantic import ValidationError

from graphs.registry import CardError, CardProblem, Registry
from nodes.models import ModelLoader
from nodes.pipeline import (
    PipelineTool,
    make_agent_step,
    make_finish_pipeline,
    make_review_step,
    make_start_pipeline,
    make_tool_step,
    step_retry,
)
from state.context import Context
from state.pipeline import PipelineInput, PipelineOutput, PipelineSpec, PipelineState

PIPELINES_DIR = Path(__file__).parent / "pipelines"
FINISH = "finish_pipeline"


class PipelineError(CardError):
    """One or more pipeline definitions are invalid; lists every problem (file, field, reason)."""

    def __init__(self, problems: list[CardProblem]) -> None:
        super().__init__(problems)
        self.args = ("invalid pipeline definitions:\n" + "\n".join(f"  - {p}" for p in problems),)


def load_pipelines(
    directory: Path = PIPELINES_DIR,
    *,
    agents: Collection[str] | None = None,
    tools: Collection[str] | None = None,
) -> dict[str, PipelineSpec]:
    """Load and validate every `*.toml` definition; agents and tools named must exist when given."""
    problems: list[CardProblem] = []
    specs: dict[str, PipelineSpec] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            spec = PipelineSpec.model_validate(raw)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(CardProblem(path, "-", f"not valid TOML: {exc}"))
            continue
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "-"
                problems.append(CardProblem(path, where, err["msg"]))
            continue
        if spec.name != path.stem:
            problems.append(CardProblem(path, "name", f"name {spec.name!r} disagrees with the file name"))
        if spec.name in specs:
            problems.append(CardProblem(path, "name", f"duplicate pipeline {spec.name!r}"))
        for i, step in enumerate(spec.steps):
            if agents is not None and step.agent and step.agent not in agents:
                problems.append(CardProblem(path, f"steps.{i}.agent", f"unknown agent {step.agent!r}"))
            named = [step.tool, step.review.check_tool if step.review else None]
            for tool in filter(None, named):
                if tools is not None and tool not in tools:
                    problems.append(
                        CardProblem(path, f"steps.{i}", f"unknown pipeline tool {tool!r} (known: {sorted(tools)})")
                    )
        specs[spec.name] = spec
    if problems:
        raise PipelineError(problems)
    return specs


def node_name(pipeline: str, step: str) -> str:
    """Return the graph node of a pipeline step."""
    return f"{pipeline}.{step}"


def _onward(spec: PipelineSpec, index: int) -> str:
    """Return the node after step `index`: the next step's, or the finish after the last."""
    return node_name(spec.name, spec.steps[index + 1].id) if index + 1 < len(spec.steps) else FINISH


def _route_after_review(spec: PipelineSpec, index: int) -> Callable[[PipelineState], str]:
    step = spec.steps[index]
    assert step.review is not None
    onward = _onward(spec, index)
    redraft = node_name(spec.name, step.review.redraft_from) if step.review.redraft_from else FINISH

    def route_after_review(state: PipelineState) -> str:
        if state.get("status") in ("rejected", "ignored"):
            return FINISH
        decision = (state.get("outputs") or {}).get(step.id, {}).get("decision")
        return redraft if decision == "respond" else onward

    return route_after_review


def _route_after_refusal(spec: PipelineSpec, index: int) -> Callable[[PipelineState], Awaitable[str]]:
    step = spec.steps[index]
    assert step.on_refused is not None
    onward = _onward(spec, index)
    redraft = node_name(spec.name, step.on_refused.redraft_from)

    async def route_after_refusal(state: PipelineState) -> str:
        # This pass's record, not the step's output: a pass that skipped the step leaves an older output in place.
        mine = [r for r in state.get("steps") or [] if r["step"] == step.id]
        return redraft if mine and mine[-1]["status"] == "refused" else onward

    return route_after_refusal


def build_pipeline_graph(
    specs: Mapping[str, PipelineSpec],
    *,
    registry: Registry,
    models: ModelLoader,
    tools: Mapping[str, PipelineTool],
) -> StateGraph[PipelineState, Context, PipelineInput, PipelineOutput]:
    """Compile every definition's steps into one graph that runs the pipeline named in its input."""
    builder = StateGraph(
        PipelineState, context_schema=Context, input_schema=PipelineInput, output_schema=PipelineOutput
    )
    firsts = {name: node_name(name, spec.steps[0].id) for name, spec in specs.items()}
    start = make_start_pipeline(specs)

    def start_pipeline(state: PipelineState) -> Command[Any]:
        """Check the arguments, then go to the named pipeline's first step."""
        return Command(update=start(state), goto=firsts[state["pipeline"]])

    builder.add_node("start_pipeline", start_pipeline, destinations=tuple(firsts.values()))
    finish: Any = make_finish_pipeline(specs)
    builder.add_node(FINISH, finish)
    for spec in specs.values():
        targets = sorted({node_name(spec.name, s.id) for s in spec.steps} | {FINISH})  # where a routed step may go
        for i, step in enumerate(spec.steps):
            name = node_name(spec.name, step.id)
            if step.kind == "agent":
                assert step.agent is not None
                node: Any = make_agent_step(step, registry.get(step.agent), models)
            elif step.kind == "tool":
                assert step.tool is not None
                node = make_tool_step(step, tools[step.tool])
            else:
                assert step.review is not None
                check = tools[step.review.check_tool] if step.review.check_tool else None
                node = make_review_step(step, check)
            policy = step_retry(step) if step.kind != "review" else None
            builder.add_node(name, node, retry_policy=policy)
            if step.kind == "review":
                builder.add_conditional_edges(name, _route_after_review(spec, i), targets)
            elif step.on_refused is not None:
                builder.add_conditional_edges(name, _route_after_refusal(spec, i), targets)
            elif i + 1 < len(spec.steps):
                builder.add_edge(name, node_name(spec.name, spec.steps[i + 1].id))
            else:
                builder.add_edge(name, FINISH)
    builder.add_edge(START, "start_pipeline")
    builder.add_edge(FINISH, END)
    return builder
