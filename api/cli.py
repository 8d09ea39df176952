"""The `nova` command."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import sys
import uuid
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.settings import Settings, get_settings

if TYPE_CHECKING:
    from api.runtime import RedoReason

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEMO_CONVERSATION = (
    "Hi Nova, what are your capabilities?",
    "remember that the Hartley & Co support contract renews every March",
    "which Django model stores the branch on an invoice in AIREP?",
    "and on an order?",
)

REDO_NOTES: dict[str, str] = {
    "echo": "that repeated an earlier reply word for word; asked again",
    "retry": "the model call failed part-way; asked again",
}


def _progress(message: str) -> None:
    err.print(f"[dim]… {escape(message)}[/dim]")


async def _open(settings: Settings, *, need_model: bool = True) -> Any:
    from api.runtime import NovaRuntime

    return await NovaRuntime.open(settings, need_model=need_model, progress=_progress)


def _route_line(route: Any) -> str:
    if route is None:
        return ""
    top = ", ".join(f"{c.id} {c.score:.2f}" for c in route.candidates[:3])
    return f"→ {route.chosen} [{route.method}] {route.reason}" + (f"  ({top})" if top else "")


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    """Run one turn and print agent, reason and answer."""
    nova = await _open(settings)
    try:
        result = await nova.stream_turn(args.text, thread_id=args.thread)
    finally:
        await nova.close()
    if args.json:
        print(
            json.dumps(
                {
                    "thread_id": result.thread_id,
                    "agent": result.agent,
                    "route": result.route.model_dump() if result.route else None,
                    "answer": result.answer,
                    "error": result.error,
                    "remembered": list(result.remembered),
                },
                indent=2,
            )
        )
    else:
        console.print(_route_line(result.route), style="cyan", markup=False)
        console.print(result.answer, markup=False)
        _print_remembered(result.remembered, result.answer)
        console.print(f"[dim]thread {result.thread_id}[/dim]")
    return 1 if result.error else 0


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Hold a conversation: interactive on a terminal, line by line from a pipe, a demo when stdin is empty."""
    interactive = sys.stdin.isatty()
    first = "" if interactive else await asyncio.to_thread(sys.stdin.readline)
    demo = not interactive and not first
    if demo:
        err.print("[dim]stdin is not a terminal and is empty: running the demo conversation[/dim]")
    nova = await _open(settings)
    from api.runtime import settle_heap

    settle_heap()  # a conversation runs for long: start-up's objects need no rescanning
    thread = args.thread or str(uuid.uuid4())
    failures = 0
    streamed: list[str] = []

    def on_route(route: Any) -> None:
        console.print(_route_line(route), style="cyan", markup=False)
        console.print("[bold]nova ›[/bold] ", end="")

    def on_token(token: str) -> None:
        streamed.append(token)
        console.print(token, end="", markup=False)

    def on_redo(reason: RedoReason) -> None:
        streamed.clear()
        console.print()
        console.print(f"[dim]({REDO_NOTES[reason]})[/dim]")
        console.print("[bold]nova ›[/bold] ", end="")

    try:
        console.print(
            f"[bold]Nova[/bold] — {len(nova.registry)} agents. Thread {thread}. Commands: /why /new /threads /quit"
        )
        pending = iter(DEMO_CONVERSATION) if demo else iter([first] if first else [])
        while True:
            if interactive:
                try:
                    text = await asyncio.to_thread(input, "you › ")
                except EOFError:
                    break
            else:
                line = next(pending, None)
                if line is None and not demo:
                    line = await asyncio.to_thread(sys.stdin.readline) or None
                if line is None:
                    break
                text = line
                console.print(f"you › {text.strip()}", markup=False)
            text = text.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            if text == "/new":
                thread = str(uuid.uuid4())
                console.print(f"[dim]new thread {thread}[/dim]")
                continue
            if text == "/threads":
                _print_threads(await nova.threads.list(settings.user))
                continue
            if text == "/why":
                _print_why(await nova.route_log.recent(user_id=settings.user, thread_id=thread, limit=1))
                continue

            streamed.clear()
            result = await nova.stream_turn(
                text, thread_id=thread, on_token=on_token, on_route=on_route, on_redo=on_redo
            )
            console.print(unstreamed(result.answer, "".join(streamed)), markup=False)
            _print_remembered(result.remembered, result.answer)
            failures += 1 if result.error else 0
    finally:
        await nova.close()
    return 1 if failures and not interactive else 0


def _print_remembered(records: Sequence[str], answer: str = "") -> None:
    """Show what the turn's memory write changed, so no memory is stored behind the owner's back."""
    for record in unsaid(records, answer):
        console.print(f"✎ memory: {record}", style="dim", markup=False)


def unsaid(records: Sequence[str], answer: str) -> list[str]:
    """Return the memory records the answer does not already give (memory_remember's reply quotes its record)."""
    said = " ".join(answer.split())
    return [r for r in records if " ".join(r.split()) not in said]


def unstreamed(answer: str, streamed: str) -> str:
    """Return what of the final answer was not streamed: all of it when nothing was, else what Nova added after.

    A reply node may add to the model's streamed text (a note on lines that are not in the tool results) or
    answer without a model (a reply grounded on no result); a final answer that is not the streamed text
    continued is the streamed one as the model wrote it, and is not printed twice.
    """
    if not streamed:
        return answer
    return answer[len(streamed) :] if answer.startswith(streamed) else ""


def _print_threads(rows: Sequence[dict[str, Any]]) -> None:
    table = Table("thread", "title", "updated")
    for r in rows:
        table.add_row(str(r["thread_id"]), escape(str(r["title"])), str(r["updated_at"])[:19])
    console.print(table)


def _print_why(rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        console.print("No routing decision recorded for this thread.")
        return
    r = rows[0]
    console.print(f"[bold]request:[/bold] {escape(r['text'])}")
    console.print(
        f"[bold]chosen:[/bold] {r['chosen']}  [bold]method:[/bold] {r['method']}  "
        f"[bold]latency:[/bold] {r['latency_ms']:.1f} ms"
    )
    console.print(f"[bold]reason:[/bold] {escape(r['reason'])}")
    if r.get("fallback"):
        console.print(f"[bold]fallback:[/bold] {escape(r['fallback'])}")
    table = Table("rank", "agent", "score", "matched examples")
    for n, c in enumerate(r["candidates"], start=1):
        table.add_row(str(n), c["id"], f"{c['score']:.3f}", escape(" | ".join(c.get("matched") or [])))
    console.print(table)


async def cmd_why(args: argparse.Namespace, settings: Settings) -> int:
    """Print the last routing decision of a thread (or of the user's latest thread)."""
    nova = await _open(settings, need_model=False)
    try:
        rows = await nova.route_log.recent(user_id=settings.user, thread_id=args.thread, limit=1)
    finally:
        await nova.close()
    if args.json:
        print(json.dumps(rows[0] if rows else None, default=str, indent=2))
    else:
        _print_why(rows)
    return 0 if rows else 1


async def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    """Record the correct agent for a thread's last routed request."""
    nova = await _open(settings, need_model=False)
    try:
        if args.agent not in nova.registry:
            err.print(f"[red]unknown agent {escape(repr(args.agent))}[/red]; see `nova agents list`")
            return 2
        owner = await nova.threads.owner(args.thread)
        rows = await nova.route_log.recent(user_id=settings.user, thread_id=args.thread, limit=1)
        if owner != settings.user or not rows:
            err.print(f"[red]no routed request found in thread {escape(args.thread)}[/red]")
            return 2
        row = rows[0]
        await nova.corrections.add(
            user_id=settings.user, text=row["text"], correct=args.agent, wrong=row["chosen"], thread_id=args.thread
        )
    finally:
        await nova.close()
    console.print(
        f"Recorded: {row['text']!r} should go to {args.agent} (was {row['chosen']}). "
        "It takes effect on the next request."
    )
    return 0


async def cmd_threads(args: argparse.Namespace, settings: Settings) -> int:
    """List threads or show one thread's messages."""
    nova = await _open(settings, need_model=False)
    try:
        if args.action == "list":
            _print_threads(await nova.threads.list(settings.user, limit=args.limit))
            return 0
        if not args.id:
            err.print("[red]nova threads show needs a thread id[/red]")
            return 2
        if await nova.threads.owner(args.id) != settings.user:
            err.print(f"[red]no thread {escape(args.id)}[/red]")
            return 1
        for row in await nova.transcript.read(args.id):  # turns compaction moved out of the live state
            who = "you" if row["role"] == "human" else row["agent"] or "nova"
            console.print(f"[bold]{who} ›[/bold] ", end="")
            console.print(row["content"], markup=False)
        state = await nova.graph.aget_state({"configurable": {"thread_id": args.id}})
        for msg in state.values.get("messages", []):
            who = "you" if msg.type == "human" else (msg.response_metadata or {}).get("agent", msg.name or "nova")
            console.print(f"[bold]{who} ›[/bold] ", end="")
            console.print(msg.text, markup=False)
        return 0
    finally:
        await nova.close()


def cmd_agents(args: argparse.Namespace, settings: Settings) -> int:
    """List agents or show one card."""
    from api.runtime import load_roster

    registry = load_roster()
    if args.action == "list":
        table = Table("id", "pattern", "tier", "tools", "description")
        for card in registry:
            table.add_row(card.id, card.pattern, card.model_tier, ",".join(card.tools), card.description)
        console.print(table)
        return 0
    if not args.id or args.id not in registry:
        err.print(f"[red]unknown agent {escape(repr(args.id))}[/red]; see `nova agents list`")
        return 2
    card = registry.get(args.id)
    console.print_json(card.model_dump_json())
    return 0


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Check database, pgvector, embedder and model endpoint; print pass/fail and the fix."""
    from api.doctor import run_checks

    checks = await run_checks(settings, progress=_progress)
    table = Table("check", "result", "detail", "fix")
    for c in checks:
        table.add_row(
            c["name"],
            "[green]pass[/green]" if c["ok"] else "[red]FAIL[/red]",
            escape(c["detail"]),
            escape(c.get("fix", "")),
        )
    console.print(table)
    return 0 if all(c["ok"] for c in checks) else 1


async def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    """Re-embed everything with the configured embedder."""
    from api.reindex import reindex

    counts = await reindex(settings, progress=_progress)
    console.print("Re-embedded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


async def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Run an evaluation."""
    from api.evals import eval_routing

    if args.kind == "routing":
        return await eval_routing(args, settings, console)
    if args.kind == "memory":
        from api.memory_cli import eval_memory

        return await eval_memory(args, settings, console)
    err.print(f"[red]unknown evaluation {escape(repr(args.kind))}[/red]")
    return 2


def cmd_erp(args: argparse.Namespace, settings: Settings) -> int:
    """Run an ERP tool on a Django project's source (read, never imported)."""
    argv = [str(args.path), *(["--json"] if args.json else [])]
    if args.tool == "schema":
        from nodes.erp.schema import main as schema_main

        return int(schema_main(argv))
    from nodes.erp.tenancy_audit import main as audit_main

    return int(audit_main(argv))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the HTTP API with uvicorn (loopback only unless NOVA_API_KEYS is set)."""
    from api.serve import serve

    return serve(args.host, args.port, args.workers)


async def _run_memory(args: argparse.Namespace, settings: Settings) -> int:
    from api.memory_cli import run_memory_command

    return await run_memory_command(args, settings)


async def _run_pipeline(args: argparse.Namespace, settings: Settings) -> int:
    from api.pipelines import run_pipeline_command

    return await run_pipeline_command(args, settings, console)


async def _run_reviews(args: argparse.Namespace, settings: Settings) -> int:
    from api.reviews import run_review_command

    return await run_review_command(args, settings, console)


def build_parser() -> argparse.ArgumentParser:
    """Describe every subcommand."""
    p = argparse.ArgumentParser(prog="nova", description="Nova, a personal multi-agent runtime.")
    sub = p.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="converse (streams; /why /new /threads /quit)")
    chat.add_argument("--thread")
    ask = sub.add_parser("ask", help="one turn: agent, reason and answer")
    ask.add_argument("text")
    ask.add_argument("--thread")
    ask.add_argument("--json", action="store_true")

    threads = sub.add_parser("threads", help="list threads or show one")
    threads.add_argument("action", choices=["list", "show"])
    threads.add_argument("id", nargs="?")
    threads.add_argument("--limit", type=int, default=20)

    agents = sub.add_parser("agents", help="list agents or show one card")
    agents.add_argument("action", choices=["list", "show"])
    agents.add_argument("id", nargs="?")

    why = sub.add_parser("why", help="why the last request of a thread went where it did")
    why.add_argument("thread", nargs="?")
    why.add_argument("--json", action="store_true")

    fb = sub.add_parser("feedback", help="record the agent a thread's last request should have gone to")
    fb.add_argument("thread")
    fb.add_argument("--agent", required=True)

    ev = sub.add_parser("eval", help="run an evaluation")
    ev.add_argument("kind", choices=["routing", "memory"])
    ev.add_argument("file", type=Path)
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--mode", choices=["embedding", "hybrid"])
    ev.add_argument("--cards", type=Path, help="a directory of agent cards instead of the built-in roster")
    ev.add_argument("--extractor", choices=["rules", "model"], help="memory eval: which extractor runs")
    ev.add_argument("--sample", type=int, help="evaluate an evenly spaced subset of N lines (hybrid mode is slow)")

    erp = sub.add_parser("erp", help="ERP tools: schema extraction and tenancy audit of a Django project")
    erp.add_argument("tool", choices=["schema", "tenancy"])
    erp.add_argument("path", type=Path)
    erp.add_argument("--json", action="store_true")

    serve = sub.add_parser("serve", help="HTTP API (LangGraph Server protocol subset + /nova endpoints)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8123)
    serve.add_argument("--workers", type=int, default=1)

    from api.memory_cli import add_memory_commands
    from api.pipelines import add_pipeline_commands
    from api.reviews import add_review_commands

    add_memory_commands(sub)
    add_pipeline_commands(sub)
    add_review_commands(sub)
    from api.improve import add_improve_command, run_improve_command

    add_improve_command(sub)
    COMMANDS.setdefault("improve", run_improve_command)
    sub.add_parser("doctor", help="check database, pgvector, embedder and model")
    sub.add_parser("reindex", help="re-embed everything with the configured embedder")
    return p


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int] | int]] = {
    "ask": cmd_ask,
    "chat": cmd_chat,
    "threads": cmd_threads,
    "agents": cmd_agents,
    "why": cmd_why,
    "feedback": cmd_feedback,
    "eval": cmd_eval,
    "doctor": cmd_doctor,
    "erp": cmd_erp,
    "serve": cmd_serve,
    "memory": _run_memory,
    "pipeline": _run_pipeline,
    "reviews": _run_reviews,
    "reindex": cmd_reindex,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nova` command."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # langchain's structured output stores the parsed object in a field typed None; pydantic warns on every call.
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    handler = COMMANDS[args.command]
    try:
        result = handler(args, settings)
        code = asyncio.run(_await(result)) if inspect.isawaitable(result) else result
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI prints a one-line reason, never a stack trace
        from api.db import DatabaseError
        from api.graph_threads import NotAwaitingReview, ThreadNotFound
        from api.persistence import EmbedderMismatch

        known = (
            DatabaseError,
            EmbedderMismatch,
            FileNotFoundError,
            PermissionError,
            ValueError,
            ThreadNotFound,
            NotAwaitingReview,
        )
        prefix = "" if isinstance(exc, known) else f"{type(exc).__name__}: "
        err.print(f"[red]nova: {escape(f'{prefix}{exc}')}[/red]")
        if settings.log_level.upper() == "DEBUG":
            raise
        return 1
    return int(code)


async def _await(value: Awaitable[int]) -> int:
    return await value


if __name__ == "__main__":
    sys.exit(main())
