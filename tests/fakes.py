"""A scripted fake chat model: replies in order, structured outputs in order, failures on demand."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, PrivateAttr


class ScriptedModel(BaseChatModel):
    """A fake chat model built on langchain-core's BaseChatModel, so callbacks and streaming work.

    Replies come from `replies` in order (the last one repeats); `structured` objects are returned by
    `with_structured_output(...)` in order; each entry of `fail_first` makes one call raise first.
    `numbered` ends every reply with the call's number, so no two replies of a thread are the same text (as
    a real model's are not: Nova asks again when a reply repeats an earlier one word for word).
    """

    delay_s: float = 0.0
    numbered: bool = False
    calls: int = 0
    _replies: deque[str] = PrivateAttr()
    _structured: deque[Any] = PrivateAttr()
    _failures: deque[BaseException] = PrivateAttr()
    _last: str = PrivateAttr(default="ok")
    _seen: list[list[BaseMessage]] = PrivateAttr()
    _chose: list[Any] = PrivateAttr()  # the prompts of structured calls (a tool agent's choices)

    def __init__(
        self,
        replies: Iterable[str] = ("ok",),
        structured: Iterable[Any] = (),
        fail_first: Iterable[BaseException] = (),
        delay_s: float = 0.0,
        numbered: bool = False,
    ) -> None:
        super().__init__(delay_s=delay_s, numbered=numbered)
        self._replies = deque(replies)
        self._structured = deque(structured)
        self._failures = deque(fail_first)
        self._seen = []
        self._chose = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def seen(self) -> list[list[BaseMessage]]:
        return self._seen

    @property
    def chose(self) -> list[Any]:
        return self._chose

    def _next_text(self, messages: list[BaseMessage]) -> str:
        self.calls += 1
        self._seen.append(list(messages))
        if self._failures:
            raise self._failures.popleft()
        if self._replies:
            self._last = self._replies.popleft()
        return f"{self._last} #{self.calls}" if self.numbered else self._last

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self._next_text(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self._next_text(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._next_text(messages)
        for piece in _pieces(text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self._next_text(messages)
        for piece in _pieces(text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[Any, Any]:  # type: ignore[override]
        def pop(prompt: Any) -> Any:
            self.calls += 1
            self._chose.append(prompt)
            if self._failures:
                raise self._failures.popleft()
            if not self._structured:
                raise ValueError("ScriptedModel has no structured output left")
            obj = self._structured.popleft()
            if isinstance(schema, type) and issubclass(schema, BaseModel) and isinstance(obj, dict):
                return schema.model_validate(obj)
            return obj

        async def apop(x: Any) -> Any:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return pop(x)

        return RunnableLambda(pop, afunc=apop)


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
