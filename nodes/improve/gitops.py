"""Git and subprocess plumbing: limited commands, temporary worktrees, applying a diff, committing to a branch.

The target's working tree and current branch are never touched: everything happens in a temporary
worktree (`git worktree add --detach`), removed in a `finally` even on failure or interruption, and a
worktree left behind by a killed process is swept on the next run.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

WORKTREE_PREFIX = "nova-improve-"
OUTPUT_LIMIT = 20_000
BRANCH_PREFIX = "nova/improve-"


class GitError(RuntimeError):
    """A git command failed; the message carries its output."""


@dataclass(frozen=True)
class CommandResult:
    """A finished command, its output cut to the limit."""

    argv: tuple[str, ...]
    returncode: int | None
    output: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Return True when the command exited 0 in time."""
        return self.returncode == 0 and not self.timed_out

    @property
    def command(self) -> str:
        """Return the command line for display."""
        return " ".join(self.argv)


def git(repo: Path, *args: str, check: bool = True, timeout_s: float = 60.0) -> str:
    """Run git in `repo` (hooks off, no pager, no prompts) and return stdout."""
    argv = ["git", "-C", str(repo), "-c", "core.hooksPath=/dev/null", "-c", "core.pager=cat", *args]
    env = {**_base_env(), "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[:2000]}")
    return proc.stdout


def repo_root(path: Path) -> Path:
    """Return the top of the git repository containing `path`, or raise `GitError`."""
    if not path.exists():
        raise GitError(f"{path} does not exist")
    return Path(git(path, "rev-parse", "--show-toplevel").strip()).resolve()


def head_commit(repo: Path) -> str:
    """Return the commit HEAD points at."""
    return git(repo, "rev-parse", "HEAD").strip()


def branch_exists(repo: Path, branch: str) -> bool:
    """Return True when `refs/heads/<branch>` exists."""
    return bool(git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).strip())


def _base_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "USER", "LOGNAME", "XDG_RUNTIME_DIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def check_env(cwd: Path, tool_bin: Path | None = None) -> dict[str, str]:
    """Return the minimal environment for validation commands: no proxies, no credentials, no bytecode."""
    path = os.pathsep.join(p for p in (str(tool_bin) if tool_bin else "", "/usr/local/bin", "/usr/bin", "/bin") if p)
    return {
        "PATH": path,
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(cwd),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "NO_PROXY": "*",
        "no_proxy": "*",
        "NO_COLOR": "1",
        "TMPDIR": tempfile.gettempdir(),
    }


@functools.lru_cache(maxsize=1)
def network_sandbox() -> tuple[str, ...]:
    """Return a prefix that runs a command without network (a fresh network namespace), or () if unavailable."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    try:
        probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    if probe.returncode != 0:
        return ()
    ip = shutil.which("ip")
    if ip:
        # Bring loopback up inside the namespace: tests may serve on 127.0.0.1; nothing else is reachable.
        return (unshare, "-rn", "sh", "-c", f'{ip} link set lo up 2>/dev/null; exec "$@"', "sandbox")
    return (unshare, "-rn")


def run_limited(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    output_limit: int = OUTPUT_LIMIT,
    sandbox: bool = True,
) -> CommandResult:
    """Run a command with a time limit, an output limit and (when the OS allows) no network.

    The whole process group is killed on timeout. Output beyond the limit keeps its head and tail.
    """
    full = (*(network_sandbox() if sandbox else ()), *argv)
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            full,
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
        size = out.tell()
        out.seek(0)
        if size <= output_limit:
            text = out.read().decode(errors="replace")
        else:
            head = out.read(output_limit // 2).decode(errors="replace")
            out.seek(size - output_limit // 2)
            tail = out.read().decode(errors="replace")
            text = f"{head}\n... [{size - output_limit} bytes cut] ...\n{tail}"
    return CommandResult(tuple(argv), proc.returncode, text, round(time.perf_counter() - started, 2), timed_out)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def sweep_worktrees(repo: Path) -> list[str]:
    """Remove worktrees of this loop left by a process that died before its `finally` ran."""
    removed: list[str] = []
    listing = git(repo, "worktree", "list", "--porcelain", check=False)
    for line in listing.splitlines():
        if not line.startswith("worktree "):
            continue
        path = Path(line[len("worktree ") :])
        match = re.match(rf"^{WORKTREE_PREFIX}(\d+)-", path.name)
        if match and not _alive(int(match.group(1))):
            git(repo, "worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    git(repo, "worktree", "prune", check=False)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def worktree(repo: Path, commit: str, *, branch: str | None = None) -> Iterator[Path]:
    """Check `commit` out in a temporary worktree (on a new `branch` if given) and always remove it."""
    path = Path(tempfile.gettempdir()) / f"{WORKTREE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    args = ["-b", branch] if branch else ["--detach"]
    git(repo, "worktree", "add", "--quiet", *args, str(path), commit, timeout_s=300)
    try:
        yield path
    finally:
        git(repo, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(path, ignore_errors=True)
        git(repo, "worktree", "prune", check=False)


def apply_diff(tree: Path, diff: str) -> tuple[bool, str]:
    """Apply a diff in a worktree with `git apply`; return (applied, reason)."""
    text = diff if diff.endswith("\n") else diff + "\n"
    for extra in ((), ("--recount",)):
        proc = subprocess.run(
            ["git", "-C", str(tree), "apply", "--whitespace=nowarn", *extra, "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            env=_base_env(),
            check=False,
        )
        if proc.returncode == 0:
            return True, ""
    return False, (proc.stderr or proc.stdout).strip()[:2000]


def tree_diff(tree: Path) -> str:
    """Return the worktree's uncommitted changes (new files included) as a git diff."""
    git(tree, "add", "--intent-to-add", "--all")
    return git(tree, "diff", "--no-color", "--no-ext-diff", "HEAD")


def reset_tree(tree: Path) -> None:
    """Throw away every change in a worktree."""
    git(tree, "reset", "--quiet", "--hard", "HEAD")
    git(tree, "clean", "-fdxq")


def commit_branch(repo: Path, base: str, branch: str, diff: str, message: str) -> str:
    """Commit `diff` on top of `base` to a new branch without touching the working tree; return the commit.

    Raises:
        GitError: the branch exists already, the diff does not apply, or the commit fails (the branch is
            then deleted again).
    """
    if branch_exists(repo, branch):
        raise GitError(f"branch {branch} exists already")
    created = False
    try:
        with worktree(repo, base, branch=branch) as tree:
            created = True
            ok, reason = apply_diff(tree, diff)
            if not ok:
                raise GitError(f"the diff does not apply on {base[:10]}: {reason}")
            git(tree, "add", "--all")
            ident = [] if git(repo, "config", "user.email", check=False).strip() else _nova_identity()
            git(tree, *ident, "commit", "--quiet", "--no-verify", "-m", message)
            return head_commit(tree)
    except BaseException:
        if created:
            git(repo, "branch", "-D", branch, check=False)
        raise


def _nova_identity() -> list[str]:
    return ["-c", "user.name=Nova", "-c", "user.email=nova@localhost"]


def tool(target: Path, name: str) -> list[str]:
    """Return how to run a Python tool for a target: its own `.venv` first, then this interpreter's."""
    for bin_dir in (target / ".venv" / "bin", Path(sys.executable).parent):
        python = bin_dir / "python"
        if python.exists() and (name == "python" or (bin_dir / name).exists()):
            return [str(python)] if name == "python" else [str(python), "-m", name]
    found = shutil.which(name)
    if not found:
        raise GitError(f"{name} is not installed for {target}")
    return [found]
