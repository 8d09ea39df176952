"""Runs: background execution, one run per thread across worker processes, cancel, join and SSE.

A run is a row in `nova_runs`. On a free thread it is inserted `running` in one statement, the partial
unique index (one running run per thread) settling a race; behind another run it is inserted `pending`
under a per-thread advisory transaction lock and claimed when its turn comes. The worker executing a run
heartbeats it and polls for cancel requests; a run whose worker stopped heartbeating, or whose pid is gone
on this host, is marked as an error and its thread freed, resumable from its last checkpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Send
from psycopg.types.json import Jsonb

from api.catalog import GraphCatalog, GraphEntry
from api.run_store import RUN_LOCK_CLASS, NewRun, RunNotActive, RunStore, Worker, pid_alive
from api.runtime import NovaRuntime
from api.saver import PendingWrites
from api.threads import ApiThreads, dumps, interrupts_of, jsonable

log = logging.getLogger(__name__)

TERMINAL = ("success", "error", "interrupted", "timeout")
POLL_S = 0.2
KEEPALIVE_S = 15.0
STREAM_MODES = {"values": "values", "updates": "updates", "messages-tuple": "messages", "custom": "custom"}
RESUME_HINT = (
    "a chat turn commits whole (NOVA_DURABILITY=turn), so send its input again; a multi-step run resumes"
    " from its last finished step with a run that has no input"
)

# A thread settles in one statement (migration 0006): the run's end, the thread's status from its runs and
# the chat turn's record, under the thread's advisory lock.
SETTLE_SQL = (
    "SELECT nova_settle_thread(%(lock)s::integer, %(thread)s, %(interrupted)s, %(run)s, %(run_status)s, %(run_error)s,"
    " %(turn)s) AS status"
)

CancelReason = Literal["interrupt", "rollback", "shutdown"]


@dataclass(frozen=True)
class RunSpec:
    """What to execute, stored as the run's kwargs so any worker can execute it."""

    input: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    stream_mode: tuple[str, ...] = ("values",)
    subgraphs: bool = False
    interrupt_before: Any = None
    interrupt_after: Any = None
    checkpoint_id: str | None = None
    checkpoint_ns: str = ""
    tags: tuple[str, ...] = ()
    recursion_limit: int | None = None
    run_name: str | None = None
    durability: str | None = None
    temporary: bool = False

    def kwargs(self) -> dict[str, Any]:
        """Return the spec as JSON."""
        out: dict[str, Any] = jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        return out

    @classmethod
    def from_kwargs(cls, data: Mapping[str, Any]) -> RunSpec:
        """Rebuild a spec stored by `kwargs`."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("stream_mode", "tags"):
            if key in values:
                values[key] = tuple(values[key] or ())
        return cls(**values)

    def graph_input(self) -> Any:
        """Return the graph input: the input dict, a Command, or None to continue from the checkpoint."""
        if self.command is None:
            return self.input
        goto = self.command.get("goto")
        targets = goto if isinstance(goto, list) else [goto] if goto else []
        sends = [Send(t["node"], t.get("input")) if isinstance(t, dict) else t for t in targets]
        update = self.command.get("update")
        if isinstance(update, list):
            update = [tuple(pair) for pair in update]
        return Command(resume=self.command.get("resume"), update=update, goto=sends)


def sse(event: str, data: Any) -> str:
    """Format one server-sent event."""
    return f"event: {event}\ndata: {dumps(data)}\n\n"


@dataclass(frozen=True)
class RunRequest:
    """Who asks for a run, of which graph, how it shares the thread, and whether they stream it."""

    user_id: str
    entry: GraphEntry
    strategy: str
    metadata: Mapping[str, Any]
    subscribe: bool = False
    waits: bool = False  # `runs/wait`: the caller wants the final values only


@dataclass
class LocalRun:
    """A run this process executes (or waits to execute), with its live subscribers."""

    run_id: str
    thread_id: str
    user_id: str
    entry: GraphEntry
    spec: RunSpec
    task: asyncio.Task[None] | None = None
    subscribers: list[asyncio.Queue[str | None]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: CancelReason | None = None
    phase: Literal["waiting", "streaming", "concluding"] = "waiting"
    status: str = "pending"
    values: Any = None
    error: dict[str, Any] | None = None
    latest_correction: int | None = None  # newest routing correction id, when the insert read it
    # Stream nested graphs' events too (a specialist's tokens, `|ns` events). Not for a run only waited on, unless
    # it asks for subgraphs: that costs about 2% of a served turn, and its final values and interrupts are the
    # root graph's either way. A stream joined later to such a run gets the root graph's events.
    nested_events: bool = True

    def subscribe(self) -> asyncio.Queue[str | None]:
        """Receive every event from now on; `None` marks the end."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        if self.done.is_set():
            queue.put_nowait(None)
        else:
            self.subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        """Stop receiving events."""
        if queue in self.subscribers:
            self.subscribers.remove(queue)

    def publish(self, event: str, data: Any) -> None:
        """Send an event to every subscriber."""
        if self.subscribers:
            frame = sse(event, data)
            for queue in self.subscribers:
                queue.put_nowait(frame)

    def emit(self, ns: tuple[str, ...], mode: str, chunk: Any) -> None:
        """Publish one graph stream item in the shape of the requested stream mode."""
        if not self.subscribers:  # nobody is streaming: skip rendering every chunk as JSON
            return
        if mode not in {STREAM_MODES[m] for m in self.spec.stream_mode}:
            return
        if ns and not self.spec.subgraphs and mode not in ("messages", "custom"):
            return
        name = mode + ("|" + "|".join(ns) if ns and self.spec.subgraphs else "")
        if mode == "messages":
            message, meta = chunk
            self.publish(name, [jsonable(message), jsonable(meta)])
        else:
            self.publish(name, jsonable(chunk))

    def cancel(self, reason: CancelReason) -> None:
        """Stop the run's task."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.phase != "concluding" and self.task is not None and not self.task.done():
            self.task.cancel()

    def finish(self, status: str, values: Any, error: dict[str, Any] | None) -> None:
        """Record the outcome, send the closing events and release subscribers."""
        self.status, self.values, self.error = status, values, error
        if error is not None:
            self.publish("error", error)
        self.publish("end", {"run_id": self.run_id, "status": status})
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()
        self.done.set()

    def result(self) -> Any:
        """Return what `wait` answers: the final values, or the error."""
        if self.error is not None:
            return {"__error__": self.error}
        return jsonable(self.values) if self.values is not None else {}


class RunManager:
    """Creates, executes, cancels and joins runs for one worker process."""

    def __init__(
        self,
        runtime: NovaRuntime,
        catalog: GraphCatalog,
        threads: ApiThreads,
        *,
        run_timeout_s: float = 900.0,
        heartbeat_s: float = 1.0,
        stale_s: float = 15.0,
    ) -> None:
        self.runtime = runtime
        self.catalog = catalog
        self.threads = threads
        self.store = RunStore(runtime.pool)
        self.worker = Worker()
        self.run_timeout_s = run_timeout_s
        self.heartbeat_s = heartbeat_s
        self.stale_s = stale_s
        self.local: dict[str, LocalRun] = {}
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Recover runs lost by dead workers, then heartbeat in the background."""
        await self.sweep()
        self._ticker = asyncio.create_task(self._tick_forever(), name="nova-runs-heartbeat")

    async def close(self) -> None:
        """Stop heartbeating, hand pending runs to other workers, and end running ones as resumable errors."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        pending = [r.run_id for r in self.local.values() if r.phase == "waiting"]
        if pending:
            await self.store.release(pending, self.worker)
        tasks = []
        for run in list(self.local.values()):
            run.cancel("shutdown")
            if run.task is not None:
                tasks.append(run.task)
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    # --- creating -----------------------------------------------------------------------------------

    async def submit(
        self, request: RunRequest, *, thread_id: str, spec: RunSpec
    ) -> tuple[dict[str, Any], LocalRun, asyncio.Queue[str | None] | None]:
        """Record a run and start driving it here; raise ThreadBusy under the reject strategy."""
        row, displaced = await self.store.insert(self._new_run(request, thread_id, spec))
        for other in displaced:
            if other in self.local:
                self.local[other].cancel("rollback" if request.strategy == "rollback" else "interrupt")
        return self._drive_here(row, request, thread_id, spec)

    async def start_if_free(
        self, request: RunRequest, *, thread_id: str, spec: RunSpec
    ) -> tuple[dict[str, Any], LocalRun, asyncio.Queue[str | None] | None] | None:
        """Start a run at once if the thread is the user's, bound to this graph (or none) and free; else None."""
        row = await self.store.start_if_free(self._new_run(request, thread_id, spec))
        return None if row is None else self._drive_here(row, request, thread_id, spec)

    def _new_run(self, request: RunRequest, thread_id: str, spec: RunSpec) -> NewRun:
        return NewRun(
            run_id=str(uuid.uuid4()),
            thread_id=thread_id,
            graph_id=request.entry.graph_id,
            assistant_id=request.entry.assistant_id,
            user_id=request.user_id,
            strategy=request.strategy,
            kwargs=spec.kwargs(),
            metadata=request.metadata,
            worker=self.worker,
        )

    def _drive_here(
        self, row: dict[str, Any], request: RunRequest, thread_id: str, spec: RunSpec
    ) -> tuple[dict[str, Any], LocalRun, asyncio.Queue[str | None] | None]:
        run = LocalRun(str(row["run_id"]), thread_id, request.user_id, request.entry, spec)
        latest_correction = int(row.pop("latest_correction"))
        if row["status"] == "running":  # the thread was free: the insert started it here
            run.phase, run.latest_correction = "streaming", latest_correction
        queue = run.subscribe() if request.subscribe else None
        run.nested_events = request.subscribe or not request.waits or spec.subgraphs
        self.local[run.run_id] = run
        run.task = asyncio.create_task(self._drive(run), name=f"nova-run-{run.run_id}")
        return row, run, queue

    # --- executing ----------------------------------------------------------------------------------

    async def _drive(self, run: LocalRun) -> None:
        try:
            try:
                started = run.phase == "streaming" or await self._wait_for_turn(run)
            except asyncio.CancelledError:
                _uncancel()
                if run.cancel_reason == "shutdown":
                    run.finish("pending", None, None)  # released: another worker adopts it
                    return
                if run.cancel_reason == "rollback":
                    await self.store.delete_active(run.run_id)
                else:
                    await self.store.end_active(run.run_id, "interrupted", None)
                await self.refresh_thread(run.thread_id)
                run.finish("interrupted", None, None)
                return
            if not started:
                run.finish(await self.store.status(run.run_id) or "interrupted", None, None)
                return
            await self._execute(run)
        except Exception:
            log.exception("run %s failed outside the graph", run.run_id)
            error = {"error": "InternalError", "message": "the server failed to finish the run"}
            try:
                await self.store.end_active(run.run_id, "error", error)
                await self.refresh_thread(run.thread_id)
            except Exception as exc:
                log.warning("cannot close run %s: %r", run.run_id, exc)
            if not run.done.is_set():
                run.finish("error", None, error)
        finally:
            self.local.pop(run.run_id, None)

    async def _wait_for_turn(self, run: LocalRun) -> bool:
        while True:
            if await self.store.claim(run.run_id, self.worker):
                run.phase = "streaming"
                return True
            if await self.store.status(run.run_id) != "pending":
                return False
            await asyncio.sleep(POLL_S)

    def _config(self, run: LocalRun) -> RunnableConfig:
        spec = run.spec
        configurable: dict[str, Any] = {"thread_id": run.thread_id}
        if spec.checkpoint_id:
            configurable.update(checkpoint_id=spec.checkpoint_id, checkpoint_ns=spec.checkpoint_ns)
        config: RunnableConfig = {
            "configurable": configurable,
            "metadata": {
                "run_id": run.run_id,
                "user_id": run.user_id,
                "graph_id": run.entry.graph_id,
                "assistant_id": run.entry.assistant_id,
            },
            "run_id": uuid.UUID(run.run_id),
        }
        if spec.tags:
            config["tags"] = list(spec.tags)
        if spec.recursion_limit:
            config["recursion_limit"] = spec.recursion_limit
        if spec.run_name:
            config["run_name"] = spec.run_name
        return config

    async def _execute(self, run: LocalRun) -> None:
        spec, graph = run.spec, run.entry.graph
        began = time.perf_counter()
        paused = bool(spec.interrupt_before or spec.interrupt_after or graph.interrupt_before_nodes)
        paused = paused or bool(graph.interrupt_after_nodes)  # static breakpoints: the stream may not say
        deadline = asyncio.timeout(self.run_timeout_s)
        durability: Any = spec.durability or self.runtime.settings.durability_for(run.entry.graph_id)
        # An `exit` run commits only as it ends: its checkpoint is held and committed with the run's end.
        saver = self.runtime.saver
        held_here = durability == "exit" and graph.checkpointer is saver
        holding = saver.holding(run.thread_id) if held_here else nullcontext(None)
        with holding as held:
            status, error, values, paused = await self._stream(run, durability, deadline, paused)
        run.phase = "concluding"
        clean = status == "success" and not paused and isinstance(values, dict)
        duration_ms = (time.perf_counter() - began) * 1000
        await self._conclude(run, status, error, values, duration_ms, clean=clean, held=held)

    async def _stream(
        self, run: LocalRun, durability: Any, deadline: asyncio.Timeout, paused: bool
    ) -> tuple[str, dict[str, Any] | None, Any, bool]:
        """Run the graph, passing its events on; return (status, error, final values, paused)."""
        spec, graph = run.spec, run.entry.graph
        modes = sorted({"values", *(STREAM_MODES[m] for m in spec.stream_mode)})
        status, error, values = "success", None, None
        try:
            context = run.entry.context(self.runtime.context(run.user_id), spec.context)
            if run.entry.graph_id == "nova":
                await self.runtime.refresh_corrections(run.latest_correction)
            stream: AsyncIterator[Any] = graph.astream(
                spec.graph_input(),
                self._config(run),
                context=context,
                stream_mode=modes,  # type: ignore[arg-type]
                subgraphs=run.nested_events,
                interrupt_before=spec.interrupt_before,
                interrupt_after=spec.interrupt_after,
                durability=durability,
            )
            async with deadline:
                async for item in stream:
                    ns, mode, chunk = item if run.nested_events else ((), *item)
                    if mode == "values" and not ns:
                        values = chunk
                    if isinstance(chunk, dict) and "__interrupt__" in chunk:
                        paused = True
                    run.emit(ns, mode, chunk)
        except asyncio.CancelledError:
            if run.cancel_reason is None:
                raise
            _uncancel()
            status = "interrupted"
            if run.cancel_reason == "shutdown":
                status, error = "error", {"error": "ServerShutdown", "message": f"the server stopped; {RESUME_HINT}"}
        except TimeoutError as exc:
            status, error = ("timeout", {"error": "TimeoutError", "message": f"run exceeded {self.run_timeout_s:g}s"})
            if not deadline.expired():
                status, error = "error", _error_of(exc)
        except Exception as exc:
            log.warning("run %s failed: %r", run.run_id, exc)
            status, error = "error", _error_of(exc)
        return status, error, values, paused

    async def _conclude(
        self,
        run: LocalRun,
        status: str,
        error: dict[str, Any] | None,
        values: Any,
        duration_ms: float,
        *,
        clean: bool = False,
        held: PendingWrites | None = None,
    ) -> None:
        """Record the run's end, the thread's status and the turn; answer subscribers.

        `clean`: the run succeeded with no interrupt and its final values are at hand, so the thread is idle
        and the checkpoint need not be read back. `held`: the run's checkpoint writes, not yet committed; a clean
        run's are committed with its end, any other's first, before its state is read.
        """
        if held and not clean:
            await self.runtime.saver.commit_held(held)
            held = None
        snapshot = None
        if not clean:
            try:
                snapshot = await run.entry.graph.aget_state({"configurable": {"thread_id": run.thread_id}})
            except Exception as exc:
                log.warning("cannot read the state of thread %s: %r", run.thread_id, exc)
        interrupted = None if snapshot is None and not clean else bool(snapshot and interrupts_of(snapshot))
        if status == "interrupted" and run.cancel_reason == "rollback":
            await self.store.rollback(run.run_id, run.thread_id)
            await self.refresh_thread(run.thread_id, snapshot)
        else:  # the run's end, the thread's new status and the turn's record in one transaction
            state = values if clean else snapshot.values if snapshot is not None else {}
            turn = self._turn_row(run, state, snapshot, status, error, duration_ms)
            await self.refresh_thread(
                run.thread_id,
                snapshot,
                finished=(run.run_id, status, error),
                interrupted=interrupted,
                turn=turn if run.entry.graph_id == "nova" else None,
                held=held,
            )
        if isinstance(values, dict) and snapshot is not None:
            # The values stream reports interrupts one by one; answer with every one pending.
            values = {k: v for k, v in values.items() if k != "__interrupt__"}
            if pending := interrupts_of(snapshot):
                values["__interrupt__"] = pending
        if run.spec.temporary:
            await self.delete_thread(run.thread_id, run.user_id)
        run.finish(status, values, error)

    @staticmethod
    def _turn_row(
        run: LocalRun, values: Any, snapshot: Any, status: str, error: dict[str, Any] | None, duration_ms: float
    ) -> dict[str, Any]:
        """Return the turn log entry of a finished chat run."""
        route = values.get("route") if isinstance(values, dict) else None
        failure = None
        if error is not None:
            node = ".".join(snapshot.next) if snapshot is not None and snapshot.next else "the run"
            failure = {"node": node, "kind": str(error.get("error")), "message": str(error.get("message"))[:200]}
        return {
            "user_id": run.user_id,
            "thread_id": run.thread_id,
            "agent": getattr(route, "chosen", None),
            "status": "ok" if status == "success" else status,
            "duration_ms": round(duration_ms, 1),
            "error": failure,
        }

    async def refresh_thread(
        self,
        thread_id: str,
        snapshot: Any = None,
        *,
        finished: tuple[str, str, dict[str, Any] | None] | None = None,
        interrupted: bool | None = None,
        turn: dict[str, Any] | None = None,
        held: PendingWrites | None = None,
    ) -> str | None:
        """Recompute a thread's status from its runs and its latest checkpoint (`snapshot`, if already read).

        `interrupted`, when known, spares reading the checkpoint. `finished` (run id, status, error) records a
        run's end and `turn` (a turn log entry) the chat turn, in the same transaction, with `held` (checkpoint
        writes held by NovaSaver) when given.
        """
        if snapshot is None and interrupted is None:
            async with self.runtime.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT metadata->>'graph_id' AS g FROM nova_threads WHERE thread_id = %s", (thread_id,)
                )
                row = await cur.fetchone()
            if row is None:
                return None
            entry = self.catalog.resolve(row["g"] or "nova")
            if entry is not None:
                snapshot = await entry.graph.aget_state({"configurable": {"thread_id": thread_id}})
        if interrupted is None:
            interrupted = snapshot is not None and bool(interrupts_of(snapshot))
        run_id, run_status, error = finished if finished is not None else (None, None, None)
        params = {
            "lock": RUN_LOCK_CLASS,
            "thread": thread_id,
            "interrupted": interrupted,
            "run": run_id,
            "run_status": run_status,
            "run_error": Jsonb(error) if error is not None else None,
            "turn": Jsonb(turn) if turn is not None else None,
        }
        if held:
            row = await self.runtime.saver.commit_held(held, (SETTLE_SQL, params))
        else:
            async with self.runtime.pool.connection() as conn:
                row = await (await conn.execute(SETTLE_SQL, params)).fetchone()
        return str(row["status"]) if row and row["status"] else None

    async def delete_thread(self, thread_id: str, user_id: str) -> bool:
        """Delete a thread: its checkpoints, its runs and its row."""
        await self.runtime.saver.adelete_thread(thread_id)
        return await self.threads.delete(thread_id, user_id)

    # --- cancelling, joining, streaming -------------------------------------------------------------

    async def cancel(self, row: Mapping[str, Any], action: str) -> None:
        """Cancel a pending or running run wherever it executes; raise RunNotActive if it ended."""
        run_id = str(row["run_id"])
        reason: CancelReason = "rollback" if action == "rollback" else "interrupt"
        if await self.store.cancel_pending(run_id, action):
            if run_id in self.local:
                self.local[run_id].cancel(reason)
            await self.refresh_thread(str(row["thread_id"]))
            return
        if not await self.store.request_cancel(run_id, action):
            raise RunNotActive(run_id)
        if run_id in self.local:
            self.local[run_id].cancel(reason)

    async def wait(self, run_id: str) -> str | None:
        """Wait until a run ends (in this worker or another) and return its final status."""
        run = self.local.get(run_id)
        if run is not None:
            await run.done.wait()
            return run.status
        while True:
            status = await self.store.status(run_id)
            if status is None or status in TERMINAL:
                return status
            await asyncio.sleep(POLL_S)

    async def events(
        self, run: LocalRun, queue: asyncio.Queue[str | None], *, cancel_on_disconnect: bool
    ) -> AsyncIterator[str]:
        """Yield a run's SSE frames: metadata first, then graph events, then error and end."""
        try:
            yield sse("metadata", {"run_id": run.run_id, "attempt": 1})
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if frame is None:
                    return
                yield frame
        finally:
            run.unsubscribe(queue)
            if cancel_on_disconnect and not run.done.is_set():
                run.cancel("interrupt")

    async def remote_events(self, row: Mapping[str, Any]) -> AsyncIterator[str]:
        """Yield the end of a run executing in another worker: its final values, error and end."""
        run_id = str(row["run_id"])
        yield sse("metadata", {"run_id": run_id, "attempt": 1})
        status = await self.wait(run_id)
        final = await self.store.get(run_id)
        if final is not None and final["error"]:
            yield sse("error", final["error"])
        yield sse("end", {"run_id": run_id, "status": status})

    # --- recovering ---------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        last_sweep = 0.0
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                if self.local:
                    requests = await self.store.heartbeat(list(self.local), self.worker)
                    for run_id, action in requests.items():
                        if run_id in self.local:
                            self.local[run_id].cancel("rollback" if action == "rollback" else "interrupt")
                if time.monotonic() - last_sweep >= min(self.stale_s / 3, 2.0):
                    last_sweep = time.monotonic()
                    await self.sweep()
            except Exception as exc:
                log.warning("run heartbeat failed: %r", exc)

    async def sweep(self) -> list[str]:
        """Fail running runs whose worker is gone and adopt pending ones; return the run ids handled."""
        handled = []
        for row in await self.store.suspects(self.worker, self.stale_s):
            if row["worker_host"] == self.worker.host:
                # On this host the pid decides: a living worker keeps its runs even when it is slow.
                if row["worker_pid"] and pid_alive(int(row["worker_pid"])):
                    continue
            elif not row["stale"]:
                continue
            error = {"error": "WorkerLost", "message": f"the worker running this run stopped; {RESUME_HINT}"}
            if not await self.store.take_over(row, self.worker, error=error):
                continue
            handled.append(str(row["run_id"]))
            if row["status"] == "running":
                log.warning("run %s lost its worker %s/%s", row["run_id"], row["worker_host"], row["worker_pid"])
                await self.refresh_thread(str(row["thread_id"]))
            else:
                self._adopt(row)
        return handled

    def _adopt(self, row: Mapping[str, Any]) -> None:
        entry = self.catalog.resolve(str(row["graph_id"]))
        if entry is None:
            log.warning("cannot adopt run %s: graph %s is not served here", row["run_id"], row["graph_id"])
            return
        run = LocalRun(
            str(row["run_id"]), str(row["thread_id"]), str(row["user_id"]), entry, RunSpec.from_kwargs(row["kwargs"])
        )
        self.local[run.run_id] = run
        run.task = asyncio.create_task(self._drive(run), name=f"nova-run-{run.run_id}")


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _error_of(exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip()
    return {"error": type(exc).__name__, "message": text.splitlines()[0][:500] if text else type(exc).__name__}
