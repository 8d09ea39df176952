"""Thread growth: threads from turn 1 to turn 1,000, latency and bytes stored per turn as they grow.

Nova (full graph, NovaSaver, the transcript in Postgres, compaction on) against a bare LangGraph router +
specialist with `add_messages` on LangGraph's AsyncPostgresSaver in `sync`, which stores the whole message
list again in every checkpoint. The baseline stops at BASELINE_TURNS: its cost grows with every turn.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage

from bench.common import Row, pct

TURNS = 1000
BASELINE_TURNS = 300
WINDOW = 10
THREADS = 3  # Nova's threads grown side by side: p50 over 30 turns a window, not 10
SIZE_SQL = """
SELECT
  (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM checkpoints c WHERE c.thread_id = %(t)s)
+ (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM checkpoint_blobs b WHERE b.thread_id = %(t)s)
+ (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM checkpoint_writes w WHERE w.thread_id = %(t)s)
+ (SELECT coalesce(sum(pg_column_size(x.*)), 0) FROM nova_transcript x WHERE x.thread_id = %(t)s) AS bytes
"""


async def _bytes(pool: Any, thread: str) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute(SIZE_SQL, {"t": thread})).fetchone()
    return int(row["bytes"])


async def _turn(graph: Any, thread: str, i: int, kwargs: dict[str, Any]) -> float:
    """Run turn `i` of a thread; return its milliseconds."""
    text = f"translate 'the delivery for order {i} is late again, sorry' into French"
    start = time.perf_counter()
    await graph.ainvoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}, **kwargs)
    return (time.perf_counter() - start) * 1000


def _kwargs(durability: str, context: Any) -> dict[str, Any]:
    return {"durability": durability, **({"context": context} if context is not None else {})}


async def _grow(
    graph: Any, pool: Any, turns: int, durability: str, context: Any, threads: int = 1
) -> tuple[list[str], list[float], dict[int, int]]:
    """Grow `threads` threads in lockstep to `turns` turns; return their ids, the first thread's turn times and
    its stored bytes at the marks."""
    ids = [str(uuid.uuid4()) for _ in range(threads)]
    times: list[float] = []
    sizes: dict[int, int] = {}
    marks = {WINDOW, 2 * WINDOW, turns - WINDOW, turns}
    kwargs = _kwargs(durability, context)
    for i in range(1, turns + 1):
        took = [await _turn(graph, thread, i, kwargs) for thread in ids]
        times.append(took[0])
        if i in marks:
            sizes[i] = await _bytes(pool, ids[0])
    return ids, times, sizes


async def _early_and_late(
    graph: Any, grown: list[str], turns: int, durability: str, context: Any
) -> tuple[list[float], list[float]]:
    """Time turns 5-14 of new threads and the next WINDOW turns of the grown ones, alternating turn by turn.

    Both windows are measured over the same seconds, so a slow spell of the machine (autovacuum, a neighbour)
    lands on both sides instead of making one of them look slow.
    """
    kwargs = _kwargs(durability, context)
    fresh = [str(uuid.uuid4()) for _ in grown]
    for i in range(1, WINDOW // 2):
        for thread in fresh:
            await _turn(graph, thread, i, kwargs)
    early: list[float] = []
    late: list[float] = []
    for k in range(WINDOW):
        for new, old in zip(fresh, grown, strict=True):
            early.append(await _turn(graph, new, WINDOW // 2 + k, kwargs))
            late.append(await _turn(graph, old, turns + 1 + k, kwargs))
    return early, late


def _per_turn(sizes: dict[int, int], end: int) -> float:
    return (sizes[end] - sizes[end - WINDOW]) / WINDOW


def run(pg_url: str) -> tuple[list[Row], list[str]]:
    """Grow one thread in Nova and one in the bare baseline; compare late turns with early ones."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from api.db import migrate, open_pool
    from api.persistence import PgTranscript
    from api.runtime import SERDE
    from api.saver import NovaSaver
    from bench.turn import bare_graph
    from graphs.nova import build_nova_graph
    from graphs.registry import build_router, load_registry
    from nodes.embeddings import HashEmbeddings, query_matrix
    from nodes.models import StaticModels
    from nodes.services import Services
    from state.context import Context
    from tests.fakes import ScriptedModel

    registry = load_registry()
    embed = HashEmbeddings(384)
    router = build_router(registry, embed, lambda texts: query_matrix(embed, texts))
    reply = "Désolé, la livraison de la commande est encore en retard."
    rows: list[Row] = []

    async def go() -> None:
        async with open_pool(pg_url) as pool:
            await migrate(pool)
            nova_saver = NovaSaver(pool, serde=SERDE)
            await nova_saver.setup()
            services = Services(**{**vars(Services.null()), "transcript": PgTranscript(pool)})
            nova = build_nova_graph(
                registry, models=StaticModels(ScriptedModel([reply], numbered=True)), router=router, services=services
            ).compile(checkpointer=nova_saver)
            centroids = np.random.default_rng(0).standard_normal((len(registry), embed.dim))
            bare = bare_graph(ScriptedModel([reply], numbered=True), embed, centroids).compile(
                checkpointer=AsyncPostgresSaver(pool, serde=SERDE)
            )
            for durability in ("exit", "sync"):
                grown, _, sizes = await _grow(nova, pool, TURNS, durability, Context(), threads=THREADS)
                early, late = await _early_and_late(nova, grown, TURNS, durability, Context())
                b_early, b_late = _per_turn(sizes, 2 * WINDOW), _per_turn(sizes, TURNS)
                label = "turn (exit)" if durability == "exit" else "step (sync)"
                rows.append(
                    Row(
                        f"thread growth, Nova {label}: p50 ms at turn {WINDOW} -> {TURNS}",
                        f"{pct(early, 50):.1f} -> {pct(late, 50):.1f}",
                        "-",
                        f"{pct(late, 50) / pct(early, 50):.2f}x",
                        "<= 1.5x",
                        pct(late, 50) <= 1.5 * pct(early, 50),
                    )
                )
                rows.append(
                    Row(
                        f"thread growth, Nova {label}: bytes stored per turn at turn {2 * WINDOW} -> {TURNS}",
                        f"{b_early / 1024:.1f} KB -> {b_late / 1024:.1f} KB",
                        "-",
                        f"{b_late / b_early:.2f}x",
                        "constant (<= 1.2x)",
                        b_late <= 1.2 * b_early,
                    )
                )
            _, times, sizes = await _grow(bare, pool, BASELINE_TURNS, "sync", None)
            early, late = times[WINDOW - 5 : WINDOW + 5], times[BASELINE_TURNS - WINDOW :]
            b_early, b_late = _per_turn(sizes, 2 * WINDOW), _per_turn(sizes, BASELINE_TURNS)
            rows.append(
                Row(
                    f"thread growth, bare LangGraph sync (baseline): p50 ms at turn {WINDOW} -> {BASELINE_TURNS};"
                    " bytes per turn",
                    "-",
                    f"{pct(early, 50):.1f} -> {pct(late, 50):.1f} ms; "
                    f"{b_early / 1024:.1f} KB -> {b_late / 1024:.1f} KB ({sizes[BASELINE_TURNS] / 2**20:.1f} MB total)",
                    f"{pct(late, 50) / pct(early, 50):.2f}x; {b_late / b_early:.1f}x",
                    "-",
                    None,
                )
            )

    asyncio.run(go())
    notes = [
        f"Thread growth: {THREADS} Nova threads grown side by side to {TURNS} turns (the baseline one thread to"
        f" {BASELINE_TURNS}); Nova's p50 at turn {WINDOW} is over turns 5-14 of {THREADS} new threads and at turn"
        f" {TURNS} over turns {TURNS + 1}-{TURNS + WINDOW} of the grown ones, the two alternating turn by turn (a slow"
        " spell of the machine lands on both); Nova keeps the latest"
        " messages in state and moves older turns to nova_transcript with a rolling summary (compaction at 40"
        " messages, 20 kept), so each checkpoint carries a bounded window; bytes = the first thread's rows in"
        " checkpoints, checkpoint_blobs, checkpoint_writes and nova_transcript, per turn over the last 10 turns."
    ]
    return rows, notes
