"""The self-improvement loop's wiring: Postgres ports, the graph factory, and `nova improve`.

`improve_graph(rt)` returns the uncompiled graph for an opened runtime; the runtime compiles it with its saver
and store. `nova improve` runs scan -> proposals with a progress display, stops at the first review gate and
prints the run summary; `nova reviews ...` (or the HTTP API, or Studio) resumes the thread with a
`ReviewDecision` dict, and `resume_review` refuses a thread that has no pending gate or another proposal there.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import StateGraph
from langgraph.types import Command
from psycopg_pool import AsyncConnectionPool
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from api.settings import Settings
from graphs.improve import build_improve_graph
from nodes.improve.apply import summarise
from nodes.improve.ports import ImproveServices, RuntimeSignals
from nodes.models import ModelLoader
from state.improve import ImproveInput, ImproveOutput, ImproveState, Outcome
from state.review import ReviewDecision

Pool = AsyncConnectionPool[Any]

IMPROVE_SERDE_TYPES: list[tuple[str, str]] = [
    ("state.improve", "Finding"),
    ("state.improve", "CheckResult"),
    ("state.improve", "Proposal"),
    ("state.improve", "Outcome"),
    ("state.improve", "RunSummary"),
    ("state.improve", "RefactorDraft"),
]
"""Add these to the runtime's `allowed_msgpack_modules` so checkpoints of this graph load without warnings."""

SLOW_TURN_MS = 2000.0


class ReviewStateError(RuntimeError):
    """A resume that cannot be honoured: nothing is pending, or another proposal is at the gate."""


@dataclass
class PgImproveSignals:
    """Nova's runtime signals from `routing_corrections`, `turn_log` and `memories`."""

    pool: Pool

    async def signals(self, *, limit: int = 20) -> RuntimeSignals:
        """Return misroutes, failing nodes, slow agents and unresolved memory conflicts, worst first."""
        async with self.pool.connection() as conn:
            misroutes = await (
                await conn.execute(
                    "SELECT text, correct, max(wrong) AS wrong, count(*) AS count, max(created_at) AS last_at"
                    " FROM routing_corrections GROUP BY text, correct ORDER BY count(*) DESC, max(id) DESC LIMIT %s",
                    (limit,),
                )
            ).fetchall()
            errors = await (
                await conn.execute(
                    "SELECT coalesce(error_node, '?') AS node, coalesce(error_kind, '?') AS kind, count(*) AS count,"
                    " max(error) AS example, max(created_at) AS last_at FROM turn_log WHERE status = 'error'"
                    " GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT %s",
                    (limit,),
                )
            ).fetchall()
            slow = await (
                await conn.execute(
                    "SELECT coalesce(agent, '?') AS agent, count(*) AS count,"
                    " percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms, max(duration_ms) AS max_ms"
                    " FROM turn_log WHERE status = 'ok' GROUP BY 1 HAVING count(*) >= 3"
                    " AND percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) >= %s"
                    " ORDER BY p95_ms DESC LIMIT %s",
                    (SLOW_TURN_MS, limit),
                )
            ).fetchall()
            conflicts = await (
                await conn.execute(
                    "SELECT user_id, subject, array_agg(DISTINCT lower(value)) AS values, array_agg(text) AS texts"
                    " FROM memories WHERE status = 'active' AND tier <> 'discarded' AND value IS NOT NULL"
                    " GROUP BY user_id, subject HAVING count(DISTINCT lower(value)) > 1 LIMIT %s",
                    (limit,),
                )
            ).fetchall()
        return RuntimeSignals(
            misroutes=[dict(r) for r in misroutes],
            node_errors=[dict(r) for r in errors],
            slow_turns=[dict(r) for r in slow],
            memory_conflicts=[dict(r) for r in conflicts],
        )


@dataclass
class PgOutcomes:
    """Proposal outcomes in `improve_outcomes`."""

    pool: Pool

    async def record(self, outcome: Outcome) -> None:
        """Store an outcome once per proposal and decision."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO improve_outcomes (proposal_id, target, decision, finding_ids, fingerprints, comment,"
                " branch, commit_sha, diff) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (proposal_id, decision) DO NOTHING",
                (
                    outcome.proposal_id,
                    outcome.target,
                    outcome.decision,
                    outcome.finding_ids,
                    outcome.fingerprints,
                    outcome.comment,
                    outcome.branch,
                    outcome.commit,
                    outcome.diff,
                ),
            )

    async def history(self, target: str) -> list[Outcome]:
        """Return a target's outcomes, oldest first."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT proposal_id, target, decision, finding_ids, fingerprints, comment, branch, commit_sha, diff"
                    " FROM improve_outcomes WHERE target = %s ORDER BY id",
                    (target,),
                )
            ).fetchall()
        return [
            Outcome(
                proposal_id=r["proposal_id"],
                target=r["target"],
                decision=r["decision"],
                finding_ids=list(r["finding_ids"]),
                fingerprints=list(r["fingerprints"]),
                comment=r["comment"],
                branch=r["branch"],
                commit=r["commit_sha"],
                diff=r["diff"],
            )
            for r in rows
        ]


def improve_services(pool: Pool) -> ImproveServices:
    """Return the loop's ports over Nova's pool."""
    return ImproveServices(signals=PgImproveSignals(pool), outcomes=PgOutcomes(pool))


def drafting_models(rt: Any) -> ModelLoader | None:
    """Return the model loader when a remote model is configured; Nova's small local model drafts no code."""
    models: ModelLoader | None = getattr(rt, "models", None)
    return models if models is not None and models.kind == "remote" else None


def improve_graph(rt: Any) -> StateGraph[ImproveState, None, ImproveInput, ImproveOutput]:
    """Return the uncompiled improvement graph for an opened `api.runtime.NovaRuntime`."""
    return build_improve_graph(services=improve_services(rt.pool), models=drafting_models(rt))


def improve_serde() -> JsonPlusSerializer:
    """Return the runtime's serializer, whose allow-list includes the loop's state types."""
    from api.runtime import SERDE

    return SERDE


def pending_proposal(snapshot: Any) -> str | None:
    """Return the id of the proposal waiting at the gate of a thread snapshot, or None."""
    for task in getattr(snapshot, "tasks", ()) or ():
        for intr in getattr(task, "interrupts", ()) or ():
            value = getattr(intr, "value", None)
            if isinstance(value, dict):
                args = (value.get("action_request") or {}).get("args") or {}
                if args.get("proposal_id"):
                    return str(args["proposal_id"])
    return None


async def resume_review(
    graph: Any, thread_id: str, decision: ReviewDecision | dict[str, Any], *, proposal_id: str | None = None
) -> dict[str, Any]:
    """Resume an improvement thread's gate, refusing cleanly when nothing (or another proposal) is pending.

    Raises:
        ReviewStateError: the thread is not at a gate (already decided, applied or finished), or the proposal
            at the gate is not `proposal_id`.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    snapshot = await graph.aget_state(config)
    pending = pending_proposal(snapshot)
    if pending is None:
        raise ReviewStateError(f"thread {thread_id} has no proposal awaiting review (already decided or finished)")
    if proposal_id and pending != proposal_id:
        raise ReviewStateError(f"proposal {proposal_id} is not awaiting review; {pending} is (nothing was done)")
    value = decision.model_dump(mode="json") if isinstance(decision, ReviewDecision) else decision
    result: dict[str, Any] = await graph.ainvoke(Command(resume=value), config)
    return result


# ------------------------------------------------------------------------------------------------ CLI


def add_improve_command(subparsers: Any) -> None:
    """Add `nova improve` to the CLI's subparsers."""
    p = subparsers.add_parser("improve", help="scan a repository, propose validated changes, stop at the first review")
    p.add_argument("--target", type=Path, default=None, help="git repository to improve (default: Nova's own tree)")
    p.add_argument("--focus", help="only this path or dotted module inside the target")
    p.add_argument("--max-proposals", type=int, default=5)
    p.add_argument("--tests", nargs="*", default=None, help="test paths run by the scan (default tests/unit)")
    p.add_argument("--smoke", nargs="*", default=None, help="test paths always run when validating a proposal")
    p.add_argument("--time-limit", type=float, default=300.0, help="seconds per command")
    p.add_argument("--no-mypy", action="store_true", help="skip type checking")
    p.add_argument("--thread", help="thread id (default: a new one)")


def nova_root() -> Path:
    """Return Nova's own source tree."""
    return Path(__file__).resolve().parents[1]


async def run_improve_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run `nova improve`: scan, propose, validate, and stop at the first gate with a summary."""
    from api.runtime import NovaRuntime

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)

    def progress(message: str) -> None:
        err.print(f"[dim]… {escape(message)}[/dim]")

    rt = await NovaRuntime.open(settings, need_model=not settings.uses_local_model, progress=progress)
    try:
        graph = rt.graphs["improve"]
        target = (args.target or nova_root()).resolve()
        thread = args.thread or f"improve-{uuid.uuid4().hex[:12]}"
        request: ImproveInput = {
            "target": str(target),
            "focus": args.focus,
            "max_proposals": args.max_proposals,
            "time_limit_s": args.time_limit,
        }
        if args.tests is not None:
            request["scan_tests"] = args.tests
        if args.smoke is not None:
            request["smoke_tests"] = args.smoke
        if args.no_mypy:
            request["run_mypy"] = False
        progress(f"improving {target} (thread {thread})")

        def show(node: str, values: dict[str, Any]) -> None:
            for line in values.get("log", []):
                err.print(f"[dim]  {escape(node)}:[/dim] {escape(line)}")

        await rt.graph_threads.start(
            "improve", request, user_id=settings.user, title=f"improve {target.name}", thread_id=thread, on_update=show
        )
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        snapshot = await graph.aget_state(config)
        _print_summary(console, snapshot.values, thread, pending_proposal(snapshot))
        return 0
    finally:
        await rt.close()


def _print_summary(console: Console, values: dict[str, Any], thread: str, pending: str | None) -> None:
    s = summarise(values)  # type: ignore[arg-type]
    console.print(
        f"[bold]findings considered[/bold] {s.findings}  [bold]proposals made[/bold] {s.proposals}"
        f"  [bold]validated[/bold] {s.validated}  [bold]approved[/bold] {s.approved}"
        f"  [bold]rejected[/bold] {s.rejected}  (refused {s.refused}, dropped {s.dropped})"
    )
    for p in values.get("proposals", []):
        style = {"validated": "green", "applied": "green", "dropped": "yellow", "refused": "red"}.get(p.status, "")
        line = f"  {p.id} [{p.status}] {p.title}" + (f" — {p.reason[:160]}" if p.reason else "")
        console.print(line, style=style, markup=False)
    if pending:
        proposal = next(p for p in values["proposals"] if p.id == pending)
        console.print(
            f"\n[bold]awaiting review:[/bold] {escape(f'{proposal.title} ({proposal.id}), risk {proposal.risk}')}"
        )
        console.print(Syntax(proposal.diff, "diff", theme="ansi_dark", background_color="default", word_wrap=True))
        console.print(f"resume with: nova reviews approve|reject|edit {thread}")
    else:
        console.print("nothing awaits review")
