"""Deterministic fixers: source transformations that need no model and produce real diffs.

- `ruff_fix`: ruff's safe fixes for the fixable lint findings of one file.
- `extract_duplicate`: a codemod that moves a statement block duplicated inside one module into a function
  and calls it from every occurrence.
- `add_card_example`: a misrouted request becomes an example of the agent card it should have gone to.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

from nodes.improve.analysis import Duplicate, functions
from nodes.improve.gitops import check_env, run_limited, tool

_EXITS = (ast.Return, ast.Yield, ast.YieldFrom, ast.Break, ast.Continue, ast.Global, ast.Nonlocal)


class FixerError(ValueError):
    """A fixer cannot transform this case; the message says why."""


def _ruff(tree: Path, target: Path, *args: str, timeout_s: float = 60.0) -> int | None:
    argv = [*tool(target, "ruff"), *args]
    return run_limited(argv, cwd=tree, env=check_env(tree), timeout_s=timeout_s, sandbox=False).returncode


def formatted(tree: Path, target: Path, path: str) -> bool:
    """Return True when ruff's formatter would leave the file as it is."""
    return _ruff(tree, target, "format", "--check", "--no-cache", "-q", path) == 0


def tidy(tree: Path, target: Path, path: str, *, was_formatted: bool) -> None:
    """Sort imports the fixer disturbed, and reformat a file that was formatted before the fixer ran."""
    if _ruff(tree, target, "check", "--no-cache", "-q", "--select", "I001", "--exit-non-zero-on-fix", path) == 1:
        _ruff(tree, target, "check", "--fix", "--no-cache", "-q", "--select", "I001", "--exit-zero", path)
    if was_formatted:
        _ruff(tree, target, "format", "--no-cache", "-q", path)


def ruff_fix(tree: Path, target: Path, paths: list[str], *, timeout_s: float = 60.0) -> None:
    """Apply ruff's safe fixes to `paths` inside a scratch worktree `tree` (never the target itself)."""
    before = {p: formatted(tree, target, p) for p in paths}
    args = ("check", "--fix", "--no-unsafe-fixes", "--no-cache", "--exit-zero", "-q", *paths)
    if _ruff(tree, target, *args, timeout_s=timeout_s) not in (0, 1):
        raise FixerError("ruff --fix failed")
    for p in paths:
        if before[p]:
            _ruff(tree, target, "format", "--no-cache", "-q", p)


def _scope_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Return the function's local names: its arguments and every name it binds, nested scopes excluded."""
    a = fn.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _ordered_names(stmts: list[ast.stmt]) -> list[ast.Name]:
    names = [n for s in stmts for n in ast.walk(s) if isinstance(n, ast.Name)]
    return sorted(names, key=lambda n: (n.lineno, n.col_offset))


def _loads_after(fn: ast.AST, line: int) -> set[str]:
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.lineno > line}


def _locate(
    tree: ast.Module, function: str, start: int, count: int
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[ast.stmt]]:
    for name, fn in functions(tree):
        if name != function:
            continue
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                if not isinstance(body, list):
                    continue
                for i, stmt in enumerate(body):
                    if isinstance(stmt, ast.stmt) and stmt.lineno == start:
                        return fn, body[i : i + count]
    raise FixerError(f"block at line {start} of {function} not found")


def helper_name(dup: Duplicate, taken: set[str]) -> str:
    """Return an unused private name for the extracted function."""
    base = "_" + re.sub(r"\W", "_", dup.sites[0].function.split(".")[-1].lstrip("_")) + "_shared"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def extract_duplicate(source: str, dup: Duplicate) -> str:
    """Return `source` with the duplicated block moved into a module-level function called from each site.

    Arguments are the function locals the block reads before it binds them (annotated like the enclosing
    function's parameters where they are parameters, else `Any`); results are the names it binds that the
    enclosing code reads afterwards. Blocks that return, yield, break, continue or declare global/nonlocal
    names are refused; a block that awaits becomes an async function that is awaited.

    Raises:
        FixerError: the block cannot be extracted safely.
    """
    if len({s.path for s in dup.sites}) != 1:
        raise FixerError("the duplicate spans several modules; this codemod extracts within one module")
    tree = ast.parse(source)
    located = [_locate(tree, s.function, s.start, s.count) for s in dup.sites]
    fn0, block0 = located[0]
    for node in (n for s in block0 for n in ast.walk(s)):
        if isinstance(node, _EXITS):
            raise FixerError(f"the block contains `{type(node).__name__.lower()}`, which cannot move into a function")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            raise FixerError("the block defines a function or class; left to a model or a person")
    is_async = any(isinstance(n, ast.Await | ast.AsyncFor | ast.AsyncWith) for s in block0 for n in ast.walk(s))
    local_names = set().union(*(_scope_names(fn) for fn, _ in located))
    params: list[str] = []
    bound: set[str] = set()
    augmented = {
        id(n.target)
        for s in block0
        for n in ast.walk(s)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
    }
    for ref in _ordered_names(block0):
        reads = isinstance(ref.ctx, ast.Load) or id(ref) in augmented
        if reads and ref.id in local_names and ref.id not in bound and ref.id not in params:
            params.append(ref.id)
        if isinstance(ref.ctx, ast.Store):
            bound.add(ref.id)
    results = sorted(
        {n for n in bound if any(n in _loads_after(fn, blk[-1].end_lineno or blk[-1].lineno) for fn, blk in located)}
    )
    annotations: dict[str, str] = {}
    for arg in (*fn0.args.posonlyargs, *fn0.args.args, *fn0.args.kwonlyargs):
        if arg.annotation is not None:
            annotations[arg.arg] = ast.unparse(arg.annotation)
    needs_any = any(p not in annotations for p in params) or bool(results)

    lines = source.splitlines(keepends=True)
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {qual for qual, _ in functions(tree)}
    name = helper_name(dup, taken)
    first, last = block0[0], block0[-1]
    body_lines = lines[first.lineno - 1 : last.end_lineno or last.lineno]
    indent = len(body_lines[0]) - len(body_lines[0].lstrip())
    body = ["    " + ln[indent:] if ln.strip() else "\n" for ln in body_lines]
    sites = ", ".join(sorted({s.function for s in dup.sites}))
    signature = ", ".join(f"{p}: {annotations.get(p, 'Any')}" for p in params)
    returns = (
        "None" if not results else "Any" if len(results) == 1 else "tuple[" + ", ".join("Any" for _ in results) + "]"
    )
    helper = [
        f"{'async ' if is_async else ''}def {name}({signature}) -> {returns}:\n",
        f'    """Run the steps shared by {sites}."""\n',
        *body,
    ]
    if results:
        helper.append(f"    return {', '.join(results)}\n")
    call = f"{'await ' if is_async else ''}{name}({', '.join(params)})"
    if results:
        call = f"{', '.join(results)} = {call}"

    for _fn, blk in sorted(located, key=lambda x: -x[1][0].lineno):
        start, end = blk[0].lineno, blk[-1].end_lineno or blk[-1].lineno
        pad = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
        lines[start - 1 : end] = [f"{pad}{call}\n"]
    top = min(
        (
            min([n.lineno, *(d.lineno for d in getattr(n, "decorator_list", []))])
            for n in tree.body
            if any(n.lineno <= s.start <= (n.end_lineno or n.lineno) for s in dup.sites)
        ),
    )
    lines[top - 1 : top - 1] = [*helper, "\n", "\n"]
    out = "".join(lines)
    if needs_any and not re.search(r"^from typing import .*\bAny\b", out, re.M):
        out = _add_import(out, "from typing import Any\n")
    try:
        ast.parse(out)
    except SyntaxError as exc:
        raise FixerError(f"the extraction does not parse: {exc}") from None
    return out


def _add_import(source: str, line: str) -> str:
    """Insert an import after the module docstring and `__future__` imports."""
    tree = ast.parse(source)
    after = 0
    for node in tree.body:
        is_doc = (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        )
        if is_doc or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            after = node.end_lineno or node.lineno
            continue
        break
    lines = source.splitlines(keepends=True)
    lines[after:after] = (["\n"] if after else []) + [line]
    return "".join(lines)


def card_path(root: Path, agent_id: str, cards_dir: str = "graphs/agents") -> Path:
    """Return the card file of an agent id (`<domain>.<name>` -> `<cards_dir>/<domain>/<name>.toml`)."""
    domain, _, name = agent_id.partition(".")
    if not domain or not name or not re.fullmatch(r"[a-z0-9_]+", domain) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise FixerError(f"{agent_id!r} is not an agent id")
    return root / cards_dir / domain / f"{name}.toml"


def add_card_example(card_text: str, example: str) -> str:
    """Return the card with `example` appended to its `examples` array, the rest of the file unchanged."""
    example = " ".join(example.split())
    if not example:
        raise FixerError("the misrouted request is empty")
    data = tomllib.loads(card_text)
    if example.casefold() in {e.casefold() for e in data.get("examples", [])}:
        raise FixerError("the card lists this example already")
    quoted = json.dumps(example, ensure_ascii=False)
    lines = card_text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if re.match(r"^examples\s*=\s*\[", ln)), None)
    if start is None:
        raise FixerError("the card has no examples array")
    if lines[start].rstrip().endswith("]"):
        head = lines[start].rstrip()[:-1].rstrip().rstrip(",")
        sep = ", " if not head.endswith("[") else ""
        lines[start] = f"{head}{sep}{quoted}]\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "]"), None)
        if end is None:
            raise FixerError("the examples array is not closed on a line of its own")
        prev = lines[end - 1].rstrip("\n")
        if prev.strip() and not prev.rstrip().endswith((",", "[")):
            lines[end - 1] = prev.rstrip() + ",\n"
        item_indent = re.match(r"^\s*", lines[end - 1]).group(0) if lines[end - 1].strip() else "  "  # type: ignore[union-attr]
        lines.insert(end, f"{item_indent}{quoted},\n")
    out = "".join(lines)
    if example not in tomllib.loads(out).get("examples", []):
        raise FixerError("the edited card does not list the example")
    return out
