"""Graphs for `langgraph dev` / LangGraph Studio (langgraph.json points here).

Graph builders cannot reach process settings (imports flow api -> graphs), so the wiring for Studio
lives in api/: the server supplies its own checkpointer, and the offline model starts on first use.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from langchain_core.language_models import BaseChatModel

from api.runtime import build_embedder, load_roster, local_endpoint, remote_endpoint
from api.settings import get_settings
from api.vectors import FileVectorCache
from graphs.nova import build_nova_graph
from graphs.registry import build_router
from nodes.models import EndpointKind, OpenAIModels
from nodes.services import Services
from state.cards import ModelTier


class LazyModels:
    """Resolve the configured endpoint on first use, starting the local model server if needed."""

    def __init__(self) -> None:
        self._inner: OpenAIModels | None = None
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def kind(self) -> EndpointKind:
        """Whether the endpoint is local or remote."""
        return "local" if get_settings().uses_local_model else "remote"

    def for_tier(self, tier: ModelTier) -> BaseChatModel:
        """Return the tier's model, starting the endpoint on first use."""
        with self._lock:
            if self._inner is None:
                self._inner = self._start()
        return self._inner.for_tier(tier)

    def _start(self) -> OpenAIModels:
        s = get_settings()
        if not s.uses_local_model:
            return OpenAIModels(remote_endpoint(s))
        from nodes.local_llm import LocalModelServer, ensure_model_file

        path = ensure_model_file(s.home / "models")
        self._server = LocalModelServer(path, threads=s.local_model_threads, ctx_size=s.local_model_ctx)
        base_url = self._server.start()
        atexit.register(self._server.stop)
        return OpenAIModels(local_endpoint(s, base_url))


def _build_nova() -> Any:
    settings = get_settings()
    registry = load_roster()
    embed = build_embedder(settings)
    router = build_router(registry, embed, FileVectorCache(settings.home / "cache", embed))
    return build_nova_graph(registry, models=LazyModels(), router=router, services=Services.null()).compile(name="nova")


nova = _build_nova()


def _build_pipeline() -> Any:
    from api.pipelines import build_pipelines, tool_deps
    from nodes.services import NullMemory
    from nodes.workspace import load_workspace

    settings = get_settings()
    from api.memory_cli import workspace_path

    deps = tool_deps(settings, NullMemory(), load_workspace(workspace_path(settings)))
    _, builder = build_pipelines(load_roster(), LazyModels(), deps)
    return builder.compile(name="pipeline")


pipeline = _build_pipeline()
