"""Run any served graph on a thread from the CLI: start, resume, report status, act on review gates.

The rows live in `nova_threads` (owner, title, metadata.graph_id, status) exactly as the HTTP API keeps
them, so a pipeline started in the terminal is listed by `/nova/reviews` and `POST /threads/search`,
and a review started over HTTP can be approved with `nova reviews approve`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot
from psycopg.types.json import Jsonb

from api.catalog import assistant_id_for
from api.persistence import Pool
from api.threads import interrupts_of, jsonable
from nodes.review import ReviewAnswerError, parse_decision
from state.context import Context
from state.review import ReviewRequest

Graph = CompiledStateGraph[Any, Any, Any, Any]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
OnUpdate = Callable[[str, dict[str, Any]], Awaitable[None] | None]


class ThreadNotFound(LookupError):
    """No such thread for this user (another user's thread is not found either)."""


class NotAwaitingReview(RuntimeError):
    """The thread is not paused at a review gate (already decided, finished or never paused)."""


@dataclass
class Outcome:
    """Where a graph thread stands after a run, a resume or a status query."""

    thread_id: str
    graph_id: str
    status: ThreadStatus
    values: dict[str, Any]
    next: tuple[str, ...] = ()
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-able view."""
        return {
            "thread_id": self.thread_id,
            "graph_id": self.graph_id,
            "status": self.status,
            "next": list(self.next),
            "interrupts": self.interrupts,
            "error": self.error,
            "values": jsonable(self.values),
        }


def failed_task(snapshot: StateSnapshot) -> dict[str, str] | None:
    """Return the step that failed in the latest checkpoint, with its error, if any."""
    for task in snapshot.tasks:
        if task.error is not None:
            text = str(task.error) if not isinstance(task.error, str) else task.error
            return {"step": task.name, "error": text.splitlines()[0][:500] if text else type(task.error).__name__}
    return None


@dataclass
class GraphThreads:
    """Start, resume and inspect threads of the runtime's graphs for one process."""

    pool: Pool
    graphs: Mapping[str, Graph]
    context_for: Callable[[str], Context]

    def graph(self, graph_id: str) -> Graph:
        """Return a served graph by id."""
        try:
            return self.graphs[graph_id]
        except KeyError:
            raise ThreadNotFound(f"no graph {graph_id!r}; served: {sorted(self.graphs)}") from None

    async def start(
        self,
        graph_id: str,
        payload: Any,
        *,
        user_id: str,
        title: str,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_update: OnUpdate | None = None,
    ) -> Outcome:
        """Create a thread owned by the user and run the graph on it until it ends, pauses or fails."""
        thread = thread_id or str(uuid.uuid4())
        meta = {"graph_id": graph_id, "assistant_id": assistant_id_for(graph_id), **(metadata or {})}
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO nova_threads (thread_id, user_id, title, metadata, status) VALUES (%s, %s, %s, %s, 'busy')"
                " ON CONFLICT (thread_id) DO NOTHING RETURNING thread_id",
                (thread, user_id, title[:120], Jsonb(meta)),
            )
            if await cur.fetchone() is None:
                raise ThreadNotFound(f"thread {thread} already exists")
        return await self._run(graph_id, thread, user_id, payload, on_update)

    async def owned(self, thread_id: str, user_id: str) -> dict[str, Any]:
        """Return the user's thread row or raise ThreadNotFound."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT thread_id, title, metadata, status, updated_at FROM nova_threads"
                " WHERE thread_id = %s AND user_id = %s",
                (thread_id, user_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise ThreadNotFound(f"no thread {thread_id} for user {user_id}")
        return dict(row)

    async def _latest(self, thread_id: str, user_id: str) -> tuple[dict[str, Any], str, StateSnapshot]:
        """Return the user's thread row, its graph id and its latest state."""
        row = await self.owned(thread_id, user_id)
        graph_id = (row["metadata"] or {}).get("graph_id") or "nova"
        return row, graph_id, await self.graph(graph_id).aget_state(_config(thread_id, user_id))

    async def status(self, thread_id: str, user_id: str) -> Outcome:
        """Return where a thread stands, from its latest checkpoint."""
        _, graph_id, snapshot = await self._latest(thread_id, user_id)
        return _outcome(thread_id, graph_id, snapshot)

    async def resume(
        self,
        thread_id: str,
        user_id: str,
        *,
        command: Command[Any] | None = None,
        on_update: OnUpdate | None = None,
    ) -> Outcome:
        """Continue a thread: after a failure (re-running the failed step on) or with a review decision."""
        _, graph_id, snapshot = await self._latest(thread_id, user_id)
        if command is None and not snapshot.next:
            raise NotAwaitingReview(f"thread {thread_id} has nothing left to run")
        if command is None and interrupts_of(snapshot):
            raise NotAwaitingReview(
                f"thread {thread_id} is waiting for a review decision: `nova reviews show {thread_id}`"
            )
        await self._set_status(thread_id, "busy")
        return await self._run(graph_id, thread_id, user_id, command, on_update)

    async def decide(
        self,
        thread_id: str,
        user_id: str,
        decision: Mapping[str, Any],
        *,
        gate: str | None = None,
        on_update: OnUpdate | None = None,
    ) -> Outcome:
        """Answer the thread's pending review gate; refused when it is not waiting for one.

        `gate` (the interrupt id the reviewer saw): also refused when the gate pending now is another one.
        """
        row, graph_id, snapshot = await self._latest(thread_id, user_id)
        pending = interrupts_of(snapshot)
        if not pending:
            raise NotAwaitingReview(f"thread {thread_id} is not waiting for a review (status: {row['status']})")
        if len(pending) > 1:
            raise NotAwaitingReview(f"thread {thread_id} has {len(pending)} pending gates; answer them over HTTP by id")
        if gate is not None and pending[0]["id"] != gate:
            raise NotAwaitingReview(
                f"thread {thread_id} waits at another gate than the one you saw: `nova reviews show {thread_id}`"
            )
        value = pending[0]["value"]
        try:
            request = ReviewRequest.model_validate(value)
        except ValueError:
            request = None
        if request is not None:
            parse_decision(request, dict(decision))
        async with self.pool.connection() as conn, conn.transaction():
            # Two reviewers acting at once: the second waits here, then finds the gate already answered.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('nova-review'), hashtext(%s))", (thread_id,))
            cur = await conn.execute(
                "UPDATE nova_threads SET status = 'busy', updated_at = now() WHERE thread_id = %s"
                " AND status <> 'busy' RETURNING thread_id",
                (thread_id,),
            )
            if await cur.fetchone() is None:
                raise NotAwaitingReview(f"thread {thread_id} is being resumed by someone else")
        return await self._run(
            graph_id, thread_id, user_id, Command(resume={pending[0]["id"]: dict(decision)}), on_update
        )

    async def _run(
        self, graph_id: str, thread_id: str, user_id: str, payload: Any, on_update: OnUpdate | None
    ) -> Outcome:
        graph = self.graph(graph_id)
        config = _config(thread_id, user_id)
        caught: BaseException | None = None
        try:
            context = self.context_for(user_id) if graph.builder.context_schema is not None else None
            # Multi-step graphs commit every step: a resume must find each finished step's output.
            updates = graph.astream(payload, config, context=context, stream_mode="updates", durability="sync")
            async for chunk in updates:
                if on_update is None or not isinstance(chunk, dict):
                    continue
                for node, update in chunk.items():
                    if isinstance(update, dict):
                        result = on_update(node, update)
                        if result is not None:
                            await result
        except (ReviewAnswerError, ValueError, RuntimeError, OSError, TimeoutError) as exc:
            caught = exc  # recorded on the failed task in the checkpoint as well; the outcome reports it
        except BaseException:
            await self._set_status(thread_id, "error")
            raise
        outcome = _outcome(thread_id, graph_id, await graph.aget_state(config))
        if caught is not None and outcome.error is None:
            step = ", ".join(outcome.next) or "the run"
            outcome.error = {"step": step, "error": f"{type(caught).__name__}: {caught}"[:500]}
            outcome.status = "error"
        await self._set_status(thread_id, outcome.status)
        return outcome

    async def _set_status(self, thread_id: str, status: ThreadStatus) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE nova_threads SET status = %s, updated_at = now() WHERE thread_id = %s", (status, thread_id)
            )


def _config(thread_id: str, user_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}, "metadata": {"user_id": user_id}}


def _outcome(thread_id: str, graph_id: str, snapshot: StateSnapshot) -> Outcome:
    values = snapshot.values if isinstance(snapshot.values, dict) else {}
    pending = interrupts_of(snapshot)
    error = failed_task(snapshot)
    status: ThreadStatus = "interrupted" if pending else "error" if error else "idle"
    return Outcome(thread_id, graph_id, status, values, tuple(snapshot.next), pending, error)
