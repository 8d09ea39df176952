"""The improvement loop on a fixture repository: proposals validated, gate reached, approve / reject / edit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import Command

from api.db import open_pool
from api.improve import ReviewStateError, improve_serde, resume_review
from graphs.improve import build_improve_graph
from nodes.improve.apply import make_apply_proposal
from nodes.improve.ports import ImproveServices, MemoryOutcomes
from nodes.improve.scan import ScanReport, scan
from nodes.improve.validate import validate
from nodes.models import StaticModels
from state.improve import CheckResult, Proposal, RefactorDraft
from tests.fakes import ScriptedModel
from tests.unit.test_improve_fixture import make_repo, sh

_VALIDATED: dict[str, list[CheckResult]] = {}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> ScanReport:
    """One real scan of the fixture (every copy of it has the same HEAD)."""
    return scan(make_repo(tmp_path_factory.mktemp("scan")))


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def cached_validate(
    target: Path, head: str, proposal: Proposal, baseline: dict[str, Any], **kw: Any
) -> list[CheckResult]:
    """Validate each distinct diff once per session (for speed); the checks are real."""
    if proposal.diff not in _VALIDATED:
        _VALIDATED[proposal.diff] = validate(target, head, proposal, baseline, **kw)
    return _VALIDATED[proposal.diff]


def make_graph(scanned: ScanReport, outcomes: MemoryOutcomes | None = None, models: Any = None,
               saver: BaseCheckpointSaver[Any] | None = None) -> Any:  # fmt: skip
    services = ImproveServices(outcomes=outcomes or MemoryOutcomes())
    return build_improve_graph(
        services=services, models=models, scanner=lambda *_a, **_k: scanned, validator=cached_validate
    ).compile(checkpointer=saver or InMemorySaver(serde=improve_serde()))


def config() -> Any:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def pristine(repo: Path) -> None:
    assert sh(repo, "git", "status", "--porcelain", "--ignored") == ""
    assert sh(repo, "git", "branch", "--format=%(refname:short)").split() == ["main"]
    assert sh(repo, "git", "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert "nova-improve-" not in sh(repo, "git", "worktree", "list")


def interrupt_args(result: dict[str, Any]) -> dict[str, Any]:
    value = result["__interrupt__"][0].value
    assert value["action_request"]["action"] == "apply_patch"
    args: dict[str, Any] = value["action_request"]["args"]
    return args


@pytest.fixture(params=["memory", "postgres"])
async def improve_saver(request: pytest.FixtureRequest) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    if request.param == "memory":
        yield InMemorySaver(serde=improve_serde())
        return
    async with open_pool(request.getfixturevalue("pg_url")) as pool:
        pg = AsyncPostgresSaver(pool, serde=improve_serde())
        await pg.setup()
        yield pg


async def test_the_real_loop_validates_proposals_and_stops_at_the_gate(repo: Path) -> None:
    graph = build_improve_graph().compile(checkpointer=InMemorySaver(serde=improve_serde()))
    cfg = config()
    result = await graph.ainvoke({"target": str(repo), "max_proposals": 3}, cfg)
    state = await graph.aget_state(cfg)
    assert state.next == ("review_proposal",)
    kinds = {f.kind for f in state.values["findings"]}
    assert {"lint", "duplicate", "test_failure"} <= kinds
    proposals = state.values["proposals"]
    assert {p.author for p in proposals} == {"ruff", "extract_duplicate"}
    assert all(p.status == "validated" for p in proposals), [p.reason for p in proposals]
    args = interrupt_args(result)
    assert set(args) >= {"diff", "rationale", "evidence", "checks", "risk", "target", "proposal_id"}
    assert args["target"] == str(repo) and args["evidence"][0]["location"].startswith("pkg/calc.py")
    assert {c["name"] for c in args["checks"]} >= {"apply", "lint", "tests"}
    assert all(c["ok"] for c in args["checks"])
    pristine(repo)


async def test_approve_commits_the_change_to_a_new_branch_only(
    repo: Path, scanned: ScanReport, improve_saver: BaseCheckpointSaver[Any]
) -> None:
    outcomes = MemoryOutcomes()
    graph = make_graph(scanned, outcomes, saver=improve_saver)
    cfg = config()
    first = interrupt_args(await graph.ainvoke({"target": str(repo)}, cfg))
    result = await graph.ainvoke(Command(resume={"type": "accept", "args": {"proposal_id": first["proposal_id"]}}), cfg)
    branch = f"nova/improve-{first['proposal_id']}"
    changed = sh(repo, "git", "diff", "--name-only", "main", branch).split()
    assert changed == ["pkg/calc.py"]
    message = sh(repo, "git", "log", "-1", "--format=%B", branch)
    assert f"Proposal: {first['proposal_id']}" in message and "Evidence:" in message and "pkg/calc.py" in message
    assert sh(repo, "git", "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert sh(repo, "git", "status", "--porcelain", "--ignored") == ""
    assert "import os" in (repo / "pkg" / "calc.py").read_text()  # the working tree is untouched
    assert [o.decision for o in outcomes.outcomes] == ["approved"]
    second = interrupt_args(result)  # the next proposal is at the gate now
    assert second["proposal_id"] != first["proposal_id"]
    await graph.ainvoke(Command(resume={"type": "ignore"}), cfg)
    state = await graph.aget_state(cfg)
    assert state.next == ()
    summary = state.values["summary"]
    assert (summary.proposals, summary.validated, summary.approved, summary.ignored) == (2, 2, 1, 1)


async def test_reject_leaves_everything_untouched_and_is_remembered(repo: Path, scanned: ScanReport) -> None:
    outcomes = MemoryOutcomes()
    graph = make_graph(scanned, outcomes)
    cfg = config()
    first = interrupt_args(await graph.ainvoke({"target": str(repo)}, cfg))
    second = interrupt_args(await graph.ainvoke(Command(resume={"type": "respond", "args": "keep imports"}), cfg))
    await graph.ainvoke(Command(resume={"type": "respond", "args": "not now"}), cfg)
    pristine(repo)
    assert [(o.decision, o.comment) for o in outcomes.outcomes] == [
        ("rejected", "keep imports"),
        ("rejected", "not now"),
    ]
    assert {first["proposal_id"], second["proposal_id"]} == {o.proposal_id for o in outcomes.outcomes}
    again = make_graph(scanned, outcomes)
    cfg2 = config()
    await again.ainvoke({"target": str(repo)}, cfg2)
    state = await again.aget_state(cfg2)
    assert state.next == () and state.values["proposals"] == []
    assert any("keep imports" in s for s in state.values["skipped"])


async def test_edit_is_validated_again_and_a_broken_edit_cannot_be_approved(repo: Path, scanned: ScanReport) -> None:
    graph = make_graph(scanned)
    cfg = config()
    first = interrupt_args(await graph.ainvoke({"target": str(repo)}, cfg))
    broken = first["diff"].replace("-import os\n", "-import os\n+import os as\n")
    result = await graph.ainvoke(Command(resume={"type": "edit", "args": {"diff": broken}}), cfg)
    payload = result["__interrupt__"][0].value
    assert payload["config"]["allow_accept"] is False and "FAILED validation" in payload["description"]
    assert not all(c["ok"] for c in payload["action_request"]["args"]["checks"])
    refused = await graph.ainvoke(Command(resume={"type": "accept"}), cfg)
    assert "not allowed" in refused["__interrupt__"][0].value["description"]
    fixed = first["diff"].replace("-import os\n-\n", "-import os\n+import sys  # noqa: F401\n \n")
    result = await graph.ainvoke(Command(resume={"type": "edit", "args": {"args": {"diff": fixed}}}), cfg)
    edited = interrupt_args(result)
    assert edited["diff"] == fixed and all(c["ok"] for c in edited["checks"])
    await graph.ainvoke(Command(resume={"type": "accept"}), cfg)
    branch = f"nova/improve-{edited['proposal_id']}"
    assert "import sys  # noqa: F401" in sh(repo, "git", "show", f"{branch}:pkg/calc.py")
    assert "import os" in (repo / "pkg" / "calc.py").read_text()


async def test_resuming_twice_or_at_the_wrong_proposal_is_refused(repo: Path, scanned: ScanReport) -> None:
    graph = make_graph(scanned)
    cfg = config()
    thread = cfg["configurable"]["thread_id"]
    first = interrupt_args(await graph.ainvoke({"target": str(repo)}, cfg))
    with pytest.raises(ReviewStateError, match="not awaiting review"):
        await resume_review(graph, thread, {"type": "accept"}, proposal_id="someother")
    wrong = await graph.ainvoke(Command(resume={"type": "accept", "args": {"proposal_id": "someother"}}), cfg)
    assert "nothing was done" in wrong["__interrupt__"][0].value["description"]
    await resume_review(graph, thread, {"type": "ignore"}, proposal_id=first["proposal_id"])
    await resume_review(graph, thread, {"type": "ignore"})
    with pytest.raises(ReviewStateError, match="no proposal awaiting review"):
        await resume_review(graph, thread, {"type": "accept"})
    pristine(repo)


async def test_approving_an_applied_proposal_again_is_refused(repo: Path, scanned: ScanReport) -> None:
    outcomes = MemoryOutcomes()
    graph = make_graph(scanned, outcomes)
    cfg = config()
    first = interrupt_args(await graph.ainvoke({"target": str(repo)}, cfg))
    await graph.ainvoke(Command(resume={"type": "accept"}), cfg)
    state = await graph.aget_state(cfg)
    branch = f"nova/improve-{first['proposal_id']}"
    tip = sh(repo, "git", "rev-parse", branch)
    index = next(i for i, p in enumerate(state.values["proposals"]) if p.id == first["proposal_id"])
    replay = {**state.values, "current": index}
    replay["proposals"] = list(replay["proposals"])
    replay["proposals"][index] = replay["proposals"][index].model_copy(update={"status": "validated"})
    update = await make_apply_proposal(ImproveServices(outcomes=outcomes))(replay)
    assert "applied already" in update["log"][0]
    assert sh(repo, "git", "rev-parse", branch) == tip


async def test_a_model_draft_touching_tests_is_refused_before_validation(repo: Path, scanned: ScanReport) -> None:
    bad = RefactorDraft(
        diff="--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n@@ -1 +1 @@\n-from pkg.calc import invoice_total, "
        "quote_total\n+import pytest\n",
        rationale="make the failing test pass",
        expected_effect="green",
        risk="low",
    )
    calls: list[str] = []

    def spy(target: Path, head: str, proposal: Proposal, baseline: dict[str, Any], **kw: Any) -> list[CheckResult]:
        calls.append(proposal.author)
        return cached_validate(target, head, proposal, baseline, **kw)

    model = ScriptedModel(structured=[bad])
    graph = build_improve_graph(
        services=ImproveServices(), models=StaticModels(model, "remote"), scanner=lambda *_a, **_k: scanned,
        validator=spy,
    ).compile(checkpointer=InMemorySaver(serde=improve_serde()))  # fmt: skip
    cfg = config()
    await graph.ainvoke({"target": str(repo), "max_proposals": 3}, cfg)
    state = await graph.aget_state(cfg)
    drafted = [p for p in state.values["proposals"] if p.author == "model"]
    assert len(drafted) == 1 and drafted[0].status == "refused"
    assert "protected" in drafted[0].reason and "tests/test_calc.py" in drafted[0].reason
    assert "model" not in calls
    assert any(o.decision == "refused" for o in state.values["outcomes"])


async def test_a_failed_model_draft_is_revised_within_the_attempt_limit(repo: Path, scanned: ScanReport) -> None:
    broken = RefactorDraft(diff="--- a/pkg/calc.py\n+++ b/pkg/calc.py\n@@ -90 +90 @@\n-nope\n+nope\n",
                           rationale="r", expected_effect="e")  # fmt: skip
    good = RefactorDraft(
        diff='--- a/pkg/calc.py\n+++ b/pkg/calc.py\n@@ -1,3 +1,3 @@\n-"""Prices."""\n+"""Prices and totals."""\n \n'
        " import os\n",
        rationale="describe the module",
        expected_effect="clearer docs",
    )
    model = ScriptedModel(structured=[broken, good])
    graph = build_improve_graph(
        services=ImproveServices(), models=StaticModels(model, "remote"), scanner=lambda *_a, **_k: scanned,
        validator=cached_validate,
    ).compile(checkpointer=InMemorySaver(serde=improve_serde()))  # fmt: skip
    cfg = config()
    await graph.ainvoke({"target": str(repo), "max_proposals": 3}, cfg)
    state = await graph.aget_state(cfg)
    model_props = [p for p in state.values["proposals"] if p.author == "model"]
    assert [p.status for p in model_props] == ["dropped", "validated"]
    assert model_props[0].reason.startswith("apply:") and model_props[1].attempts == 2
    assert model_props[1].revision_of == model_props[0].id
