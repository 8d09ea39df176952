"""`nova memory ...` and `nova eval memory`: wiring for long-term memory (the store is nodes/memory.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.settings import Settings

if TYPE_CHECKING:  # the CLI builds its parser on every start: heavy modules load only when a command runs
    from langgraph.graph import StateGraph

    from api.runtime import NovaRuntime
    from nodes.embeddings import Embedder
    from nodes.memory import MemoryStore
    from nodes.memory_eval import MemoryEvalReport
    from nodes.memory_records import MemoryRecord
    from nodes.models import ModelLoader
    from nodes.workspace import Workspace

SAMPLE_WORKSPACE = Path(__file__).resolve().parents[1] / "graphs" / "workspace" / "sample.toml"
TARGETS = {"current_recall": ">= 0.95", "stale_leakage": "<= 0.02", "cross_user_leakage": "== 0"}

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _say(message: str) -> None:
    err.print(f"[dim]… {escape(message)}[/dim]")


def workspace_path(settings: Settings) -> Path:
    """Return NOVA_WORKSPACE, or the sample workspace that ships with Nova."""
    return settings.workspace or SAMPLE_WORKSPACE


def memory_settings(settings: Settings) -> dict[str, Any]:
    """Return the memory knobs from the settings (NOVA_MEMORY_EXTRACTOR, _CORE_TOKENS, _STALE_DAYS)."""
    return {
        "extractor": getattr(settings, "memory_extractor", "rules"),
        "core_budget_tokens": int(getattr(settings, "memory_core_tokens", 400)),
        "stale_days": int(getattr(settings, "memory_stale_days", 120)),
    }


def build_memory_store(
    settings: Settings,
    pool: Any,
    embed: Embedder,
    *,
    models: ModelLoader | None = None,
    agent_scoped: Iterable[str] = (),
    workspace: Workspace | None = None,
    load_packs: bool = True,
    extractor: str | None = None,
) -> MemoryStore:
    """Build the Postgres-backed memory for a process (the runtime passes its pool, embedder and models).

    The model extractor falls back to the rules when the process has no chat model.
    """
    from nodes.memory import MemoryStore
    from nodes.workspace import load_workspace

    options = memory_settings(settings)
    if extractor:
        options["extractor"] = extractor
    if options["extractor"] == "model" and models is None:
        options["extractor"] = "rules"
    if workspace is None:
        workspace = load_workspace(workspace_path(settings))
    return MemoryStore(
        pool,
        embed,
        models=models,
        workspace=workspace,
        load_packs=load_packs,
        agent_scoped=agent_scoped,
        **options,
    )


# ---------------------------------------------------------------------------- nova memory


def add_memory_commands(subparsers: Any) -> None:
    """Add `nova memory ...` to the CLI's subparsers."""
    mem = subparsers.add_parser("memory", help="inspect and edit long-term memory")
    sub = mem.add_subparsers(dest="memory_action", required=True, metavar="ACTION")

    ls = sub.add_parser("list", help="list memories (active ones unless --all)")
    ls.add_argument("--namespace", help="user, project:<slug> or agent:<id>")
    ls.add_argument("--tier", choices=["core", "archive", "discarded"])
    ls.add_argument("--subject", help="subject or prefix, e.g. client:hartley/")
    ls.add_argument("--all", action="store_true", help="include superseded and discarded memories")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")

    search = sub.add_parser("search", help="search active memories by meaning")
    search.add_argument("query", nargs="+")
    search.add_argument("--limit", type=int, default=8)
    search.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="one memory with provenance, history links and events")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")

    pin = sub.add_parser("pin", help="keep a memory in the core profile (or --unpin)")
    pin.add_argument("id")
    pin.add_argument("--unpin", action="store_true")

    forget = sub.add_parser("forget", help="discard a memory (recoverable), or delete it with --purge")
    forget.add_argument("target", nargs="+", help="a memory id, or words describing it")
    forget.add_argument("--purge", action="store_true", help="delete for good (needs an id)")

    restore = sub.add_parser("restore", help="undo a forget, or reinstate a superseded memory")
    restore.add_argument("id")

    history = sub.add_parser("history", help="every memory ever stored about a subject")
    history.add_argument("subject")
    history.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write all memories as JSON lines")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")

    imp = sub.add_parser("import", help="import JSON lines from `nova memory export` (all or nothing)")
    imp.add_argument("file", type=Path)

    curate = sub.add_parser("curate", help="find duplicates, conflicts, stale core facts, facts to promote")
    curate.add_argument("--apply", action="store_true", help="merge, demote and promote (never resolves conflicts)")
    curate.add_argument("--stale-days", type=int)
    curate.add_argument("--json", action="store_true")
    curate.add_argument("--no-review", action="store_true", help="only report conflicts; raise no review gate")


@asynccontextmanager
async def open_memory(settings: Settings) -> AsyncIterator[MemoryStore]:
    """Open the database and yield the user's memory store (no chat model: these commands extract nothing)."""
    from api.db import migrate, open_pool
    from api.persistence import check_embedder
    from api.runtime import build_embedder, resolve_database_url

    url = await asyncio.to_thread(resolve_database_url, settings, _say)
    embed = build_embedder(settings)
    async with open_pool(
        url, timeout_s=settings.db_timeout_s, statement_timeout_ms=settings.statement_timeout_ms
    ) as pool:
        await migrate(pool)
        await check_embedder(pool, embed)
        store = build_memory_store(settings, pool, embed)
        try:
            yield store
        finally:
            await store.drain()


async def run_memory_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run `nova memory <action>` for the CLI's user (NOVA_USER)."""
    from nodes.memory_records import MemoryInputError
    from nodes.workspace import WorkspaceError

    try:
        if args.memory_action == "curate":
            return await _curate(args, settings)
        async with open_memory(settings) as store:
            await store.prepare_user(settings.user)
            return await _dispatch(store, args, settings.user)
    except (MemoryInputError, WorkspaceError) as exc:
        err.print(f"[red]nova memory: {escape(str(exc))}[/red]")
        return 2


async def _dispatch(store: MemoryStore, args: argparse.Namespace, user: str) -> int:
    from nodes.memory_records import MemoryInputError

    action = args.memory_action
    if action == "list":
        records = await store.list_memories(
            user,
            namespace=args.namespace,
            tier=args.tier,
            subject=args.subject,
            include_inactive=args.all,
            limit=args.limit,
        )
        _print_records(records, as_json=args.json, show_status=args.all)
        return 0
    if action == "search":
        hits = await store.search(user, " ".join(args.query), limit=args.limit)
        if args.json:
            print(json.dumps([h.model_dump() for h in hits], indent=2))
            return 0
        table = Table("score", "id", "tier", "subject", "text", title="memory search")
        for h in hits:
            table.add_row(f"{h.score:.3f}", h.id[:8], h.tier, escape(h.subject), escape(h.text))
        console.print(table if hits else "No memories match.")
        return 0
    if action == "show":
        detail = await store.show(user, args.id)
        if args.json:
            print(json.dumps(asdict(detail), default=str, indent=2))
            return 0
        _print_detail(detail.record)
        if detail.replaced:
            console.print(
                "[bold]replaced:[/bold] " + escape("; ".join(f"{r.id[:8]} {r.text}" for r in detail.replaced))
            )
        if detail.replaced_by:
            console.print(f"[bold]replaced by:[/bold] {detail.replaced_by.id[:8]} {escape(detail.replaced_by.text)}")
        events = Table("when", "action", "reason", "thread", title="events")
        for e in detail.events:
            events.add_row(str(e["created_at"])[:19], e["action"], escape(e["reason"]), e["thread_id"] or "")
        console.print(events)
        return 0
    if action == "pin":
        record = await store.pin(user, args.id, pinned=not args.unpin)
        console.print(
            f"{'Unpinned' if args.unpin else 'Pinned'} {record.id[:8]} ({record.tier}): {record.text}", markup=False
        )
        return 0
    if action == "forget":
        target = " ".join(args.target)
        if args.purge:
            record = await store.get(user, target)
            await store.purge(user, record.id)
            console.print(f"Deleted for good: {record.id[:8]} {record.text}", markup=False)
            return 0
        console.print(await store.forget(user, target))
        return 0
    if action == "restore":
        record = await store.restore(user, args.id)
        console.print(f"Restored {record.id[:8]} ({record.tier}): {record.text}", markup=False)
        return 0
    if action == "history":
        records = await store.history(user, args.subject)
        if args.json:
            print(json.dumps([asdict(r) for r in records], default=str, indent=2))
            return 0
        table = Table("valid from", "id", "status", "tier", "text", "replaced by", "method", title=args.subject)
        for r in records:
            table.add_row(
                str(r.valid_from)[:19],
                r.id[:8],
                r.status,
                r.tier,
                escape(r.text),
                (r.superseded_by or "")[:8],
                r.method,
            )
        console.print(table)
        return 0
    if action == "export":
        lines = await store.export_lines(user)
        body = "".join(line + "\n" for line in lines)
        if args.output:
            args.output.write_text(body, encoding="utf-8")
            err.print(f"Exported {len(lines)} memories to {args.output}")
        else:
            print(body, end="")
        return 0
    if action == "import":
        if not args.file.is_file():
            raise MemoryInputError(f"no such file: {args.file}")
        report = await store.import_lines(user, args.file.read_text(encoding="utf-8").splitlines())
        console.print(f"Imported {report.created} memories ({report.skipped} already present).")
        return 0
    raise MemoryInputError(f"unknown memory action {action!r}")


# ---------------------------------------------------------------------------- curation and its review gate

CURATE_GRAPH_ID = "memory_curate"


def memory_store_for(rt: NovaRuntime) -> MemoryStore:
    """Return the runtime's memory store, or one over its pool and embedder (rules extractor, no model)."""
    existing = getattr(rt, "memory", None)
    if existing is not None:
        store: MemoryStore = existing
        return store
    return build_memory_store(rt.settings, rt.pool, rt.embed)


def memory_curate_graph(rt: NovaRuntime) -> StateGraph[Any, Any, Any, Any]:
    """Return the uncompiled curation graph over the runtime's memory (served as graph id `memory_curate`)."""
    from graphs.memory_curate import build_memory_curate_graph

    return build_memory_curate_graph(memory_store_for(rt))


async def start_curate_review(rt: NovaRuntime, user: str, *, limit: int | None = None) -> tuple[str, dict[str, Any]]:
    """Run the curation graph on a new thread of the user's until its first gate; return (thread id, state values).

    The thread is recorded like an HTTP thread of graph `memory_curate`, so the review lists and the runs API
    find it, and is marked `interrupted` while a conflict awaits a decision.
    """
    from langchain_core.runnables import RunnableConfig

    from api.catalog import assistant_id_for
    from api.threads import ApiThreads

    thread_id = str(uuid.uuid4())
    meta = {"graph_id": CURATE_GRAPH_ID, "assistant_id": assistant_id_for(CURATE_GRAPH_ID), "source": "cli"}
    threads = ApiThreads(rt.pool)
    await threads.create(thread_id, user, meta, if_exists="raise")
    await threads.set_title_once(thread_id, "memory curation: conflicts to resolve")
    graph = memory_curate_graph(rt).compile(checkpointer=rt.saver, store=rt.store, name=CURATE_GRAPH_ID)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}, "metadata": {"user_id": user, **meta}}
    await graph.ainvoke({"limit": limit} if limit else {}, config, context=rt.context(user))
    state = await graph.aget_state(config)
    status = "interrupted" if state.interrupts else "idle"
    async with rt.pool.connection() as conn:
        await conn.execute(
            "UPDATE nova_threads SET status = %s, updated_at = now() WHERE thread_id = %s AND user_id = %s",
            (status, thread_id, user),
        )
    values: dict[str, Any] = dict(state.values) if isinstance(state.values, dict) else {}
    values["pending"] = [i.value for i in state.interrupts]
    return thread_id, values


async def _curate(args: argparse.Namespace, settings: Settings) -> int:
    """Run `nova memory curate`: report, optionally apply merges, and raise unresolved conflicts at a gate."""
    from api.runtime import NovaRuntime

    user = settings.user
    async with await NovaRuntime.open(settings, need_model=False, progress=_say) as rt:
        store = memory_store_for(rt)
        curation = await store.curate(user, apply=args.apply, stale_days=args.stale_days)
        conflicts = curation.count("conflict")
        thread_id: str | None = None
        values: dict[str, Any] = {}
        if conflicts and not args.no_review:
            thread_id, values = await start_curate_review(rt, user)
    if args.json:
        payload: dict[str, Any] = {"findings": [asdict(f) for f in curation.findings], "applied": curation.applied}
        payload["review"] = (
            {"thread_id": thread_id, "conflicts": len(values.get("conflicts", [])), "pending": values["pending"]}
            if thread_id
            else None
        )
        print(json.dumps(payload, indent=2, default=str))
        return 0
    table = Table("finding", "ids", "subject", "memories", "action", title="memory curation")
    for f in curation.findings:
        table.add_row(f.kind, " ".join(i[:8] for i in f.ids), escape(f.subject), escape("\n".join(f.texts)), f.action)
    console.print(table if curation.findings else "Nothing to curate.")
    if args.apply:
        console.print(f"Applied {curation.applied} change(s); conflicts are left for you to decide.")
    elif len(curation.findings) > conflicts:
        console.print("Run `nova memory curate --apply` to merge duplicates, demote stale and promote used facts.")
    if thread_id and values.get("pending"):
        raised = values.get("conflicts", [])
        console.print(
            f"\n[bold]{len(raised)} conflict(s) await your decision[/bold], one at a time, in thread {thread_id}."
        )
        _print_conflict(values["pending"][0])
        console.print(
            f"  accept the suggestion:   nova reviews approve {thread_id}\n"
            f'  keep another memory:     nova reviews edit {thread_id} \'{{"keep": "<id>"}}\'\n'
            f'  store a corrected fact:  nova reviews edit {thread_id} \'{{"text": "..."}}\'\n'
            f"  leave as is:             nova reviews reject {thread_id}"
        )
    elif conflicts and thread_id:
        console.print("The conflicts were settled or kept by earlier reviews; nothing to decide.")
    elif conflicts:
        console.print("Conflicts were not raised for review (--no-review).")
    return 0


def _print_conflict(payload: dict[str, Any]) -> None:
    args = payload.get("action_request", {}).get("args", {})
    table = Table("id", "valid from", "method", "thread", "text", title=f"conflict: {args.get('subject', '?')}")
    for m in args.get("memories", []):
        prov = m.get("provenance", {})
        table.add_row(
            m["id"][:8], m["valid_from"][:16], prov.get("method", ""), prov.get("thread_id") or "", escape(m["text"])
        )
    console.print(table)
    suggestion = args.get("suggestion", {})
    console.print(f"Suggestion: {suggestion.get('reason', '')}", markup=False)


def _print_records(records: list[MemoryRecord], *, as_json: bool, show_status: bool) -> None:
    if as_json:
        print(json.dumps([asdict(r) for r in records], default=str, indent=2))
        return
    if not records:
        console.print("No memories.")
        return
    columns = ["id", "tier", "namespace", "subject", "text", "used", "since"]
    if show_status:
        columns.insert(2, "status")
    table = Table(*columns, title=f"{len(records)} memories")
    for r in records:
        row = [
            r.id[:8],
            ("📌 " if r.pinned else "") + r.tier,
            r.namespace,
            escape(r.subject),
            escape(r.text),
            str(r.use_count),
        ]
        row.append(str(r.valid_from)[:10])
        if show_status:
            row.insert(2, r.status)
        table.add_row(*row)
    console.print(table)


def _print_detail(r: MemoryRecord) -> None:
    table = Table("field", "value", title=f"memory {r.id}")
    for key in (
        "text",
        "subject",
        "kind",
        "tier",
        "status",
        "namespace",
        "pinned",
        "confidence",
        "reason",
        "method",
        "thread_id",
        "message_id",
        "agent_id",
        "extracted_at",
        "valid_from",
        "last_used_at",
        "use_count",
    ):
        table.add_row(key, escape(str(getattr(r, key))))
    console.print(table)


# ---------------------------------------------------------------------------- nova eval memory


def _admin_conninfo(url: str, **overrides: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, **overrides)


@asynccontextmanager
async def eval_space(settings: Settings, say: Callable[[str], None] = _say) -> AsyncIterator[Any]:
    """Yield a pool on a throwaway, migrated memory space; drop it afterwards.

    A fresh database on the same server when the role may create one, else a temporary schema in Nova's
    database. Either way the user's own memories are never read or written.
    """
    from psycopg import sql
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from api.db import check_returned, check_vector, migrate, open_pool
    from api.runtime import resolve_database_url

    url = await asyncio.to_thread(resolve_database_url, settings, say)
    name = f"nova_eval_{uuid.uuid4().hex[:12]}"
    created = await asyncio.to_thread(_create_database, url, name)
    if created:
        eval_url = _admin_conninfo(url, dbname=name)
        try:
            await asyncio.to_thread(check_vector, eval_url, timeout_s=settings.db_timeout_s)
            async with open_pool(eval_url, timeout_s=settings.db_timeout_s) as pool:
                await migrate(pool)
                yield pool
        finally:
            await asyncio.to_thread(_drop_database, url, name)
        return
    say(f"cannot create a database; using the temporary schema {name}")
    await asyncio.to_thread(_run, url, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    conninfo = _admin_conninfo(url, options=f"-c search_path={name},public")
    schema_pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        open=False,
        reset=check_returned,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    try:
        await schema_pool.open(wait=True, timeout=settings.db_timeout_s)
        await migrate(schema_pool)
        yield schema_pool
    finally:
        await schema_pool.close()
        await asyncio.to_thread(_run, url, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _create_database(url: str, name: str) -> bool:
    import psycopg
    from psycopg import sql

    try:
        _run(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error:
        return False
    return True


def _drop_database(url: str, name: str) -> None:
    from psycopg import sql

    _run(url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _run(url: str, statement: Any) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


async def eval_memory(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Run `nova eval memory FILE.jsonl [--json] [--extractor rules|model]` in a throwaway memory space."""
    from api.runtime import _models_for, build_embedder
    from nodes.memory_eval import ScenarioError, parse_scenarios, run_memory_eval
    from nodes.workspace import WorkspaceError, load_workspace

    if not args.file.is_file():
        console.print(f"[red]no such file: {escape(str(args.file))}[/red]")
        return 2
    try:
        scenarios = parse_scenarios(args.file.read_text(encoding="utf-8").splitlines())
    except ScenarioError as exc:
        console.print(f"[red]{escape(f'{args.file}: {exc}')}[/red]")
        return 2
    extractor = getattr(args, "extractor", None) or memory_settings(settings)["extractor"]
    try:
        workspace = load_workspace(workspace_path(settings))
    except WorkspaceError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 2
    embed = build_embedder(settings)
    say = _say if args.json else (lambda m: console.print(f"[dim]… {escape(m)}[/dim]"))
    async with eval_space(settings, say) as pool:
        if extractor == "model":
            async with _models_for(settings, say) as models:
                store = build_memory_store(
                    settings, pool, embed, models=models, workspace=workspace, load_packs=False, extractor="model"
                )
                report = await run_memory_eval(store, scenarios)
        else:
            store = build_memory_store(settings, pool, embed, workspace=workspace, load_packs=False, extractor="rules")
            report = await run_memory_eval(store, scenarios)
        await store.drain()
    if args.json:
        print(json.dumps(report.metrics()))
    else:
        _print_eval(report, extractor, console)
    return 0


def _print_eval(report: MemoryEvalReport, extractor: str, console: Console) -> None:
    metrics = report.metrics()
    console.print(
        f"[bold]memory eval[/bold] ({extractor} extractor, {report.scenarios} scenarios, {metrics['n']} asks, "
        f"{report.live_memories} live memories at the end)"
    )
    table = Table("metric", "value", "target")
    for key, value in metrics.items():
        table.add_row(key, str(value), TARGETS.get(key, ""))
    console.print(table)
    failures = report.failures()
    if failures:
        miss = Table("scenario", "user", "ask", "expect", "reject", "problem", "recalled", title="misses")
        for a in failures:
            problem = ", ".join(
                p
                for p, bad in (
                    ("missed", bool(a.expect) and not a.correct),
                    ("stale", a.stale),
                    ("cross-user", a.leaked),
                )
                if bad
            )
            miss.add_row(
                *(escape(v) for v in (a.scenario, a.user, a.ask, ", ".join(a.expect), ", ".join(a.reject), problem)),
                escape("\n".join(a.recalled[:4])),
            )
        console.print(miss)
