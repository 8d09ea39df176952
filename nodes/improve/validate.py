"""Check safety, then validate each diff in a temporary worktree: apply, lint, type check, tests.

A check passes when the change makes nothing worse than HEAD: no new ruff violations or unformatted files in
the changed files, no new mypy errors in any file, import contracts still kept, and no test failing that did
not fail at HEAD. Commands run with a time limit, an output limit, a minimal environment and no network.
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nodes.improve.gitops import CommandResult, apply_diff, check_env, git, run_limited, tool, worktree
from nodes.improve.safety import UnsafeDiff, check_diff
from nodes.improve.scan import DEFAULT_TIME_LIMIT_S, mypy_errors, pytest_results, run_mypy, run_pytest, run_ruff
from state.improve import CheckResult, ImproveState, Proposal

MAX_TEST_FILES = 12


def _check(name: str, result: CommandResult, ok: bool, summary: str) -> CheckResult:
    return CheckResult(
        name=name,
        ok=ok,
        command=result.command,
        duration_s=result.duration_s,
        returncode=result.returncode,
        timed_out=result.timed_out,
        summary=summary,
        output=result.output[-4000:] if not ok else "",
    )


def module_tokens(path: str) -> list[str]:
    """Return the strings a test would mention when it exercises a changed file."""
    p = Path(path)
    if p.suffix == ".py":
        parts = list(p.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        dotted = ".".join(parts)
        tokens = [dotted, f"import {parts[-1]}"] if parts else []
        if len(parts) > 1:
            tokens.append(f"from {'.'.join(parts[:-1])} import {parts[-1]}")
        return tokens
    return [p.parts[1]] if len(p.parts) > 2 else [p.stem]


def affected_tests(tree: Path, files: list[str], smoke: list[str]) -> list[str]:
    """Return test files that mention a changed module (integration tests only when in the smoke set)."""
    tokens = [t for f in files for t in module_tokens(f)]
    listed = git(tree, "ls-files", "-z", "--", "*test_*.py", "*_test.py").split("\0")
    hits: list[str] = []
    for rel in listed:
        if not rel or "integration" in Path(rel).parts or rel in smoke:
            continue
        name = Path(rel).name
        if not (name.startswith("test_") or name.endswith("_test.py")):
            continue
        text = (tree / rel).read_text(encoding="utf-8", errors="replace")
        if any(re.search(rf"\b{re.escape(t)}\b", text) for t in tokens):
            hits.append(rel)
    return hits[:MAX_TEST_FILES]


def validate(
    target: Path,
    head: str,
    proposal: Proposal,
    baseline: dict[str, Any],
    *,
    smoke_tests: list[str] | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> list[CheckResult]:
    """Apply a proposal in a fresh worktree of `head` and run the checks; the worktree is always removed."""
    checks: list[CheckResult] = []
    with worktree(target, head) as tree:
        py = [f for f in proposal.files if f.endswith(".py")]
        before = Counter(v["filename"] for v in run_ruff(tree, target, py, time_limit_s)) if py else Counter[str]()
        fmt_before = _unformatted(tree, target, py, time_limit_s) if py else set()
        smoke = [t for t in (smoke_tests or []) if (tree / t.split("::")[0]).exists()]
        tests = list(dict.fromkeys([*affected_tests(tree, proposal.files, smoke), *smoke]))
        known = set(baseline.get("failing_tests", {}))
        uncovered = [t for t in tests if not _covered(t, baseline.get("tested", []))]
        if uncovered:
            # Tests the scan did not run get their baseline here, on the untouched HEAD, so only new failures count.
            known |= set(pytest_results(run_pytest(tree, target, uncovered, time_limit_s).output)[0])
        started = time.perf_counter()
        applied, reason = apply_diff(tree, proposal.diff)
        took = round(time.perf_counter() - started, 2)
        if not applied:
            return [CheckResult(name="apply", ok=False, command="git apply", duration_s=took, summary=reason)]
        touched = set(git(tree, "diff", "--name-only", "HEAD").split()) | set(
            git(tree, "ls-files", "--others", "--exclude-standard").split()
        )
        stray = touched - set(proposal.files)
        if stray:
            summary = f"the diff changed files it does not name: {sorted(stray)}"
            return [CheckResult(name="apply", ok=False, command="git apply", duration_s=took, summary=summary)]
        checks.append(CheckResult(name="apply", ok=True, command="git apply", duration_s=took, summary="applies"))
        present = [f for f in py if (tree / f).exists()]
        if present:
            result = CommandResult(("ruff", "check", *present), 0, "", 0.0)
            t0 = time.perf_counter()
            after = Counter(v["filename"] for v in run_ruff(tree, target, present, time_limit_s))
            worse = {f: (before[f], after[f]) for f in present if after[f] > before[f]}
            fmt_after = _unformatted(tree, target, present, time_limit_s)
            newly = sorted(fmt_after - fmt_before)
            ok = not worse and not newly
            summary = (
                "no new violations" if ok else f"new violations {worse}" + (f"; unformatted {newly}" if newly else "")
            )
            result = CommandResult(result.argv, 0 if ok else 1, summary, round(time.perf_counter() - t0, 2))
            checks.append(_check("lint", result, ok, summary))
        for data in (f for f in proposal.files if f.endswith(".toml") and (tree / f).exists()):
            try:
                tomllib.loads((tree / data).read_text(encoding="utf-8"))
                checks.append(CheckResult(name="toml", ok=True, command=f"parse {data}", summary="parses"))
            except tomllib.TOMLDecodeError as exc:
                checks.append(CheckResult(name="toml", ok=False, command=f"parse {data}", summary=str(exc)))
        if "mypy" in baseline:
            result = run_mypy(tree, target, time_limit_s)
            counts = Counter(e["path"] for e in mypy_errors(result.output))
            worse = {
                f: (int(baseline["mypy"].get(f, 0)), n) for f, n in counts.items() if n > baseline["mypy"].get(f, 0)
            }
            ok = not worse and not result.timed_out
            summary = "no new type errors" if ok else ("timed out" if result.timed_out else f"new type errors {worse}")
            checks.append(_check("types", result, ok, summary))
        if baseline.get("import_linter_ok"):
            lint_imports = Path(tool(target, "python")[0]).parent / "lint-imports"
            result = run_limited([str(lint_imports)], cwd=tree, env=check_env(tree), timeout_s=time_limit_s)
            checks.append(_check("imports", result, result.ok, "contracts kept" if result.ok else "contract broken"))
        if tests:
            result = run_pytest(tree, target, tests, time_limit_s)
            failed, _slow = pytest_results(result.output)
            new = sorted(set(failed) - known)
            broken = result.returncode not in (0, 1) and not failed
            ok = not new and not result.timed_out and not broken
            if result.timed_out:
                summary = f"timed out after {time_limit_s:.0f}s"
            elif broken:
                summary = f"pytest could not run (exit {result.returncode})"
            else:
                summary = f"{len(tests)} test files: " + (f"new failures {new}" if new else "no new failures")
            checks.append(_check("tests", result, ok, summary))
    return checks


def _covered(test: str, scanned: list[str]) -> bool:
    return any(test == s or test.startswith(s.rstrip("/") + "/") for s in scanned)


def _unformatted(tree: Path, target: Path, files: list[str], time_limit_s: float) -> set[str]:
    out = set()
    for f in files:
        argv = [*tool(target, "ruff"), "format", "--check", "--no-cache", "-q", f]
        if run_limited(argv, cwd=tree, env=check_env(tree), timeout_s=time_limit_s, sandbox=False).returncode != 0:
            out.add(f)
    return out


async def check_safety(state: ImproveState) -> dict[str, Any]:
    """Refuse drafted diffs that touch files outside the target, `.git/`, symlinks or protected files."""
    target = Path(state["target"])
    out: list[Proposal] = []
    notes: list[str] = []
    for p in state.get("proposals", []):
        if p.status == "drafted":
            try:
                files = check_diff(target, p.diff)
                p = p.model_copy(update={"files": files})
            except UnsafeDiff as exc:
                p = p.model_copy(update={"status": "refused", "reason": f"refused before validation: {exc}"})
                notes.append(f"refused {p.id}: {exc}")
        out.append(p)
    return {"proposals": out, "log": notes}


ValidateFn = Callable[..., list[CheckResult]]


def make_validate_proposals(*, validator: ValidateFn = validate) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that validates every drafted proposal in its own temporary worktree."""

    async def validate_proposals(state: ImproveState) -> dict[str, Any]:
        """Validate drafted proposals; failures are dropped with the failing checks as the reason."""
        target, head = Path(state["target"]), state["head"]
        out: list[Proposal] = []
        notes: list[str] = []
        for p in state.get("proposals", []):
            if p.status == "drafted":
                started = time.perf_counter()
                checks = await asyncio.to_thread(
                    validator,
                    target,
                    head,
                    p,
                    state.get("baseline", {}),
                    smoke_tests=state.get("smoke_tests"),
                    time_limit_s=float(state.get("time_limit_s") or DEFAULT_TIME_LIMIT_S),
                )
                failed = [c for c in checks if not c.ok]
                reason = "; ".join(f"{c.name}: {c.summary}" for c in failed)
                p = p.model_copy(
                    update={"checks": checks, "status": "dropped" if failed else "validated", "reason": reason}
                )
                took = time.perf_counter() - started
                notes.append(f"{p.id} {'failed' if failed else 'passed'} validation in {took:.1f}s: {p.title}")
            out.append(p)
        return {"proposals": out, "log": notes}

    return validate_proposals
