"""`nova reindex`: re-embed every stored vector with the configured embedder."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.store.postgres.aio import AsyncPostgresStore

from api.db import migrate, open_pool
from api.persistence import set_embedder
from api.runtime import Progress, build_embedder, resolve_database_url, store_index
from api.settings import Settings
from nodes.memory import MemoryStore


async def reindex(settings: Settings, *, progress: Progress | None = None) -> dict[str, int]:
    """Re-embed store items (and memories) with the configured embedder, then record it."""
    say = progress or (lambda _: None)
    url = await asyncio.to_thread(resolve_database_url, settings, say)
    embed = build_embedder(settings)
    counts: dict[str, int] = {}
    async with open_pool(url, timeout_s=settings.db_timeout_s) as pool:
        await migrate(pool)
        async with pool.connection() as conn:
            exists = await (await conn.execute("SELECT to_regclass('store_vectors') AS t")).fetchone()
            items: list[dict[str, Any]] = []
            if exists and exists["t"]:
                items = list(await (await conn.execute("SELECT prefix, key, value FROM store")).fetchall())
                async with conn.transaction():
                    await conn.execute("DELETE FROM store_vectors")
                    await conn.execute(f"ALTER TABLE store_vectors ALTER COLUMN embedding TYPE vector({embed.dim})")
        store = AsyncPostgresStore(pool, index=store_index(embed))
        await store.setup()
        say(f"re-embedding {len(items)} store items with {embed.name}")
        for row in items:
            await store.aput(tuple(str(row["prefix"]).split(".")), str(row["key"]), row["value"])
        counts["store items"] = len(items)
        counts["memories"] = await MemoryStore(pool, embed).reembed_all(progress=say)
        await set_embedder(pool, embed)
    return counts
