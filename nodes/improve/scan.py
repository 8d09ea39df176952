"""Scan: gather evidence about a target repository and Nova's runtime, as scored findings.

Static tools run in a temporary worktree of the target's HEAD (proposals are diffs against HEAD, and the
target's working tree must not get caches or bytecode written into it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.improve.analysis import find_duplicates, measure_functions, read_sources
from nodes.improve.gitops import (
    CommandResult,
    check_env,
    git,
    head_commit,
    repo_root,
    run_limited,
    sweep_worktrees,
    tool,
    worktree,
)
from nodes.improve.ports import ImproveServices, RuntimeSignals
from nodes.improve.safety import is_protected
from state.improve import Finding, FindingKind, ImproveState

COMPLEXITY_THRESHOLD = 12
SLOW_TEST_S = 1.0
DEFAULT_TIME_LIMIT_S = 300.0

_MYPY_LINE = re.compile(
    r"^(?P<path>[^:\n]+\.pyi?):(?P<line>\d+)(?::\d+)?: error: (?P<msg>.*?)(?:  \[(?P<code>[\w-]+)\])?$"
)
_FAILED = re.compile(r"^(?:FAILED|ERROR) (?P<id>\S+)(?: - (?P<msg>.*))?$")
_DURATION = re.compile(r"^\s*(?P<s>\d+(?:\.\d+)?)s (?P<phase>call|setup|teardown)\s+(?P<id>\S+)")


def short_hash(*parts: object) -> str:
    """Return a 12-hex-digit hash of the parts' text."""
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:12]


@dataclass
class ScanReport:
    """Findings plus the baseline the validation compares against (per-file counts, failing tests)."""

    head: str
    findings: list[Finding] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


def focus_path(root: Path, focus: str | None) -> str | None:
    """Turn a focus (a path or a dotted module) into a path relative to the repository, or None for all."""
    if not focus:
        return None
    candidate = focus.strip().rstrip("/")
    if (root / candidate).exists():
        return candidate
    dotted = candidate.replace(".", "/")
    for option in (f"{dotted}.py", dotted):
        if (root / option).exists():
            return option
    raise ValueError(f"focus {focus!r} is neither a path nor a module inside {root}")


def in_focus(path: str | None, focus: str | None) -> bool:
    """Return True when a path lies under the focus (or there is no focus)."""
    return focus is None or (path is not None and (path == focus or path.startswith(focus.rstrip("/") + "/")))


def mypy_configured(root: Path) -> bool:
    """Return True when the repository configures mypy (so its errors are evidence, not noise)."""
    if (root / "mypy.ini").exists() or (root / ".mypy.ini").exists():
        return True
    for name, marker in (("pyproject.toml", "[tool.mypy]"), ("setup.cfg", "[mypy]")):
        p = root / name
        if p.exists() and marker in p.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


def import_linter_configured(root: Path) -> bool:
    """Return True when the repository has import-linter contracts."""
    p = root / "pyproject.toml"
    return (root / ".importlinter").exists() or (
        p.exists() and "[tool.importlinter]" in p.read_text(encoding="utf-8", errors="replace")
    )


def cache_dir(target: Path) -> Path:
    """Return a cache directory for a target's tools, outside its working tree."""
    path = Path(tempfile.gettempdir()) / "nova-improve-cache" / short_hash(target)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_ruff(tree: Path, target: Path, paths: list[str], time_limit_s: float) -> list[dict[str, Any]]:
    """Return ruff's violations (paths relative to `tree`)."""
    argv = [*tool(target, "ruff"), "check", "--no-cache", "--output-format=json", "--exit-zero", *(paths or ["."])]
    result = run_limited(argv, cwd=tree, env=check_env(tree), timeout_s=time_limit_s, output_limit=5_000_000)
    try:
        rows = json.loads(result.output or "[]")
    except json.JSONDecodeError:
        return []
    out = []
    prefix = str(tree.resolve()) + "/"
    for r in rows:
        name = str(r.get("filename", ""))
        out.append({**r, "filename": name[len(prefix) :] if name.startswith(prefix) else name})
    return out


def run_mypy(tree: Path, target: Path, time_limit_s: float, paths: list[str] | None = None) -> CommandResult:
    """Type-check the worktree the way the target configures mypy (cache kept outside the target)."""
    argv = [
        *tool(target, "mypy"),
        "--cache-dir",
        str(cache_dir(target) / "mypy"),
        "--no-error-summary",
        "--show-error-codes",
        "--no-color-output",
        "--hide-error-context",
        *(paths or ([] if mypy_configured(tree) else ["."])),
    ]
    return run_limited(argv, cwd=tree, env=check_env(tree), timeout_s=time_limit_s, output_limit=2_000_000)


def mypy_errors(output: str) -> list[dict[str, Any]]:
    """Parse mypy's error lines."""
    out = []
    for line in output.splitlines():
        if m := _MYPY_LINE.match(line.strip()):
            out.append({"path": m["path"], "line": int(m["line"]), "message": m["msg"], "code": m["code"] or "misc"})
    return out


def run_pytest(tree: Path, target: Path, paths: list[str], time_limit_s: float) -> CommandResult:
    """Run tests quietly with failure reasons and durations (no cache written)."""
    argv = [*tool(target, "pytest"), "-q", "-rfE", "--durations=10", "--durations-min=0.5", "-p", "no:cacheprovider"]
    return run_limited([*argv, *paths], cwd=tree, env=check_env(tree), timeout_s=time_limit_s, output_limit=200_000)


def pytest_results(output: str) -> tuple[dict[str, str], dict[str, float]]:
    """Return (failing test id -> reason, test id -> slowest phase seconds) from pytest's output."""
    failed: dict[str, str] = {}
    slow: dict[str, float] = {}
    for line in output.splitlines():
        if m := _FAILED.match(line):
            failed.setdefault(m["id"], (m["msg"] or "").strip()[:300])
        elif m := _DURATION.match(line):
            slow[m["id"]] = max(slow.get(m["id"], 0.0), float(m["s"]))
    return failed, slow


def python_files(tree: Path) -> list[str]:
    """Return tracked Python files of the worktree."""
    return [p for p in git(tree, "ls-files", "-z", "--", "*.py").split("\0") if p]


def default_scan_tests(tree: Path) -> list[str]:
    """Return `tests/unit` when it exists, else `tests`, else nothing."""
    for candidate in ("tests/unit", "tests", "test"):
        if (tree / candidate).is_dir():
            return [candidate]
    return []


def static_findings(
    tree: Path, target: Path, *, focus: str | None, time_limit_s: float, run_types: bool | None
) -> tuple[list[Finding], dict[str, Any], list[str]]:
    """Return lint, type, complexity and duplicate findings of a worktree, and the per-file baseline."""
    log: list[str] = []
    baseline: dict[str, Any] = {}
    files = [p for p in python_files(tree) if in_focus(p, focus)]
    started = time.perf_counter()
    violations = run_ruff(tree, target, [focus] if focus else [], time_limit_s)
    log.append(f"ruff: {len(violations)} violations ({time.perf_counter() - started:.1f}s)")
    baseline["ruff"] = dict(Counter(v["filename"] for v in violations))
    findings: list[Finding] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for v in violations:
        groups[(v["filename"], str(v.get("code") or "syntax"))].append(v)
    for (path, code), items in groups.items():
        fixable = sum(1 for v in items if v.get("fix") and v["fix"].get("applicability") == "safe")
        lines = sorted(int(v["location"]["row"]) for v in items)
        findings.append(
            Finding(
                id=f"lint:{path}:{code}",
                kind="lint",
                path=path,
                line=lines[0],
                symbol=code,
                message=f"{code} {items[0]['message']}" + (f" (+{len(items) - 1} more)" if len(items) > 1 else ""),
                measure=len(items),
                unit="violations",
                score=round(min(1.0, (0.55 if fixable else 0.25) + 0.05 * len(items)), 3),
                fingerprint=short_hash(sorted(v["message"] for v in items)),
                detail={"lines": lines, "safe_fixes": fixable, "code": code},
            )
        )
    if run_types is None:
        run_types = mypy_configured(tree)
    if run_types:
        started = time.perf_counter()
        result = run_mypy(tree, target, time_limit_s)
        errors = mypy_errors(result.output)
        baseline["mypy"] = dict(Counter(e["path"] for e in errors))
        baseline["mypy_ok"] = result.ok
        log.append(f"mypy: {len(errors)} errors ({result.duration_s:.1f}s{', timed out' if result.timed_out else ''})")
        by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for e in errors:
            if in_focus(e["path"], focus):
                by_key[(e["path"], e["code"])].append(e)
        for (path, code), items in by_key.items():
            findings.append(
                Finding(
                    id=f"type:{path}:{code}",
                    kind="type",
                    path=path,
                    line=items[0]["line"],
                    symbol=code,
                    message=f"{items[0]['message']} [{code}]"
                    + (f" (+{len(items) - 1} more)" if len(items) > 1 else ""),
                    measure=len(items),
                    unit="errors",
                    score=round(min(1.0, 0.45 + 0.05 * len(items)), 3),
                    fingerprint=short_hash(sorted(e["message"] for e in items)),
                    detail={"lines": [e["line"] for e in items], "code": code},
                )
            )
    if import_linter_configured(tree):
        lint_imports = Path(tool(target, "python")[0]).parent / "lint-imports"
        if lint_imports.exists():
            result = run_limited([str(lint_imports)], cwd=tree, env=check_env(tree), timeout_s=time_limit_s)
            baseline["import_linter_ok"] = result.ok
    sources = read_sources(tree, [f for f in files if not is_protected(f)])
    for path, source in sources.items():
        for m in measure_functions(path, source):
            if m.complexity < COMPLEXITY_THRESHOLD:
                continue
            findings.append(
                Finding(
                    id=f"complexity:{path}:{m.name}",
                    kind="complexity",
                    path=path,
                    line=m.line,
                    symbol=m.name,
                    message=f"{m.name} has cyclomatic complexity {m.complexity} over {m.lines} lines",
                    measure=m.complexity,
                    unit="complexity",
                    score=round(min(1.0, 0.3 + (m.complexity - COMPLEXITY_THRESHOLD) / 30), 3),
                    fingerprint=short_hash(m.complexity, m.lines),
                    detail={"lines": m.lines},
                )
            )
    for dup in find_duplicates(sources):
        first = dup.sites[0]
        where = ", ".join(f"{s.path}:{s.start}-{s.end} ({s.function})" for s in dup.sites)
        repeated = dup.lines * (len(dup.sites) - 1)
        findings.append(
            Finding(
                id=f"duplicate:{first.path}:{first.function}:{dup.key[:8]}",
                kind="duplicate",
                path=first.path,
                line=first.start,
                symbol=first.function,
                message=f"{dup.statements} statements ({dup.lines} lines) repeated {len(dup.sites)} times: {where}",
                measure=repeated,
                unit="repeated lines",
                score=round(min(1.0, 0.4 + repeated / 40), 3),
                fingerprint=short_hash(dup.key, [(s.path, s.function) for s in dup.sites]),
                detail={"sites": [s.__dict__ for s in dup.sites], "statements": dup.statements, "key": dup.key},
            )
        )
    return findings, baseline, log


def test_findings(result: CommandResult) -> tuple[list[Finding], dict[str, str]]:
    """Turn a pytest run into failing-test and slow-test findings; return them and the failures."""
    failed, slow = pytest_results(result.output)
    findings = [
        Finding(
            id=f"test_failure:{test_id}",
            kind="test_failure",
            path=test_id.split("::")[0],
            symbol=test_id,
            message=f"{test_id} fails: {reason or 'see output'}",
            measure=1,
            unit="failures",
            score=0.9,
            fingerprint=short_hash(reason.split(" - ")[0][:120]),
            detail={"reason": reason},
        )
        for test_id, reason in failed.items()
    ]
    findings += [
        Finding(
            id=f"slow_test:{test_id}",
            kind="slow_test",
            path=test_id.split("::")[0],
            symbol=test_id,
            message=f"{test_id} takes {seconds:.1f}s",
            measure=seconds,
            unit="s",
            score=round(min(0.7, 0.2 + seconds / 20), 3),
            fingerprint=short_hash(round(seconds)),
        )
        for test_id, seconds in slow.items()
        if seconds >= SLOW_TEST_S and test_id not in failed
    ]
    return findings, failed


def runtime_findings(signals: RuntimeSignals, *, cards_root: Path | None = None) -> list[Finding]:
    """Turn Nova's runtime signals into findings (misroutes point at the card that should have matched)."""
    out: list[Finding] = []
    for r in signals.misroutes:
        text, correct, count = str(r["text"]), str(r["correct"]), int(r.get("count") or 1)
        domain, _, name = correct.partition(".")
        card = f"graphs/agents/{domain}/{name}.toml"
        out.append(
            Finding(
                id=f"misroute:{correct}:{short_hash(text.casefold())}",
                kind="misroute",
                path=card if cards_root is None or (cards_root / card).exists() else None,
                symbol=correct,
                message=f"{text!r} went to {r.get('wrong') or '?'} but belongs to {correct} ({count}x)",
                measure=count,
                unit="corrections",
                score=round(min(1.0, 0.6 + 0.1 * count), 3),
                fingerprint=short_hash(text, correct, r.get("wrong")),
                detail={"text": text, "correct": correct, "wrong": r.get("wrong"), "count": count},
            )
        )
    for r in signals.node_errors:
        node, kind, count = str(r.get("node") or "?"), str(r.get("kind") or "?"), int(r.get("count") or 0)
        out.append(
            Finding(
                id=f"node_error:{node}:{kind}",
                kind="node_error",
                symbol=node,
                message=f"{node} failed {count}x with {kind}: {str(r.get('example') or '')[:160]}",
                measure=count,
                unit="failed turns",
                score=round(min(1.0, 0.5 + 0.05 * count), 3),
                fingerprint=short_hash(count, kind),
                detail={k: str(v) for k, v in r.items()},
            )
        )
    for r in signals.slow_turns:
        agent, p95 = str(r.get("agent") or "?"), float(r.get("p95_ms") or 0.0)
        out.append(
            Finding(
                id=f"slow_turn:{agent}",
                kind="slow_turn",
                symbol=agent,
                message=f"turns of {agent}: p95 {p95:.0f} ms over {r.get('count')} turns (max {r.get('max_ms')})",
                measure=p95,
                unit="ms p95",
                score=round(min(0.6, 0.2 + p95 / 60_000), 3),
                fingerprint=short_hash(round(p95, -2)),
                detail={k: str(v) for k, v in r.items()},
            )
        )
    for r in signals.memory_conflicts:
        subject = str(r.get("subject"))
        out.append(
            Finding(
                id=f"memory_conflict:{r.get('user_id')}:{subject}",
                kind="memory_conflict",
                symbol=subject,
                message=f"unresolved memory conflict on {subject}: {', '.join(map(str, r.get('values') or []))}",
                measure=len(r.get("values") or []),
                unit="values",
                score=0.3,
                fingerprint=short_hash(sorted(map(str, r.get("values") or []))),
                detail={"texts": [str(t) for t in r.get("texts") or []]},
            )
        )
    return out


def scan(
    target: Path,
    *,
    focus: str | None = None,
    scan_tests: list[str] | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    run_types: bool | None = None,
) -> ScanReport:
    """Scan a repository's HEAD in a temporary worktree and return findings and the baseline."""
    root = repo_root(target)
    swept = sweep_worktrees(root)
    head = head_commit(root)
    report = ScanReport(head=head, log=[f"swept stale worktree {p}" for p in swept])
    with worktree(root, head) as tree:
        where = focus_path(tree, focus)
        findings, baseline, log = static_findings(
            tree, root, focus=where, time_limit_s=time_limit_s, run_types=run_types
        )
        report.log += log
        tests = default_scan_tests(tree) if scan_tests is None else scan_tests
        baseline["failing_tests"] = {}
        baseline["tested"] = list(tests)
        if tests:
            result = run_pytest(tree, root, tests, time_limit_s)
            more, failed = test_findings(result)
            findings += more
            baseline["failing_tests"] = failed
            state = "timed out" if result.timed_out else f"{len(failed)} failing"
            report.log.append(f"tests {' '.join(tests)}: {state} ({result.duration_s:.1f}s)")
    report.findings = findings
    report.baseline = baseline
    return report


ScanFn = Callable[..., ScanReport]


def make_scan_repository(
    services: ImproveServices, *, scanner: ScanFn = scan
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that gathers findings from the target and from Nova's runtime signals."""

    async def scan_repository(state: ImproveState) -> dict[str, Any]:
        """Scan the target's HEAD and read runtime signals; findings sorted by score."""
        target = await asyncio.to_thread(repo_root, Path(state.get("target") or "."))
        report = await asyncio.to_thread(
            scanner,
            target,
            focus=state.get("focus"),
            scan_tests=state.get("scan_tests"),
            time_limit_s=float(state.get("time_limit_s") or DEFAULT_TIME_LIMIT_S),
            run_types=state.get("run_mypy"),
        )
        signals = await services.signals.signals()
        runtime = runtime_findings(signals, cards_root=target)
        findings = sorted([*report.findings, *runtime], key=lambda f: (-f.score, f.id))
        kinds = Counter[FindingKind](f.kind for f in findings)
        summary = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
        return {
            "target": str(target),
            "head": report.head,
            "findings": findings,
            "baseline": report.baseline,
            "log": [*report.log, f"findings: {len(findings)} ({summary})"],
        }

    return scan_repository
