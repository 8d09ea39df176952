"""Static measures computed in-process: cyclomatic complexity per function and duplicated statement blocks."""

from __future__ import annotations

import ast
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_BRANCHES = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ExceptHandler,
    ast.With,
    ast.AsyncWith,
    ast.IfExp,
    ast.Assert,
)
MIN_BLOCK_STATEMENTS = 3
MIN_BLOCK_LINES = 5


@dataclass(frozen=True)
class FunctionMeasure:
    """Complexity and length of one function."""

    path: str
    name: str
    line: int
    complexity: int
    lines: int


@dataclass(frozen=True)
class BlockSite:
    """One occurrence of a duplicated block: the function it sits in and its statement range."""

    path: str
    function: str
    start: int
    end: int
    first: int
    count: int


@dataclass
class Duplicate:
    """A statement sequence occurring more than once (identical up to positions)."""

    key: str
    lines: int
    statements: int
    sites: list[BlockSite] = field(default_factory=list)


def complexity(node: ast.AST) -> int:
    """Return McCabe-style complexity: 1 + branches + boolean operators + comprehension conditions."""
    score = 1
    for child in ast.walk(node):
        if child is not node and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(child, _BRANCHES):
            score += 1
        elif isinstance(child, ast.BoolOp):
            score += len(child.values) - 1
        elif isinstance(child, ast.comprehension):
            score += 1 + len(child.ifs)
        elif isinstance(child, ast.match_case):
            score += 1
    return score


def functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Return (qualified name, node) for every function and method, nested ones included."""
    out: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((prefix + child.name, child))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def measure_functions(path: str, source: str) -> list[FunctionMeasure]:
    """Return a measure per function of a module (nothing when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        FunctionMeasure(path, name, fn.lineno, complexity(fn), (fn.end_lineno or fn.lineno) - fn.lineno + 1)
        for name, fn in functions(tree)
    ]


def _fingerprint(stmts: list[ast.stmt]) -> str:
    dumped = "\n".join(ast.dump(s, annotate_fields=False, include_attributes=False) for s in stmts)
    return hashlib.sha1(dumped.encode()).hexdigest()[:16]


def find_duplicates(sources: dict[str, str], *, min_statements: int = MIN_BLOCK_STATEMENTS) -> list[Duplicate]:
    """Find maximal runs of consecutive statements, inside function bodies, that occur more than once.

    Runs are compared by their AST without positions, so formatting and comments do not matter. Overlapping
    windows of one duplicate are merged into the longest run; returns the longest duplicates first.
    """
    windows: dict[str, list[tuple[str, str, list[ast.stmt], int]]] = defaultdict(list)
    for path, source in sources.items():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for name, fn in functions(tree):
            for body in _bodies(fn):
                for i in range(len(body) - min_statements + 1):
                    run = body[i : i + min_statements]
                    windows[_fingerprint(run)].append((path, name, body, i))
    best: dict[tuple[str, str, int], Duplicate] = {}
    for hits in windows.values():
        if len(hits) < 2:
            continue
        _path, _name, body, i = hits[0]
        # Grow the run while every occurrence continues identically.
        n = min_statements
        while all(j + n < len(b) for _p, _f, b, j in hits) and (
            len({_fingerprint(b[j : j + n + 1]) for _p, _f, b, j in hits}) == 1
        ):
            n += 1
        if _overlaps(hits, n):
            continue
        sites = [
            BlockSite(p, f, b[j].lineno, b[j + n - 1].end_lineno or b[j + n - 1].lineno, j, n) for p, f, b, j in hits
        ]
        lines = sites[0].end - sites[0].start + 1
        if lines < MIN_BLOCK_LINES:
            continue
        key = _fingerprint(body[i : i + n])
        anchor = (sites[0].path, sites[0].function, sites[0].start)
        prev = best.get(anchor)
        if prev is None or prev.statements < n:
            best[anchor] = Duplicate(key, lines, n, sites)
    # A shorter window starting later inside a longer duplicate is not a duplicate of its own.
    result: list[Duplicate] = []
    covered: set[tuple[str, int]] = set()
    for dup in sorted(best.values(), key=lambda d: (-d.lines, d.sites[0].path, d.sites[0].start)):
        spots = {(s.path, line) for s in dup.sites for line in range(s.start, s.end + 1)}
        if spots & covered:
            continue
        covered |= spots
        result.append(dup)
    return result


def _overlaps(hits: list[tuple[str, str, list[ast.stmt], int]], n: int) -> bool:
    """Return True when two occurrences in the same body overlap (a repeated statement, not a block)."""
    seen: dict[int, list[int]] = defaultdict(list)
    for _p, _f, body, j in hits:
        for other in seen[id(body)]:
            if abs(other - j) < n:
                return True
        seen[id(body)].append(j)
    return False


def _bodies(fn: ast.AST) -> list[list[ast.stmt]]:
    """Return every statement list inside a function (its body and nested blocks), not nested functions."""
    out: list[list[ast.stmt]] = []

    def visit(node: ast.AST) -> None:
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                out.append(stmts)
                for s in stmts:
                    if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        visit(s)
        for handler in getattr(node, "handlers", []) or []:
            visit(handler)
        for case in getattr(node, "cases", []) or []:
            visit(case)

    visit(fn)
    return out


def read_sources(root: Path, paths: list[str]) -> dict[str, str]:
    """Read Python files relative to `root`, skipping unreadable ones."""
    out: dict[str, str] = {}
    for rel in paths:
        try:
            out[rel] = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return out
