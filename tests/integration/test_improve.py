"""The improvement loop with real Postgres (signals in, outcomes out), the CLI, and Nova's own tree."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from api.improve import PgImproveSignals, PgOutcomes, improve_serde, improve_services, nova_root
from graphs.improve import build_improve_graph
from nodes.improve.gitops import WORKTREE_PREFIX
from state.improve import Outcome
from tests.integration.conftest import nova
from tests.unit.test_improve_fixture import make_repo, sh


async def test_outcomes_are_stored_once_and_read_back(pool: Any) -> None:
    store = PgOutcomes(pool)
    outcome = Outcome(
        proposal_id="p1", target="/r", finding_ids=["a", "b"], fingerprints=["f1", "f2"], decision="rejected",
        comment="too broad",
    )  # fmt: skip
    await store.record(outcome)
    await store.record(outcome)
    assert await store.history("/r") == [outcome]
    assert await store.history("/other") == []


async def test_runtime_signals_come_from_corrections_turns_and_memories(pool: Any) -> None:
    async with pool.connection() as conn:
        for _ in range(2):
            await conn.execute(
                "INSERT INTO routing_corrections (user_id, text, wrong, correct) VALUES ('u', %s, %s, %s)",
                ("has Kestrel paid yet", "chat.general", "chat.clients"),
            )
        for ms in (100.0, 9000.0, 9500.0):
            await conn.execute(
                "INSERT INTO turn_log (user_id, thread_id, agent, status, duration_ms) VALUES ('u', 't', 'erp.query',"
                " 'ok', %s)",
                (ms,),
            )
        await conn.execute(
            "INSERT INTO turn_log (user_id, thread_id, status, error_node, error_kind, error, duration_ms)"
            " VALUES ('u', 't', 'error', 'route_request', 'TimeoutError', 'timed out', 10)"
        )
        for value in ("500", "550"):
            await conn.execute(
                "INSERT INTO memories (user_id, namespace, text, norm, kind, subject, value, tier, method, confidence,"
                " embedding) VALUES ('u', 'user', %s, %s, 'fact', 'client:kestrel/rate', %s, 'core', 'rules', 0.9,"
                " array_fill(0, ARRAY[384])::vector)",
                (f"rate is {value}", f"rate is {value}", value),
            )
    signals = await PgImproveSignals(pool).signals()
    assert signals.misroutes[0]["count"] == 2 and signals.misroutes[0]["correct"] == "chat.clients"
    assert signals.node_errors[0]["node"] == "route_request"
    assert signals.slow_turns[0]["agent"] == "erp.query"
    assert signals.memory_conflicts[0]["subject"] == "client:kestrel/rate"


async def test_a_misroute_becomes_a_validated_card_proposal_and_outcomes_persist(pool: Any, tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO routing_corrections (user_id, text, wrong, correct)"
            " VALUES ('u', 'has Kestrel paid the March invoice', 'chat.general', 'chat.clients')"
        )
    graph = build_improve_graph(services=improve_services(pool)).compile(
        checkpointer=InMemorySaver(serde=improve_serde())
    )
    cfg: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    result = await graph.ainvoke({"target": str(repo), "scan_tests": [], "max_proposals": 1}, cfg)
    args = result["__interrupt__"][0].value["action_request"]["args"]
    assert "graphs/agents/chat/clients.toml" in args["diff"] and "has Kestrel paid the March invoice" in args["diff"]
    assert all(c["ok"] for c in args["checks"])
    await graph.ainvoke(Command(resume={"type": "accept"}), cfg)
    card = sh(repo, "git", "show", f"nova/improve-{args['proposal_id']}:graphs/agents/chat/clients.toml")
    assert '"has Kestrel paid the March invoice",' in card
    history = await PgOutcomes(pool).history(str(repo.resolve()))
    assert [o.decision for o in history] == ["approved"]
    assert sh(repo, "git", "status", "--porcelain") == ""


@pytest.mark.slow
def test_nova_improve_cli_stops_at_the_first_gate(nova_env: dict[str, str], tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    env = {k: v for k, v in nova_env.items() if not k.startswith("NOVA_LLM")}  # offline: deterministic fixers
    out = nova(env, "improve", "--target", str(repo), "--tests", "tests", "--no-mypy", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "findings considered 3" in out.stdout and "proposals made 2" in out.stdout
    assert "validated 2" in out.stdout and "awaiting review" in out.stdout
    assert sh(repo, "git", "status", "--porcelain") == "" and sh(repo, "git", "branch").split() == ["*", "main"]


@pytest.mark.slow
async def test_the_loop_runs_on_novas_own_tree_without_touching_it() -> None:
    root = nova_root()
    status_before = sh(root, "git", "status", "--porcelain")
    graph = build_improve_graph().compile(checkpointer=InMemorySaver(serde=improve_serde()))
    cfg: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    await graph.ainvoke(
        {"target": str(root), "focus": "graphs", "scan_tests": [], "run_mypy": False, "max_proposals": 2}, cfg
    )
    state = await graph.aget_state(cfg)
    assert state.values["findings"], "expected some evidence in graphs/"
    assert all(f.path is None or f.path.startswith("graphs") for f in state.values["findings"])
    assert sh(root, "git", "status", "--porcelain") == status_before
    assert f"{WORKTREE_PREFIX}{os.getpid()}-" not in sh(root, "git", "worktree", "list")
