"""The `nova` command as a user runs it: separate processes, a real database, a real HTTP model server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import nova


def ask(env: dict[str, str], text: str, thread: str) -> dict[str, object]:
    result = nova(env, "ask", text, "--thread", thread, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_ask_prints_agent_reason_and_answer(nova_env: dict[str, str]) -> None:
    thread = str(uuid.uuid4())
    out = ask(nova_env, "translate 'the invoice is overdue' into German", thread)
    assert out["agent"] == "language.translate"
    assert out["answer"] == "echo: translate 'the invoice is overdue' into German"
    route = out["route"]
    assert isinstance(route, dict) and route["reason"] and route["candidates"]
    plain = nova(nova_env, "ask", "and into French?", "--thread", thread)
    assert plain.returncode == 0, plain.stderr
    assert "→ language.translate [follow-up]" in plain.stdout and "echo: and into French?" in plain.stdout


def test_conversation_survives_a_killed_process(nova_env: dict[str, str]) -> None:
    thread = str(uuid.uuid4())
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "chat", "--thread", thread],
        env=nova_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("summarise this: the meeting moved to Friday because the client was ill\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    seen = ""
    while "echo:" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    assert "echo:" in seen
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    # (no "it": a request that points back gets the reply before it too, and the fake model would echo that)
    out = ask(nova_env, "and make the summary one sentence", thread)
    assert out["agent"] == "language.summarise"
    shown = nova(nova_env, "threads", "show", thread)
    assert shown.returncode == 0, shown.stderr
    assert "the meeting moved to Friday" in shown.stdout and "and make the summary one sentence" in shown.stdout
    assert shown.stdout.count("echo:") == 2


def test_piped_chat_and_slash_commands(nova_env: dict[str, str]) -> None:
    script = "what is the capital of Peru?\n/why\n/threads\n/quit\nnever sent\n"
    result = nova(nova_env, "chat", input=script)
    assert result.returncode == 0, result.stderr
    assert "echo: what is the capital of Peru?" in result.stdout
    assert "chosen: chat.general" in result.stdout
    assert "never sent" not in result.stdout.split("/quit")[-1] or "echo: never sent" not in result.stdout


def test_a_reply_written_again_replaces_what_was_streamed(nova_env: dict[str, str]) -> None:
    # The fake model echoes the request, so the same question twice gets an answer that repeats the first one
    # word for word: the reply is asked for again without the history, and chat says so before streaming it.
    script = "what is the capital of Peru?\nwhat is the capital of Peru?\n/quit\n"
    result = nova(nova_env, "chat", input=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("asked again") == 1
    second = out.split("asked again")[1]
    assert second.count("echo: what is the capital of Peru?") == 1


def test_a_reply_cut_off_and_retried_is_printed_once(nova_env: dict[str, str]) -> None:
    # The fake model drops the connection after two words of the first answer to a CUTONCE message; the reply
    # node's retry policy asks again, and chat says so instead of printing the cut-off words before the answer.
    text = "what is the capital of Peru? CUTONCE"
    result = nova(nova_env, "chat", input=f"{text}\n/quit\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("failed part-way; asked again") == 1, out
    before, after = out.split("failed part-way; asked again")
    assert "echo: what " in before and f"echo: {text}" not in before
    assert after.count(f"echo: {text}") == 1


def test_brackets_in_answers_and_requests_are_printed_as_written(nova_env: dict[str, str]) -> None:
    # rich would read "[/docs]" as a closing tag (and fail) and "[bold]" as a style (and drop it)
    thread = str(uuid.uuid4())
    text = "translate 'a list[int] of [bold] ids, see [/docs]' into German"
    asked = nova(nova_env, "ask", text, "--thread", thread)
    assert asked.returncode == 0, asked.stderr
    assert f"echo: {text}" in " ".join(asked.stdout.split())
    why = nova(nova_env, "why", thread)
    assert why.returncode == 0, why.stderr
    assert f"request: {text}" in " ".join(why.stdout.split())


def test_why_and_feedback_take_effect_on_next_request(nova_env: dict[str, str]) -> None:
    thread = str(uuid.uuid4())
    text = "zorblax the quarterly frobnicator for Wendell"
    first = ask(nova_env, text, thread)
    why = nova(nova_env, "why", thread, "--json")
    assert why.returncode == 0 and json.loads(why.stdout)["text"] == text
    fb = nova(nova_env, "feedback", thread, "--agent", "erp.domain")
    assert fb.returncode == 0, fb.stderr
    again = ask(nova_env, text, str(uuid.uuid4()))
    assert again["agent"] == "erp.domain", (first, again)
    bad = nova(nova_env, "feedback", thread, "--agent", "erp.nothing")
    assert bad.returncode == 2 and "unknown agent" in bad.stderr


def test_model_failure_ends_turn_with_clear_message(nova_env: dict[str, str]) -> None:
    thread = str(uuid.uuid4())
    failed = nova(nova_env, "ask", "@language.proofread FAIL: their going", "--thread", thread, "--json")
    assert failed.returncode == 1
    out = json.loads(failed.stdout)
    assert "couldn't finish" in out["answer"] and "Traceback" not in failed.stdout + failed.stderr
    assert out["error"]["kind"] in ("InternalServerError", "OpenAIAPIError")  # the latter subclasses the former
    ok = ask(nova_env, "@language.proofread there going home", thread)
    assert ok["answer"] == "echo: @language.proofread there going home"
    shown = nova(nova_env, "threads", "show", thread)
    assert shown.stdout.index("couldn't finish") < shown.stdout.index("echo: @language.proofread there going home")


def test_embedder_change_is_refused_until_reindex(nova_env: dict[str, str]) -> None:
    assert nova(nova_env, "threads", "list").returncode == 0
    env = {**nova_env, "NOVA_EMBEDDER": "hash"}
    refused = nova(env, "threads", "list")
    assert refused.returncode == 1 and "nova reindex" in refused.stderr
    done = nova(env, "reindex")
    assert done.returncode == 0, done.stderr
    assert nova(env, "threads", "list").returncode == 0


def test_agents_and_doctor(nova_env: dict[str, str]) -> None:
    listed = nova(nova_env, "agents", "list")
    assert listed.returncode == 0 and listed.stdout.count("\n") > 34 and "erp.tenancy" in listed.stdout
    shown = nova(nova_env, "agents", "show", "erp.query")
    assert json.loads(shown.stdout)["id"] == "erp.query"
    doctor = nova(nova_env, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    for name in ("database", "pgvector", "migrations", "embedder", "model endpoint"):
        assert name in doctor.stdout


def test_external_database_without_pgvector_explains_the_fix(nova_env: dict[str, str], pg_url: str) -> None:
    env = {**nova_env, "NOVA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = nova(env, "threads", "list")
    assert result.returncode == 1 and "cannot connect to Postgres" in result.stderr


@pytest.mark.slow
def test_embedded_database_starts_under_nova_home(nova_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in nova_env.items() if k != "NOVA_DATABASE_URL"}
    env["NOVA_HOME"] = str(tmp_path / "fresh")
    first = nova(env, "threads", "list")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "fresh" / "pgdata" / "PG_VERSION").exists()
    second = nova(env, "threads", "list")
    assert second.returncode == 0, second.stderr
    _ = psycopg


def test_eval_routing_reports_metrics_and_bad_lines(nova_env: dict[str, str], tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    (cards / "home").mkdir(parents=True)
    (cards / "home" / "garden.toml").write_text(
        'id = "home.garden"\ndescription = "Plants, lawns and the garden."\n'
        'examples = ["when should I prune roses", "my lawn has yellow patches", "which plants like shade"]\n'
    )
    (cards / "home" / "cooking.toml").write_text(
        'id = "home.cooking"\ndescription = "Recipes and cooking."\n'
        'examples = ["how long to roast a chicken", "a quick pasta recipe", "substitute for buttermilk"]\n'
    )
    data = tmp_path / "set.jsonl"
    data.write_text(
        '{"text": "how do I keep basil alive in the garden", "expected": "home.garden"}\n'
        "this is not json\n"
        '{"text": "easy recipe for a roast dinner", "expected": "home.cooking"}\n'
        '{"text": "x", "expected": "home.nothing"}\n'
    )
    result = nova(nova_env, "eval", "routing", str(data), "--cards", str(cards), "--json")
    assert result.returncode == 0, result.stderr
    assert "line 2: not valid JSON" in result.stderr
    assert "line 4:" in result.stderr and "home.nothing" in result.stderr
    report = json.loads(result.stdout)
    for key in (
        "accuracy",
        "clarify_precision",
        "clarify_recall",
        "confident_wrong",
        "n",
        "p50_ms",
        "p95_ms",
        "per_domain",
        "confusions",
    ):
        assert key in report
    assert report["n"] == 2 and report["accuracy"] == 1.0
    missing = nova(nova_env, "eval", "routing", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stdout
