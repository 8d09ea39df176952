"""Postgres implementations of the ports nodes use: routing log, corrections, caches, threads, health."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from nodes.embeddings import Embedder
from state.routing import RouteDecision

Pool = AsyncConnectionPool[Any]


class EmbedderMismatch(RuntimeError):
    """Stored vectors were made by another embedder than the configured one."""


@dataclass
class PgRouteLog:
    """The routing log in table `routing_log`."""

    pool: Pool

    async def record(self, decision: RouteDecision, *, thread_id: str, user_id: str) -> None:
        """Append a decision."""
        candidates = [c.model_dump() for c in decision.candidates]
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO routing_log (user_id, thread_id, text, chosen, method, reason, candidates, fallback,"
                " latency_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    user_id,
                    thread_id,
                    decision.text,
                    decision.chosen,
                    decision.method,
                    decision.reason,
                    Jsonb(candidates),
                    decision.fallback,
                    decision.latency_ms,
                ),
            )

    async def recent(self, *, user_id: str, thread_id: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Return the latest decisions, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, created_at, thread_id, text, chosen, method, reason, candidates, fallback, latency_ms"
                " FROM routing_log WHERE user_id = %s AND (%s::text IS NULL OR thread_id = %s)"
                " ORDER BY id DESC LIMIT %s",
                (user_id, thread_id, thread_id, limit),
            )
            return list(await cur.fetchall())


@dataclass
class PgCorrections:
    """Routing corrections: requests relabelled by the user, learned without a restart."""

    pool: Pool

    async def add(self, *, user_id: str, text: str, correct: str, wrong: str | None, thread_id: str | None) -> int:
        """Record a correction and return its id."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO routing_corrections (user_id, thread_id, text, wrong, correct)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (user_id, thread_id, text, wrong, correct),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row["id"])

    async def since(self, last_id: int) -> list[tuple[int, str, str]]:
        """Return (id, text, correct) for corrections after `last_id`."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, text, correct FROM routing_corrections WHERE id > %s ORDER BY id", (last_id,)
            )
            return [(int(r["id"]), str(r["text"]), str(r["correct"])) for r in await cur.fetchall()]

    async def latest_id(self) -> int:
        """Return the newest correction id (0 when none)."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute("SELECT coalesce(max(id), 0) AS id FROM routing_corrections")).fetchone()
            return int(row["id"]) if row else 0


async def check_embedder(pool: Pool, embed: Embedder) -> None:
    """Record the embedder on first use; refuse a different one until `nova reindex` is run."""
    wanted = {"name": embed.name, "dim": embed.dim}
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT value FROM nova_meta WHERE key = 'embedder'")).fetchone()
        if row is None:
            await conn.execute(
                "INSERT INTO nova_meta (key, value) VALUES ('embedder', %s) ON CONFLICT (key) DO NOTHING",
                (Jsonb(wanted),),
            )
            return
        stored = row["value"]
        if stored != wanted:
            raise EmbedderMismatch(
                f"stored vectors were made with {stored['name']} ({stored['dim']} dims) but the configured embedder "
                f"is {embed.name} ({embed.dim} dims). Run `nova reindex` to re-embed everything with the new "
                "embedder, or set NOVA_EMBEDDER back."
            )


async def set_embedder(pool: Pool, embed: Embedder) -> None:
    """Record the embedder the stored vectors now belong to (after a reindex)."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO nova_meta (key, value, updated_at) VALUES ('embedder', %s, now())"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
            (Jsonb({"name": embed.name, "dim": embed.dim}),),
        )


@dataclass
class PgThreads:
    """Thread ownership and titles; LangGraph's checkpoints hold the content."""

    pool: Pool

    async def touch(self, thread_id: str, user_id: str, title: str) -> None:
        """Create the thread row on first use, bump its time afterwards; refuse another user's thread."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO nova_threads (thread_id, user_id, title) VALUES (%s, %s, %s)"
                " ON CONFLICT (thread_id) DO UPDATE SET updated_at = now()"
                " WHERE nova_threads.user_id = excluded.user_id RETURNING thread_id",
                (thread_id, user_id, title[:120]),
            )
            if await cur.fetchone() is None:
                raise PermissionError(f"thread {thread_id} belongs to another user")

    async def owner(self, thread_id: str) -> str | None:
        """Return the owning user of a thread, or None when unknown."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT user_id FROM nova_threads WHERE thread_id = %s", (thread_id,))
            ).fetchone()
            return str(row["user_id"]) if row else None

    async def list(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Return the user's threads, most recent first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT thread_id, title, created_at, updated_at FROM nova_threads WHERE user_id = %s"
                " ORDER BY updated_at DESC LIMIT %s",
                (user_id, limit),
            )
            return list(await cur.fetchall())


@dataclass
class PgTurnLog:
    """One row per turn: agent, outcome, duration and the failure if any (health and metrics read it)."""

    pool: Pool

    async def record(
        self,
        *,
        user_id: str,
        thread_id: str,
        agent: str | None,
        status: str,
        duration_ms: float,
        error: dict[str, str] | None = None,
    ) -> None:
        """Append a turn's outcome (a run's turn is logged as its thread settles, by nova_settle_thread)."""
        err = error or {}
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO turn_log (user_id, thread_id, agent, status, error_node, error_kind, error, duration_ms)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (user_id, thread_id, agent, status, err.get("node"), err.get("kind"), err.get("message"), duration_ms),
            )

    async def recent_failures(self, limit: int = 5) -> list[dict[str, Any]]:
        """Return the latest failed turns."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT created_at, thread_id, error_node, error_kind, error FROM turn_log WHERE status = 'error'"
                " ORDER BY id DESC LIMIT %s",
                (limit,),
            )
            return list(await cur.fetchall())


def dumps(obj: Any) -> str:
    """Serialise rows for display (timestamps as ISO strings)."""
    return json.dumps(obj, default=str, indent=2)


@dataclass
class PgTranscript:
    """Messages compaction moved out of a thread's state, in order; re-appending a message is a no-op."""

    pool: Pool

    async def append(self, thread_id: str, messages: Sequence[AnyMessage]) -> None:
        """Append moved messages (one transaction)."""
        rows = [
            (
                thread_id,
                m.id,
                m.type,
                (m.response_metadata or {}).get("agent") or m.name,
                m.text,
            )
            for m in messages
        ]
        if not rows:
            return
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO nova_transcript (thread_id, message_id, role, agent, content) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (thread_id, message_id) WHERE message_id IS NOT NULL DO NOTHING",
                rows,
            )

    async def read(self, thread_id: str, *, limit: int = 10_000) -> list[dict[str, Any]]:
        """Return the moved messages of a thread, oldest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT message_id, role, agent, content, moved_at FROM nova_transcript WHERE thread_id = %s"
                " ORDER BY seq LIMIT %s",
                (thread_id, limit),
            )
            return list(await cur.fetchall())
