"""Nova's Postgres checkpointer: LangGraph's saver with one commit per super-step and no process-wide lock.

LangGraph's `AsyncPostgresSaver` writes each task's writes as soon as the task finishes and then the
checkpoint, each statement in its own autocommit transaction, all behind one `asyncio.Lock` per saver,
even over a pool. For a chat turn that is a dozen fsync'd commits and every thread of the HTTP server
queued behind one lock. This saver keeps the same tables, SQL and serialisation, and changes when
things are committed:

- a task's writes wait in memory and are committed together with the checkpoint that follows them,
  in one transaction (writes of a failed or interrupted step are committed at once, so the failure or
  the interrupt is on disk and a resume skips the tasks that finished);
- with a pool, each operation takes its own connection; no lock is shared between threads;
- inside `holding()` (the HTTP server's runs in `exit` durability) nothing is committed during the run: what
  would have been committed is kept, in order, and `commit_held` commits it at the run's end in one
  transaction with the statement that records that end, so a turn and its run's outcome are on disk together.

Durability is unchanged where it matters: a checkpoint is on disk (fsync'd commit) before the graph
moves past it in `sync` durability, and no step whose checkpoint was committed can be lost.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

_IN_TRANSACTION: contextvars.ContextVar[AsyncConnection[Any] | None] = contextvars.ContextVar(
    "nova_saver_transaction", default=None
)
_FLUSH_NOW = frozenset({"__error__", "__interrupt__"})  # LangGraph's ERROR and INTERRUPT write channels
WriteKey = tuple[str, str, str]
PendingWrites = list[tuple[str, list[tuple[Any, ...]]]]
_HELD: contextvars.ContextVar[tuple[str, PendingWrites] | None] = contextvars.ContextVar(
    "nova_saver_held", default=None
)  # (the thread whose writes are held, the writes)


def _held_for(thread_id: str) -> PendingWrites | None:
    held = _HELD.get()
    return held[1] if held is not None and held[0] == thread_id else None


# LangGraph's query joins a checkpoint's channel versions to `checkpoint_blobs` by thread; with stale statistics
# Postgres hashes every blob of the thread first, so loading the latest state slows as the thread grows. The
# LATERAL form below (`offset 0` keeps the planner from flattening it back into a join) is one index
# lookup per channel, whatever the statistics say.
SELECT_SQL = """
select
    thread_id,
    checkpoint,
    checkpoint_ns,
    checkpoint_id,
    parent_checkpoint_id,
    metadata,
    (
        select array_agg(array[bl.channel::bytea, bl.type::bytea, bl.blob])
        from jsonb_each_text(checkpoint -> 'channel_versions') as cv(key, value)
        cross join lateral (
            select b.channel, b.type, b.blob from checkpoint_blobs b
            where b.thread_id = checkpoints.thread_id
                and b.checkpoint_ns = checkpoints.checkpoint_ns
                and b.channel = cv.key
                and b.version = cv.value
            offset 0
        ) as bl
    ) as channel_values,
    (
        select
        array_agg(array[cw.task_id::text::bytea, cw.channel::bytea, cw.type::bytea, cw.blob,
            convert_to(cw.task_path, 'UTF8'), cw.idx::text::bytea])
        from checkpoint_writes cw
        where cw.thread_id = checkpoints.thread_id
            and cw.checkpoint_ns = checkpoints.checkpoint_ns
            and cw.checkpoint_id = checkpoints.checkpoint_id
    ) as pending_writes
from checkpoints """


# LangGraph's setup() also indexes each table on thread_id alone, the leading column of its primary key. With
# those indexes the plan a pooled connection caches for the checkpoint read (prepared, generic, chosen while the
# tables were small) reaches a checkpoint's pending writes through `checkpoint_writes_thread_id_idx` and filters
# every write the thread ever made, so the read slowed as the thread grew (1.1 -> 2.7 ms by turn 600 in `sync`).
# The primary keys answer every thread_id lookup those indexes served.
REDUNDANT_INDEXES = ("checkpoints_thread_id_idx", "checkpoint_blobs_thread_id_idx", "checkpoint_writes_thread_id_idx")


def split_channel_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split channel values as LangGraph's Postgres saver stores them: (kept in the checkpoint row, blobs).

    None and plain scalars stay in the row; everything else becomes a blob. A delta channel's snapshot is a
    blob too, and the row keeps `True` in its place, which tells the loader to look for it.
    """
    inline: dict[str, Any] = {}
    blobs: dict[str, Any] = {}
    for channel, value in values.items():
        if isinstance(value, _DeltaSnapshot):
            blobs[channel], inline[channel] = value, True
        elif value is None or isinstance(value, (str, int, float, bool)):
            inline[channel] = value
        else:
            blobs[channel] = value
    return inline, blobs


class NovaSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` committing each super-step (its writes and its checkpoint) in one transaction."""

    SELECT_SQL = SELECT_SQL

    def __init__(self, conn: AsyncConnectionPool[Any] | AsyncConnection[Any], **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._pending: dict[WriteKey, PendingWrites] = {}

    async def setup(self) -> None:
        """Run LangGraph's migrations, then drop its thread_id-only indexes (see REDUNDANT_INDEXES).

        Idempotent; `DROP INDEX CONCURRENTLY` lets a server already running on the database go on meanwhile.
        """
        await super().setup()
        async with self._cursor() as cur:
            await cur.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(%s)",
                (list(REDUNDANT_INDEXES),),
            )
            for row in await cur.fetchall():
                drop = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(row["indexname"]))
                await cur.execute(drop, prepare=False)

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        conn = _IN_TRANSACTION.get()
        if conn is not None:
            async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                yield cur
        elif isinstance(self.conn, AsyncConnectionPool):
            async with self.conn.connection() as own, own.cursor(binary=True, row_factory=dict_row) as cur:
                yield cur
        else:
            async with super()._cursor(pipeline=pipeline) as cur:
                yield cur

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        if not isinstance(self.conn, AsyncConnectionPool):
            async with self.lock, self.conn.transaction():
                token = _IN_TRANSACTION.set(self.conn)
                try:
                    yield
                finally:
                    _IN_TRANSACTION.reset(token)
            return
        async with self.conn.connection() as conn, conn.pipeline(), conn.transaction():
            token = _IN_TRANSACTION.set(conn)
            try:
                yield
            finally:
                _IN_TRANSACTION.reset(token)

    async def _write_pending(self, batches: PendingWrites) -> None:
        async with self._cursor() as cur:
            for query, params in batches:
                if len(params) == 1:
                    await cur.execute(query, params[0])
                else:
                    await cur.executemany(query, params)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Hold a task's writes until the next checkpoint; commit at once on an error or an interrupt."""
        conf = config["configurable"]
        key: WriteKey = (str(conf["thread_id"]), str(conf["checkpoint_ns"]), str(conf["checkpoint_id"]))
        query = (
            self.UPSERT_CHECKPOINT_WRITES_SQL
            if all(w[0] in WRITES_IDX_MAP for w in writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        params = self._dump_writes(key[0], key[1], key[2], task_id, task_path, writes)
        self._pending.setdefault(key, []).append((query, list(params)))
        if any(channel in _FLUSH_NOW for channel, _ in writes):
            batches = self._pending.pop(key, [])
            if (held := _held_for(key[0])) is not None:
                held.extend(batches)
                return
            async with self._transaction():
                await self._write_pending(batches)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Commit the writes that led here and the checkpoint itself in one transaction.

        The rows are LangGraph's (same SQL, same split of primitive values into the checkpoint row and the rest
        into `checkpoint_blobs`); the blobs are encoded here on the event loop, where LangGraph's saver hands
        them to a worker thread that holds the GIL for the whole encoding anyway and costs two hand-offs.
        """
        conf = config["configurable"]
        thread_id, ns, parent = conf["thread_id"], conf.get("checkpoint_ns", ""), conf.get("checkpoint_id")
        key: WriteKey = (str(thread_id), str(ns), str(parent))
        batches = self._pending.pop(key, []) if parent else []
        inline, blobs = split_channel_values(checkpoint["channel_values"])
        versions = {channel: v for channel, v in new_versions.items() if channel in blobs}
        blob_rows = self._dump_blobs(thread_id, ns, blobs, versions) if versions else []
        row = (
            thread_id,
            ns,
            checkpoint["id"],
            parent,
            Jsonb({**checkpoint, "channel_values": inline}),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        if blob_rows:
            batches.append((self.UPSERT_CHECKPOINT_BLOBS_SQL, blob_rows))
        batches.append((self.UPSERT_CHECKPOINTS_SQL, [row]))
        if (held := _held_for(str(thread_id))) is not None:
            held.extend(batches)
        else:
            async with self._transaction():
                await self._write_pending(batches)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    @contextmanager
    def holding(self, thread_id: str) -> Iterator[PendingWrites]:
        """Hold, in order, every commit this context (and the tasks it starts) would make on the thread.

        Only for a run in `exit` durability, whose graph reads none of its own checkpoints back before it ends:
        what is held is on disk only once `commit_held` has run, and is lost with the process before that, as
        an `exit` run's whole turn is. Other threads' writes go on as usual: a pipeline a chat turn starts
        commits its own steps and reads its outcome back before the turn ends.
        """
        held: PendingWrites = []
        token = _HELD.set((thread_id, held))
        try:
            yield held
        finally:
            _HELD.reset(token)

    async def commit_held(
        self, held: PendingWrites, then: tuple[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """Commit the held writes and then the statement `then` in one transaction; return its first row.

        With a pool it is one round trip: everything, the commit included, is sent as one pipeline, and the row
        is read once the pipeline has synced.
        """
        batches, held[:] = list(held), []
        if not isinstance(self.conn, AsyncConnectionPool):
            async with self._transaction(), self._cursor() as cur:
                await self._write_pending(batches)
                if then is None:
                    return None
                await cur.execute(then[0], then[1])
                return await cur.fetchone()
        async with self.conn.connection() as conn, conn.cursor(binary=True, row_factory=dict_row) as cur:
            async with conn.pipeline():
                token = _IN_TRANSACTION.set(conn)
                try:
                    async with conn.transaction():
                        await self._write_pending(batches)
                        if then is not None:
                            await cur.execute(then[0], then[1])
                finally:
                    _IN_TRANSACTION.reset(token)
            return await cur.fetchone() if then is not None else None

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        """Build the tuple from a row here, not in a worker thread as LangGraph's saver does for the writes.

        The decoding holds the GIL either way, so the hop to a thread only added its hand-offs: dropping it took
        about 0.4 ms off a 7-8 ms turn in A/B runs here, for a row that usually has no pending writes at all.
        """
        thread, ns = value["thread_id"], value["checkpoint_ns"]
        parent = value["parent_checkpoint_id"]
        stored: dict[str, Any] = value["checkpoint"]
        checkpoint = {
            **stored,
            "channel_values": {**(stored.get("channel_values") or {}), **self._load_blobs(value["channel_values"])},
        }
        return CheckpointTuple(
            {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": value["checkpoint_id"]}},
            cast(Checkpoint, checkpoint),
            value["metadata"],
            {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": parent}} if parent else None,
            self._load_writes(value["pending_writes"]),
        )

    async def aflush(self, thread_id: str | None = None) -> None:
        """Commit writes still held (e.g. a run cancelled between a task and its checkpoint)."""
        keys = [k for k in self._pending if thread_id is None or k[0] == thread_id]
        for key in keys:
            batches = self._pending.pop(key, [])
            if batches:
                async with self._transaction():
                    await self._write_pending(batches)
