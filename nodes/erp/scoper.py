"""Scope read-only SQL to one tenant and branch by rewriting its parsed tree, and run it read-only.

`scope_sql` parses the query with sqlglot (Postgres dialect) and replaces every reference to a scoped table,
wherever it appears (joins, subqueries, CTEs, set operations, lateral joins), with a derived table that keeps the
reference's alias:

    FROM orders_order o   ->   FROM (SELECT * FROM "erp_sample"."orders_order"
                                     WHERE "orders_order"."tenant_id" = 1 AND "orders_order"."branch_id" = 2) AS o

so no join type, `OR` or correlation in the user's query can see another tenant's or branch's rows. Anything the
scoper cannot prove safe is refused with the reason: more than one statement, any write (also inside a CTE),
`SELECT ... INTO`, locking clauses, placeholders, tables outside the catalogue, and functions that are not on a
short allowlist of pure built-ins (so `dblink`, `pg_read_file`, `set_config`, `lo_*`, `query_to_xml` and user
functions are out). The rewritten SQL is parsed again and checked independently before it is returned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlglot
from psycopg import pq
from psycopg.rows import tuple_row
from sqlglot import exp
from sqlglot.errors import SqlglotError

from nodes.erp.schema import ModelInfo, SchemaReport

if TYPE_CHECKING:
    from psycopg import AsyncConnection

DIALECT = "postgres"
RESULT_ALIAS = "nova_result"
SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CALL_HEAD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_$]*)\s*\(")

SAFE_FUNCTIONS = frozenset(
    """
    count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg bool_and bool_or
    every stddev stddev_pop stddev_samp variance var_pop var_samp percentile_cont percentile_disc mode corr
    covar_pop covar_samp bit_and bit_or
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
    coalesce nullif greatest least cast extract
    abs ceil ceiling floor round trunc mod power pow sqrt cbrt exp ln log log10 sign div width_bucket pi degrees
    radians
    lower upper initcap length char_length character_length octet_length bit_length substring substr position
    strpos trim btrim ltrim rtrim lpad rpad replace concat concat_ws left right split_part repeat reverse format
    to_char to_number to_date to_timestamp regexp_replace regexp_match regexp_matches regexp_split_to_array
    regexp_like regexp_count regexp_substr starts_with md5 translate ascii chr
    now date_trunc date_part age make_date make_time make_timestamp make_timestamptz make_interval justify_days
    justify_hours justify_interval date_bin isfinite timezone
    json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb row_to_json
    array_to_json json_array_length jsonb_array_length json_extract_path jsonb_extract_path json_extract_path_text
    jsonb_extract_path_text json_typeof jsonb_typeof json_each jsonb_each json_each_text jsonb_each_text
    json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text json_object_keys
    jsonb_object_keys jsonb_strip_nulls jsonb_pretty
    array array_length cardinality unnest array_position array_positions array_remove array_append array_prepend
    array_cat array_to_string string_to_array array_upper array_lower generate_series generate_subscripts row
    num_nulls num_nonnulls exists any all some
    """.split()
)
FORBIDDEN_NODES: tuple[type[object], ...] = (
    exp.DML,
    exp.DDL,
    exp.Command,
    exp.Set,
    exp.Transaction,
    exp.Use,
    exp.Describe,
    exp.Pragma,
    exp.Alter,
    exp.Grant,
    exp.Revoke,
    exp.Execute,
    exp.Into,
    exp.Lock,
    exp.Placeholder,
    exp.Parameter,
    exp.SessionParameter,
    exp.TableSample,
)
FORBIDDEN_NAMES = {
    "Into": "SELECT ... INTO",
    "Lock": "locking clause (FOR UPDATE/SHARE)",
    "Placeholder": "placeholder",
    "Parameter": "parameter",
    "TableSample": "TABLESAMPLE",
}
ROOT_TYPES: tuple[type[exp.Expression], ...] = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)


@dataclass(frozen=True)
class TableScope:
    """Which columns of a table hold its tenant and branch; both None means shared reference data."""

    tenant_column: str | None = None
    branch_column: str | None = None

    @property
    def scoped(self) -> bool:
        """Return whether reads must be filtered."""
        return self.tenant_column is not None or self.branch_column is not None


@dataclass(frozen=True)
class Catalogue:
    """The tables a query may read, in one schema, and how each is scoped. Other tables are refused."""

    tables: Mapping[str, TableScope]
    schema: str = "public"

    @classmethod
    def from_dict(
        cls, tables: Mapping[str, TableScope | Mapping[str, str | None]], *, schema: str = "public"
    ) -> Catalogue:
        """Build from `{"orders_order": {"tenant": "tenant_id", "branch": "branch_id"}, "currency": {}}`."""
        out: dict[str, TableScope] = {}
        for name, spec in tables.items():
            if isinstance(spec, TableScope):
                out[name] = spec
            else:
                out[name] = TableScope(spec.get("tenant"), spec.get("branch"))
        return cls(out, schema)

    @classmethod
    def from_schema(cls, report: SchemaReport, *, schema: str = "public") -> Catalogue:
        """Derive the catalogue from an extracted schema.

        A model's tenant/branch key becomes its filter column. The tenant model itself is filtered on its
        primary key (a tenant sees only its own row), and so is the branch model for the branch. Models whose
        key lives in a multi-table parent cannot be filtered directly and are left out (so they are refused).
        """
        tenant_targets = {_key_target(m, m.tenant_key) for m in report.concrete} - {None}
        branch_targets = {_key_target(m, m.branch_key) for m in report.concrete} - {None}
        out: dict[str, TableScope] = {}
        for m in report.concrete:
            if m.proxy or m.table is None:
                continue
            pk = next((f.column for f in m.fields if f.primary_key and f.via_parent is None), None)
            tenant = m.column_of(m.tenant_key) or (pk if m.label in tenant_targets else None)
            branch = m.column_of(m.branch_key) or (pk if m.label in branch_targets else None)
            if (m.tenant_key and tenant is None) or (m.branch_key and branch is None):
                continue
            out[m.table] = TableScope(tenant, branch)
        return cls(out, schema)


def _key_target(model: ModelInfo, key: str | None) -> str | None:
    field = model.field(key) if key else None
    return field.related_model if field is not None else None


@dataclass(frozen=True)
class Scoped:
    """A query rewritten so every scoped table is filtered; `sql` has the ids bound as literals."""

    sql: str
    tables: tuple[str, ...]
    ok: Literal[True] = True


@dataclass(frozen=True)
class Refused:
    """A query the scoper will not run, and why."""

    reason: str
    ok: Literal[False] = False


@dataclass(frozen=True)
class QueryResult:
    """Rows of a scoped query; `truncated` when more than `row_limit` rows matched."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool
    sql: str


class ScopeError(ValueError):
    """Raised inside the scoper (and by `verify_scoped`) with the reason a query is refused."""


def _name(ident: exp.Expression | None) -> str:
    """Postgres folds unquoted identifiers to lower case."""
    if not isinstance(ident, exp.Identifier):
        raise ScopeError(f"unsupported name {ident.sql(DIALECT) if ident is not None else '?'}")
    text = str(ident.this)
    return text if ident.quoted else text.lower()


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _literal(value: int | str) -> exp.Expression:
    return exp.Literal.number(value) if isinstance(value, int) else exp.Literal.string(value)


def _predicate(table: str, scope: TableScope, tenant: int | str, branch: int | str) -> exp.Condition:
    terms: list[exp.Expression] = []
    for column, value in ((scope.tenant_column, tenant), (scope.branch_column, branch)):
        if column is not None:
            terms.append(exp.EQ(this=exp.column(_ident(column), table=_ident(table)), expression=_literal(value)))
    return exp.and_(*terms)


def _scoped_source(
    table: str, schema: str, scope: TableScope, tenant: int | str, branch: int | str, only: bool
) -> exp.Select:
    source = exp.Table(this=_ident(table), db=_ident(schema), only=only or None)
    return exp.select(exp.Star()).from_(source).where(_predicate(table, scope, tenant, branch))


class _Rewriter:
    def __init__(self, catalogue: Catalogue, tenant: int | str, branch: int | str) -> None:
        self.catalogue = catalogue
        self.tenant = tenant
        self.branch = branch
        self.tables: list[str] = []

    def visit(self, node: exp.Expression, visible: frozenset[str]) -> None:
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            visible = self._ctes(with_, visible)
        for key, value in list(node.args.items()):
            if key == "with_":
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, exp.Table):
                    self.table(child, visible)
                elif isinstance(child, exp.Expression):
                    self.visit(child, visible)

    def _ctes(self, with_: exp.With, outer: frozenset[str]) -> frozenset[str]:
        ctes = [c for c in with_.expressions if isinstance(c, exp.CTE)]
        names = [_name(c.args["alias"].this) for c in ctes]
        for name in names:
            if name in self.catalogue.tables or name.startswith("pg_"):
                raise ScopeError(f"CTE name {name!r} shadows a table; rename it")
        everything = outer | frozenset(names)
        seen = outer
        for name, cte in zip(names, ctes, strict=True):
            # Without RECURSIVE a CTE sees only the ones before it; its own name still means the real table.
            self.visit(cte.this, everything if with_.args.get("recursive") else seen)
            seen = seen | {name}
        return everything

    def table(self, node: exp.Table, visible: frozenset[str]) -> None:
        if not isinstance(node.this, exp.Identifier):
            if node.args.get("rows_from"):
                raise ScopeError("ROWS FROM is not supported")
            self.visit(node, visible)  # a table function such as generate_series(...): functions are checked
            return
        if node.args.get("catalog") is not None:
            raise ScopeError(f"cross-database reference {node.sql(DIALECT)}")
        extra = sorted(k for k, v in node.args.items() if v and k not in ("this", "db", "alias", "only"))
        if extra:
            raise ScopeError(f"unsupported clause on table {node.sql(DIALECT)}: {', '.join(extra)}")
        name = _name(node.this)
        db = node.args.get("db")
        if db is None and name in visible:
            return  # a CTE, itself scoped
        schema = _name(db) if db is not None else self.catalogue.schema
        scope = self.catalogue.tables.get(name)
        if schema != self.catalogue.schema or scope is None:
            raise ScopeError(f"table {schema}.{name} is not in the ERP catalogue")
        alias = node.args.get("alias") or exp.TableAlias(this=_ident(name))
        if not scope.scoped:
            node.set("db", _ident(schema))
            node.set("this", _ident(name))
            node.set("alias", alias)
            return
        self.tables.append(name)
        select = _scoped_source(name, schema, scope, self.tenant, self.branch, bool(node.args.get("only")))
        node.replace(exp.Subquery(this=select, alias=alias))


def _check_nodes(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, FORBIDDEN_NODES):
            what = FORBIDDEN_NAMES.get(type(node).__name__, f"{type(node).__name__.upper()} statement")
            raise ScopeError(f"{what} is not allowed in a read-only query")
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            raise ScopeError(f"schema-qualified function {node.sql(DIALECT)} is not allowed")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name is not None and name not in SAFE_FUNCTIONS:
                raise ScopeError(f"function {name}() is not on the allowlist of read-only built-ins")


def _function_name(node: exp.Func) -> str | None:
    """Return the name Postgres will see, or None when the function renders as an operator or keyword."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    match = CALL_HEAD.match(node.sql(DIALECT))
    return match.group(1).lower() if match else None


def _strip(tree: exp.Expression) -> None:
    for node in tree.walk():
        node.comments = None
        if isinstance(node, exp.Column):
            node.set("db", None)
            node.set("catalog", None)


def _check_id(value: object, what: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ScopeError(f"{what} id must be an int or a short string")
    if isinstance(value, str) and not SAFE_ID.match(value):
        raise ScopeError(f"{what} id {value!r} has characters that are not allowed")
    return value


def _parse_one(sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as exc:
        raise ScopeError(f"could not parse the query: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise ScopeError(f"expected exactly one statement, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, ROOT_TYPES):
        raise ScopeError(f"only SELECT queries are allowed, not {type(tree).__name__.upper()}")
    return tree


def scope_sql(
    sql: str,
    tenant: int | str,
    branch: int | str,
    catalogue: Catalogue | Mapping[str, TableScope | Mapping[str, str | None]],
    *,
    row_limit: int | None = None,
) -> Scoped | Refused:
    """Rewrite `sql` so every table it reads is filtered to `tenant` and `branch`, or refuse it.

    Args:
        sql: One read-only query in Postgres syntax.
        tenant: The tenant's id (int, or a short string of letters, digits and `_.:-`).
        branch: The branch's id, same rules.
        catalogue: The readable tables and their tenant/branch columns (a `Catalogue`, or a dict for the
            `public` schema as accepted by `Catalogue.from_dict`).
        row_limit: Wrap the result as `SELECT * FROM (...) LIMIT row_limit`.

    Returns:
        `Scoped` with the rewritten SQL (ids bound as validated literals), or `Refused` with the reason.
    """
    cat = catalogue if isinstance(catalogue, Catalogue) else Catalogue.from_dict(catalogue)
    try:
        tenant = _check_id(tenant, "tenant")
        branch = _check_id(branch, "branch")
        tree = _parse_one(sql)
        _check_nodes(tree)
        _strip(tree)
        rewriter = _Rewriter(cat, tenant, branch)
        rewriter.visit(tree, frozenset())
        if row_limit is not None:
            if row_limit < 1:
                raise ScopeError("row_limit must be positive")
            tree = exp.select(exp.Star()).from_(
                exp.Subquery(this=tree, alias=exp.TableAlias(this=_ident(RESULT_ALIAS)))
            )
            tree = tree.limit(row_limit + 1)
        text = tree.sql(dialect=DIALECT, comments=False)
        verify_scoped(text, cat, tenant, branch)
    except ScopeError as exc:
        return Refused(str(exc))
    except Exception as exc:  # fail closed: a query the scoper cannot analyse is never run
        return Refused(f"the scoper could not analyse this query ({type(exc).__name__}: {exc})")
    return Scoped(text, tuple(dict.fromkeys(rewriter.tables)))


def verify_scoped(sql: str, catalogue: Catalogue, tenant: int | str, branch: int | str) -> None:
    """Check rewritten SQL from scratch: every catalogue table is read only through its filter.

    Raises:
        ScopeError: When any reference escapes its filter, or the SQL is not a safe read-only query.
    """
    tree = _parse_one(sql)
    _check_nodes(tree)
    cte_names = {_name(c.args["alias"].this) for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        name = _name(table.this)
        db = table.args.get("db")
        if db is None:
            if name not in cte_names:
                raise ScopeError(f"verification: unqualified table {name}")
            continue
        scope = catalogue.tables.get(name)
        if _name(db) != catalogue.schema or scope is None:
            raise ScopeError(f"verification: table {table.sql(DIALECT)} outside the catalogue")
        if not scope.scoped:
            continue
        select = table.parent.parent if isinstance(table.parent, exp.From) else None
        expected = _scoped_source(name, catalogue.schema, scope, tenant, branch, bool(table.args.get("only")))
        if (
            not isinstance(select, exp.Select)
            or not isinstance(select.parent, exp.Subquery)
            or select.sql(DIALECT) != expected.sql(DIALECT)
        ):
            raise ScopeError(f"verification: {name} is read without its tenant/branch filter")


ConnFactory = Callable[[], AbstractAsyncContextManager["AsyncConnection[Any]"]]


async def run_scoped(
    conn_factory: ConnFactory,
    sql: str,
    tenant: int | str,
    branch: int | str,
    *,
    catalogue: Catalogue | Mapping[str, TableScope | Mapping[str, str | None]],
    row_limit: int = 200,
    statement_timeout_ms: int = 5000,
) -> QueryResult | Refused:
    """Scope `sql` to one tenant and branch and run it in a read-only transaction.

    The transaction is `READ ONLY` with a local `statement_timeout`, `standard_conforming_strings` on, and a
    `search_path` holding only `pg_catalog` (every catalogue table is schema-qualified by the rewrite, so an
    unqualified name can only be a CTE); the result is wrapped in a `LIMIT`; the transaction is rolled back.

    Args:
        conn_factory: Returns an async context manager yielding an idle psycopg `AsyncConnection`, e.g. a
            pool's `connection`.
        sql: The query, as the model wrote it.
        tenant: Tenant id.
        branch: Branch id.
        catalogue: Readable tables and their tenant/branch columns.
        row_limit: At most this many rows are returned; `truncated` says whether there were more.
        statement_timeout_ms: Server-side time limit for the query.

    Returns:
        Columns and rows, or `Refused` with the reason when the query cannot be proven safe.
    """
    scoped = scope_sql(sql, tenant, branch, catalogue, row_limit=row_limit)
    if isinstance(scoped, Refused):
        return scoped
    async with conn_factory() as conn:
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            raise RuntimeError("run_scoped needs an idle connection (no transaction in progress)")
        async with conn.transaction(force_rollback=True):
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute("SET TRANSACTION READ ONLY")
                # The rewrite relies on standard string syntax (a backslash is not an escape).
                await cur.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('search_path', 'pg_catalog', true),"
                    " set_config('standard_conforming_strings', 'on', true)",
                    (str(int(statement_timeout_ms)),),
                )
                # Generated from the parsed tree and verified; run without parameters so `%` stays literal.
                await cur.execute(scoped.sql)
                rows = await cur.fetchall()
                columns = tuple(d.name for d in cur.description or ())
    return QueryResult(columns, tuple(rows[:row_limit]), len(rows) > row_limit, scoped.sql)
