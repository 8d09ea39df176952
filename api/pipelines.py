"""Pipelines in the runtime: the compiled graph's wiring, the port chat uses, and `nova pipeline ...`."""

from __future__ import annotations

import argparse
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.graph import StateGraph
from rich.console import Console
from rich.markup import escape

from api.graph_threads import GraphThreads, Outcome, ThreadNotFound
from api.settings import Settings
from graphs.pipeline import build_pipeline_graph, load_pipelines
from graphs.registry import Registry
from nodes.erp.project import ProjectReader
from nodes.models import ModelLoader
from nodes.pipeline import PipelineInputError, StepError, StepRefused, describe_outcome, validate_args
from nodes.pipeline_tools import PipelineToolDeps, build_pipeline_tools
from nodes.services import MemoryPort, TurnRef
from nodes.workspace import Workspace
from state.pipeline import PipelineSpec

if TYPE_CHECKING:
    from api.runtime import NovaRuntime

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ERP = ROOT / "graphs" / "erp_sample"
GITHUB_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class GitHubIssues:
    """Issues read from the GitHub REST API with a token (NOVA_GITHUB_TOKEN)."""

    token: str
    api_url: str = "https://api.github.com"

    async def issue(self, repo: str, number: int) -> dict[str, Any]:
        """Return one issue, or raise StepRefused (missing) / StepError (network, retried)."""
        import asyncio

        if not re.fullmatch(r"[A-Za-z0-9][\w-]*/[A-Za-z0-9][\w.-]*", repo) or ".." in repo:
            raise StepRefused(f"repo {repo!r} must look like owner/name")
        return await asyncio.to_thread(self._get, f"{self.api_url.rstrip('/')}/repos/{repo}/issues/{number}")

    def _get(self, url: str) -> dict[str, Any]:
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=GITHUB_TIMEOUT_S) as response:
                data = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                raise StepRefused(f"GitHub answered {exc.code} for {url}") from None
            raise StepError(f"GitHub answered {exc.code} for {url}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise StepError(f"cannot reach GitHub: {exc}") from None
        return {
            "number": data.get("number"),
            "title": data.get("title"),
            "body": data.get("body") or "",
            "labels": [label.get("name") for label in data.get("labels", []) if isinstance(label, dict)],
            "state": data.get("state"),
        }


def tool_deps(
    settings: Settings, memory: MemoryPort, workspace: Workspace | None, projects: ProjectReader | None = None
) -> PipelineToolDeps:
    """Return what pipeline tools need in this process (`projects`: the ERP reads shared with the erp.* agents)."""
    github = GitHubIssues(settings.github_token, settings.github_api_url) if settings.github_token else None
    return PipelineToolDeps(
        memory=memory,
        workspace=workspace,
        erp_project=settings.erp_project or SAMPLE_ERP,
        issues_file=settings.erp_issues or SAMPLE_ERP / "issues.json",
        output_dir=settings.home / "outputs",
        issue_source=github,
        projects=projects or ProjectReader(),
    )


def build_pipelines(
    registry: Registry, models: ModelLoader, deps: PipelineToolDeps
) -> tuple[dict[str, PipelineSpec], StateGraph[Any, Any, Any, Any]]:
    """Load the definitions, check them against the roster and tools, and build the pipeline graph."""
    tools = build_pipeline_tools(deps)
    specs = load_pipelines(agents=registry.ids, tools=tools)
    for card in registry:
        if card.pipeline and card.pipeline not in specs:
            raise ValueError(f"agent card {card.id} names pipeline {card.pipeline!r}, which is not defined")
    return specs, build_pipeline_graph(specs, registry=registry, models=models, tools=tools)


@dataclass
class RuntimePipelines:
    """The pipeline port backed by the runtime's graph threads (chat starts pipelines through it)."""

    specs: dict[str, PipelineSpec]
    threads: Callable[[], GraphThreads]

    def definitions(self) -> dict[str, PipelineSpec]:
        """Return the loaded definitions."""
        return self.specs

    async def start(self, ref: TurnRef, name: str, args: dict[str, str]) -> dict[str, Any]:
        """Run a pipeline on a new thread owned by the same user; link it to the conversation."""
        outcome = await self.threads().start(
            "pipeline",
            {"pipeline": name, "args": args},
            user_id=ref.user_id,
            title=f"{name} " + " ".join(f"{k}={v}" for k, v in args.items() if v),  # unset optional args: no "repo="
            metadata={"pipeline": name, "origin_thread": ref.thread_id},
        )
        return outcome.to_json()


@dataclass
class RuntimeWork:
    """The work port backed by the runtime's graph threads (curation runs and the review inbox from chat)."""

    threads: Callable[[], GraphThreads]

    async def start(self, ref: TurnRef, graph_id: str, payload: dict[str, Any], title: str) -> dict[str, Any]:
        """Run a served graph on a new thread of the user's, linked to the conversation."""
        outcome = await self.threads().start(
            graph_id, payload, user_id=ref.user_id, title=title, metadata={"origin_thread": ref.thread_id}
        )
        return outcome.to_json()

    async def pending_reviews(self, user_id: str) -> list[dict[str, Any]]:
        """Return the user's threads waiting at a gate."""
        from api.reviews import pending_reviews

        threads = self.threads()
        return await pending_reviews(threads.pool, user_id, threads.graphs.get)

    async def decide(self, user_id: str, thread_id: str, decision: dict[str, Any], gate: str) -> dict[str, Any]:
        """Answer the thread's gate (GraphThreads.decide: that gate only, validated, one reviewer at a time)."""
        return (await self.threads().decide(thread_id, user_id, decision, gate=gate)).to_json()


# ---------------------------------------------------------------------------- nova pipeline


def add_pipeline_commands(subparsers: Any) -> None:
    """Add `nova pipeline list|show|run|status|resume`."""
    p = subparsers.add_parser("pipeline", help="multi-step pipelines: list, show, run, status, resume")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every pipeline and what it does")
    show = sub.add_parser("show", help="a pipeline's arguments and steps")
    show.add_argument("name")
    run = sub.add_parser("run", help="run a pipeline: nova pipeline run issue_fix issue=101")
    run.add_argument("name")
    run.add_argument("args", nargs="*", metavar="key=value")
    run.add_argument("--json", action="store_true")
    status = sub.add_parser("status", help="where a pipeline thread stands")
    status.add_argument("thread")
    status.add_argument("--json", action="store_true")
    resume = sub.add_parser("resume", help="re-run a failed pipeline from the failed step")
    resume.add_argument("thread")
    resume.add_argument("--json", action="store_true")


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """Parse `key=value` words, naming the first that is malformed."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"argument {pair!r} must look like key=value")
        out[key.strip()] = value
    return out


STEP_MARKS = {
    "done": "[green]✓[/green]",
    "skipped": "[dim]–[/dim]",
    "decided": "[cyan]◆[/cyan]",
    "refused": "[yellow]↺[/yellow]",  # a tool step's refusal sent the run back to redraft (on_refused)
}


def print_step(console: Console) -> Callable[[str, dict[str, Any]], None]:
    """Return a progress printer: one line per step as it completes."""

    def show(node: str, update: dict[str, Any]) -> None:
        for record in update.get("steps") or []:
            mark = STEP_MARKS[record["status"]]
            console.print(f"{mark} {record['step']} [dim]({record['ms']:.0f} ms)[/dim] {escape(record['summary'])}")

    return show


async def run_pipeline_command(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Carry out `nova pipeline ...`."""
    from api.runtime import NovaRuntime

    need_model = args.action in ("run", "resume")
    rt = await NovaRuntime.open(settings, need_model=need_model)
    try:
        return await _pipeline(rt, args, console)
    finally:
        await rt.close()


async def _pipeline(rt: NovaRuntime, args: argparse.Namespace, console: Console) -> int:
    specs = rt.pipelines.specs
    if args.action == "list":
        for name, spec in sorted(specs.items()):
            console.print(f"[bold]{name}[/bold]  {escape(spec.description)}")
        return 0
    if args.action == "show":
        spec = _spec(specs, args.name)
        console.print(f"[bold]{spec.name}[/bold]: {escape(spec.description)}")
        for arg in spec.args:
            need = "required" if arg.required else f"default {arg.default!r}" if arg.default else "optional"
            console.print(escape(f"  arg {arg.name} ({need}): {arg.description}"))
        for i, step in enumerate(spec.steps, 1):
            what = step.agent or step.tool or (step.review.action if step.review else "")
            extra = f" when {step.when}" if step.when else ""
            limits = "" if step.kind == "review" else f" retry {step.retry.max_attempts}x, timeout {step.timeout_s:g}s"
            console.print(escape(f"  {i}. {step.id} [{step.kind}: {what}]{extra}{limits}  {step.description}"))
        return 0
    threads = rt.graph_threads
    user = rt.settings.user
    if args.action == "run":
        spec = _spec(specs, args.name)
        try:
            given = validate_args(spec, parse_pairs(args.args))
        except PipelineInputError as exc:
            raise ValueError(str(exc)) from None
        outcome = await threads.start(
            "pipeline",
            {"pipeline": spec.name, "args": given},
            user_id=user,
            title=f"{spec.name} " + " ".join(args.args),
            metadata={"pipeline": spec.name},
            on_update=None if args.json else print_step(console),
        )
    elif args.action == "status":
        outcome = await _pipeline_thread(threads, args.thread, user, "status")
    else:
        outcome = await _pipeline_thread(
            threads, args.thread, user, "resume", on_update=None if args.json else print_step(console)
        )
    return report(outcome, console, as_json=args.json, progress_shown=args.action in ("run", "resume"))


def _spec(specs: dict[str, PipelineSpec], name: str) -> PipelineSpec:
    spec = specs.get(name)
    if spec is None:
        raise ValueError(f"unknown pipeline {name!r}; known: {sorted(specs)}")
    return spec


async def _pipeline_thread(
    threads: GraphThreads, thread: str, user: str, action: str, on_update: Any = None
) -> Outcome:
    row = await threads.owned(thread, user)
    if (row["metadata"] or {}).get("graph_id") != "pipeline":
        raise ThreadNotFound(f"thread {thread} is not a pipeline run")
    if action == "status":
        return await threads.status(thread, user)
    return await threads.resume(thread, user, on_update=on_update)


def report(outcome: Outcome, console: Console, *, as_json: bool, progress_shown: bool = False) -> int:
    """Print an outcome; exit 0 when done or waiting for review, 1 on failure."""
    data = outcome.to_json()
    if as_json:
        print(json.dumps(data, default=str))
    else:
        name = str(outcome.values.get("pipeline", outcome.graph_id))
        console.print(escape(describe_outcome(name, data, with_steps=not progress_shown)))
    return 1 if outcome.status == "error" else 0
