"""Thread growth: one thread from turn 1 to turn 1,000, latency and bytes stored per turn as it grows.

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


async def _grow(graph: Any, pool: Any, turns: int, durability: str, context: Any) -> tuple[list[float], dict[int, int]]:
    thread = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread}}
    times: list[float] = []
    sizes: dict[int, int] = {}
    marks = {WINDOW, 2 * WINDOW, turns - WINDOW, turns}
    for i in range(1, turns + 1):
        start = time.perf_counter()
        kwargs: dict[str, Any] = {"durability": durability}
        if context is not None:
            kwargs["context"] = context
        text = f"translate 'the delivery for order {i} is late again, sorry' into French"
        await graph.ainvoke({"messages": [HumanMessage(text)]}, config, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
        if i in marks:
            sizes[i] = await _bytes(pool, thread)
    return times, sizes


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
                times, sizes = await _grow(nova, pool, TURNS, durability, Context())
                early, late = times[WINDOW - 5 : WINDOW + 5], times[TURNS - WINDOW :]
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
            times, sizes = await _grow(bare, pool, BASELINE_TURNS, "sync", None)
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
        f"Thread growth: one thread, {TURNS} turns (baseline {BASELINE_TURNS}); Nova keeps the latest messages in"
        " state and moves older turns to nova_transcript with a rolling summary (compaction at 40 messages, 20"
        " kept), so each checkpoint carries a bounded window; bytes = thread rows in checkpoints, checkpoint_blobs,"
        " checkpoint_writes and nova_transcript, per turn over the last 10 turns."
    ]
    return rows, notes
