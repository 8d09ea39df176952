"""Read a Django project's models from its source, without importing or running it.

Every module is parsed with `ast`. Names are resolved across modules the way Python would (aliases, relative
and star imports, re-exports, `get_model`/`get_class` style loaders, `settings.X`), and Django's own rules are
applied on top: which modules an app imports when its models load, conditional registration
(`if not is_model_registered(...)`), abstract and multi-table inheritance, proxies, Meta inheritance, default
table names and implicit primary keys. Modules outside the scanned tree (site-packages) are read on demand
to resolve inherited fields, e.g. treebeard's `MP_Node`; Django's own `django.db.models` is known by name.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

RelationKind = Literal["fk", "o2o", "m2m"]

SKIP_DIRS = frozenset(
    {"__pycache__", "migrations", "node_modules", "static", "templates", "site-packages", "build", "dist"}
)
TEST_DIRS = frozenset({"test", "tests", "testing"})
DJANGO_FIELD_TYPES = frozenset(
    {
        "AutoField", "BigAutoField", "SmallAutoField", "BigIntegerField", "BinaryField", "BooleanField",
        "CharField", "CommaSeparatedIntegerField", "DateField", "DateTimeField", "DecimalField", "DurationField",
        "EmailField", "FileField", "FilePathField", "FloatField", "GenericIPAddressField", "IPAddressField",
        "ImageField", "IntegerField", "JSONField", "NullBooleanField", "PositiveBigIntegerField",
        "PositiveIntegerField", "PositiveSmallIntegerField", "SlugField", "SmallIntegerField", "TextField",
        "TimeField", "URLField", "UUIDField", "GeneratedField", "ArrayField", "HStoreField", "CICharField",
        "CIEmailField", "CITextField", "IntegerRangeField", "BigIntegerRangeField", "DecimalRangeField",
        "DateTimeRangeField", "DateRangeField", "Field",
    }
)  # fmt: skip
RELATION_TYPES: dict[str, RelationKind] = {
    "ForeignKey": "fk",
    "OneToOneField": "o2o",
    "ManyToManyField": "m2m",
    "ParentalKey": "fk",
    "ParentalManyToManyField": "m2m",
    "TreeForeignKey": "fk",
    "TreeOneToOneField": "o2o",
    "TreeManyToManyField": "m2m",
}
VIRTUAL_TYPES = frozenset({"GenericForeignKey", "GenericRelation", "CompositePrimaryKey", "ForeignObject"})
CHOICES_TYPES = frozenset({"TextChoices", "IntegerChoices", "Choices"})
DJANGO_DEFAULT_SETTINGS: Mapping[str, str] = {
    "AUTH_USER_MODEL": "auth.User",
    "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
}
TENANT_MODELS = ("Tenant",)
BRANCH_MODELS = ("Branch",)
POSTGRES_MAX_NAME = 63


@dataclass(frozen=True)
class FieldInfo:
    """One model field as declared (or implied) in source.

    Attributes:
        name: Attribute name on the model.
        type: Field class name as written, e.g. `CharField`, `AutoSlugField`.
        null: Whether the column accepts NULL.
        related_model: Target as `"app.Model"` for FK, one-to-one and many-to-many fields.
        relation: `fk`, `o2o` or `m2m` for relation fields.
        related_name: The reverse accessor name given in source.
        choices: `(value, label)` pairs when they can be read statically.
        column: Database column (None for many-to-many and virtual fields).
        primary_key: Whether this is the primary key.
        auto_created: True for the implicit `id` and multi-table parent links.
        concrete: False for virtual fields such as `GenericForeignKey`.
        internal_type: The Django field class this one derives from, e.g. `SlugField` for `AutoSlugField`.
        declared_in: Class that declares the field (`app.Model` or `module.Class`).
        via_parent: For multi-table inheritance, the parent model whose table holds the column.
    """

    name: str
    type: str
    null: bool = False
    related_model: str | None = None
    relation: RelationKind | None = None
    related_name: str | None = None
    choices: tuple[tuple[str, str], ...] | None = None
    column: str | None = None
    primary_key: bool = False
    auto_created: bool = False
    concrete: bool = True
    internal_type: str | None = None
    declared_in: str | None = None
    via_parent: str | None = None


@dataclass(frozen=True)
class ConstraintInfo:
    """A `Meta.constraints` entry: its class, name, fields and condition source."""

    kind: str
    name: str | None
    fields: tuple[str, ...] = ()
    condition: str | None = None


@dataclass(frozen=True)
class MetaInfo:
    """The Meta options that matter for schema questions, after Meta inheritance."""

    abstract: bool = False
    proxy: bool = False
    managed: bool = True
    app_label: str | None = None
    db_table: str | None = None
    unique_together: tuple[tuple[str, ...], ...] = ()
    constraints: tuple[ConstraintInfo, ...] = ()
    ordering: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """A model with its resolved fields (inherited ones included; reverse relations are not fields)."""

    app: str
    name: str
    module: str
    path: str
    line: int
    abstract: bool
    proxy: bool
    table: str | None
    bases: tuple[str, ...]
    fields: tuple[FieldInfo, ...]
    meta: MetaInfo
    tenant_key: str | None = None
    branch_key: str | None = None

    @property
    def label(self) -> str:
        """Return `app.Name`."""
        return f"{self.app}.{self.name}"

    def field(self, name: str) -> FieldInfo | None:
        """Return the field called `name`, if any."""
        return next((f for f in self.fields if f.name == name), None)

    def column_of(self, field_name: str | None) -> str | None:
        """Return the column of a field that lives in this model's own table, else None."""
        f = self.field(field_name) if field_name else None
        return f.column if f is not None and f.via_parent is None else None


@dataclass(frozen=True)
class SchemaReport:
    """Models found under a source root, plus what could not be resolved."""

    root: str
    models: tuple[ModelInfo, ...]
    warnings: tuple[str, ...] = ()

    def get(self, label: str) -> ModelInfo | None:
        """Return a model by `app.Name` (case-insensitive)."""
        key = label.lower()
        return next((m for m in self.models if m.label.lower() == key), None)

    @property
    def concrete(self) -> tuple[ModelInfo, ...]:
        """Models that are not abstract (proxies included, as Django's registry does)."""
        return tuple(m for m in self.models if not m.abstract)

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """Return the report as plain data; `detail` adds Meta, choices, columns and related names."""
        return {"models": [_model_dict(m, detail) for m in self.models]}

    def to_json(self, *, detail: bool = False, indent: int | None = 2) -> str:
        """Return `to_dict()` as JSON text."""
        return json.dumps(self.to_dict(detail=detail), indent=indent)


def project_files(root: Path) -> list[Path]:
    """Return the Python files of a project in path order, outside SKIP_DIRS and hidden directories.

    The one rule for what the schema extraction, the tenancy audit and their cache (nodes/erp/project.py) read.
    """
    files = []
    for path in root.rglob("*.py"):
        if not any(part in SKIP_DIRS or part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            files.append(path)
    return sorted(files)


def _model_dict(m: ModelInfo, detail: bool) -> dict[str, Any]:
    fields: list[dict[str, Any]] = []
    for f in m.fields:
        if not f.concrete:
            continue
        row: dict[str, Any] = {"name": f.name, "type": f.type, "null": f.null, "related_model": f.related_model}
        if detail:
            row.update(
                relation=f.relation,
                related_name=f.related_name,
                choices=[list(c) for c in f.choices] if f.choices is not None else None,
                column=f.column,
                primary_key=f.primary_key,
                auto_created=f.auto_created,
                internal_type=f.internal_type,
                via_parent=f.via_parent,
            )
        fields.append(row)
    out: dict[str, Any] = {
        "app": m.app,
        "name": m.name,
        "abstract": m.abstract,
        "table": m.table,
        "bases": list(m.bases),
        "fields": fields,
        "tenant_key": m.tenant_key,
        "branch_key": m.branch_key,
    }
    if detail:
        out["proxy"] = m.proxy
        out["module"] = m.module
        out["line"] = m.line
        out["meta"] = {
            "app_label": m.meta.app_label,
            "db_table": m.meta.db_table,
            "managed": m.meta.managed,
            "unique_together": [list(u) for u in m.meta.unique_together],
            "constraints": [
                {"kind": c.kind, "name": c.name, "fields": list(c.fields), "condition": c.condition}
                for c in m.meta.constraints
            ],
            "ordering": list(m.meta.ordering),
        }
    return out


# ---------------------------------------------------------------------------------------------------------
# Resolution model


@dataclass(frozen=True)
class _Mod:
    name: str


@dataclass(frozen=True, eq=False)
class _Cls:
    module: str
    node: ast.ClassDef

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Cls) and other.node is self.node

    def __hash__(self) -> int:
        return id(self.node)


@dataclass(frozen=True)
class _Ext:
    qualname: str


@dataclass(frozen=True)
class _Label:
    label: str


@dataclass(frozen=True)
class _Str:
    value: str


_Ref = _Mod | _Cls | _Ext | _Label | _Str | None


@dataclass(frozen=True)
class _BClass:
    node: ast.ClassDef


@dataclass(frozen=True)
class _BImport:
    module: str


@dataclass(frozen=True)
class _BFrom:
    module: str
    attr: str


@dataclass(frozen=True)
class _BStar:
    module: str


@dataclass(frozen=True)
class _BValue:
    expr: ast.expr | None
    index: int | None = None


_Binding = _BClass | _BImport | _BFrom | _BStar | _BValue


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool
    bindings: list[tuple[str | None, _Binding]] = field(default_factory=list)


@dataclass(frozen=True)
class _App:
    name: str
    label: str
    default_auto_field: str | None = None


@dataclass(frozen=True)
class _RawField:
    name: str
    type: str
    internal_type: str | None
    relation: RelationKind | None
    target: _Ref
    null: bool
    related_name: str | None
    choices: tuple[tuple[str, str], ...] | None
    db_column: str | None
    primary_key: bool
    parent_link: bool
    virtual: bool


@dataclass(frozen=True)
class _RawMeta:
    own: bool
    attrs: Mapping[str, tuple[str, ast.expr]]


def _is_opaque(module: str) -> bool:
    """Django's own modules are known by name, except the contrib models that projects inherit from."""
    if module == "django":
        return True
    if not module.startswith("django."):
        return False
    parts = module.split(".")
    return not (len(parts) == 4 and parts[1] == "contrib" and parts[3] in ("models", "base_user"))


def _django_kind(qualname: str) -> str:
    """Classify a name from Django's opaque modules: model, field, appconfig, choices or other."""
    if not qualname.startswith("django."):
        return "unknown"
    last = qualname.rsplit(".", 1)[-1]
    if last == "Model":
        return "model"
    if last == "AppConfig":
        return "appconfig"
    if last in CHOICES_TYPES:
        return "choices"
    if last in RELATION_TYPES or last in DJANGO_FIELD_TYPES or last in VIRTUAL_TYPES or last.endswith("Field"):
        return "field"
    return "other"


def truncate_name(identifier: str, length: int | None, hash_len: int = 4) -> str:
    """Shorten a table name to `length` the way Django does (prefix plus an md5 digest)."""
    if length is None or len(identifier) <= length:
        return identifier
    digest = hashlib.md5(identifier.encode(), usedforsecurity=False).hexdigest()[:hash_len]
    return identifier[: length - hash_len] + digest


def _const_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _const_bool(node: ast.expr | None) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def _callee_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _label_text(node: ast.expr) -> str | None:
    """Read a choice label: a string, or a string wrapped in `_()`/`gettext_lazy()`."""
    text = _const_str(node)
    if text is not None:
        return text
    if isinstance(node, ast.Call) and node.args:
        return _const_str(node.args[-1])
    return None


def _literal_text(node: ast.expr) -> str | None:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else repr(value)


class _Index:
    """Parsed modules, name resolution and Django's model rules over one source tree."""

    def __init__(
        self,
        scan_root: Path,
        search_paths: Sequence[Path],
        settings: Mapping[str, str],
        tenant_models: Sequence[str],
        branch_models: Sequence[str],
        max_name_length: int | None,
    ) -> None:
        self.scan_root = scan_root.resolve()
        self.warnings: list[str] = []
        self.tenant_models = {n.lower() for n in tenant_models}
        self.branch_models = {n.lower() for n in branch_models}
        self.max_name_length = max_name_length
        self._modules: dict[str, _Module | None] = {}
        self._kinds: dict[_Cls, str] = {}
        self._bases: dict[_Cls, list[_Ref]] = {}
        self._metas: dict[_Cls, MetaInfo] = {}
        self._raw_fields: dict[_Cls, tuple[list[_RawField], set[str]]] = {}
        self._models: dict[_Cls, ModelInfo | None] = {}
        self._active: set[tuple[str, str]] = set()
        self._in_progress: set[_Cls] = set()
        self.paths: list[Path] = []
        self.scanned, roots = self._scan(self.scan_root)
        self.paths = [*roots, *(p.resolve() for p in search_paths if p.is_dir())]
        self.settings = {**DJANGO_DEFAULT_SETTINGS, **self._project_settings(), **settings}
        self.apps = self._discover_apps()
        self.registry: dict[str, _Cls] = {}
        self._reg_lower: dict[str, str] = {}
        self._visited: set[str] = set()

    # -- modules --------------------------------------------------------------------------------------------

    def _scan(self, root: Path) -> tuple[list[str], list[Path]]:
        names: list[str] = []
        roots: list[Path] = []
        for path in project_files(root):
            parts = [path.stem] if path.name != "__init__.py" else []
            d = path.parent
            while (d / "__init__.py").is_file() and d != d.parent:
                parts.insert(0, d.name)
                d = d.parent
            if not parts:
                continue
            name = ".".join(parts)
            if d not in roots:
                roots.append(d)
            names.append(name)
            self._load(name, path, path.name == "__init__.py")
        return names, roots

    def _load(self, name: str, path: Path, is_package: bool) -> _Module | None:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            self.warnings.append(f"{path}: not parsed ({exc.__class__.__name__})")
            self._modules[name] = None
            return None
        mod = _Module(name, path, tree, is_package)
        self._collect(mod, tree.body)
        self._modules[name] = mod
        return mod

    def module(self, name: str) -> _Module | None:
        if name in self._modules:
            return self._modules[name]
        if _is_opaque(name) or not name:
            self._modules[name] = None
            return None
        rel = Path(*name.split("."))
        for base in self.paths:
            pkg = base / rel / "__init__.py"
            if pkg.is_file():
                return self._load(name, pkg, True)
            mod = (base / rel).with_suffix(".py")
            if mod.is_file():
                return self._load(name, mod, False)
        self._modules[name] = None
        return None

    def _collect(self, mod: _Module, body: Iterable[ast.stmt]) -> None:
        out = mod.bindings
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                out.append((stmt.name, _BClass(stmt)))
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((stmt.name, _BValue(None)))
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        out.append((alias.asname, _BImport(alias.name)))
                    else:
                        top = alias.name.split(".")[0]
                        out.append((top, _BImport(top)))
            elif isinstance(stmt, ast.ImportFrom):
                base = self._absolute(mod, stmt.module, stmt.level)
                for alias in stmt.names:
                    if alias.name == "*":
                        out.append((None, _BStar(base)))
                    else:
                        out.append((alias.asname or alias.name, _BFrom(base, alias.name)))
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    self._bind_target(out, target, stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self._bind_target(out, stmt.target, stmt.value)
            elif isinstance(stmt, ast.If):
                self._collect(mod, stmt.body)
                self._collect(mod, stmt.orelse)
            elif isinstance(stmt, ast.Try):
                self._collect(mod, stmt.body)
                self._collect(mod, stmt.orelse)
                for handler in stmt.handlers:
                    self._collect(mod, handler.body)
                self._collect(mod, stmt.finalbody)
            elif isinstance(stmt, ast.With):
                self._collect(mod, stmt.body)

    @staticmethod
    def _bind_target(out: list[tuple[str | None, _Binding]], target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            out.append((target.id, _BValue(value)))
        elif isinstance(target, ast.Tuple | ast.List):
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Name):
                    out.append((elt.id, _BValue(value, i)))

    @staticmethod
    def _absolute(mod: _Module, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        parts = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
        if level > 1:
            parts = parts[: max(0, len(parts) - (level - 1))]
        return ".".join([*parts, *([module] if module else [])])

    # -- names ----------------------------------------------------------------------------------------------

    def resolve_name(self, module: str, name: str, depth: int = 0) -> _Ref:
        mod = self.module(module)
        if mod is None:
            return _Ext(f"{module}.{name}") if module else None
        key = (module, name)
        if depth > 60 or key in self._active:
            return None
        self._active.add(key)
        try:
            opaque_stars: list[str] = []
            for bname, binding in reversed(mod.bindings):
                if bname is None and isinstance(binding, _BStar):
                    if self.module(binding.module) is None:
                        opaque_stars.append(binding.module)
                    elif not name.startswith("_"):
                        found = self.resolve_name(binding.module, name, depth + 1)
                        if found is not None:
                            return found
                elif bname == name:
                    return self._binding(mod, binding, depth + 1)
            for star in opaque_stars:
                if _django_kind(f"{star}.{name}") not in ("other", "unknown") or not star.startswith("django"):
                    return _Ext(f"{star}.{name}")
            return None
        finally:
            self._active.discard(key)

    def _binding(self, mod: _Module, binding: _Binding, depth: int) -> _Ref:
        if isinstance(binding, _BClass):
            return _Cls(mod.name, binding.node)
        if isinstance(binding, _BImport):
            return _Mod(binding.module) if self.module(binding.module) else _Ext(binding.module)
        if isinstance(binding, _BFrom):
            if self.module(binding.module) is None:
                sub = f"{binding.module}.{binding.attr}"
                return _Mod(sub) if self.module(sub) else _Ext(sub)
            found = self.resolve_name(binding.module, binding.attr, depth)
            if found is None and self.module(f"{binding.module}.{binding.attr}"):
                return _Mod(f"{binding.module}.{binding.attr}")
            return found
        if isinstance(binding, _BValue):
            if binding.expr is None:
                return None
            if binding.index is None:
                return self.eval(mod.name, binding.expr, depth)
            return self._unpack(mod.name, binding.expr, binding.index, depth)
        return None

    def eval(self, module: str, node: ast.expr, depth: int = 0) -> _Ref:
        if depth > 60:
            return None
        if isinstance(node, ast.Name):
            found = self.resolve_name(module, node.id, depth + 1)
            if found is None and hasattr(builtins, node.id):
                return _Ext(f"builtins.{node.id}")
            return found
        if isinstance(node, ast.Attribute):
            return self.attr(self.eval(module, node.value, depth + 1), node.attr, depth + 1)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return _Str(node.value)
        if isinstance(node, ast.Call):
            return self._eval_call(module, node, depth + 1)
        return None

    def attr(self, base: _Ref, name: str, depth: int = 0) -> _Ref:
        if isinstance(base, _Mod):
            found = self.resolve_name(base.name, name, depth + 1)
            if found is None and self.module(f"{base.name}.{name}"):
                return _Mod(f"{base.name}.{name}")
            return found
        if isinstance(base, _Ext):
            return _Ext(f"{base.qualname}.{name}")
        if isinstance(base, _Cls):
            return self._class_attr(base, name, depth + 1)
        return None

    def _class_attr(self, cls: _Cls, name: str, depth: int) -> _Ref:
        for stmt in cls.node.body:
            if isinstance(stmt, ast.ClassDef) and stmt.name == name:
                return _Cls(cls.module, stmt)
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                return self.eval(cls.module, stmt.value, depth + 1)
        if depth > 30:
            return None
        for base in self.bases(cls):
            if isinstance(base, _Cls):
                found = self._class_attr(base, name, depth + 1)
                if found is not None:
                    return found
        return None

    def _eval_call(self, module: str, call: ast.Call, depth: int) -> _Ref:
        fname = _callee_name(call.func)
        args = [_const_str(a) for a in call.args]
        if fname == "get_model":
            if len(args) >= 2 and args[0] and args[1]:
                return _Label(f"{args[0]}.{args[1]}")
            if len(args) == 1 and args[0] and "." in args[0]:
                return _Label(args[0])
        if fname == "get_user_model":
            return _Label(self.settings["AUTH_USER_MODEL"])
        if fname == "getattr" and len(call.args) >= 2 and args[1] is not None:
            target = self.eval(module, call.args[0], depth + 1)
            if isinstance(target, _Ext) and target.qualname == "django.conf.settings":
                value = self.settings.get(args[1])
                if value is not None:
                    return _Str(value)
                return self.eval(module, call.args[2], depth + 1) if len(call.args) > 2 else None
        if fname == "get_class" and len(args) >= 2 and args[0] and args[1]:
            return self._load_class(args[0], args[1], depth)
        return None

    def _unpack(self, module: str, value: ast.expr, index: int, depth: int) -> _Ref:
        if isinstance(value, ast.Tuple | ast.List) and index < len(value.elts):
            return self.eval(module, value.elts[index], depth + 1)
        if isinstance(value, ast.Call) and _callee_name(value.func) == "get_classes" and len(value.args) >= 2:
            label = _const_str(value.args[0])
            names = value.args[1]
            if label and isinstance(names, ast.List | ast.Tuple) and index < len(names.elts):
                name = _const_str(names.elts[index])
                return self._load_class(label, name, depth) if name else None
        return None

    def _load_class(self, label: str, name: str, depth: int) -> _Ref:
        """Resolve dynamic loaders such as oscar's `get_class("offer.results", "X")` by module suffix."""
        matches = [m for m in self.scanned if m == label or m.endswith("." + label)]
        for module in sorted(matches, key=len):
            found = self.resolve_name(module, name, depth + 1)
            if found is not None:
                return found
        return None

    def as_str(self, ref: _Ref) -> str | None:
        if isinstance(ref, _Str):
            return ref.value
        if isinstance(ref, _Label):
            return ref.label
        if isinstance(ref, _Ext) and ref.qualname.startswith("django.conf.settings."):
            return self.settings.get(ref.qualname.rsplit(".", 1)[-1])
        return None

    # -- classes --------------------------------------------------------------------------------------------

    def bases(self, cls: _Cls) -> list[_Ref]:
        if cls not in self._bases:
            self._bases[cls] = []
            self._bases[cls] = [self.eval(cls.module, b) for b in cls.node.bases]
        return self._bases[cls]

    def kind(self, cls: _Cls) -> str:
        """Return model, field, appconfig, choices, other, or unknown (an unresolvable base)."""
        if cls in self._kinds:
            return self._kinds[cls]
        self._kinds[cls] = "other"
        result = "other"
        for base in self.bases(cls):
            k = self._ref_kind(base)
            if k in ("model", "field", "appconfig", "choices"):
                result = k
                break
            if k == "unknown":
                result = "unknown"
        self._kinds[cls] = result
        return result

    def _ref_kind(self, ref: _Ref) -> str:
        if isinstance(ref, _Cls):
            return self.kind(ref)
        if isinstance(ref, _Label):
            return "model"
        if isinstance(ref, _Ext):
            if ref.qualname.startswith("builtins."):
                return "other"
            return _django_kind(ref.qualname) if _is_opaque(ref.qualname.rpartition(".")[0]) else "unknown"
        if ref is None:
            return "unknown"
        return "other"

    def mro(self, cls: _Cls) -> list[_Cls | _Ext | _Label]:
        """C3 linearisation over resolved bases; unresolved bases are leaves."""
        return self._mro(cls, set())

    def _mro(self, cls: _Cls, seen: set[_Cls]) -> list[_Cls | _Ext | _Label]:
        if cls in seen:
            return [cls]
        seen = seen | {cls}
        seqs: list[list[_Cls | _Ext | _Label]] = []
        direct: list[_Cls | _Ext | _Label] = []
        for base in self.bases(cls):
            if isinstance(base, _Label):
                base = self.label_class(base.label) or base
            if isinstance(base, _Cls):
                seqs.append(self._mro(base, seen))
                direct.append(base)
            elif isinstance(base, _Ext | _Label):
                seqs.append([base])
                direct.append(base)
        seqs.append(direct)
        result: list[_Cls | _Ext | _Label] = [cls]
        while True:
            seqs = [s for s in seqs if s]
            if not seqs:
                return result
            for seq in seqs:
                head = seq[0]
                if not any(head in s[1:] for s in seqs):
                    break
            else:  # inconsistent hierarchy: fall back to depth-first order
                for seq in seqs:
                    result.extend(x for x in seq if x not in result)
                return result
            result.append(head)
            seqs = [s[1:] if s[0] == head else s for s in seqs]

    # -- apps and settings -------------------------------------------------------------------------------------

    def _project_settings(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in self.scanned:
            last = name.rsplit(".", 1)[-1]
            if "settings" not in name.split(".") and not last.startswith("settings"):
                continue
            mod = self._modules.get(name)
            if mod is None:
                continue
            for bname, binding in mod.bindings:
                if bname and bname.isupper() and isinstance(binding, _BValue) and binding.index is None:
                    value = _const_str(binding.expr)
                    if value is not None:
                        values.setdefault(bname, value)
        return values

    def _str_list(self, module: str, node: ast.expr, depth: int = 0) -> list[str]:
        if depth > 20:
            return []
        if isinstance(node, ast.List | ast.Tuple):
            out: list[str] = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    out.extend(self._str_list(module, elt.value, depth + 1))
                elif (text := _const_str(elt)) is not None:
                    out.append(text)
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._str_list(module, node.left, depth + 1) + self._str_list(module, node.right, depth + 1)
        if isinstance(node, ast.Name):
            mod = self.module(module)
            for bname, binding in reversed(mod.bindings if mod else []):
                if bname == node.id and isinstance(binding, _BValue) and binding.expr is not None:
                    return self._str_list(module, binding.expr, depth + 1)
        return []

    def _installed_apps(self) -> list[str] | None:
        entries: list[str] = []
        found = False
        for name in self.scanned:
            mod = self._modules.get(name)
            if mod is None:
                continue
            for stmt in ast.walk(mod.tree):
                if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "INSTALLED_APPS" for t in stmt.targets
                ):
                    value: ast.expr = stmt.value
                elif (
                    isinstance(stmt, ast.AugAssign)
                    and isinstance(stmt.target, ast.Name)
                    and stmt.target.id == "INSTALLED_APPS"
                ):
                    value = stmt.value
                else:
                    continue
                found = True
                entries.extend(e for e in self._str_list(name, value) if e not in entries)
        return entries if found else None

    def _config_attr(self, cls: _Cls, attr: str) -> str | None:
        return self.as_str(self._class_attr(cls, attr, 0))

    def _app_from_config(self, cls: _Cls) -> _App | None:
        name = self._config_attr(cls, "name")
        if not name:
            return None
        label = self._config_attr(cls, "label") or name.rsplit(".", 1)[-1]
        return _App(name, label, self._config_attr(cls, "default_auto_field"))

    def _configs_in(self, module: str) -> list[_Cls]:
        mod = self.module(module)
        if mod is None:
            return []
        return [
            _Cls(module, b.node)
            for _, b in mod.bindings
            if isinstance(b, _BClass) and self.kind(_Cls(module, b.node)) == "appconfig"
        ]

    def _app_for_package(self, package: str) -> _App:
        configs = [c for c in self._configs_in(f"{package}.apps") if self._config_attr(c, "name") == package]
        chosen = [c for c in configs if _const_bool(self._class_value(c, "default")) is True] or configs
        if len(chosen) == 1 and (app := self._app_from_config(chosen[0])) is not None:
            return app
        return _App(package, package.rsplit(".", 1)[-1])

    @staticmethod
    def _class_value(cls: _Cls, attr: str) -> ast.expr | None:
        for stmt in cls.node.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in stmt.targets):
                return stmt.value
        return None

    def _discover_apps(self) -> list[_App]:
        in_tree = set(self.scanned)
        apps: dict[str, _App] = {}
        installed = self._installed_apps()
        if installed is not None:
            for entry in installed:
                module, _, cls_name = entry.rpartition(".")
                app: _App | None = None
                if entry in in_tree:
                    app = self._app_for_package(entry)
                elif module in in_tree:
                    ref = self.resolve_name(module, cls_name)
                    if isinstance(ref, _Cls) and self.kind(ref) == "appconfig":
                        app = self._app_from_config(ref)
                if app is not None and app.name in in_tree:
                    apps.setdefault(app.name, app)
            return list(apps.values())
        for name in self.scanned:
            parts = name.split(".")
            if TEST_DIRS.intersection(parts):
                continue
            if parts[-1] == "apps":
                for cfg in self._configs_in(name):
                    app = self._app_from_config(cfg)
                    if app is not None and app.name in in_tree:
                        apps.setdefault(app.name, app)
            if parts[-1] == "models" and len(parts) > 1:
                package = ".".join(parts[:-1])
                if package not in apps:
                    apps[package] = self._app_for_package(package)
        return list(apps.values())

    def app_of(self, module: str) -> _App | None:
        best: _App | None = None
        for app in self.apps:
            if (module == app.name or module.startswith(app.name + ".")) and (
                best is None or len(app.name) > len(best.name)
            ):
                best = app
        return best

    # -- models ---------------------------------------------------------------------------------------------

    def is_model(self, cls: _Cls) -> bool:
        k = self.kind(cls)
        if k == "model":
            return True
        if k != "unknown":
            return False
        fields, _ = self.raw_fields(cls)
        return bool(fields) or any(isinstance(s, ast.ClassDef) and s.name == "Meta" for s in cls.node.body)

    def raw_meta(self, cls: _Cls) -> _RawMeta:
        own = next((s for s in cls.node.body if isinstance(s, ast.ClassDef) and s.name == "Meta"), None)
        if own is not None:
            return _RawMeta(True, self._meta_attrs(_Cls(cls.module, own), set()))
        for base in self.mro(cls)[1:]:
            if isinstance(base, _Cls) and self.is_model(base) and self.meta(base).abstract:
                inherited = self.raw_meta(base)
                attrs = {k: v for k, v in inherited.attrs.items() if k != "abstract"}
                return _RawMeta(False, attrs)
        return _RawMeta(False, {})

    def _meta_attrs(self, meta: _Cls, seen: set[_Cls]) -> dict[str, tuple[str, ast.expr]]:
        attrs: dict[str, tuple[str, ast.expr]] = {}
        for stmt in meta.node.body:
            if isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        attrs[t.id] = (meta.module, stmt.value)
        seen = seen | {meta}
        for base in self.bases(meta):
            if isinstance(base, _Cls) and base not in seen:
                for k, v in self._meta_attrs(base, seen).items():
                    if k != "abstract":  # Django resets `abstract` on the Meta an abstract model keeps
                        attrs.setdefault(k, v)
        return attrs

    def meta(self, cls: _Cls) -> MetaInfo:
        if cls in self._metas:
            return self._metas[cls]
        self._metas[cls] = MetaInfo()
        raw = self.raw_meta(cls)

        def get(name: str) -> tuple[str, ast.expr] | None:
            return raw.attrs.get(name)

        def flag(name: str, default: bool) -> bool:
            item = get(name)
            value = _const_bool(item[1]) if item else None
            return default if value is None else value

        def text(name: str) -> str | None:
            item = get(name)
            return self.as_str(self.eval(item[0], item[1])) if item else None

        abstract_item = raw.attrs.get("abstract") if raw.own else None
        info = MetaInfo(
            abstract=bool(abstract_item and _const_bool(abstract_item[1])),
            proxy=flag("proxy", False),
            managed=flag("managed", True),
            app_label=text("app_label"),
            db_table=text("db_table"),
            unique_together=self._unique_together(get("unique_together")),
            constraints=self._constraints(get("constraints")),
            ordering=tuple(s for s in (_const_str(e) for e in self._elts(get("ordering"))) if s is not None),
        )
        self._metas[cls] = info
        return info

    @staticmethod
    def _elts(item: tuple[str, ast.expr] | None) -> list[ast.expr]:
        if item is None or not isinstance(item[1], ast.List | ast.Tuple):
            return []
        return list(item[1].elts)

    def _unique_together(self, item: tuple[str, ast.expr] | None) -> tuple[tuple[str, ...], ...]:
        elts = self._elts(item)
        if elts and all(_const_str(e) is not None for e in elts):
            return (tuple(s for e in elts if (s := _const_str(e)) is not None),)
        out: list[tuple[str, ...]] = []
        for e in elts:
            if isinstance(e, ast.List | ast.Tuple):
                out.append(tuple(s for x in e.elts if (s := _const_str(x)) is not None))
        return tuple(out)

    def _constraints(self, item: tuple[str, ast.expr] | None) -> tuple[ConstraintInfo, ...]:
        out: list[ConstraintInfo] = []
        for e in self._elts(item):
            if not isinstance(e, ast.Call):
                continue
            names = _kw(e, "fields")
            cond = _kw(e, "condition") or _kw(e, "check")
            fields = tuple(
                s
                for x in (names.elts if isinstance(names, ast.List | ast.Tuple) else [])
                if (s := _const_str(x)) is not None
            )
            out.append(
                ConstraintInfo(
                    kind=_callee_name(e.func) or "Constraint",
                    name=_const_str(_kw(e, "name")),
                    fields=fields,
                    condition=ast.unparse(cond) if cond is not None else None,
                )
            )
        return tuple(out)

    def raw_fields(self, cls: _Cls) -> tuple[list[_RawField], set[str]]:
        """Return the fields declared in the class body and every other name it defines."""
        if cls in self._raw_fields:
            return self._raw_fields[cls]
        self._raw_fields[cls] = ([], set())
        fields: list[_RawField] = []
        shadow: set[str] = set()
        for stmt in cls.node.body:
            target: ast.expr | None = None
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign):
                target, value = stmt.target, stmt.value
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if stmt.name != "Meta":
                    shadow.add(stmt.name)
                continue
            if not isinstance(target, ast.Name):
                continue
            raw = self._field_call(cls, target.id, value) if isinstance(value, ast.Call) else None
            if raw is None:
                shadow.add(target.id)
            else:
                fields.append(raw)
        self._raw_fields[cls] = (fields, shadow)
        return fields, shadow

    def field_class(self, ref: _Ref, hint: str | None) -> tuple[str, str | None, RelationKind | None] | None:
        """Return (type, Django internal type, relation) when `ref` names a field class."""
        if isinstance(ref, _Cls):
            if self.kind(ref) != "field":
                return None
            internal, relation = self._field_ancestry(ref)
            return ref.node.name, internal, relation
        if isinstance(ref, _Ext):
            last = ref.qualname.rsplit(".", 1)[-1]
            if ref.qualname.startswith("django."):
                if _django_kind(ref.qualname) != "field":
                    return None
                return last, last, RELATION_TYPES.get(last)
            if ref.qualname.startswith("builtins."):
                return None
            hint = last
        if hint is None:
            return None
        relation = RELATION_TYPES.get(hint)
        for suffix, kind in RELATION_TYPES.items():
            if relation is None and hint.endswith(suffix):
                relation = kind
        if relation is None and not hint.endswith("Field") and hint not in VIRTUAL_TYPES:
            return None
        return hint, None, relation

    def _null_overrides(self, cls: _Cls) -> tuple[bool | None, bool | None]:
        """Read `kwargs["null"] = X` (forced) or `kwargs.setdefault("null", X)` (default) in `__init__`."""
        for klass in self.mro(cls):
            if not isinstance(klass, _Cls):
                continue
            init = next((s for s in klass.node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
            for node in ast.walk(init) if init else ():
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Subscript) and _const_str(t.slice) == "null" for t in node.targets
                ):
                    return _const_bool(node.value), None
                if (
                    isinstance(node, ast.Call)
                    and _callee_name(node.func) == "setdefault"
                    and len(node.args) == 2
                    and _const_str(node.args[0]) == "null"
                ):
                    return None, _const_bool(node.args[1])
        return None, None

    def _field_ancestry(self, cls: _Cls) -> tuple[str | None, RelationKind | None]:
        for base in self.mro(cls)[1:]:
            if isinstance(base, _Ext) and _django_kind(base.qualname) == "field":
                last = base.qualname.rsplit(".", 1)[-1]
                return last, RELATION_TYPES.get(last)
            if isinstance(base, _Cls) and base.node.name in RELATION_TYPES:
                return base.node.name, RELATION_TYPES[base.node.name]
        return None, RELATION_TYPES.get(cls.node.name)

    def _field_call(self, owner: _Cls, name: str, call: ast.Call) -> _RawField | None:
        ref = self.eval(owner.module, call.func)
        found = self.field_class(ref, _callee_name(call.func) if ref is None else None)
        if found is None:
            return None
        type_name, internal, relation = found
        virtual = type_name in VIRTUAL_TYPES or (internal in VIRTUAL_TYPES)
        target: _Ref = None
        if relation is not None and not virtual:
            to = call.args[0] if call.args else _kw(call, "to")
            if to is not None:
                target = self.eval(owner.module, to)
                if isinstance(target, _Ext):
                    text = self.as_str(target)
                    target = _Str(text) if text is not None else target
        given = _const_bool(_kw(call, "null"))
        forced, default = self._null_overrides(ref) if isinstance(ref, _Cls) else (None, None)
        null = forced if forced is not None else (given if given is not None else bool(default))
        null = null and relation != "m2m"
        return _RawField(
            name=name,
            type=type_name,
            internal_type=internal,
            relation=None if virtual else relation,
            target=target,
            null=null,
            related_name=_const_str(_kw(call, "related_name")),
            choices=self._choices(owner, _kw(call, "choices")),
            db_column=_const_str(_kw(call, "db_column")),
            primary_key=_const_bool(_kw(call, "primary_key")) is True,
            parent_link=_const_bool(_kw(call, "parent_link")) is True,
            virtual=virtual,
        )

    def _choices(self, owner: _Cls, node: ast.expr | None, depth: int = 0) -> tuple[tuple[str, str], ...] | None:
        if node is None or depth > 10:
            return None
        if isinstance(node, ast.List | ast.Tuple):
            out: list[tuple[str, str]] = []
            for elt in node.elts:
                if not isinstance(elt, ast.Tuple | ast.List) or len(elt.elts) != 2:
                    return None
                value, label = elt.elts
                if isinstance(label, ast.List | ast.Tuple):  # an option group
                    out.extend(self._choices(owner, label, depth + 1) or ())
                    continue
                v, lbl = _literal_text(value), _label_text(label)
                if v is None:
                    return None
                out.append((v, lbl if lbl is not None else v))
            return tuple(out)
        if isinstance(node, ast.Name):
            local = self._class_value(owner, node.id)
            if local is not None:
                return self._choices(owner, local, depth + 1)
            return self._choices_from_name(owner.module, node.id, owner, depth)
        if isinstance(node, ast.Attribute):
            base: _Ref = None
            if isinstance(node.value, ast.Name):  # class-body scope first, e.g. `choices=Unit.choices`
                base = self._class_attr(owner, node.value.id, 0)
            base = base or self.eval(owner.module, node.value)
            if isinstance(base, _Cls):
                if node.attr == "choices" and self.kind(base) == "choices":
                    return self._enum_choices(base)
                attr_value = self._class_value(base, node.attr)
                return self._choices(base, attr_value, depth + 1) if attr_value is not None else None
        return None

    def _choices_from_name(self, module: str, name: str, owner: _Cls, depth: int) -> tuple[tuple[str, str], ...] | None:
        mod = self.module(module)
        for bname, binding in reversed(mod.bindings if mod else []):
            if bname == name and isinstance(binding, _BValue) and binding.expr is not None:
                return self._choices(owner, binding.expr, depth + 1)
        return None

    def _enum_choices(self, cls: _Cls) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for stmt in cls.node.body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                continue
            member = stmt.targets[0].id
            if member.startswith("_"):
                continue
            value: ast.expr = stmt.value
            label: str | None = None
            if isinstance(value, ast.Tuple) and len(value.elts) >= 2:
                label = _label_text(value.elts[-1])
                value = value.elts[0]
            v = _literal_text(value)
            if v is not None:
                out.append((v, label or member.replace("_", " ").title()))
        return tuple(out)

    def label_class(self, label: str) -> _Cls | None:
        """Find the concrete model class registered (or defined) under `app.Model`."""
        key = label.lower()
        if key in self._reg_lower:
            return self.registry[self._reg_lower[key]]
        app, _, name = key.rpartition(".")
        for module in self.scanned:
            mod = self._modules.get(module)
            for bname, binding in mod.bindings if mod else []:
                if bname and bname.lower() == name and isinstance(binding, _BClass):
                    cls = _Cls(module, binding.node)
                    if cls in self._in_progress:
                        continue
                    if self.is_model(cls) and not self.meta(cls).abstract and self.app_label(cls) == app:
                        return cls
        return None

    def app_label(self, cls: _Cls) -> str | None:
        meta = self.meta(cls)
        if meta.app_label:
            return meta.app_label
        app = self.app_of(cls.module)
        if app is not None:
            return app.label
        if self._in_scan(cls.module):
            return None
        # A model read from site-packages: Django's default label is the app package's last component.
        parts = cls.module.split(".")
        package = parts[: parts.index("models")] if "models" in parts else parts[:-1]
        return package[-1] if package else None

    def canonical(self, label: str) -> str:
        key = label.lower()
        return self._reg_lower.get(key, label)

    def target_label(self, target: _Ref, model_label: str | None) -> str | None:
        if isinstance(target, _Cls):
            app = self.app_label(target)
            return self.canonical(f"{app}.{target.node.name}") if app else target.node.name
        text = self.as_str(target)
        if text is None:
            return None
        if text == "self":
            return model_label
        if "." not in text:
            if model_label is None:
                return text
            text = f"{model_label.rsplit('.', 1)[0]}.{text}"
        return self.canonical(text)

    def model_info(self, cls: _Cls) -> ModelInfo | None:
        if cls in self._models:
            return self._models[cls]
        if cls in self._in_progress:
            return None
        self._in_progress.add(cls)
        try:
            info = self._build_model(cls)
        finally:
            self._in_progress.discard(cls)
        self._models[cls] = info
        return info

    def _display(self, ref: _Cls | _Ext | _Label | _Ref) -> str:
        if isinstance(ref, _Cls):
            if self.is_model(ref):
                app = self.app_label(ref)
                if app:
                    return f"{app}.{ref.node.name}"
            return f"{ref.module}.{ref.node.name}"
        if isinstance(ref, _Ext):
            return ref.qualname
        if isinstance(ref, _Label):
            return self.canonical(ref.label)
        if isinstance(ref, _Mod):
            return ref.name
        return "?"

    def _build_model(self, cls: _Cls) -> ModelInfo | None:
        meta = self.meta(cls)
        app = self.app_label(cls)
        mod = self.module(cls.module)
        if app is None and not meta.abstract:
            self.warnings.append(f"{cls.module}.{cls.node.name}: concrete model outside any app; skipped")
            return None
        app_label = app or cls.module
        label = f"{app_label}.{cls.node.name}"
        default_pk = self._default_auto_field(cls.module)
        fields = self._resolved_fields(cls, label, meta, default_pk)
        bases = []
        for base_node, base in zip(cls.node.bases, self.bases(cls), strict=True):
            bases.append(self._display(base) if base is not None else ast.unparse(base_node))
            if self._ref_kind(base) == "unknown":
                self.warnings.append(
                    f"{label}: base {bases[-1]} not found in the source or search paths; its fields are missing"
                )
        table: str | None = None
        if not meta.abstract:
            if meta.proxy:
                parent = self._concrete_parent(cls)
                parent_info = self.model_info(parent) if parent else None
                table = parent_info.table if parent_info else None
            else:
                table = meta.db_table or truncate_name(f"{app_label}_{cls.node.name.lower()}", self.max_name_length)
        tenant_key, branch_key = self._scope_keys(fields, label)
        return ModelInfo(
            app=app_label,
            name=cls.node.name,
            module=cls.module,
            path=str(mod.path) if mod else "",
            line=cls.node.lineno,
            abstract=meta.abstract,
            proxy=meta.proxy,
            table=table,
            bases=tuple(bases),
            fields=tuple(fields),
            meta=meta,
            tenant_key=tenant_key,
            branch_key=branch_key,
        )

    def _default_auto_field(self, module: str) -> str:
        app = self.app_of(module)
        value = (app.default_auto_field if app else None) or self.settings["DEFAULT_AUTO_FIELD"]
        return value.rsplit(".", 1)[-1]

    def _concrete_parent(self, cls: _Cls) -> _Cls | None:
        for base in self.mro(cls)[1:]:
            if isinstance(base, _Cls) and self.is_model(base) and not self.meta(base).abstract:
                return base
        return None

    def _resolved_fields(self, cls: _Cls, label: str, meta: MetaInfo, default_pk: str) -> list[FieldInfo]:
        local, blocked = self.raw_fields(cls)
        chosen: list[tuple[_RawField, _Cls]] = [(f, cls) for f in local]
        names = {f.name for f in local}
        blocked = set(blocked)
        parents: list[ModelInfo] = []
        covered: set[_Cls] = set()
        for base in self.mro(cls)[1:]:
            if not isinstance(base, _Cls) or base in covered:
                continue
            if not self.is_model(base):
                blocked |= {f.name for f in self.raw_fields(base)[0]} | self.raw_fields(base)[1]
                continue
            if self.meta(base).abstract:
                base_fields, base_shadow = self.raw_fields(base)
                for f in base_fields:
                    if f.name not in names and f.name not in blocked:
                        chosen.append((f, base))
                        names.add(f.name)
                blocked |= base_shadow
                continue
            parent_info = self.model_info(base)
            covered.update(x for x in self.mro(base) if isinstance(x, _Cls))
            if parent_info is not None:
                parents.append(parent_info)
        # Django orders fields by creation: those of the deepest abstract base come first, the local ones last.
        depth = {c: i for i, c in enumerate(self.mro(cls))}
        chosen.sort(key=lambda item: -depth.get(item[1], 0))
        out: list[FieldInfo] = []
        for raw, owner in chosen:
            out.append(self._field_info(raw, owner, label))
        for parent in parents:
            if not meta.proxy and not meta.abstract:
                link = next(
                    (f for f in out if f.relation == "o2o" and f.related_model == parent.label and self._is_link(f)),
                    None,
                )
                if link is None:
                    out.append(
                        FieldInfo(
                            name=f"{parent.name.lower()}_ptr",
                            type="OneToOneField",
                            related_model=parent.label,
                            relation="o2o",
                            column=f"{parent.name.lower()}_ptr_id",
                            primary_key=not any(f.primary_key for f in out),
                            auto_created=True,
                            internal_type="OneToOneField",
                            declared_in=label,
                        )
                    )
            for inherited in parent.fields:
                if inherited.name not in {x.name for x in out}:
                    out.append(
                        inherited
                        if meta.proxy or meta.abstract
                        else replace(inherited, via_parent=inherited.via_parent or parent.label)
                    )
        if not meta.abstract and not meta.proxy and not any(f.primary_key for f in out):
            out.insert(
                0,
                FieldInfo(
                    name="id",
                    type=default_pk,
                    column="id",
                    primary_key=True,
                    auto_created=True,
                    internal_type=default_pk,
                    declared_in=label,
                ),
            )
        return out

    def _is_link(self, f: FieldInfo) -> bool:
        return f.primary_key or f.auto_created or f.name.endswith("_ptr") or f.type == "OneToOneField"

    def _field_info(self, raw: _RawField, owner: _Cls, label: str) -> FieldInfo:
        column: str | None
        if raw.virtual or raw.relation == "m2m":
            column = None
        elif raw.relation in ("fk", "o2o"):
            column = raw.db_column or f"{raw.name}_id"
        else:
            column = raw.db_column or raw.name
        return FieldInfo(
            name=raw.name,
            type=raw.type,
            null=raw.null,
            related_model=self.target_label(raw.target, label) if raw.relation else None,
            relation=raw.relation,
            related_name=raw.related_name,
            choices=raw.choices,
            column=column,
            primary_key=raw.primary_key,
            auto_created=False,
            concrete=not raw.virtual,
            internal_type=raw.internal_type,
            declared_in=self._display(owner),
        )

    def _scope_keys(self, fields: Sequence[FieldInfo], label: str) -> tuple[str | None, str | None]:
        def key(model_names: set[str], plain: tuple[str, str]) -> str | None:
            for f in fields:
                if f.relation in ("fk", "o2o") and f.related_model and f.related_model != label:
                    if f.related_model.rsplit(".", 1)[-1].lower() in model_names:
                        return f.name
            return next((f.name for f in fields if f.name in plain and f.concrete), None)

        return key(self.tenant_models, ("tenant", "tenant_id")), key(self.branch_models, ("branch", "branch_id"))

    # -- registration ---------------------------------------------------------------------------------------

    def register_all(self) -> None:
        """Import each app's package and models module the way Django does, registering models in order."""
        for app in self.apps:
            self._exec_module(app.name)
            self._exec_module(f"{app.name}.models")

    def _in_scan(self, name: str) -> bool:
        mod = self.module(name)
        return mod is not None and mod.path.resolve().is_relative_to(self.scan_root)

    def _exec_module(self, name: str) -> None:
        if name in self._visited or not self._in_scan(name):
            return
        parts = name.split(".")
        for i in range(1, len(parts)):
            self._exec_module(".".join(parts[:i]))
        if name in self._visited:
            return
        self._visited.add(name)
        mod = self.module(name)
        if mod is not None:
            self._exec(mod, mod.tree.body)

    def _exec(self, mod: _Module, body: Iterable[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self._exec_module(alias.name)
            elif isinstance(stmt, ast.ImportFrom):
                base = self._absolute(mod, stmt.module, stmt.level)
                self._exec_module(base)
                for alias in stmt.names:
                    if alias.name != "*":
                        self._exec_module(f"{base}.{alias.name}")
            elif isinstance(stmt, ast.ClassDef):
                self._maybe_register(_Cls(mod.name, stmt))
            elif isinstance(stmt, ast.If):
                truth = self._truth(mod.name, stmt.test)
                if truth is not False:
                    self._exec(mod, stmt.body)
                if truth is not True:
                    self._exec(mod, stmt.orelse)
            elif isinstance(stmt, ast.Try):
                self._exec(mod, [*stmt.body, *stmt.orelse, *stmt.finalbody])
            elif isinstance(stmt, ast.With):
                self._exec(mod, stmt.body)

    def _maybe_register(self, cls: _Cls) -> None:
        if not self.is_model(cls) or self.meta(cls).abstract:
            return
        app = self.app_label(cls)
        if app is None:
            self.warnings.append(f"{cls.module}.{cls.node.name}: concrete model outside any installed app")
            return
        label = f"{app}.{cls.node.name}"
        if label.lower() in self._reg_lower:
            return
        self.registry[label] = cls
        self._reg_lower[label.lower()] = label

    def _truth(self, module: str, node: ast.expr) -> bool | None:
        """Evaluate a module-level `if` test when it is decidable from source, else None."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self._truth(module, node.operand)
            return None if inner is None else not inner
        if isinstance(node, ast.BoolOp):
            values = [self._truth(module, v) for v in node.values]
            if isinstance(node.op, ast.And):
                return False if False in values else (None if None in values else True)
            return True if True in values else (None if None in values else False)
        if isinstance(node, ast.Constant):
            return bool(node.value)
        if isinstance(node, ast.Name | ast.Attribute) and _callee_name(node) == "TYPE_CHECKING":
            return False
        if isinstance(node, ast.Call):
            fname = _callee_name(node.func)
            args = [_const_str(a) for a in node.args]
            if fname == "is_model_registered" and len(args) == 2 and args[0] and args[1]:
                return f"{args[0]}.{args[1]}".lower() in self._reg_lower
            if fname == "hasattr" and len(node.args) == 2 and args[1]:
                target = self.eval(module, node.args[0])
                if isinstance(target, _Ext) and target.qualname == "django.conf.settings":
                    return args[1] in self.settings
            return None
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            left = self.as_str(self.eval(module, node.left))
            right = self.as_str(self.eval(module, node.comparators[0]))
            if left is None or right is None:
                return None
            return (left == right) == isinstance(node.ops[0], ast.Eq)
        return None

    def all_classes(self) -> Iterator[_Cls]:
        for name in self.scanned:
            mod = self._modules.get(name)
            if mod is None or TEST_DIRS.intersection(name.split(".")):
                continue
            for bname, binding in mod.bindings:
                if bname and isinstance(binding, _BClass):
                    yield _Cls(name, binding.node)


def extract_schema(
    path: Path,
    *,
    search_paths: Sequence[Path] = (),
    settings: Mapping[str, str] | None = None,
    tenant_models: Sequence[str] = TENANT_MODELS,
    branch_models: Sequence[str] = BRANCH_MODELS,
    max_name_length: int | None = POSTGRES_MAX_NAME,
) -> SchemaReport:
    """Extract a Django project's models from source under `path`, without importing it.

    Args:
        path: A project root or a package directory (for example an installed app's source).
        search_paths: Extra roots to read third-party base classes from; a virtualenv found inside
            `path` (`.venv`, `venv`) is added automatically.
        settings: Overrides for settings read from the project (e.g. `{"AUTH_USER_MODEL": "users.User"}`).
        tenant_models: Model names whose foreign keys mark a tenant key.
        branch_models: Model names whose foreign keys mark a branch key.
        max_name_length: Truncate default table names like Django does for this limit (63 on Postgres).

    Returns:
        Registered concrete models (as Django would register them) and the abstract models in the tree.
    """
    root = Path(path)
    extra = [*search_paths]
    for venv in (root / ".venv", root / "venv"):
        extra.extend(sorted(venv.glob("lib/python*/site-packages")))
    index = _Index(root, extra, settings or {}, tenant_models, branch_models, max_name_length)
    index.register_all()
    models: list[ModelInfo] = []
    for cls in index.registry.values():
        info = index.model_info(cls)
        if info is not None:
            models.append(info)
    registered = set(index.registry.values())
    for cls in index.all_classes():
        if cls in registered or not index.is_model(cls):
            continue
        if index.meta(cls).abstract:
            info = index.model_info(cls)
            if info is not None:
                models.append(info)
        elif index.app_of(cls.module) is not None:
            index.warnings.append(
                f"{cls.module}.{cls.node.name}: model not registered (its module is not imported by an app)"
            )
    models.sort(key=lambda m: (m.app, m.abstract, m.name))
    return SchemaReport(root=str(root), models=tuple(models), warnings=tuple(dict.fromkeys(index.warnings)))


NAME_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def models_named(models: Sequence[ModelInfo], text: str, *, apps: bool = True) -> list[ModelInfo]:
    """Return the concrete models a text names (by name or plural, and by app when `apps`), best match first.

    A model whose fields the text names as well comes first: "which model stores the branch an invoice belongs
    to" gives invoicing.Invoice (it has a `branch` field) before core.Branch. Ties keep the order the text names
    them in. A small model that copies the first block of a tool result then copies the one that answers.
    """
    lowered = text.casefold()
    words = {w.casefold() for w in NAME_WORD_RE.findall(text)}
    ranked: list[tuple[int, int, int, ModelInfo]] = []
    for order, m in enumerate(x for x in models if not x.abstract):
        name = m.name.casefold()
        by_name = bool({name, f"{name}s"} & words)
        if not by_name and not (apps and m.app.casefold() in words):
            continue
        fields = sum(1 for f in m.fields if f.name.casefold() in words and not f.primary_key)
        first = lowered.find(name if by_name else m.app.casefold())
        ranked.append((-(2 * by_name + fields), first, order, m))
    return [m for *_, m in sorted(ranked, key=lambda r: r[:3])]


def describe_models(models: Sequence[ModelInfo]) -> list[str]:
    """Describe models compactly for a model's context: label, table, tenant/branch keys, then one line per field.

    A field stored under another column name says so ("branch (column branch_id)"), and a field with choices lists
    their stored values: a model writing SQL from this needs both ("WHERE status = 'open'", not "= 'Open'").
    """
    lines: list[str] = []
    for m in models:
        scope = ", ".join(f"{k} key {v}" for k, v in (("tenant", m.tenant_key), ("branch", m.branch_key)) if v)
        lines.append(f"{m.app}.{m.name} (table {m.table}{'; ' + scope if scope else ''})")
        for f in m.fields:
            target = f" -> {f.related_model}" if f.related_model else ""
            column = f" (column {f.column})" if f.column and f.column != f.name else ""
            values = f", one of {', '.join(repr(v) for v, _ in f.choices)}" if f.choices else ""
            lines.append(f"  {f.name}{column}: {f.type}{target}{' (null)' if f.null else ''}{values}")
    return lines


def format_report(report: SchemaReport) -> str:
    """Render a report as a readable table, one block per model."""
    lines: list[str] = []
    for m in report.models:
        flags = [k for k, v in (("abstract", m.abstract), ("proxy", m.proxy)) if v]
        scope = ", ".join(f"{k}={v}" for k, v in (("tenant", m.tenant_key), ("branch", m.branch_key)) if v)
        head = f"{m.label}  table={m.table or '-'}"
        if flags:
            head += f"  [{' '.join(flags)}]"
        if scope:
            head += f"  scoped by {scope}"
        lines.append(head)
        lines.append(f"  bases: {', '.join(m.bases) or '-'}")
        width = max((len(f.name) for f in m.fields), default=4)
        type_width = max((len(f.type) for f in m.fields), default=4)
        for f in m.fields:
            if not f.concrete:
                continue
            target = f" -> {f.related_model}" if f.related_model else ""
            null = "null" if f.null else "    "
            extra = f"  (from {f.via_parent})" if f.via_parent else ""
            lines.append(f"  {f.name:<{width}}  {f.type:<{type_width}}  {null}{target}{extra}")
        for u in m.meta.unique_together:
            lines.append(f"  unique_together: {', '.join(u)}")
        for c in m.meta.constraints:
            detail = ", ".join(c.fields) or (c.condition or "")
            lines.append(f"  constraint {c.kind} {c.name or ''}: {detail}")
        lines.append("")
    concrete = len(report.concrete)
    lines.append(f"{concrete} concrete and {len(report.models) - concrete} abstract models under {report.root}")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `nova erp schema PATH [--json]`."""
    parser = argparse.ArgumentParser(prog="nova erp schema", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("path", type=Path, help="Django project root or package directory")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument("--detail", action="store_true", help="with --json: add Meta, choices, columns")
    parser.add_argument("--search-path", type=Path, action="append", default=[], help="extra source root")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE", help="override a setting")
    args = parser.parse_args(argv)
    if not args.path.is_dir():
        print(f"not a directory: {args.path}", file=sys.stderr)
        return 2
    overrides = dict(item.split("=", 1) for item in args.setting if "=" in item)
    report = extract_schema(args.path, search_paths=args.search_path, settings=overrides)
    print(report.to_json(detail=args.detail) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
