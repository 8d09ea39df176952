"""The real offline model: assemble the GGUF from its part packages, serve it, get a structured answer."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from nodes.local_llm import PART_PACKAGES, LocalModelServer, ensure_model_file
from nodes.models import ModelEndpoint, OpenAIModels

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("NOVA_TEST_MODELS_DIR", ROOT / ".nova" / "test-models"))

_missing = [name for name in (*PART_PACKAGES, "xllamacpp") if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.local_model,
    pytest.mark.skipif(bool(_missing), reason=f"local model packages not installed: {', '.join(_missing)}"),
]


class Sum(BaseModel):
    """The result of adding two integers."""

    result: int = Field(description="the sum as an integer")


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalModelServer]:
    model = ensure_model_file(MODELS_DIR)
    with LocalModelServer(model, ctx_size=2048) as server:
        yield server


def test_local_model_answers_with_structured_output(local_server: LocalModelServer) -> None:
    assert local_server.base_url.endswith("/v1")
    models = OpenAIModels(
        ModelEndpoint(
            base_url=local_server.base_url,
            api_key="local",
            fast_model="qwen",
            strong_model="qwen",
            timeout_s=120.0,
            max_tokens=64,
            kind="local",
        )
    )
    chat = models.for_tier("fast")

    reply = chat.invoke("Reply with one word: what language is `print('hi')` written in?")
    assert isinstance(reply.content, str) and reply.content.strip()

    structured = chat.with_structured_output(Sum, method="json_schema")
    answer = structured.invoke("What is 2 + 3? Give only the sum.")
    assert isinstance(answer, Sum)
    assert answer.result == 5
