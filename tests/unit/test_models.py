"""Nova's chat model sends the same request bytes as LangChain's ChatOpenAI, without the SDK's transform walk."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI  # noqa: TID251 - the reference the test compares against
from pydantic import BaseModel, SecretStr

from nodes.models import ModelEndpoint, OpenAIModels, WireChatOpenAI

COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "bonjour"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
STREAM = (
    b"".join(
        b"data: " + json.dumps(chunk).encode() + b"\n\n"
        for chunk in (
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "bon"}, "finish_reason": None}],
            },
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "jour"}, "finish_reason": "stop"}],
            },
        )
    )
    + b"data: [DONE]\n\n"
)
HISTORY: list[BaseMessage] = [
    SystemMessage("You translate."),
    HumanMessage("translate 'hello' into French"),
    AIMessage("", tool_calls=[{"id": "call_1", "name": "lookup", "args": {"word": "hello"}}]),
    ToolMessage('{"fr": "bonjour"}', tool_call_id="call_1"),
    AIMessage("bonjour"),
    HumanMessage([{"type": "text", "text": "and 'thanks'? "}, {"type": "text", "text": "é ü 日本"}]),
]


@tool
def lookup(word: str) -> str:
    """Look a word up in the dictionary."""
    return word


class Answer(BaseModel):
    text: str


def recording(bodies: list[bytes]) -> httpx2.AsyncClient:
    def answer(request: httpx2.Request) -> httpx2.Response:
        bodies.append(request.content)
        if json.loads(request.content).get("stream"):
            return httpx2.Response(200, content=STREAM, headers={"content-type": "text/event-stream"})
        reply = dict(COMPLETION)
        if "response_format" in json.loads(request.content):
            reply["choices"] = [
                {**COMPLETION["choices"][0], "message": {"role": "assistant", "content": '{"text": "bonjour"}'}}
            ]
        return httpx2.Response(200, json=reply)

    return httpx2.AsyncClient(transport=httpx2.MockTransport(answer))


def build(cls: type[ChatOpenAI], bodies: list[bytes], **kwargs: Any) -> ChatOpenAI:
    return cls(
        model="m",
        api_key=SecretStr("k"),
        base_url="http://model.test/v1",
        max_retries=0,
        http_async_client=recording(bodies),
        **kwargs,
    )


@pytest.mark.parametrize("call", ["invoke", "tools", "stream", "structured", "extra_body"])
async def test_the_request_body_is_byte_for_byte_chat_openais(call: str) -> None:
    sent: dict[str, list[bytes]] = {}
    replies = {}
    for cls in (ChatOpenAI, WireChatOpenAI):
        bodies: list[bytes] = []
        extra = {"extra_body": {"top_k": 5}} if call == "extra_body" else {}
        model: Any = build(cls, bodies, **extra)
        if call == "tools":
            model = model.bind_tools([lookup])
        if call == "structured":
            model = model.with_structured_output(Answer, method="json_schema")
        if call == "stream":
            replies[cls.__name__] = "".join([str(c.content) async for c in model.astream(HISTORY)])
        else:
            reply = await model.ainvoke(HISTORY)
            replies[cls.__name__] = reply if isinstance(reply, Answer) else reply.content
        sent[cls.__name__] = bodies
    assert len(sent["WireChatOpenAI"]) == 1
    assert sent["WireChatOpenAI"] == sent["ChatOpenAI"]  # the same bytes, key order included
    assert replies["WireChatOpenAI"] == replies["ChatOpenAI"] in ("bonjour", Answer(text="bonjour"))
    assert json.loads(sent["WireChatOpenAI"][0])["messages"][-1]["content"][1]["text"] == "é ü 日本"


def test_nova_builds_its_models_with_the_wire_client_whose_messages_skip_the_transform() -> None:
    models = OpenAIModels(ModelEndpoint("http://model.test/v1", "k", "fast-m", "strong-m"))
    fast = models.for_tier("fast")
    assert isinstance(fast, WireChatOpenAI)
    payload = fast._get_request_payload(HISTORY)
    assert payload["messages"] == [] and len(payload["extra_body"]["messages"]) == len(HISTORY)
    assert models.for_tier("strong").model_name == "strong-m"
