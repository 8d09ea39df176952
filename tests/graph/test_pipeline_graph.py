"""Pipelines compiled from definitions: every step kind, conditions, retry then failure, resume, review gate."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from graphs.pipeline import PIPELINES_DIR, PipelineError, build_pipeline_graph, load_pipelines
from graphs.registry import Registry
from nodes.models import StaticModels
from nodes.pipeline import StepCall, StepError
from nodes.pipeline_tools import PipelineToolDeps, build_pipeline_tools
from nodes.services import NullMemory
from state.context import Context
from state.memory import Remembered, WriteOutcome
from tests.fakes import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "graphs" / "erp_sample"

FLAKY = """
name = "flaky"
description = "A test pipeline: a tool step that fails until told not to, an agent step, a skipped step."
result = "{steps.finish.text}"

[[args]]
name = "topic"

[[steps]]
id = "prepare"
kind = "tool"
tool = "count"
inputs = { topic = "{args.topic}" }

[[steps]]
id = "fragile"
kind = "tool"
tool = "fragile"
retry = { max_attempts = 2, initial_interval = 0.0 }
inputs = { seen = "{steps.prepare.calls}" }

[[steps]]
id = "optional"
kind = "tool"
tool = "count"
when = "steps.fragile.skip_next == 'no'"

[[steps]]
id = "finish"
kind = "agent"
agent = "language.summarise"
prompt = "Summarise {args.topic} after {steps.fragile.attempt} attempts."
"""


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.fragile_calls = 0
        self.broken = True

    async def count(self, inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        self.calls += 1
        return {"calls": self.calls, "topic": inputs.get("topic")}

    async def fragile(self, inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        self.fragile_calls += 1
        if self.broken:
            raise StepError("the upstream service is down")
        return {"attempt": self.fragile_calls, "skip_next": "yes"}


def text_of(path: str | Path) -> str:
    return Path(path).read_text()


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def tools_for(tmp_path: Path, counter: Counter | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if counter is not None:
        extra = {"count": counter.count, "fragile": counter.fragile}
    deps = PipelineToolDeps(
        memory=NullMemory(),
        workspace=None,
        erp_project=SAMPLE,
        issues_file=SAMPLE / "issues.json",
        output_dir=tmp_path / "out",
        extra=extra,
    )
    return build_pipeline_tools(deps)


def compiled(
    registry: Registry, model: ScriptedModel, tools: dict[str, Any], *, folder: Path = PIPELINES_DIR, saver: Any = None
) -> Any:
    """Compile the definitions in `folder` (the shipped ones by default) on this model and these tools."""
    from langgraph.checkpoint.memory import InMemorySaver

    specs = load_pipelines(folder, agents=registry.ids, tools=tools)
    graph = build_pipeline_graph(specs, registry=registry, models=StaticModels(model), tools=tools)
    return graph.compile(checkpointer=saver if saver is not None else InMemorySaver())


@pytest.fixture()
def flaky_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "flaky.toml").write_text(FLAKY)
    return folder


async def test_retry_then_failure_then_resume_from_the_failed_step(
    flaky_dir: Path, tmp_path: Path, registry: Registry, saver: BaseCheckpointSaver[Any]
) -> None:
    counter = Counter()
    tools = tools_for(tmp_path, counter)
    model = ScriptedModel(["Summary of stock after 3 attempts."])
    graph = compiled(registry, model, tools, folder=flaky_dir, saver=saver)
    config = cfg()
    with pytest.raises(StepError, match="upstream service is down"):
        await graph.ainvoke({"pipeline": "flaky", "args": {"topic": "stock"}}, config, context=Context())
    assert counter.fragile_calls == 2, "the step's retry policy allows two attempts"
    state = await graph.aget_state(config)
    assert state.next == ("flaky.fragile",)
    assert [t.error for t in state.tasks if t.error], "the failure is recorded on the failed task"
    assert state.values["outputs"]["prepare"] == {"calls": 1, "topic": "stock"}, "partial outputs are kept"
    assert state.values.get("result") is None and state.values["status"] == "running"

    counter.broken = False
    out = await graph.ainvoke(None, config, context=Context())
    assert counter.calls == 1, "the completed step did not run again"
    assert counter.fragile_calls == 3
    assert out["status"] == "done" and out["result"] == "Summary of stock after 3 attempts."
    assert [(s["step"], s["status"]) for s in out["steps"]] == [
        ("prepare", "done"),
        ("fragile", "done"),
        ("optional", "skipped"),
        ("finish", "done"),
    ]
    assert "after 3 attempts" in model.seen[-1][-1].content


async def test_bad_arguments_are_refused_naming_the_problem(
    flaky_dir: Path, tmp_path: Path, registry: Registry
) -> None:
    tools = tools_for(tmp_path, Counter())
    specs = load_pipelines(flaky_dir, agents=registry.ids, tools=tools)
    graph = build_pipeline_graph(specs, registry=registry, models=StaticModels(ScriptedModel()), tools=tools).compile()
    with pytest.raises(ValueError, match=r"needs \['topic'\]"):
        await graph.ainvoke({"pipeline": "flaky", "args": {}}, context=Context())
    with pytest.raises(ValueError, match=r"no argument\(s\) \['colour'\]"):
        await graph.ainvoke({"pipeline": "flaky", "args": {"topic": "x", "colour": "red"}}, context=Context())
    with pytest.raises(ValueError, match="unknown pipeline 'nope'"):
        await graph.ainvoke({"pipeline": "nope", "args": {}}, context=Context())


def test_definitions_with_dangling_references_or_unknown_tools_are_refused(tmp_path: Path, registry: Registry) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.toml").write_text(
        FLAKY.replace('name = "flaky"', 'name = "broken"').replace("{steps.prepare.calls}", "{steps.later.calls}")
    )
    with pytest.raises(PipelineError, match=r"broken.toml.*reference \{steps.later.calls\}"):
        load_pipelines(folder)
    (folder / "broken.toml").write_text(FLAKY.replace('name = "flaky"', 'name = "broken"'))
    with pytest.raises(PipelineError, match="unknown pipeline tool 'fragile'"):
        load_pipelines(folder, agents=registry.ids, tools={"count"})


def test_shipped_pipelines_load_against_the_roster_and_tools(tmp_path: Path, registry: Registry) -> None:
    specs = load_pipelines(agents=registry.ids, tools=tools_for(tmp_path))
    assert {"issue_fix", "digest", "client_update", "release_notes", "knowledge_capture"} <= set(specs)


FIX_REPLY = "The view looked the order up by primary key only. Scope it to the request's branch."


@pytest.fixture()
def issue_fix(tmp_path: Path, registry: Registry, saver: BaseCheckpointSaver[Any]) -> tuple[Any, ScriptedModel]:
    model = ScriptedModel([FIX_REPLY, "Redrafted: also scope the list view as the reviewer asked."])
    return compiled(registry, model, tools_for(tmp_path), saver=saver), model


async def run_to_gate(graph: Any, issue: int = 101) -> tuple[dict[str, Any], Any]:
    config = cfg()
    await graph.ainvoke({"pipeline": "issue_fix", "args": {"issue": str(issue)}}, config, context=Context())
    state = await graph.aget_state(config)
    assert state.next == ("issue_fix.review",)
    return config, state


async def test_issue_fix_reaches_review_with_an_applicable_diff_and_approve_writes_it(
    issue_fix: tuple[Any, ScriptedModel], tmp_path: Path
) -> None:
    graph, _ = issue_fix
    config, state = await run_to_gate(graph)
    (pending,) = state.interrupts
    request = pending.value
    assert request["action_request"]["action"] == "apply_patch"
    diff = request["action_request"]["args"]["diff"]
    assert "+++ b/orders/views.py" in diff
    assert "get_object_or_404(Order.objects.for_branch(request.branch), pk=pk)" in diff
    assert request["action_request"]["args"]["rationale"] == FIX_REPLY
    out = await graph.ainvoke(Command(resume={"type": "accept"}), config, context=Context())
    assert out["status"] == "done"
    written = Path(out["result"])
    assert written.parent == tmp_path / "out" / "patches" and text_of(written) == diff
    assert text_of(written.with_suffix(".md")).strip() == FIX_REPLY


async def test_issue_fix_edit_is_checked_again_and_a_bad_edit_asks_again(issue_fix: tuple[Any, ScriptedModel]) -> None:
    graph, _ = issue_fix
    config, state = await run_to_gate(graph)
    diff = state.interrupts[0].value["action_request"]["args"]["diff"]
    await graph.ainvoke(
        Command(
            resume={
                "type": "edit",
                "args": {"diff": "--- a/orders/views.py\n+++ b/orders/views.py\n@@ -1 +1 @@\n-nope\n+x\n"},
            }
        ),
        config,
        context=Context(),
    )
    state = await graph.aget_state(config)
    assert state.next == ("issue_fix.review",), "a diff that does not apply is sent back to the reviewer"
    assert "Your edit was not accepted" in state.interrupts[0].value["description"]
    edited = diff.replace("for_branch(request.branch), pk=pk)", "for_branch(request.branch), pk=pk)  # scoped")
    out = await graph.ainvoke(Command(resume={"type": "edit", "args": {"diff": edited}}), config, context=Context())
    assert out["status"] == "done" and text_of(out["result"]) == edited


async def test_issue_fix_reject_with_comment_redrafts_once_then_stops(issue_fix: tuple[Any, ScriptedModel]) -> None:
    graph, model = issue_fix
    config, _ = await run_to_gate(graph)
    await graph.ainvoke(
        Command(resume={"type": "respond", "args": "also scope the list view"}), config, context=Context()
    )
    state = await graph.aget_state(config)
    assert state.next == ("issue_fix.review",), "the comment sent the run back through a redraft to review"
    assert "also scope the list view" in model.seen[-1][-1].content
    assert state.interrupts[0].value["action_request"]["args"]["rationale"].startswith("Redrafted")
    out = await graph.ainvoke(Command(resume={"type": "respond", "args": "still no"}), config, context=Context())
    assert out["status"] == "rejected" and out.get("result") is None
    assert [s["step"] for s in out["steps"]].count("draft_fix") == 2


async def test_issue_fix_without_an_applicable_diff_fails_at_check_patch(issue_fix: tuple[Any, ScriptedModel]) -> None:
    graph, _ = issue_fix
    config = cfg()
    with pytest.raises(ValueError, match="no diff to check"):
        await graph.ainvoke({"pipeline": "issue_fix", "args": {"issue": "106"}}, config, context=Context())
    state = await graph.aget_state(config)
    assert state.next == ("issue_fix.check_patch",)
    assert {"read_issue", "gather_context", "mechanical_fix", "draft_fix"} <= set(state.values["outputs"])
    assert [s["step"] for s in state.values["steps"]].count("draft_fix") == 2, "one redraft, then the run stops"


BAD_DIFF = """Scope the monthly report.
```diff
--- a/orders/reports.py
+++ b/orders/reports.py
@@ -10,3 +10,3 @@
-    WHERE o.status = 'sent'
+    WHERE o.status = 'sent' AND o.branch_id = %s
     GROUP BY 1 ORDER BY 1
```"""
GOOD_DIFF = """Scope the monthly report to the branch.
```diff
--- a/orders/reports.py
+++ b/orders/reports.py
@@ -9,3 +9,3 @@
     FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
-    WHERE o.status = 'shipped'
+    WHERE o.status = 'shipped' AND o.tenant_id = %s AND o.branch_id = %s
     GROUP BY 1 ORDER BY 1
```"""


async def test_a_diff_that_does_not_apply_goes_back_to_the_drafter_once_with_gits_reason(
    tmp_path: Path, registry: Registry, saver: BaseCheckpointSaver[Any]
) -> None:
    model = ScriptedModel([BAD_DIFF, GOOD_DIFF])
    graph = compiled(registry, model, tools_for(tmp_path), saver=saver)
    config, state = await run_to_gate(graph, issue=103)
    redraft_prompt = model.seen[-1][-1].content
    assert "Why the earlier draft's diff could not be applied" in redraft_prompt
    assert "patch failed: orders/reports.py" in redraft_prompt, "git's own reason reached the drafter"
    steps = [(s["step"], s["status"]) for s in state.values["steps"]]
    assert steps[-4:] == [
        ("draft_fix", "done"),
        ("check_patch", "refused"),
        ("draft_fix", "done"),
        ("check_patch", "done"),
    ]
    assert "o.tenant_id = %s AND o.branch_id = %s" in state.interrupts[0].value["action_request"]["args"]["diff"]


async def test_the_refusal_redraft_budget_is_the_runs_and_ends_the_loop(
    tmp_path: Path, registry: Registry, saver: BaseCheckpointSaver[Any]
) -> None:
    """A diff that applies and is then rejected by the reviewer does not earn the drafter a second refusal."""
    model = ScriptedModel([BAD_DIFF, GOOD_DIFF, BAD_DIFF])
    graph = compiled(registry, model, tools_for(tmp_path), saver=saver)
    config, _ = await run_to_gate(graph, issue=103)
    with pytest.raises(ValueError, match="no diff applies"):
        await graph.ainvoke(
            Command(resume={"type": "respond", "args": "scope low_stock too"}), config, context=Context()
        )
    steps = [(s["step"], s["status"]) for s in (await graph.aget_state(config)).values["steps"]]
    assert steps.count(("check_patch", "refused")) == 1 and steps.count(("draft_fix", "done")) == 3


SKIPPED_ON_REDRAFT = """
name = "skip_loop"
description = "A refused check that the redraft pass skips must not send the run back again."
result = "{steps.draft.text}"

[[steps]]
id = "draft"
kind = "agent"
agent = "language.draft"
prompt = "Draft it. {steps.check.refused?}"

[[steps]]
id = "check"
kind = "tool"
tool = "refuse"
when = "steps.draft.text == 'first'"
on_refused = { redraft_from = "draft", max_redrafts = 3 }
"""


async def test_a_pass_that_skips_the_refused_step_goes_on(tmp_path: Path, registry: Registry) -> None:

    from nodes.pipeline import StepRefused

    async def refuse(inputs: dict[str, Any], call: StepCall) -> dict[str, Any]:
        raise StepRefused("not this time")

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "skip_loop.toml").write_text(SKIPPED_ON_REDRAFT)
    tools = {**tools_for(tmp_path), "refuse": refuse}
    graph = compiled(registry, ScriptedModel(["first", "second"]), tools, folder=folder)
    out = await graph.ainvoke({"pipeline": "skip_loop", "args": {}}, cfg(), context=Context())
    assert out["status"] == "done" and out["result"] == "second"
    assert [(s["step"], s["status"]) for s in out["steps"]] == [
        ("draft", "done"),
        ("check", "refused"),
        ("draft", "done"),
        ("check", "skipped"),
    ]


async def test_an_issue_described_in_chat_reaches_review_with_the_models_it_names(
    issue_fix: tuple[Any, ScriptedModel], tmp_path: Path
) -> None:
    graph, model = issue_fix
    config = cfg()
    described = "the overdue invoices list shows invoices from other branches to the credit controllers"
    await graph.ainvoke({"pipeline": "issue_fix", "args": {"issue": described}}, config, context=Context())
    state = await graph.aget_state(config)
    assert state.next == ("issue_fix.review",)
    request = state.interrupts[0].value
    assert "\u201cthe overdue invoices list shows invoices" in request["description"]
    assert "(described in chat)" in request["description"]
    prompt = model.seen[-1][-1].content
    assert f"Issue text: {described}" in prompt and "invoicing.Invoice" in prompt
    assert "finding invoicing/views.py" in prompt  # the tenancy finding on the model it names, with its code
    diff = request["action_request"]["args"]["diff"]
    assert "+++ b/invoicing/views.py" in diff
    out = await graph.ainvoke(Command(resume={"type": "accept"}), config, context=Context())
    assert out["status"] == "done" and Path(out["result"]).name.startswith("issue-described-")


async def test_unknown_issue_is_refused_without_retrying(issue_fix: tuple[Any, ScriptedModel]) -> None:
    graph, _ = issue_fix
    with pytest.raises(ValueError, match=r"no issue #999 in .*issues.json; open issues: \[101"):
        await graph.ainvoke({"pipeline": "issue_fix", "args": {"issue": "999"}}, cfg(), context=Context())


class RecordingMemory(NullMemory):
    def __init__(self) -> None:
        self.remembered: list[tuple[str, str]] = []

    async def remember(self, ref: Any, text: str) -> Remembered:
        self.remembered.append((ref.thread_id, text))
        return Remembered((WriteOutcome("stored", f"stored: {text}", text),))


def graph_with(tmp_path: Path, registry: Registry, model: ScriptedModel, **deps: Any) -> Any:

    from nodes.workspace import load_workspace

    options: dict[str, Any] = {
        "memory": NullMemory(),
        "workspace": load_workspace(ROOT / "graphs" / "workspace" / "sample.toml"),
        "erp_project": SAMPLE,
        "issues_file": SAMPLE / "issues.json",
        "output_dir": tmp_path / "out",
        **deps,
    }
    return compiled(registry, model, build_pipeline_tools(PipelineToolDeps(**options)))


def git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


async def test_release_notes_group_the_commits_between_two_refs(tmp_path: Path, registry: Registry) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")
    for i, subject in enumerate(
        ["chore: start", "feat: branch filter on invoices", "fix(orders): 404 on other branch", "tidy"]
    ):
        (repo / f"f{i}.txt").write_text(subject)
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", subject)
        if i == 0:
            git(repo, "tag", "v1.0")
    model = ScriptedModel(["## Features\n- Invoices are filtered by branch"])
    graph = graph_with(tmp_path, registry, model)
    out = await graph.ainvoke(
        {"pipeline": "release_notes", "args": {"repo": str(repo), "from": "v1.0"}}, cfg(), context=Context()
    )
    assert out["status"] == "done" and text_of(out["result"]).startswith("## Features")
    prompt = model.seen[0][-1].content
    assert "## Features\n- branch filter on invoices" in prompt and "## Fixes\n- 404 on other branch" in prompt
    assert "## Other changes\n- tidy" in prompt and "start" not in prompt.split("## Features")[1]
    with pytest.raises(ValueError, match="rev-parse"):
        await graph.ainvoke(
            {"pipeline": "release_notes", "args": {"repo": str(repo), "from": "v9"}}, cfg(), context=Context()
        )


async def test_knowledge_capture_stores_each_entry_with_provenance(tmp_path: Path, registry: Registry) -> None:
    memory = RecordingMemory()
    lines = '{"topic": "brush parts", "statement": "Sweeper brushes from Kleen are superseded by KB-220."}\n'
    lines += '{"topic": "stock", "statement": "Keep two spare hydraulic pumps per depot."}'
    graph = graph_with(tmp_path, registry, ScriptedModel([lines]), memory=memory)
    config = cfg()
    notes = "Interview with Dave. Sweeper brushes from Kleen are superseded. Keep two pumps per depot."
    out = await graph.ainvoke({"pipeline": "knowledge_capture", "args": {"notes": notes}}, config, context=Context())
    assert out["status"] == "done" and out["result"] == "stored 2 entr(ies)"
    assert [t for t, _ in memory.remembered] == [config["configurable"]["thread_id"]] * 2
    assert "superseded by KB-220" in memory.remembered[0][1]


async def test_knowledge_capture_reads_a_fenced_pretty_printed_array(tmp_path: Path, registry: Registry) -> None:
    memory = RecordingMemory()
    fenced = (
        '```json\n[\n  {\n    "topic": "refurbished parts",\n'
        '    "statement": "A part with an -R suffix is refurbished and never listed as new."\n  },\n'
        '  {"topic": "brushes", "statement": "The C201 main broom fits the C400 with the other hub."}\n]\n```'
    )
    graph = graph_with(tmp_path, registry, ScriptedModel([fenced]), memory=memory)
    notes = "Wayne: -R means refurbished, never new. C201 broom fits the C400 if you swap the hub."
    out = await graph.ainvoke({"pipeline": "knowledge_capture", "args": {"notes": notes}}, cfg(), context=Context())
    assert out["status"] == "done" and out["result"] == "stored 2 entr(ies)"
    by_step = {s["step"]: s["summary"] for s in out["steps"]}
    assert by_step["parse"] == "2 entr(ies) by model", "the model's entries are read, not the sentence fallback"
    assert by_step["structure"] == "2 JSON object(s)", "a JSON answer is summarised by its objects, not by its fence"
    assert "(interview notes, refurbished parts) A part with an -R suffix" in memory.remembered[0][1]


def test_json_objects_are_found_however_the_model_lays_them_out() -> None:
    from nodes.pipeline import first_line, json_objects

    assert json_objects('{"a": 1}\n{"b": {"c": 2}}') == [{"a": 1}, {"b": {"c": 2}}], "nested objects stay inside"
    assert json_objects('Here you go: [{"a": 1}, {"a": 2}] hope it helps {not json} {"a": 3') == [{"a": 1}, {"a": 2}]
    assert json_objects("no objects {at all}") == []
    assert first_line("```\nSure, here it is.\n```") == "Sure, here it is."
    assert first_line("\n\n### Release notes\n- fixed") == "### Release notes"


async def test_knowledge_capture_falls_back_to_sentences_when_the_model_answer_is_unusable(
    tmp_path: Path, registry: Registry
) -> None:
    memory = RecordingMemory()
    graph = graph_with(tmp_path, registry, ScriptedModel(["Sure! Here are your entries."]), memory=memory)
    notes = "The KB-220 brush fits every Kleen sweeper. Pumps fail after about 4000 hours of use."
    out = await graph.ainvoke({"pipeline": "knowledge_capture", "args": {"notes": notes}}, cfg(), context=Context())
    assert out["result"] == "stored 2 entr(ies)"
    assert any("4000 hours" in text for _, text in memory.remembered)


async def test_client_update_is_final_only_after_review(tmp_path: Path, registry: Registry) -> None:
    model = ScriptedModel(["Dear Hartley, the portal is live.", "Dear Hartley, the portal went live on Monday."])
    graph = graph_with(tmp_path, registry, model)
    config = cfg()
    await graph.ainvoke({"pipeline": "client_update", "args": {"project": "hartley"}}, config, context=Context())
    state = await graph.aget_state(config)
    request = state.interrupts[0].value
    assert request["action_request"]["action"] == "publish_text"
    assert request["action_request"]["args"]["text"] == "Dear Hartley, the portal is live."
    assert not (tmp_path / "out" / "client_update").exists(), "nothing is final before the review"
    await graph.ainvoke(Command(resume={"type": "respond", "args": "say which day"}), config, context=Context())
    state = await graph.aget_state(config)
    assert state.interrupts[0].value["action_request"]["args"]["text"].endswith("on Monday.")
    edited = "Dear Hartley, the portal went live on Monday 3 March."
    out = await graph.ainvoke(Command(resume={"type": "edit", "args": {"text": edited}}), config, context=Context())
    assert out["status"] == "done" and text_of(out["result"]).strip() == edited


async def test_digest_covers_every_project_and_unknown_projects_are_refused(tmp_path: Path, registry: Registry) -> None:
    model = ScriptedModel(["AIREP: on track. Find a Sign: listing model live."])
    graph = graph_with(tmp_path, registry, model)
    out = await graph.ainvoke({"pipeline": "digest", "args": {"period": "weekly"}}, cfg(), context=Context())
    assert out["status"] == "done" and "AIREP" in text_of(out["result"])
    prompt = model.seen[0][-1].content
    assert "weekly digest" in prompt and "### AIREP (airep" in prompt and "### Find a Sign" in prompt
    with pytest.raises(ValueError, match="unknown project 'zzz'"):
        await graph.ainvoke({"pipeline": "digest", "args": {"project": "zzz"}}, cfg(), context=Context())


def test_chat_requests_pick_a_pipeline_and_its_arguments(registry: Registry, tmp_path: Path) -> None:
    from nodes.pipeline import extract_args
    from nodes.pipeline_agent import pick_pipeline

    specs = load_pipelines(agents=registry.ids, tools=tools_for(tmp_path))
    run_card = registry.get("pipeline.run")
    assert pick_pipeline(run_card, specs, "run the fix pipeline on issue 101") is specs["issue_fix"]
    assert pick_pipeline(run_card, specs, "make the release notes from v1.2 to v1.3") is specs["release_notes"]
    assert pick_pipeline(run_card, specs, "run something") is None
    assert extract_args(specs["issue_fix"], "take ticket #118 through the fix") == {"issue": "118"}
    described = "AIREP bug: the invoice list shows invoices from other branches to branch managers. Take it through."
    assert extract_args(specs["issue_fix"], described) == {
        "issue": "the invoice list shows invoices from other branches to branch managers"
    }
    assert extract_args(specs["issue_fix"], "run the fix pipeline") == {}
    assert extract_args(specs["release_notes"], "release notes from v1.2 to v1.3") == {"from": "v1.2", "to": "v1.3"}
    assert extract_args(specs["digest"], "my weekly digest please") == {"period": "weekly"}
    capture = specs["knowledge_capture"]
    said = "knowledge capture: Wayne says anything with an -R suffix is refurbished and must never be listed as new"
    assert extract_args(capture, said) == {
        "notes": "Wayne says anything with an -R suffix is refurbished and must never be listed as new"
    }
    below = "Wayne session notes to knowledge base pls\nmain broom same on 5000 and 5060, side brush hub new in 2011"
    assert extract_args(capture, below) == {"notes": below.split("\n", 1)[1]}
    assert extract_args(capture, "Wayne is the domain expert on the Sweeper Parts system") == {}


def test_a_pipeline_missing_an_argument_says_how_to_give_it_in_the_chat(registry: Registry, tmp_path: Path) -> None:
    from nodes.pipeline_agent import missing_args_reply

    specs = load_pipelines(agents=registry.ids, tools=tools_for(tmp_path))
    capture = specs["knowledge_capture"]
    reply = missing_args_reply(capture, [a for a in capture.args if a.name == "notes"])
    assert reply.startswith("I can't start knowledge_capture yet: it needs notes.")
    assert "after a colon or on the lines below" in reply and '"knowledge capture: <the notes>"' in reply
    assert "`nova pipeline run knowledge_capture notes=...`" in reply
    update = specs["client_update"]
    project = [a for a in update.args if a.name == "project"]
    assert project and project[0].required and not project[0].from_pasted
    reply = missing_args_reply(update, project)
    assert reply.startswith("I can't start client_update yet: it needs project.")
    assert "after a colon" not in reply, "an argument that is not pasted text is not asked for as pasted text"
