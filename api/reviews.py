"""Work paused at review gates, across every graph: `nova reviews list|show|approve|edit|reject|ignore`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from api.pipelines import print_step, report
from api.settings import Settings
from api.threads import interrupts_of

if TYPE_CHECKING:
    from api.runtime import NovaRuntime


async def pending_reviews(
    pool: Any, user_id: str, graph_for: Callable[[str], Any | None], limit: int = 50
) -> list[dict[str, Any]]:
    """Return the user's threads waiting at a gate, newest first, each with its pending requests.

    `graph_for` maps a thread's graph id to its compiled graph (None when this process does not serve it).
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT thread_id, title, metadata, updated_at FROM nova_threads"
            " WHERE user_id = %s AND status = 'interrupted' ORDER BY updated_at DESC LIMIT %s",
            (user_id, limit),
        )
        rows = await cur.fetchall()
    out = []
    for row in rows:
        meta = row["metadata"] or {}
        graph_id = meta.get("graph_id") or "nova"
        graph = graph_for(graph_id)
        if graph is None:
            continue
        snapshot = await graph.aget_state({"configurable": {"thread_id": row["thread_id"]}})
        if pending := interrupts_of(snapshot):
            out.append({**row, "graph_id": graph_id, "assistant_id": meta.get("assistant_id"), "interrupts": pending})
    return out


def add_review_commands(subparsers: Any) -> None:
    """Add `nova reviews ...`."""
    p = subparsers.add_parser("reviews", help="work paused at review gates: list, show, approve, edit, reject")
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="every thread waiting for your review, newest first")
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="what a gate asks, with the diff in colour")
    show.add_argument("thread")
    show.add_argument("--json", action="store_true")
    approve = sub.add_parser("approve", help="accept the proposal as it is")
    approve.add_argument("thread")
    edit = sub.add_parser("edit", help="accept with changes: a new diff or text (validated again)")
    edit.add_argument("thread")
    edit.add_argument("--diff", type=Path, help="file holding the edited unified diff")
    edit.add_argument("--text", type=Path, help="file holding the edited text")
    edit.add_argument("--args", help="the edited arguments as a JSON object")
    reject = sub.add_parser("reject", help="reject with a comment (a pipeline may redraft once)")
    reject.add_argument("thread")
    reject.add_argument("--comment", required=True)
    ignore = sub.add_parser("ignore", help="drop the proposal without a comment")
    ignore.add_argument("thread")
    for parser in (approve, edit, reject, ignore):
        parser.add_argument("--json", action="store_true")


def decision_of(args: argparse.Namespace) -> dict[str, Any]:
    """Turn the command line into a review decision (agent-inbox shape)."""
    if args.action == "approve":
        return {"type": "accept"}
    if args.action == "ignore":
        return {"type": "ignore"}
    if args.action == "reject":
        if not args.comment.strip():
            raise ValueError("--comment must say why")
        return {"type": "respond", "args": args.comment}
    edited: dict[str, Any] = {}
    if args.args:
        try:
            parsed = json.loads(args.args)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--args is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValueError("--args must be a JSON object")
        edited.update(parsed)
    if args.diff:
        edited["diff"] = args.diff.read_text(encoding="utf-8")
    if args.text:
        edited["text"] = args.text.read_text(encoding="utf-8")
    if not edited:
        raise ValueError("edit needs --diff FILE, --text FILE or --args JSON")
    return {"type": "edit", "args": edited}


async def run_review_command(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Carry out `nova reviews ...`."""
    from api.runtime import NovaRuntime

    rt = await NovaRuntime.open(settings, need_model=args.action not in ("list", "show"))
    try:
        return await _reviews(rt, args, console)
    finally:
        await rt.close()


async def _reviews(rt: NovaRuntime, args: argparse.Namespace, console: Console) -> int:
    threads, user = rt.graph_threads, rt.settings.user
    if args.action == "list":
        items = await pending_reviews(threads.pool, user, threads.graphs.get)
        if args.json:
            print(json.dumps(items, default=str))
            return 0
        if not items:
            console.print("Nothing is waiting for your review.")
        for item in items:
            value = item["interrupts"][0]["value"]
            action = value.get("action_request", {}).get("action", "?") if isinstance(value, dict) else "question"
            console.print(
                f"{item['thread_id']}  [bold]{escape(action)}[/bold]  {item['graph_id']}  {escape(item['title'])}"
            )
        return 0
    if args.action == "show":
        outcome = await threads.status(args.thread, user)
        if args.json:
            print(json.dumps(outcome.interrupts, default=str))
            return 0
        if not outcome.interrupts:
            console.print(f"Thread {args.thread} is not waiting for a review (status: {outcome.status}).")
            return 1
        for pending in outcome.interrupts:
            show_request(pending["value"], console, thread=args.thread)
        return 0
    decision = decision_of(args)
    outcome = await threads.decide(args.thread, user, decision, on_update=None if args.json else print_step(console))
    return report(outcome, console, as_json=args.json, progress_shown=True)


COMMAND_OF = {  # a gate's allowed decisions (agent-inbox names) as the commands that make them
    "accept": "nova reviews approve THREAD",
    "edit": "nova reviews edit THREAD --diff F|--text F|--args JSON",
    "respond": "nova reviews reject THREAD --comment '...'",
    "ignore": "nova reviews ignore THREAD",
}


def show_request(value: Any, console: Console, thread: str = "THREAD") -> None:
    """Print a gate's request: description, arguments, any diff with syntax colour, and the commands to decide."""
    if not isinstance(value, dict) or "action_request" not in value:
        console.print(str(value))
        return
    request = value["action_request"]
    console.print(f"[bold]{escape(str(request.get('action')))}[/bold]: {escape(str(value.get('description', '')))}")
    allowed = [k.removeprefix("allow_") for k, v in (value.get("config") or {}).items() if v]
    for key, arg in (request.get("args") or {}).items():
        if arg in ("", None, [], {}):  # an optional input left out (issue_fix's target on the default project)
            continue
        if key == "diff" and isinstance(arg, str):
            console.print(Syntax(arg, "diff", theme="ansi_dark", background_color="default", word_wrap=True))
        elif isinstance(arg, str):
            console.print(f"[dim]{escape(key)}:[/dim] {escape(arg)}")
        else:
            console.print(f"[dim]{escape(key)}:[/dim] {escape(json.dumps(arg, default=str)[:2000])}")
    commands = [COMMAND_OF[d].replace("THREAD", thread) for d in allowed if d in COMMAND_OF]
    console.print(f"[dim]next: {escape(' | '.join(commands))}[/dim]")
