"""The one place that builds chat models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_openai import ChatOpenAI  # noqa: TID251 - this module is the sanctioned constructor
from pydantic import SecretStr

from state.cards import ModelTier

EndpointKind = Literal["local", "remote"]


class ModelLoader(Protocol):
    """Hands out a chat model per tier; builders take one so tests can inject fakes."""

    @property
    def kind(self) -> EndpointKind:
        """Whether the endpoint is Nova's local offline model or a remote server."""
        ...

    def for_tier(self, tier: ModelTier) -> BaseChatModel:
        """Return the chat model for a tier (`fast` or `strong`)."""
        ...


@dataclass(frozen=True)
class ModelEndpoint:
    """An OpenAI-compatible endpoint and the model names behind each tier."""

    base_url: str | None
    api_key: str
    fast_model: str
    strong_model: str
    timeout_s: float = 60.0
    max_tokens: int = 512
    kind: EndpointKind = "remote"


class WireChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose messages go to the wire as LangChain built them, past the openai SDK's request transform.

    `chat.completions.create` walks the whole request against its typed-dict unions, holding the GIL, before a
    byte is sent: measured here, 3 ms of a 2-message call and 11 ms of a 40-message one (Nova's window), for a
    body it leaves unchanged, since LangChain's message dicts are already the wire format. The SDK merges
    `extra_body` into the JSON after that walk, so the messages travel there and the body sent is the same
    (tests/unit/test_models.py compares the bytes with ChatOpenAI's).
    """

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        messages = payload.get("messages")
        if messages:  # a chat-completions call (a Responses API payload carries `input` instead)
            payload["extra_body"] = {**(payload.get("extra_body") or {}), "messages": messages}
            payload["messages"] = []
        return payload


@dataclass
class OpenAIModels:
    """ChatOpenAI per tier over one endpoint (OpenAI, Ollama, vLLM, llama.cpp ...).

    Retries are left to the graph's RetryPolicy, so the client itself does not retry.
    """

    endpoint: ModelEndpoint
    _cache: dict[str, BaseChatModel] = field(default_factory=dict)

    @property
    def kind(self) -> EndpointKind:
        """Whether the endpoint is Nova's local offline model or a remote server."""
        return self.endpoint.kind

    def for_tier(self, tier: ModelTier) -> BaseChatModel:
        """Return the (cached) chat model for a tier."""
        if tier not in self._cache:
            ep = self.endpoint
            self._cache[tier] = WireChatOpenAI(
                model=ep.fast_model if tier == "fast" else ep.strong_model,
                base_url=ep.base_url,
                api_key=SecretStr(ep.api_key),
                timeout=ep.timeout_s,
                max_retries=0,
                max_tokens=ep.max_tokens,
                temperature=0.2,
            )
        return self._cache[tier]


@dataclass
class StaticModels:
    """One prebuilt model for every tier (tests and benchmarks use it with fakes)."""

    model: BaseChatModel
    endpoint_kind: EndpointKind = "local"

    @property
    def kind(self) -> EndpointKind:
        """Whether the endpoint is Nova's local offline model or a remote server."""
        return self.endpoint_kind

    def for_tier(self, tier: ModelTier) -> BaseChatModel:
        """Return the same model for every tier."""
        return self.model


def is_transient(exc: BaseException) -> bool:
    """Return True for failures worth retrying: timeouts, dropped connections, rate limits, 5xx."""
    import httpx
    import openai

    transient = (
        TimeoutError,
        ConnectionError,
        httpx.TransportError,
        openai.APIConnectionError,
        openai.RateLimitError,
        openai.InternalServerError,
    )
    if isinstance(exc, transient):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500
