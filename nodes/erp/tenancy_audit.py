"""Find querysets and raw SQL in a Django codebase that read tenant/branch-scoped models without a scope filter.

The audit reads source with `ast` (nothing is imported) and uses the schema extracted from the same tree to
know which models carry a tenant or branch key. It flags:

- queryset chains rooted at a scoped model's manager (`Invoice.objects.all()`, `.filter(status=...)`,
  `.get(pk=...)`, `.update(...)`) with no tenant/branch lookup and no scoping manager method (`for_branch`,
  `for_tenant`, ...) anywhere in the chain, unless the result is assigned to a variable that is scoped later
  in the same function;
- `get_object_or_404(Model, ...)` and `get_list_or_404` without a scope lookup;
- generic class-based views with `model = ScopedModel` and neither `queryset` nor `get_queryset`;
- raw SQL (`.raw(...)`, `cursor.execute(...)`, `RawSQL(...)`) that reads a scoped table without an equality
  predicate on its tenant/branch column. SQL kept in module constants or built by concatenation is followed;
  SQL built at run time is reported as unverifiable.

A branch-scoped model needs a branch filter (a branch belongs to one tenant); a tenant-scoped one needs a tenant
(or branch) filter. Lookups inside `Q(...)` count; an `OR` that could widen them is not analysed.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from nodes.erp.schema import ModelInfo, SchemaReport, extract_schema, models_named, project_files

FindingKind = Literal["queryset", "get_object", "view", "raw_sql"]
Scope = Literal["tenant", "branch"]

MANAGER_NAMES = frozenset({"objects", "_default_manager", "_base_manager", "all_objects"})
WRITE_ONLY = frozenset({"create", "bulk_create", "model", "none"})
SQL_CALLS = frozenset({"execute", "executemany", "raw", "RawSQL"})
GENERIC_VIEW_SUFFIXES = ("View", "ViewSet", "ViewMixin")


@dataclass(frozen=True)
class Finding:
    """One place that can read (or write) another tenant's or branch's rows."""

    file: str
    line: int
    model: str
    kind: FindingKind
    reason: str
    code: str


@dataclass(frozen=True)
class AuditReport:
    """Findings in file and line order, and what was scanned."""

    root: str
    findings: tuple[Finding, ...]
    files_scanned: int
    scoped_models: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """Return plain data for JSON."""
        return {
            "root": self.root,
            "files_scanned": self.files_scanned,
            "scoped_models": list(self.scoped_models),
            "findings": [asdict(f) for f in self.findings],
        }


@dataclass(frozen=True)
class _Target:
    label: str
    table: str | None
    needs: Scope
    tenant_names: frozenset[str]
    branch_names: frozenset[str]
    tenant_column: str | None
    branch_column: str | None


def _targets(schema: SchemaReport) -> dict[str, _Target]:
    out: dict[str, _Target] = {}
    for m in schema.concrete:
        if not (m.tenant_key or m.branch_key):
            continue
        out[m.label] = _Target(
            label=m.label,
            table=m.table,
            needs="branch" if m.branch_key else "tenant",
            tenant_names=_key_names(m, m.tenant_key),
            branch_names=_key_names(m, m.branch_key),
            tenant_column=m.column_of(m.tenant_key),
            branch_column=m.column_of(m.branch_key),
        )
    return out


def _key_names(model: ModelInfo, key: str | None) -> frozenset[str]:
    if not key:
        return frozenset()
    f = model.field(key)
    names = {key, f"{key}_id"}
    if f is not None and f.column:
        names.add(f.column)
    return frozenset(names)


def _scope_of_lookup(lookup: str, target: _Target) -> Scope | None:
    first = lookup.split("__", 1)[0]
    if first in target.branch_names:
        return "branch"
    if first in target.tenant_names:
        return "tenant"
    return None


def _satisfies(found: set[Scope], needs: Scope) -> bool:
    return "branch" in found or (needs == "tenant" and "tenant" in found)


def _missing(found: set[Scope], target: _Target) -> str:
    if "tenant" in found:
        return "filtered by tenant but not by branch, so every branch of the tenant is visible"
    whose = "tenant" if target.needs == "tenant" else "tenant and branch"
    return f"no {target.needs} filter, so every {whose} is visible"


class _ModuleAudit:
    def __init__(self, path: Path, rel: str, tree: ast.Module, source: str, targets: dict[str, _Target]) -> None:
        self.path = path
        self.rel = rel
        self.tree = tree
        self.source = source
        self.targets = targets
        self.by_name: dict[str, list[_Target]] = {}
        for t in targets.values():
            self.by_name.setdefault(t.label.rsplit(".", 1)[1], []).append(t)
        self.by_table = {t.table: t for t in targets.values() if t.table}
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.aliases = self._aliases()
        self.findings: list[Finding] = []

    # -- names ----------------------------------------------------------------------------------------------

    def _aliases(self) -> dict[str, _Target]:
        aliases: dict[str, _Target] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    target = self._pick(alias.name, node.module or "")
                    if target is not None:
                        aliases[alias.asname or alias.name] = target
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                label = _get_model_label(node.value)
                target = self._by_label(label) if label else None
                for t in node.targets:
                    if target is not None and isinstance(t, ast.Name):
                        aliases[t.id] = target
        return aliases

    def _by_label(self, label: str) -> _Target | None:
        return next((t for t in self.targets.values() if t.label.lower() == label.lower()), None)

    def _pick(self, name: str, module: str) -> _Target | None:
        candidates = self.by_name.get(name, [])
        if len(candidates) == 1:
            return candidates[0]
        app = module.rsplit(".models", 1)[0].rsplit(".", 1)[-1]
        return next((t for t in candidates if t.label.split(".", 1)[0] == app), None)

    def model_of(self, node: ast.expr) -> _Target | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id) or self._pick(node.id, "")
        if isinstance(node, ast.Attribute):
            return self._pick(node.attr, _dotted(node.value))
        return None

    # -- helpers --------------------------------------------------------------------------------------------

    def code(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node) or ""
        first = text.strip().splitlines()[0] if text.strip() else ""
        return first[:160]

    def add(self, node: ast.AST, target: _Target | str, kind: FindingKind, reason: str) -> None:
        label = target.label if isinstance(target, _Target) else target
        self.findings.append(Finding(self.rel, getattr(node, "lineno", 0), label, kind, reason, self.code(node)))

    def function_of(self, node: ast.AST) -> ast.AST:
        current = node
        while current in self.parents:
            current = self.parents[current]
            if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                return current
        return self.tree

    def scopes_in_call(self, call: ast.Call, target: _Target) -> tuple[set[Scope], bool]:
        """Return the scopes a call's lookups establish, and whether it has `**kwargs` we cannot read."""
        found: set[Scope] = set()
        opaque = False
        name = _callee(call.func)
        if name and ("branch" in name.lower() or "tenant" in name.lower()) and name not in ("filter", "get"):
            found.add("branch" if "branch" in name.lower() else "tenant")
        for kw in call.keywords:
            if kw.arg is None:
                opaque = True
            elif (scope := _scope_of_lookup(kw.arg, target)) is not None:
                found.add(scope)
        for arg in call.args:
            for inner in ast.walk(arg):
                if isinstance(inner, ast.Call) and _callee(inner.func) == "Q":
                    found |= self.scopes_in_call(inner, target)[0]
        return found, opaque

    # -- querysets ------------------------------------------------------------------------------------------

    def chain_from(self, root: ast.Attribute) -> list[tuple[str, ast.Call | None]]:
        """Walk up from `Model.objects` through `.method(...)` calls; return (method, call) pairs."""
        chain: list[tuple[str, ast.Call | None]] = []
        node: ast.AST = root
        while True:
            parent = self.parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.value is node:
                call = self.parents.get(parent)
                if isinstance(call, ast.Call) and call.func is parent:
                    chain.append((parent.attr, call))
                    node = call
                    continue
                chain.append((parent.attr, None))
                node = parent
                continue
            return chain

    def top_of(self, root: ast.Attribute) -> ast.AST:
        node: ast.AST = root
        while True:
            parent = self.parents.get(node)
            if (isinstance(parent, ast.Attribute) and parent.value is node) or (
                isinstance(parent, ast.Call) and parent.func is node
            ):
                node = parent
                continue
            return node

    def scoped_later(self, top: ast.AST, target: _Target) -> bool:
        """`qs = Model.objects.all()` followed by `qs.filter(branch=...)` in the same function."""
        assign = self.parents.get(top)
        if not (
            isinstance(assign, ast.Assign) and len(assign.targets) == 1 and isinstance(assign.targets[0], ast.Name)
        ):
            return False
        var = assign.targets[0].id
        for node in ast.walk(self.function_of(assign)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and getattr(node, "lineno", 0) >= assign.lineno
                and _root_name(node.func) == var
            ):
                found, _ = self.scopes_in_call(node, target)
                if _satisfies(found, target.needs):
                    return True
        return False

    def audit_manager(self, root: ast.Attribute, target: _Target) -> None:
        chain = self.chain_from(root)
        calls = [(name, call) for name, call in chain if call is not None]
        if not calls:
            return
        if calls[0][0] in WRITE_ONLY:
            return
        if any(name == "raw" for name, _ in calls):
            raw = next(call for name, call in calls if name == "raw")
            self.audit_sql_call(raw, raw.args[0] if raw.args else None)
            return
        found: set[Scope] = set()
        opaque = False
        for _, call in calls:
            scopes, hidden = self.scopes_in_call(call, target)
            found |= scopes
            opaque |= hidden
        if _satisfies(found, target.needs):
            return
        top = self.top_of(root)
        if self.scoped_later(top, target):
            return
        methods = ".".join(f"{name}()" for name, _ in calls)
        if opaque and not found:
            reason = f"{target.label}.{root.attr}.{methods} passes **kwargs; cannot verify a {target.needs} filter"
        else:
            reason = f"{target.label}.{root.attr}.{methods}: {_missing(found, target)}"
        self.add(top, target, "queryset", reason)

    def audit_shortcut(self, call: ast.Call) -> None:
        if not call.args:
            return
        target = self.model_of(call.args[0])
        if target is None:
            return
        found, _ = self.scopes_in_call(call, target)
        if not _satisfies(found, target.needs):
            name = _callee(call.func)
            self.add(call, target, "get_object", f"{name}({target.label}, ...): {_missing(found, target)}")

    def audit_view(self, cls: ast.ClassDef) -> None:
        if not any(_dotted(b).endswith(GENERIC_VIEW_SUFFIXES) for b in cls.bases):
            return
        names = {s.name for s in cls.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)}
        attrs = {t.id: s for s in cls.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
        model = attrs.get("model")
        if model is None or "get_queryset" in names or "queryset" in attrs:
            return
        target = self.model_of(model.value)
        if target is not None:
            self.add(
                model,
                target,
                "view",
                f"{cls.name} sets model = {target.label} without get_queryset(): the default manager lists "
                f"every {'tenant' if target.needs == 'tenant' else 'branch'}'s rows",
            )

    # -- raw SQL --------------------------------------------------------------------------------------------

    def sql_text(self, node: ast.expr | None, depth: int = 0) -> str | None:
        if node is None or depth > 10:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                else:
                    return None
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.sql_text(node.left, depth + 1), self.sql_text(node.right, depth + 1)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.Name):
            scope = self.function_of(node)
            for owner in (scope, self.tree):
                for stmt in ast.walk(owner):
                    if (
                        isinstance(stmt, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets)
                        and stmt is not self.parents.get(node)
                    ):
                        return self.sql_text(stmt.value, depth + 1)
        return None

    def audit_sql_call(self, call: ast.Call, arg: ast.expr | None) -> None:
        text = self.sql_text(arg)
        if text is None:
            if arg is not None and not isinstance(arg, ast.Constant):
                self.add(call, "?", "raw_sql", "SQL built at run time; cannot verify its tenant/branch filters")
            return
        try:
            statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
        except SqlglotError:
            if any(t and t in text for t in self.by_table):
                self.add(call, "?", "raw_sql", "raw SQL could not be parsed; check its tenant/branch filters by hand")
            return
        for statement in statements:
            for table, missing in self.unscoped_tables(statement):
                self.add(call, table, "raw_sql", f"raw SQL reads {table.table}: {missing}")

    def unscoped_tables(self, statement: exp.Expr) -> Iterator[tuple[_Target, str]]:
        """Yield scoped tables lacking an equality on their tenant/branch column (directly or through joins)."""
        anchored: set[tuple[str | None, str]] = set()
        edges: list[tuple[tuple[str | None, str], tuple[str | None, str]]] = []
        for cond in statement.find_all(exp.EQ):
            left, right = cond.this, cond.expression
            if isinstance(left, exp.Column) and isinstance(right, exp.Column):
                edges.append((_col_key(left), _col_key(right)))
            elif isinstance(left, exp.Column):
                anchored.add(_col_key(left))
            elif isinstance(right, exp.Column):
                anchored.add(_col_key(right))
        for member in statement.find_all(exp.In):
            if isinstance(member.this, exp.Column):
                anchored.add(_col_key(member.this))
        changed = True
        while changed:  # `l.branch_id = o.branch_id AND o.branch_id = %s` scopes both tables
            changed = False
            for a, b in edges:
                for x, y in ((a, b), (b, a)):
                    if x in anchored and y not in anchored:
                        anchored.add(y)
                        changed = True
        for table in statement.find_all(exp.Table):
            target = self.by_table.get(table.name.lower())
            if target is None:
                continue
            names = {table.name.lower(), table.alias_or_name.lower()}
            found: set[Scope] = set()
            for qualifier, column in anchored:
                if qualifier is not None and qualifier not in names:
                    continue
                if column == target.branch_column:
                    found.add("branch")
                elif column == target.tenant_column:
                    found.add("tenant")
            if not _satisfies(found, target.needs):
                if "tenant" in found:
                    yield target, f"filtered on {target.tenant_column} but not {target.branch_column}"
                else:
                    cols = " and ".join(c for c in (target.tenant_column, target.branch_column) if c)
                    yield target, f"no {cols} predicate"

    # -- driver ---------------------------------------------------------------------------------------------

    def run(self) -> list[Finding]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and node.attr in MANAGER_NAMES:
                target = self.model_of(node.value)
                if target is not None:
                    self.audit_manager(node, target)
            elif isinstance(node, ast.Call):
                name = _callee(node.func)
                if name in ("get_object_or_404", "get_list_or_404"):
                    self.audit_shortcut(node)
                elif name in SQL_CALLS and name != "raw" and node.args and self._looks_like_db(node):
                    self.audit_sql_call(node, node.args[0])
            elif isinstance(node, ast.ClassDef):
                self.audit_view(node)
        return self.findings

    def _looks_like_db(self, call: ast.Call) -> bool:
        if _callee(call.func) == "RawSQL":
            return True
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        text = _dotted(receiver) if receiver is not None else ""
        return "cursor" in text.lower() or "connection" in text.lower() or "cursor" in self.source


def _callee(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return ""


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node.id if isinstance(node, ast.Name) else None


def _col_key(column: exp.Column) -> tuple[str | None, str]:
    return (column.table.lower() or None, column.name.lower())


def _get_model_label(call: ast.Call) -> str | None:
    if _callee(call.func) != "get_model":
        return None
    args = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if len(args) == 2:
        return f"{args[0]}.{args[1]}"
    if len(args) == 1 and "." in args[0]:
        return args[0]
    return None


PATH_TOKEN_RE = re.compile(r"[\w./~-]+\.py(?!\w)")


def mentioned_paths(root: Path, text: str) -> list[str]:
    """Return the Python files a text names, in order, relative to `root` when they lie under it.

    `invoicing/views.py`, `./invoicing/views.py:14` and an absolute or `~` path under the root all give
    `invoicing/views.py`; a path outside the root stays absolute, so it matches no file of the project.
    """
    return list(dict.fromkeys(_in_project(root, token.split(":")[0]) for token in PATH_TOKEN_RE.findall(text)))


def findings_for(report: AuditReport, models: Sequence[ModelInfo], query: str) -> tuple[list[Finding], str]:
    """Return the findings in the files or on the models a request names, and a line saying what was kept.

    A path keeps the findings in that file (`invoicing/views.py`, also under an absolute path or with `:line`); a
    model keeps those on it (by name, plural or app, as `models_named` reads them); other words are ignored, so
    the request itself can be the input. The models the others are scoped by (Tenant, Branch) are kept only when
    named by label (`core.Branch`): "the branch filter" is what a tenancy question is about, and keeping the
    findings on core.Branch answered "any querysets that skip the branch filter?" with none. A path that is not in
    the project keeps every finding, and the line says so: a filter that matched nothing must not read as "no leak".
    """
    root = Path(report.root)
    paths = mentioned_paths(root, query)
    text = PATH_TOKEN_RE.sub(" ", query)
    scopes = scope_models(models)
    # "the branch filter", "every tenant": the scope models' own names are what any tenancy question is about
    named = {
        m.label for m in models_named(models, text) if m.label not in scopes or m.label.casefold() in text.casefold()
    }
    everything = list(report.findings)
    if not paths and not named:
        return everything, f"{len(everything)} finding(s) in the whole project ({report.files_scanned} files scanned)"
    missing = [p for p in paths if p.startswith("/") or not (root / p).is_file()]  # absolute: outside the project
    found = [f for f in everything if f.file in paths or f.model in named]
    asked = ", ".join([p for p in paths if p not in missing] + sorted(named))
    if missing and not found:
        return everything, (
            f"{', '.join(missing)}: not a file of the project at {root.name}; all {len(everything)} finding(s) in"
            f" the project ({report.files_scanned} files scanned) are listed instead"
        )
    lines = f"{len(found)} finding(s) in {asked}" if asked else f"{len(found)} finding(s)"
    if missing:
        lines += f" ({', '.join(missing)}: not a file of the project)"
    return found, lines


def scope_models(models: Sequence[ModelInfo]) -> frozenset[str]:
    """Return the labels of the models other models are scoped by (their tenant and branch keys point at them)."""
    keys = ((m, k) for m in models for k in (m.tenant_key, m.branch_key) if k)
    return frozenset(f.related_model for m, k in keys if (f := m.field(k)) is not None and f.related_model)


def _in_project(root: Path, token: str) -> str:
    """Return a path token relative to the project root when it lies under it, else as given (absolute)."""
    path = Path(token).expanduser()
    if not path.is_absolute():
        return token.removeprefix("./")
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def audit_tenancy(path: Path, *, schema: SchemaReport | None = None) -> AuditReport:
    """Scan a Django codebase for reads of tenant/branch-scoped models that skip the scope filter.

    Args:
        path: The project root (the same tree `extract_schema` reads).
        schema: A schema already extracted from `path`; extracted here when omitted.

    Returns:
        Findings with file (relative to `path`), line, model, kind and reason.
    """
    root = Path(path)
    schema = schema or extract_schema(root)
    targets = _targets(schema)
    findings: list[Finding] = []
    scanned = 0
    for file in project_files(root):
        try:
            source = file.read_text(encoding="utf-8")
            tree = ast.parse(source, filename=str(file))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        scanned += 1
        if targets:
            findings.extend(_ModuleAudit(file, str(file.relative_to(root)), tree, source, targets).run())
    unique = sorted(set(findings), key=lambda f: (f.file, f.line, f.model, f.reason))
    return AuditReport(str(root), tuple(unique), scanned, tuple(sorted(targets)))


def format_audit(report: AuditReport) -> str:
    """Render findings one per line, then a summary."""
    lines = [f"{f.file}:{f.line}: [{f.kind}] {f.model}: {f.reason}\n    {f.code}" for f in report.findings]
    lines.append(
        f"{len(report.findings)} finding(s) in {report.files_scanned} files; "
        f"scoped models: {', '.join(report.scoped_models) or 'none'}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `nova erp tenancy PATH [--json]`; exit 1 when there are findings."""
    parser = argparse.ArgumentParser(prog="nova erp tenancy", description="Find unscoped tenant/branch reads.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.path.is_dir():
        print(f"not a directory: {args.path}", file=sys.stderr)
        return 2
    report = audit_tenancy(args.path)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_audit(report))
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
