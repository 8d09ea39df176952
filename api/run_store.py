"""SQL over `nova_runs`: the run rows every worker process shares.

A run on a free thread is inserted `running` in one statement; a partial unique index allows one running
run per thread, so two workers racing for a free thread cannot both start. Behind another run, a run is
inserted `pending` under a per-thread advisory transaction lock (the check for active runs and the insert
are atomic across workers) and `claim` starts it when its turn comes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from api.persistence import Pool
from api.threads import jsonable

RUN_LOCK_CLASS = 7_446_002  # advisory lock class for per-thread run serialisation (object id: hashtext(thread))


class ThreadBusy(Exception):
    """The thread has an active run and the strategy was reject."""


class RunNotActive(Exception):
    """The run already finished."""


@dataclass(frozen=True)
class Worker:
    """This process, as recorded on the runs it executes."""

    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def pid_alive(pid: int) -> bool:
    """Return True when a process with this pid runs on this host (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class NewRun:
    """A run about to be recorded: what `nova_runs` gets on insert."""

    run_id: str
    thread_id: str
    graph_id: str
    assistant_id: str
    user_id: str
    strategy: str
    kwargs: Mapping[str, Any]
    metadata: Mapping[str, Any]
    worker: Worker

    def values(self) -> tuple[Any, ...]:
        """The first ten insert parameters, in `nova_runs` column order."""
        return (
            self.run_id,
            self.thread_id,
            self.assistant_id,
            self.graph_id,
            self.user_id,
            self.strategy,
            Jsonb(dict(self.kwargs)),
            Jsonb(self.stored_metadata),
            self.worker.host,
            self.worker.pid,
        )

    @cached_property
    def stored_metadata(self) -> dict[str, Any]:
        """The metadata as `nova_runs` stores it (plain JSON values), made once for the insert and its row."""
        out: dict[str, Any] = jsonable(dict(self.metadata))
        return out

    def started_row(self, made: Mapping[str, Any]) -> dict[str, Any]:
        """Return the run's row after its insert: what Postgres made (`made`) over what the insert sent."""
        return {
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "multitask_strategy": self.strategy,
            "kwargs": dict(self.kwargs),
            "metadata": self.stored_metadata,
            "error": None,
            **made,
        }

    def thread_meta(self) -> Jsonb:
        """What the thread's metadata learns: the graph and assistant it runs."""
        return Jsonb({"graph_id": self.graph_id, "assistant_id": self.assistant_id})


_RUN_COLUMNS = (
    "run_id, thread_id, assistant_id, graph_id, user_id, status, multitask_strategy, kwargs, metadata, error,"
    " cancel_action, worker_host, worker_pid, heartbeat_at, created_at, updated_at, started_at, ended_at"
)


def run_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """Render a run row as the API's Run."""
    return {
        "run_id": row["run_id"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "status": row["status"],
        "metadata": row["metadata"] or {},
        "multitask_strategy": row["multitask_strategy"],
        "kwargs": row["kwargs"] or {},
        "error": row["error"],
    }


# The common case in one statement: the thread has no active run, so the run starts `running` here and the
# thread turns busy. When a run is active (or pending) nothing is inserted and the caller takes the locked
# path; two racing inserts both seeing a free thread are kept apart by the one-running-per-thread index.
# With an owner the statement also checks the thread is theirs and bound to this graph (or to none yet).
# It returns only what Postgres makes; the rest of the row is what it was sent (`NewRun.started_row`): reading
# back and parsing the run's kwargs and metadata was 1% of a served turn's instructions.
START_ON_FREE_THREAD_SQL = """
WITH started AS (
    INSERT INTO nova_runs (run_id, thread_id, assistant_id, graph_id, user_id, multitask_strategy, kwargs,
        metadata, worker_host, worker_pid, heartbeat_at, status, started_at)
    SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), 'running', now()
    WHERE NOT EXISTS (SELECT 1 FROM nova_runs WHERE thread_id = %s AND status IN ('pending', 'running'))
    AND (%s::text IS NULL OR EXISTS (SELECT 1 FROM nova_threads t WHERE t.thread_id = %s AND t.user_id = %s
        AND coalesce(t.metadata->>'graph_id', %s) = %s))
    RETURNING run_id, status, created_at, updated_at
), busy AS (
    UPDATE nova_threads SET status = 'busy', updated_at = now(), metadata = metadata || %s
    WHERE thread_id = %s AND EXISTS (SELECT 1 FROM started)
)
SELECT *, (SELECT coalesce(max(id), 0) FROM routing_corrections) AS latest_correction FROM started
"""


class RunStore:
    """SQL over `nova_runs`."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def insert(self, run: NewRun) -> tuple[dict[str, Any], list[str]]:
        """Insert a run, applying the multitask strategy; return it and the runs asked to stop.

        On a thread with no active run the run is inserted `running` for `worker` (no separate claim), in
        one statement; behind another run it is inserted `pending`, under the thread's advisory lock, and
        waits for `claim`. The row also carries `latest_correction`, the newest routing correction id, so
        the worker learns corrections without another query.
        """
        started = await self._start_on_free_thread(run, None)
        if started is not None:
            return started, []
        displaced: list[str] = []
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (RUN_LOCK_CLASS, run.thread_id))
            cur = await conn.execute(
                "SELECT run_id, status FROM nova_runs WHERE thread_id = %s AND status IN ('pending', 'running')"
                " ORDER BY seq",
                (run.thread_id,),
            )
            active = await cur.fetchall()
            if active and run.strategy == "reject":
                raise ThreadBusy(run.thread_id)
            if active and run.strategy in ("interrupt", "rollback"):
                for row in active:
                    displaced.append(row["run_id"])
                    if row["status"] == "running":
                        await conn.execute(
                            "UPDATE nova_runs SET cancel_action = %s, updated_at = now() WHERE run_id = %s",
                            (run.strategy, row["run_id"]),
                        )
                    elif run.strategy == "rollback":
                        await conn.execute("DELETE FROM nova_runs WHERE run_id = %s", (row["run_id"],))
                    else:
                        await conn.execute(
                            "UPDATE nova_runs SET status = 'interrupted', ended_at = now(), updated_at = now()"
                            " WHERE run_id = %s",
                            (row["run_id"],),
                        )
            status = "pending" if active else "running"
            cur = await conn.execute(
                "INSERT INTO nova_runs (run_id, thread_id, assistant_id, graph_id, user_id, multitask_strategy,"
                " kwargs, metadata, worker_host, worker_pid, heartbeat_at, status, started_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s,"
                f" {'NULL' if active else 'now()'})"
                f" RETURNING {_RUN_COLUMNS},"
                " (SELECT coalesce(max(id), 0) FROM routing_corrections) AS latest_correction",
                (*run.values(), status),
            )
            row = await cur.fetchone()
            await conn.execute(
                "UPDATE nova_threads SET status = 'busy', updated_at = now(), metadata = metadata || %s"
                " WHERE thread_id = %s",
                (run.thread_meta(), run.thread_id),
            )
        assert row is not None
        return dict(row), displaced

    async def start_if_free(self, run: NewRun) -> dict[str, Any] | None:
        """Start a run in one statement if the thread is free and `user_id`'s; else return None.

        The thread must also be bound to `graph_id` or to no graph yet. On None the caller checks the thread
        and calls `insert` as usual.
        """
        return await self._start_on_free_thread(run, run.user_id)

    async def _start_on_free_thread(self, run: NewRun, owner: str | None) -> dict[str, Any] | None:
        thread, graph = run.thread_id, run.graph_id
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    START_ON_FREE_THREAD_SQL,
                    (*run.values(), thread, owner, thread, owner, graph, graph, run.thread_meta(), thread),
                )
                row = await cur.fetchone()
        except UniqueViolation:
            return None  # another run started on the thread at the same moment: the caller queues behind it
        return run.started_row(row) if row is not None else None

    async def claim(self, run_id: str, worker: Worker) -> bool:
        """Start the run if it is next in its thread's queue and no run of the thread is running."""
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "UPDATE nova_runs r SET status = 'running', started_at = now(), updated_at = now(),"
                    " heartbeat_at = now(), worker_host = %s, worker_pid = %s"
                    " WHERE r.run_id = %s AND r.status = 'pending' AND NOT EXISTS (SELECT 1 FROM nova_runs q"
                    " WHERE q.thread_id = r.thread_id AND q.status = 'pending' AND q.seq < r.seq) RETURNING run_id",
                    (worker.host, worker.pid, run_id),
                )
                return await cur.fetchone() is not None
        except UniqueViolation:
            return False

    async def get(
        self, run_id: str, *, thread_id: str | None = None, user_id: str | None = None
    ) -> dict[str, Any] | None:
        """Return a run, optionally only if it belongs to the thread and user."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM nova_runs WHERE run_id = %s"
                " AND (%s::text IS NULL OR thread_id = %s) AND (%s::text IS NULL OR user_id = %s)",
                (run_id, thread_id, thread_id, user_id, user_id),
            )
            row = await cur.fetchone()
        return dict(row) if row else None

    async def has_active(self, thread_id: str) -> bool:
        """Return True while a run of the thread is pending or running."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM nova_runs WHERE thread_id = %s AND status IN ('pending', 'running'))"
                " AS active",
                (thread_id,),
            )
            row = await cur.fetchone()
        return bool(row and row["active"])

    async def status(self, run_id: str) -> str | None:
        """Return a run's status, None once deleted."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute("SELECT status FROM nova_runs WHERE run_id = %s", (run_id,))).fetchone()
        return str(row["status"]) if row else None

    async def for_thread(self, thread_id: str, *, limit: int, offset: int, status: str | None) -> list[dict[str, Any]]:
        """Return a thread's runs, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM nova_runs WHERE thread_id = %s AND (%s::text IS NULL OR status = %s)"
                " ORDER BY seq DESC LIMIT %s OFFSET %s",
                (thread_id, status, status, limit, offset),
            )
            return [dict(r) for r in await cur.fetchall()]

    async def finish(self, run_id: str, status: str, error: dict[str, Any] | None) -> None:
        """Record a run's final status."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE nova_runs SET status = %s, error = %s, ended_at = now(), updated_at = now() WHERE run_id = %s",
                (status, Jsonb(error) if error is not None else None, run_id),
            )

    async def end_active(self, run_id: str, status: str, error: dict[str, Any] | None) -> None:
        """Close a run that may or may not have started."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE nova_runs SET status = %s, error = %s, ended_at = now(), updated_at = now()"
                " WHERE run_id = %s AND status IN ('pending', 'running')",
                (status, Jsonb(error) if error is not None else None, run_id),
            )

    async def delete_active(self, run_id: str) -> None:
        """Delete a run that may or may not have started (a rollback before it wrote anything)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "DELETE FROM nova_runs WHERE run_id = %s AND status IN ('pending', 'running')", (run_id,)
            )

    async def cancel_pending(self, run_id: str, action: str) -> bool:
        """Cancel a run that has not started; return False if it already started or ended."""
        async with self.pool.connection() as conn:
            if action == "rollback":
                cur = await conn.execute(
                    "DELETE FROM nova_runs WHERE run_id = %s AND status = 'pending' RETURNING run_id", (run_id,)
                )
            else:
                cur = await conn.execute(
                    "UPDATE nova_runs SET status = 'interrupted', ended_at = now(), updated_at = now()"
                    " WHERE run_id = %s AND status = 'pending' RETURNING run_id",
                    (run_id,),
                )
            return await cur.fetchone() is not None

    async def request_cancel(self, run_id: str, action: str) -> bool:
        """Ask whichever worker runs the run to stop it; return False if it is not running."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE nova_runs SET cancel_action = %s, updated_at = now()"
                " WHERE run_id = %s AND status = 'running' RETURNING run_id",
                (action, run_id),
            )
            return await cur.fetchone() is not None

    async def heartbeat(self, run_ids: list[str], worker: Worker) -> dict[str, str]:
        """Heartbeat this worker's runs and return the cancel requests among them."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE nova_runs SET heartbeat_at = now() WHERE run_id = ANY(%s) AND worker_host = %s"
                " AND worker_pid = %s AND status IN ('pending', 'running') RETURNING run_id, status, cancel_action",
                (run_ids, worker.host, worker.pid),
            )
            rows = await cur.fetchall()
        return {r["run_id"]: r["cancel_action"] for r in rows if r["cancel_action"] and r["status"] == "running"}

    async def suspects(self, worker: Worker, stale_s: float) -> list[dict[str, Any]]:
        """Return active runs of other workers that stopped heartbeating or run on this host."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLUMNS}, heartbeat_at < now() - make_interval(secs => %s) AS stale FROM nova_runs"
                " WHERE status IN ('pending', 'running') AND NOT (worker_host = %s AND worker_pid = %s)"
                " AND (heartbeat_at < now() - make_interval(secs => %s) OR worker_host = %s)",
                (stale_s, worker.host, worker.pid, stale_s, worker.host),
            )
            return [dict(r) for r in await cur.fetchall()]

    async def take_over(self, row: Mapping[str, Any], worker: Worker, *, error: dict[str, Any] | None) -> bool:
        """Fail a lost running run, or adopt a lost pending one; False if its worker proved alive meanwhile."""
        async with self.pool.connection() as conn:
            if row["status"] == "running":
                cur = await conn.execute(
                    "UPDATE nova_runs SET status = 'error', error = %s, ended_at = now(), updated_at = now()"
                    " WHERE run_id = %s AND status = 'running' AND heartbeat_at IS NOT DISTINCT FROM %s"
                    " RETURNING run_id",
                    (Jsonb(error), row["run_id"], row["heartbeat_at"]),
                )
            else:
                cur = await conn.execute(
                    "UPDATE nova_runs SET worker_host = %s, worker_pid = %s, heartbeat_at = now(), updated_at = now()"
                    " WHERE run_id = %s AND status = 'pending' AND heartbeat_at IS NOT DISTINCT FROM %s"
                    " RETURNING run_id",
                    (worker.host, worker.pid, row["run_id"], row["heartbeat_at"]),
                )
            return await cur.fetchone() is not None

    async def release(self, run_ids: list[str], worker: Worker) -> None:
        """Make this worker's pending runs immediately adoptable by the others (on shutdown)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE nova_runs SET heartbeat_at = now() - interval '1 day' WHERE run_id = ANY(%s)"
                " AND status = 'pending' AND worker_host = %s AND worker_pid = %s",
                (run_ids, worker.host, worker.pid),
            )

    async def delete(self, run_id: str) -> None:
        """Delete a run's record."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM nova_runs WHERE run_id = %s", (run_id,))

    async def rollback(self, run_id: str, thread_id: str) -> None:
        """Delete a run and every checkpoint it wrote, restoring the thread to before it."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM checkpoint_writes w USING checkpoints c WHERE w.thread_id = c.thread_id"
                " AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id"
                " AND c.thread_id = %s AND c.metadata->>'run_id' = %s",
                (thread_id, run_id),
            )
            await conn.execute(
                "DELETE FROM checkpoints WHERE thread_id = %s AND metadata->>'run_id' = %s", (thread_id, run_id)
            )
            await conn.execute("DELETE FROM nova_runs WHERE run_id = %s", (run_id,))
