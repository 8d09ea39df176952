"""Per-run knobs passed as `context=Context(...)`."""

from __future__ import annotations

from dataclasses import dataclass

from state.routing import RouterMode


@dataclass(frozen=True)
class Context:
    """Run-scoped settings; process settings live in api/settings.py.

    Attributes:
        user_id: The authenticated user; memory namespaces derive from it, never from request text.
        project: The active project slug, if the user picked one.
        router_mode: `embedding` ranks with the trained scorer only; `hybrid` lets the model re-rank.
        max_tokens: Upper bound on generated tokens per model call.
    """

    user_id: str = "owner"
    project: str | None = None
    router_mode: RouterMode = "embedding"
    max_tokens: int = 512
