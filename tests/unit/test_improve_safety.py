"""What a proposed diff may touch, and the limits on commands run during validation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from nodes.improve.gitops import check_env, run_limited, sweep_worktrees, worktree
from nodes.improve.safety import UnsafeDiff, check_diff, diff_paths
from tests.unit.test_improve_fixture import make_repo, sh


def diff_for(path: str, *, new: bool = False) -> str:
    old = "/dev/null" if new else f"a/{path}"
    hunk = "@@ -0,0 +1 @@\n+x\n" if new else "@@ -1 +1 @@\n-a\n+b\n"
    return f"diff --git a/{path} b/{path}\n--- {old}\n+++ b/{path}\n{hunk}"


def test_a_plain_source_file_is_allowed(tmp_path: Path) -> None:
    assert check_diff(tmp_path, diff_for("pkg/calc.py")) == ["pkg/calc.py"]
    assert check_diff(tmp_path, diff_for("graphs/agents/chat/clients.toml")) == ["graphs/agents/chat/clients.toml"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.py", "'..'"),
        ("pkg/../../outside.py", "'..'"),
        ("/etc/passwd", "absolute"),
        (".git/config", ".git/"),
        ("pkg/.git/hooks/pre-commit", ".git/"),
        ("tests/unit/test_router.py", "protected"),
        ("tests/conftest.py", "protected"),
        (".ci/run", "protected"),
        ("graphs/improve.py", "protected"),
        ("nodes/improve/safety.py", "protected"),
        ("state/improve.py", "protected"),
        ("api/improve.py", "protected"),
        ("nodes/review.py", "protected"),
        ("state/review.py", "protected"),
        ("pyproject.toml", "protected"),
        ("Makefile", "protected"),
        ("ruff.toml", "protected"),
        ("mypy.ini", "protected"),
        ("langgraph.json", "protected"),
        ("api/migrations/0005_improve.sql", "protected"),
    ],
)
def test_unsafe_paths_are_refused_with_the_reason(tmp_path: Path, path: str, reason: str) -> None:
    with pytest.raises(UnsafeDiff, match=reason.replace(".", r"\.")):
        check_diff(tmp_path, diff_for(path))


def test_a_symlink_leaving_the_repository_is_refused(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (outside / "x.py").write_text("a\n")
    (repo / "link").symlink_to(outside)
    with pytest.raises(UnsafeDiff, match="symlink"):
        check_diff(repo, diff_for("link/x.py"))


def test_a_symlink_inside_the_repository_is_still_refused(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text("a\n")
    (tmp_path / "alias.py").symlink_to(tmp_path / "real.py")
    with pytest.raises(UnsafeDiff, match="symlink"):
        check_diff(tmp_path, diff_for("alias.py"))


def test_mode_changes_symlink_creation_and_binary_patches_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeDiff, match="mode"):
        check_diff(tmp_path, "diff --git a/x.py b/x.py\nold mode 100644\nnew mode 100755\n")
    with pytest.raises(UnsafeDiff, match="symlink"):
        check_diff(tmp_path, "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc\n")
    with pytest.raises(UnsafeDiff, match="binary"):
        check_diff(tmp_path, "diff --git a/x.bin b/x.bin\nGIT binary patch\nliteral 0\n")
    with pytest.raises(UnsafeDiff, match="empty"):
        check_diff(tmp_path, "  \n")


def test_renames_name_both_paths(tmp_path: Path) -> None:
    diff = "diff --git a/pkg/a.py b/tests/a.py\nsimilarity index 100%\nrename from pkg/a.py\nrename to tests/a.py\n"
    assert set(diff_paths(diff).paths) == {"pkg/a.py", "tests/a.py"}
    with pytest.raises(UnsafeDiff, match="protected"):
        check_diff(tmp_path, diff)


def test_commands_have_a_time_limit_and_the_group_is_killed(tmp_path: Path) -> None:
    result = run_limited(
        [sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path, env=check_env(tmp_path), timeout_s=0.5
    )
    assert result.timed_out and not result.ok and result.duration_s < 10


def test_output_is_cut_to_the_limit_keeping_head_and_tail(tmp_path: Path) -> None:
    code = "print('HEAD' + 'x' * 100000 + 'TAIL')"
    result = run_limited(
        [sys.executable, "-c", code], cwd=tmp_path, env=check_env(tmp_path), timeout_s=30, output_limit=1000
    )
    assert len(result.output) < 1200
    assert result.output.startswith("HEAD") and result.output.rstrip().endswith("TAIL") and "bytes cut" in result.output


def test_commands_get_a_minimal_environment_without_proxies_or_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NOVA_LLM_API_KEY", "secret")
    code = "import os, json; print(json.dumps(dict(os.environ)))"
    result = run_limited([sys.executable, "-c", code], cwd=tmp_path, env=check_env(tmp_path), timeout_s=30)
    assert result.ok, result.output
    assert "proxy.invalid" not in result.output and "secret" not in result.output
    assert '"NO_PROXY": "*"' in result.output


def test_commands_have_no_network(tmp_path: Path) -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('BLOCKED', exc)\n"
    )
    result = run_limited([sys.executable, "-c", code], cwd=tmp_path, env=check_env(tmp_path), timeout_s=30)
    assert "BLOCKED" in result.output


def test_a_worktree_is_removed_even_when_the_body_fails(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    head = sh(repo, "git", "rev-parse", "HEAD").strip()
    seen: list[Path] = []
    with pytest.raises(RuntimeError), worktree(repo, head) as tree:
        seen.append(tree)
        (tree / "pkg" / "calc.py").write_text("broken")
        raise RuntimeError("boom")
    assert not seen[0].exists()
    assert str(seen[0]) not in sh(repo, "git", "worktree", "list")
    assert sh(repo, "git", "status", "--porcelain") == ""


def test_worktrees_left_by_a_dead_process_are_swept(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    dead_pid = 2**22 + 12345
    stale = Path(os.path.realpath(tmp_path)) / f"nova-improve-{dead_pid}-deadbeef"
    sh(repo, "git", "worktree", "add", "--detach", str(stale), "HEAD")
    assert sweep_worktrees(repo) == [str(stale)]
    assert not stale.exists()
