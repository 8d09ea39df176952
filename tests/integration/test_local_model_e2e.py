"""Nova end to end on its offline default: no endpoint configured, so it serves the local Qwen model itself."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from pathlib import Path

import pytest

from nodes.local_llm import PART_PACKAGES
from tests.integration.conftest import nova

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("NOVA_TEST_MODELS_DIR", ROOT / ".nova" / "test-models"))
_missing = [name for name in (*PART_PACKAGES, "xllamacpp") if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.local_model,
    pytest.mark.skipif(bool(_missing), reason=f"local model packages not installed: {', '.join(_missing)}"),
]


def test_ask_answers_through_the_local_model_and_the_router(nova_env: dict[str, str]) -> None:
    env = {k: v for k, v in nova_env.items() if k not in ("NOVA_LLM_BASE_URL", "NOVA_LLM_API_KEY")}
    env.update({"NOVA_LLM_MAX_TOKENS": "48", "NOVA_LLM_TIMEOUT_S": "240"})
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (Path(env["NOVA_HOME"]) / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    thread = str(uuid.uuid4())
    result = nova(
        env, "ask", "What is the capital of Italy? Answer in one word.", "--thread", thread, "--json", timeout=600
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["agent"] == "chat.general" and out["error"] is None
    assert "rome" in out["answer"].lower()
    doctor = nova(env, "doctor", timeout=300)
    assert "local model file" in doctor.stdout and "sha256 verified" in doctor.stdout
