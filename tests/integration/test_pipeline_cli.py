"""`nova pipeline` and `nova reviews` as the owner uses them: real Postgres, the fake model server, subprocesses."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from tests.integration.conftest import nova


def run_json(env: dict[str, str], *args: str) -> dict[str, object]:
    result = nova(env, *args, "--json")
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def test_issue_fix_runs_to_the_gate_and_approve_writes_the_patch(nova_env: dict[str, str]) -> None:
    listed = nova(nova_env, "pipeline", "list")
    assert listed.returncode == 0, listed.stderr
    for name in ("issue_fix", "digest", "client_update", "release_notes", "knowledge_capture"):
        assert name in listed.stdout
    shown = nova(nova_env, "pipeline", "show", "issue_fix")
    assert "6. review [review: apply_patch]" in shown.stdout

    run = nova(nova_env, "pipeline", "run", "issue_fix", "issue=101")
    assert run.returncode == 0, run.stderr
    for step in ("read_issue", "gather_context", "mechanical_fix", "draft_fix", "check_patch"):
        assert f"✓ {step}" in run.stdout, run.stdout
    assert "Paused for your review" in run.stdout
    thread = run.stdout.split("(thread ")[1].split(")")[0]

    reviews = run_json(nova_env, "reviews", "list")
    assert isinstance(reviews, list) and [r["thread_id"] for r in reviews] == [thread]
    assert reviews[0]["graph_id"] == "pipeline"
    show = nova(nova_env, "reviews", "show", thread)
    assert "apply_patch" in show.stdout and "for_branch(request.branch)" in show.stdout

    approved = nova(nova_env, "reviews", "approve", thread)
    assert approved.returncode == 0, approved.stderr
    assert "◆ review" in approved.stdout and "✓ write_patch" in approved.stdout and "Done. Result:" in approved.stdout
    patch = Path(approved.stdout.split("Done. Result: ")[1].split()[0])
    assert patch.is_file() and "+++ b/orders/views.py" in patch.read_text()
    applied = subprocess.run(
        ["git", "apply", "--check", "--directory=graphs/erp_sample", str(patch)], capture_output=True, text=True
    )
    assert applied.returncode == 0 or "already exists" in applied.stderr, applied.stderr

    again = nova(nova_env, "reviews", "approve", thread)
    assert again.returncode == 1 and "not waiting for a review" in again.stderr
    status = run_json(nova_env, "pipeline", "status", thread)
    assert status["status"] == "idle" and status["values"]["status"] == "done"  # type: ignore[index]


def test_reject_with_comment_redrafts_and_a_failed_run_reports_and_resumes(nova_env: dict[str, str]) -> None:
    run = nova(nova_env, "pipeline", "run", "issue_fix", "issue=102")
    thread = run.stdout.split("(thread ")[1].split(")")[0]
    rejected = nova(nova_env, "reviews", "reject", thread, "--comment", "filter by branch, not only tenant")
    assert rejected.returncode == 0, rejected.stderr
    assert "✓ draft_fix" in rejected.stdout and "Paused for your review" in rejected.stdout
    show = nova(nova_env, "reviews", "show", thread)
    assert "filter by branch, not only tenant" in show.stdout, "the comment reached the redraft prompt"

    failed = nova(nova_env, "pipeline", "run", "issue_fix", "issue=106")
    assert failed.returncode == 1
    assert "Stopped at issue_fix.check_patch" in failed.stdout, failed.stdout
    assert "no diff to check" in failed.stdout and "nova pipeline resume" in failed.stdout
    broken = failed.stdout.split("(thread ")[1].split(")")[0]
    status = run_json(nova_env, "pipeline", "status", broken)
    assert status["status"] == "error" and status["next"] == ["issue_fix.check_patch"]
    assert set(status["values"]["outputs"]) >= {"read_issue", "gather_context", "draft_fix"}  # type: ignore[index]
    resumed = nova(nova_env, "pipeline", "resume", broken)
    assert resumed.returncode == 1 and "✓ read_issue" not in resumed.stdout, "completed steps are not re-run"


def test_bad_input_gets_a_clear_error(nova_env: dict[str, str]) -> None:
    missing = nova(nova_env, "pipeline", "run", "issue_fix")
    assert missing.returncode == 1 and "needs ['issue']" in missing.stderr
    unknown = nova(nova_env, "pipeline", "run", "nope", "a=b")
    assert unknown.returncode == 1 and "unknown pipeline 'nope'" in unknown.stderr
    malformed = nova(nova_env, "pipeline", "run", "digest", "weekly")
    assert malformed.returncode == 1 and "must look like key=value" in malformed.stderr
    nobody = nova(nova_env, "reviews", "approve", str(uuid.uuid4()))
    assert nobody.returncode == 1 and "no thread" in nobody.stderr
    no_comment = nova(nova_env, "reviews", "edit", str(uuid.uuid4()))
    assert no_comment.returncode == 1 and "edit needs --diff" in no_comment.stderr


def test_chat_starts_a_pipeline_and_its_gate_waits_in_the_inbox(nova_env: dict[str, str]) -> None:
    result = nova(nova_env, "ask", "run the fix pipeline on issue 101", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["agent"] in ("pipeline.issue_fix", "pipeline.run")
    assert "Pipeline issue_fix (thread" in out["answer"] and "Paused for your review" in out["answer"]
    reviews = run_json(nova_env, "reviews", "list")
    assert isinstance(reviews, list) and len(reviews) == 1
    assert reviews[0]["metadata"]["origin_thread"]  # type: ignore[index]
    assert reviews[0]["title"] == "issue_fix issue=101"  # type: ignore[index]  # no "project= repo=" for unset args

    # Decided in the same conversation, from the owner's words: the gate the pause showed, and nothing else.
    conversation = out["thread_id"]
    asked = json.loads(nova(nova_env, "ask", "should I approve it?", "--thread", conversation, "--json").stdout)
    assert asked["agent"] == "orchestration.reviews" and "Nothing decided" in asked["answer"]
    assert len(run_json(nova_env, "reviews", "list")) == 1  # type: ignore[arg-type]
    approved = json.loads(nova(nova_env, "ask", "approve it", "--thread", conversation, "--json").stdout)
    pipeline = reviews[0]["thread_id"]  # type: ignore[index]
    assert approved["answer"].startswith(f"Approved: {pipeline} (issue_fix issue=101). Finished; result: ")
    assert approved["answer"].endswith("Nothing is waiting for your review.")
    patch = Path(approved["answer"].split("result: ")[1].split()[0])
    assert patch.is_file() and "+++ b/orders/views.py" in patch.read_text()
    assert run_json(nova_env, "reviews", "list") == []
