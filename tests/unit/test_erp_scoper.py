"""The SQL scoper: a table of queries, each scoped (and run to check its meaning) or refused with a reason.

A scoped query is run twice: rewritten, on every tenant's rows; and as written, on a copy holding only the
chosen tenant's and branch's rows. Equal results mean the rewrite returns exactly what that tenant and branch
may see. Here the copies are SQLite (the portable cases); tests/integration/test_erp_query.py runs every case on
Postgres with graphs/erp_sample/seed.sql.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from nodes.erp.schema import extract_schema
from nodes.erp.scoper import Catalogue, Refused, Scoped, TableScope, scope_sql, verify_scoped

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "erp_sample"
ORDERS, LINES, INVOICES = "orders_order", "orders_orderline", "invoicing_invoice"
PARTS, STOCK, BRANCHES, TENANTS = "catalog_part", "stock_level", "core_branch", "core_tenant"


@dataclass(frozen=True)
class Case:
    name: str
    sql: str
    tables: frozenset[str] = frozenset()  # scoped tables the rewrite must filter
    refused: str | None = None  # a fragment of the refusal reason
    pg_only: bool = False  # Postgres-only syntax: its meaning is checked by the integration test


def ok(name: str, sql: str, *tables: str, pg_only: bool = False) -> Case:
    return Case(name, sql, frozenset(tables), pg_only=pg_only)


def no(name: str, sql: str, reason: str) -> Case:
    return Case(name, sql, refused=reason)


CASES: list[Case] = [
    ok("simple", "SELECT id, number, status FROM orders_order", ORDERS),
    ok("where and order", "SELECT number FROM orders_order WHERE status = 'open' ORDER BY number", ORDERS),
    ok("or escape", "SELECT number, branch_id FROM orders_order WHERE status = 'open' OR 1 = 1", ORDERS),
    ok("asks for another tenant", "SELECT number FROM orders_order WHERE tenant_id = 2 OR branch_id = 3", ORDERS),
    ok("alias join", "SELECT o.number, l.quantity FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id",
       ORDERS, LINES),
    ok("left join",
       "SELECT o.number, i.number AS invoice FROM orders_order AS o LEFT JOIN invoicing_invoice i ON i.order_id = o.id",
       ORDERS, INVOICES),
    ok("full join",
       "SELECT o.number, i.number FROM orders_order o FULL OUTER JOIN invoicing_invoice i ON i.order_id = o.id",
       ORDERS, INVOICES),
    ok("comma join", "SELECT o.number, l.id FROM orders_order o, orders_orderline l WHERE l.order_id = o.id",
       ORDERS, LINES),
    ok("join on other tenant's id",
       "SELECT o.number, l.id FROM orders_order o JOIN orders_orderline l ON l.tenant_id <> o.tenant_id",
       ORDERS, LINES),
    ok("self join on replacement",
       "SELECT p.sku, r.sku AS replaced_by FROM catalog_part p JOIN catalog_part r ON r.id = p.replaced_by_id",
       PARTS),
    ok("tenant table joined to branch table",
       "SELECT p.sku, s.quantity FROM catalog_part p JOIN stock_level s ON s.part_id = p.id", PARTS, STOCK),
    ok("shared reference table", "SELECT manufacturer, model FROM catalog_machine ORDER BY id"),
    ok("shared table joined", "SELECT p.sku, m.model FROM catalog_part p CROSS JOIN catalog_machine m "
       "WHERE m.manufacturer = 'JCB'", PARTS),
    ok("tenants table", "SELECT id, slug FROM core_tenant", TENANTS),
    ok("branches table", "SELECT b.name, t.slug FROM core_branch b JOIN core_tenant t ON t.id = b.tenant_id",
       BRANCHES, TENANTS),
    ok("schema-qualified", "SELECT count(*) FROM erp_sample.orders_order", ORDERS),
    ok("schema-qualified columns",
       "SELECT erp_sample.orders_order.number FROM erp_sample.orders_order ORDER BY erp_sample.orders_order.id",
       ORDERS),
    ok("quoted identifiers", 'SELECT "number" FROM "orders_order" WHERE "status" = \'shipped\'', ORDERS),
    ok("upper case", "SELECT NUMBER FROM ERP_SAMPLE.ORDERS_ORDER WHERE STATUS = 'open'", ORDERS),
    ok("in subquery", "SELECT name FROM catalog_part WHERE id IN "
       "(SELECT part_id FROM stock_level WHERE quantity < reorder_level)", PARTS, STOCK),
    ok("correlated exists", "SELECT number FROM orders_order o WHERE EXISTS "
       "(SELECT 1 FROM invoicing_invoice i WHERE i.order_id = o.id AND i.status = 'paid')", ORDERS, INVOICES),
    ok("not exists", "SELECT number FROM orders_order o WHERE o.status = 'shipped' AND NOT EXISTS "
       "(SELECT 1 FROM invoicing_invoice i WHERE i.order_id = o.id)", ORDERS, INVOICES),
    ok("scalar subquery", "SELECT number, (SELECT count(*) FROM orders_orderline l WHERE l.order_id = o.id) AS n "
       "FROM orders_order o", ORDERS, LINES),
    ok("derived table", "SELECT s.status, s.n FROM (SELECT status, count(*) AS n FROM orders_order GROUP BY status) s",
       ORDERS),
    ok("cte", "WITH open_orders AS (SELECT * FROM orders_order WHERE status = 'open') "
       "SELECT count(*) FROM open_orders", ORDERS),
    ok("cte chain", "WITH a AS (SELECT id FROM orders_order), b AS (SELECT order_id FROM orders_orderline "
       "WHERE order_id IN (SELECT id FROM a)) SELECT count(*), count(DISTINCT order_id) FROM b", ORDERS, LINES),
    ok("cte used in a subquery", "WITH shipped AS (SELECT id FROM orders_order WHERE status = 'shipped') "
       "SELECT number FROM invoicing_invoice WHERE order_id IN (SELECT id FROM shipped)", ORDERS, INVOICES),
    ok("recursive cte", "WITH RECURSIVE chain (id, next_id, depth) AS (SELECT id, replaced_by_id, 1 FROM catalog_part "
       "WHERE replaced_by_id IS NOT NULL UNION ALL SELECT p.id, p.replaced_by_id, c.depth + 1 FROM catalog_part p "
       "JOIN chain c ON p.id = c.next_id WHERE c.depth < 5) SELECT id, next_id, depth FROM chain", PARTS),
    ok("union", "SELECT number FROM orders_order UNION SELECT number FROM invoicing_invoice", ORDERS, INVOICES),
    ok("union all", "SELECT 'order' AS kind, number FROM orders_order UNION ALL "
       "SELECT 'invoice', number FROM invoicing_invoice", ORDERS, INVOICES),
    ok("intersect", "SELECT part_id FROM orders_orderline INTERSECT SELECT part_id FROM stock_level", LINES, STOCK),
    ok("except", "SELECT id FROM catalog_part EXCEPT SELECT part_id FROM stock_level WHERE quantity > 2", PARTS, STOCK),
    ok("comments", "/* all shipped */ SELECT number -- the number\nFROM orders_order /* here */ "
       "WHERE status = 'shipped'", ORDERS),
    ok("comment hiding a union", "SELECT number FROM orders_order -- */ UNION SELECT number FROM x\n", ORDERS),
    ok("aggregates", "SELECT o.status, sum(l.quantity * l.unit_price) AS value, count(*) FROM orders_order o "
       "JOIN orders_orderline l ON l.order_id = o.id GROUP BY o.status HAVING count(*) > 0", ORDERS, LINES),
    ok("window", "SELECT number, row_number() OVER (ORDER BY number) AS rn FROM orders_order", ORDERS),
    ok("limit offset", "SELECT number FROM orders_order ORDER BY number LIMIT 3 OFFSET 1", ORDERS),
    ok("case and functions", "SELECT upper(number), CASE WHEN total > 100 THEN 'big' ELSE 'small' END, "
       "coalesce(issued_on, due_on), round(total, 1) FROM invoicing_invoice", INVOICES),
    ok("cast", "SELECT number, total::text FROM invoicing_invoice WHERE status IN ('paid', 'issued')", INVOICES),
    ok("table command", "TABLE stock_level", STOCK),
    ok("cte that reads the real table, not itself", "WITH x AS (SELECT id FROM orders_order) "
       "SELECT count(*) FROM x JOIN orders_order o ON o.id = x.id", ORDERS),
    ok("lateral", "SELECT o.number, x.n FROM orders_order o CROSS JOIN LATERAL "
       "(SELECT count(*) AS n FROM orders_orderline l WHERE l.order_id = o.id) x", ORDERS, LINES, pg_only=True),
    ok("distinct on", "SELECT DISTINCT ON (status) status, number FROM orders_order ORDER BY status, number",
       ORDERS, pg_only=True),
    ok("date_trunc and filter", "SELECT date_trunc('month', placed_at) AS month, "
       "count(*) FILTER (WHERE status = 'shipped') AS shipped FROM orders_order GROUP BY 1", ORDERS, pg_only=True),
    ok("column aliases", "SELECT x.a, x.b FROM orders_order AS x (a, b)", ORDERS, pg_only=True),
    ok("only", "SELECT count(*) FROM ONLY orders_order", ORDERS, pg_only=True),
    ok("generate_series", "SELECT g, (SELECT count(*) FROM orders_order WHERE status = 'open') "
       "FROM generate_series(1, 2) AS g", ORDERS, pg_only=True),
    ok("json", "SELECT json_agg(number ORDER BY number) FROM orders_order", ORDERS, pg_only=True),
    ok("values", "SELECT v.s, count(o.id) FROM (VALUES ('open'), ('shipped')) AS v (s) "
       "LEFT JOIN orders_order o ON o.status = v.s GROUP BY v.s", ORDERS, pg_only=True),
    ok("backslash in a string", "SELECT 'a\\' AS s, number FROM orders_order WHERE status <> 'x\\'", ORDERS),
    ok("escape string hiding a union", "SELECT E'a\\' UNION SELECT number FROM orders_order --' AS s", pg_only=True),
    ok("dollar quotes hiding a union", "SELECT $q$ ' UNION SELECT number FROM orders_order $q$ AS s, number "
       "FROM orders_order", ORDERS),
    ok("quoted identifier with a quote", 'SELECT number AS "a""b" FROM orders_order', ORDERS),
    ok("cte aliased like a table", "WITH t AS (SELECT * FROM stock_level WHERE quantity > 3) "
       "SELECT count(*) FROM t AS stock_level", STOCK),
    ok("any subquery", "SELECT number FROM orders_order o WHERE o.id = ANY "
       "(SELECT order_id FROM invoicing_invoice)", ORDERS, INVOICES, pg_only=True),
    ok("rollup", "SELECT status, count(*) FROM orders_order GROUP BY ROLLUP (status)", ORDERS, pg_only=True),
    # refused
    no("two statements", "SELECT 1; SELECT 2", "exactly one statement"),
    no("select then delete", "SELECT * FROM orders_order; DELETE FROM orders_order", "exactly one statement"),
    no("delete", "DELETE FROM orders_order", "only SELECT"),
    no("update", "UPDATE orders_order SET status = 'void'", "only SELECT"),
    no("insert", "INSERT INTO core_tenant (slug, name) VALUES ('evil', 'Evil')", "only SELECT"),
    no("merge", "MERGE INTO stock_level s USING orders_orderline l ON s.part_id = l.part_id "
       "WHEN MATCHED THEN UPDATE SET quantity = 0", "only SELECT"),
    no("delete in cte", "WITH gone AS (DELETE FROM orders_order RETURNING *) SELECT * FROM gone", "DELETE"),
    no("update in cte", "WITH x AS (UPDATE invoicing_invoice SET total = 0 RETURNING id) SELECT count(*) FROM x",
       "UPDATE"),
    no("insert in cte", "WITH x AS (INSERT INTO core_tenant (slug) VALUES ('evil') RETURNING id) SELECT * FROM x",
       "INSERT"),
    no("drop", "DROP TABLE orders_order", "only SELECT"),
    no("create as", "CREATE TABLE loot AS SELECT * FROM orders_order", "only SELECT"),
    no("select into", "SELECT * INTO loot FROM orders_order", "SELECT ... INTO"),
    no("for update", "SELECT * FROM orders_order FOR UPDATE", "locking clause"),
    no("for share nowait", "SELECT * FROM orders_order o FOR SHARE OF o NOWAIT", "locking clause"),
    no("copy", "COPY orders_order TO STDOUT", "only SELECT"),
    no("set role", "SET ROLE postgres", "only SELECT"),
    no("set search_path", "SET search_path = public", "only SELECT"),
    no("call", "CALL refresh_totals()", "only SELECT"),
    no("do block", "DO $$ BEGIN DELETE FROM orders_order; END $$", "only SELECT"),
    no("explain analyze", "EXPLAIN ANALYZE SELECT * FROM orders_order", "only SELECT"),
    no("dblink", "SELECT * FROM dblink('dbname=erp', 'SELECT number FROM orders_order') AS t (n text)", "dblink"),
    no("pg_read_file", "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    no("set_config", "SELECT set_config('app.tenant', '2', false)", "set_config"),
    no("lo_import", "SELECT lo_import('/etc/passwd')", "lo_import"),
    no("query_to_xml", "SELECT query_to_xml('SELECT * FROM erp_sample.orders_order', true, true, '')",
       "query_to_xml"),
    no("pg_sleep", "SELECT pg_sleep(60)", "pg_sleep"),
    no("nextval", "SELECT nextval('erp_sample.orders_order_id_seq')", "nextval"),
    no("current_setting", "SELECT current_setting('is_superuser')", "current_setting"),
    no("function in a subquery", "SELECT number FROM orders_order WHERE id = (SELECT lo_creat(-1))", "lo_creat"),
    no("qualified function", "SELECT pg_catalog.pg_read_file('x')", "schema-qualified function"),
    no("user function", "SELECT erp_sample.refresh_totals()", "schema-qualified function"),
    no("statistics leak", "SELECT most_common_vals FROM pg_stats WHERE tablename = 'orders_order'", "pg_stats"),
    no("catalog table", "SELECT * FROM pg_catalog.pg_class", "pg_catalog.pg_class"),
    no("information_schema", "SELECT * FROM information_schema.tables", "information_schema.tables"),
    no("other schema", "SELECT * FROM public.orders_order", "public.orders_order"),
    no("cross database", "SELECT * FROM otherdb.erp_sample.orders_order", "cross-database"),
    no("unknown table", "SELECT * FROM payroll", "payroll"),
    no("m2m table without tenant", "SELECT * FROM catalog_part_fits", "catalog_part_fits"),
    no("cte shadowing a table", "WITH orders_order AS (SELECT * FROM orders_order) SELECT * FROM orders_order",
       "shadows"),
    no("placeholder", "SELECT * FROM orders_order WHERE id = %(id)s", "placeholder"),
    no("positional parameter", "SELECT * FROM orders_order WHERE id = $1", "parameter"),
    no("tablesample", "SELECT * FROM orders_order TABLESAMPLE SYSTEM (50)", "TABLESAMPLE"),
    no("not sql", "SELEC * FRM orders_order", "only SELECT"),
    no("unicode-escaped table name", 'SELECT * FROM U&"orders\\005forder"', "could not parse"),
    no("parenthesized join", "SELECT * FROM (orders_order o JOIN orders_orderline l ON l.order_id = o.id)",
       "joins"),
    no("cte out of scope", "WITH a AS (SELECT 1) SELECT * FROM (WITH b AS (SELECT * FROM a) SELECT * FROM b) x, b",
       "erp_sample.b is not in the ERP catalogue"),
    no("lock in a subquery", "SELECT * FROM (SELECT * FROM orders_order FOR UPDATE) x", "locking clause"),
]  # fmt: skip

SCOPED = [c for c in CASES if c.refused is None]
REFUSED = [c for c in CASES if c.refused is not None]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.from_schema(extract_schema(ROOT / "graphs" / "erp_sample"), schema=SCHEMA)


def test_the_table_is_big_enough() -> None:
    assert len(SCOPED) >= 30 and len(REFUSED) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def test_catalogue_from_schema(catalogue: Catalogue) -> None:
    assert catalogue.tables == {
        "core_tenant": TableScope("id", None),
        "core_branch": TableScope("tenant_id", "id"),
        "catalog_supplier": TableScope("tenant_id", None),
        "catalog_machine": TableScope(None, None),
        "catalog_part": TableScope("tenant_id", None),
        "stock_level": TableScope("tenant_id", "branch_id"),
        "orders_order": TableScope("tenant_id", "branch_id"),
        "orders_orderline": TableScope("tenant_id", "branch_id"),
        "invoicing_invoice": TableScope("tenant_id", "branch_id"),
        "invoicing_invoiceline": TableScope("tenant_id", "branch_id"),
    }


@pytest.mark.parametrize("case", SCOPED, ids=lambda c: c.name)
def test_scoped_cases_filter_every_scoped_table(case: Case, catalogue: Catalogue) -> None:
    result = scope_sql(case.sql, 1, 2, catalogue)
    assert isinstance(result, Scoped), result
    assert set(result.tables) == case.tables
    tree = sqlglot.parse_one(result.sql, read="postgres")
    filtered = [t for t in tree.find_all(sqlglot.exp.Table) if t.args.get("db") is not None and t.name in case.tables]
    assert len({t.name for t in filtered}) == len(case.tables)
    for table in filtered:
        where = table.parent.parent.args["where"].sql()  # type: ignore[union-attr]
        assert f'"{table.name}"."tenant_id" = 1' in where or f'"{table.name}"."id" = 1' in where
    assert not any(node.comments for node in tree.walk())  # comments are dropped
    verify_scoped(result.sql, catalogue, 1, 2)


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_refused_cases_say_why(case: Case, catalogue: Catalogue) -> None:
    result = scope_sql(case.sql, 1, 2, catalogue)
    assert isinstance(result, Refused), result
    assert case.refused is not None and case.refused.lower() in result.reason.lower(), result.reason


def test_ids_are_validated_and_bound_as_literals(catalogue: Catalogue) -> None:
    scoped = scope_sql("SELECT count(*) FROM orders_order", "acme", "LDS", catalogue)
    assert isinstance(scoped, Scoped)
    assert "\"tenant_id\" = 'acme'" in scoped.sql and "\"branch_id\" = 'LDS'" in scoped.sql
    for bad in ("1 OR 1=1", "1'; DROP TABLE x; --", "", True, 1.5):
        result = scope_sql("SELECT 1", bad, 1, catalogue)  # type: ignore[arg-type]
        assert isinstance(result, Refused) and "tenant id" in result.reason


def test_row_limit_wraps_the_query(catalogue: Catalogue) -> None:
    scoped = scope_sql("SELECT number FROM orders_order ORDER BY number", 1, 2, catalogue, row_limit=5)
    assert isinstance(scoped, Scoped)
    assert scoped.sql.startswith('SELECT * FROM (SELECT number FROM (SELECT * FROM "erp_sample"."orders_order"')
    assert scoped.sql.endswith(') AS "nova_result" LIMIT 6')
    assert isinstance(scope_sql("SELECT 1", 1, 2, catalogue, row_limit=0), Refused)


def test_a_plain_dict_catalogue_defaults_to_public() -> None:
    scoped = scope_sql(
        "SELECT * FROM invoices i JOIN currencies c ON c.code = i.currency",
        7,
        9,
        {"invoices": {"tenant": "company_id", "branch": "site_id"}, "currencies": {}},
    )
    assert isinstance(scoped, Scoped)
    assert scoped.sql == (
        'SELECT * FROM (SELECT * FROM "public"."invoices" WHERE "invoices"."company_id" = 7 AND '
        '"invoices"."site_id" = 9) AS i JOIN "public"."currencies" AS c ON c.code = i.currency'
    )


def test_verification_catches_an_unfiltered_reference(catalogue: Catalogue) -> None:
    from nodes.erp.scoper import ScopeError

    with pytest.raises(ScopeError, match="without its tenant/branch filter"):
        verify_scoped('SELECT * FROM "erp_sample"."orders_order"', catalogue, 1, 2)
    with pytest.raises(ScopeError, match="without its tenant/branch filter"):
        verify_scoped(
            'SELECT * FROM (SELECT * FROM "erp_sample"."orders_order" WHERE "orders_order"."tenant_id" = 1) AS o',
            catalogue,
            1,
            2,
        )
    with pytest.raises(ScopeError, match="unqualified"):
        verify_scoped("SELECT * FROM orders_order", catalogue, 1, 2)


# -- meaning: rewritten on all rows == original on the visible rows (SQLite) -----------------------------------


def sample_rows() -> dict[str, list[dict[str, Any]]]:
    """Two tenants with two branches each; every branch reuses the same order numbers and SKUs."""
    rows: dict[str, list[dict[str, Any]]] = {
        TENANTS: [{"id": 1, "slug": "acme", "name": "Acme"}, {"id": 2, "slug": "northwind", "name": "Northwind"}],
        BRANCHES: [
            {"id": b, "tenant_id": (b + 1) // 2, "name": n, "code": n[:3].upper()}
            for b, n in enumerate(["Leeds", "Bristol", "Manchester", "Glasgow"], start=1)
        ],
        "catalog_machine": [{"id": 1, "manufacturer": "JCB", "model": "3CX"}, {"id": 2, "manufacturer": "Kubota"}],
        "catalog_supplier": [{"id": t, "tenant_id": t, "name": f"Supplier {t}"} for t in (1, 2)],
        PARTS: [],
        STOCK: [],
        ORDERS: [],
        LINES: [],
        INVOICES: [],
        "invoicing_invoiceline": [],
        "catalog_part_fits": [{"id": 1, "part_id": 1, "machine_id": 1}],
    }
    for t in (1, 2):
        for k, sku in enumerate(["HF-100", "OF-200", "BR-300", "SL-400"], start=1):
            pid = (t - 1) * 4 + k
            rows[PARTS].append(
                {"id": pid, "tenant_id": t, "sku": sku, "name": sku, "unit_cost": 10 * k + t,
                 "replaced_by_id": pid + 1 if k < 3 else None, "supplier_id": t}
            )  # fmt: skip
    for b in rows[BRANCHES]:
        t = b["tenant_id"]
        for part in (p for p in rows[PARTS] if p["tenant_id"] == t):
            rows[STOCK].append(
                {"id": len(rows[STOCK]) + 1, "tenant_id": t, "branch_id": b["id"], "part_id": part["id"],
                 "quantity": (b["id"] * 3 + part["id"]) % 7, "reorder_level": 3}
            )  # fmt: skip
        for n in range(1, 5):
            oid = len(rows[ORDERS]) + 1
            status = ["open", "shipped", "draft", "shipped"][(n + b["id"]) % 4]
            rows[ORDERS].append(
                {"id": oid, "tenant_id": t, "branch_id": b["id"], "number": f"SO-{1000 + n}", "status": status,
                 "customer_name": f"Customer {n}", "placed_at": f"2025-0{n}-1{b['id']}"}
            )  # fmt: skip
            for k in range(1, 1 + n % 3 + 1):
                part = (t - 1) * 4 + (oid + k) % 4 + 1
                rows[LINES].append(
                    {"id": len(rows[LINES]) + 1, "tenant_id": t, "branch_id": b["id"], "order_id": oid,
                     "part_id": part, "quantity": k, "unit_price": 5 * part}
                )  # fmt: skip
            if status == "shipped" and (n + b["id"]) % 4 == 1:  # the other shipped order is not invoiced yet
                iid = len(rows[INVOICES]) + 1
                rows[INVOICES].append(
                    {"id": iid, "tenant_id": t, "branch_id": b["id"], "order_id": oid, "number": f"INV-{1000 + n}",
                     "status": "paid" if n % 2 else "issued", "total": 60 * n + b["id"], "issued_on": "2025-02-01"}
                )  # fmt: skip
    return rows


def visible(
    rows: dict[str, list[dict[str, Any]]], catalogue: Catalogue, tenant: int, branch: int
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for table, items in rows.items():
        scope = catalogue.tables.get(table, TableScope())
        keep = [
            r
            for r in items
            if (scope.tenant_column is None or r.get(scope.tenant_column) == tenant)
            and (scope.branch_column is None or r.get(scope.branch_column) == branch)
        ]
        yield table, keep


def sqlite_db(tables: dict[str, list[str]], data: Iterator[tuple[str, list[dict[str, Any]]]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"ATTACH DATABASE ':memory:' AS {SCHEMA}")
    for table, columns in tables.items():
        conn.execute(f"CREATE TABLE {SCHEMA}.{table} ({', '.join(columns)})")
    for table, items in data:
        columns = tables[table]
        conn.executemany(
            f"INSERT INTO {SCHEMA}.{table} VALUES ({', '.join('?' * len(columns))})",
            [[r.get(c) for c in columns] for r in items],
        )
    return conn


def run_sqlite(conn: sqlite3.Connection, sql: str) -> list[str]:
    sqlite_sql = sqlglot.transpile(sql, read="postgres", write="sqlite")[0]
    return sorted(repr(tuple(r)) for r in conn.execute(sqlite_sql).fetchall())


@pytest.fixture(scope="module")
def sqlite_tables() -> dict[str, list[str]]:
    report = extract_schema(ROOT / "graphs" / "erp_sample")
    tables = {
        m.table: [f.column for f in m.fields if f.column and f.concrete and f.via_parent is None]
        for m in report.concrete
        if m.table and not m.proxy
    }
    tables["catalog_part_fits"] = ["id", "part_id", "machine_id"]
    return tables  # type: ignore[return-value]


@pytest.mark.parametrize(("tenant", "branch"), [(1, 2), (2, 3)])
def test_rewritten_queries_return_exactly_the_visible_rows(
    tenant: int, branch: int, catalogue: Catalogue, sqlite_tables: dict[str, list[str]]
) -> None:
    rows = sample_rows()
    everything = sqlite_db(sqlite_tables, iter(rows.items()))
    oracle = sqlite_db(sqlite_tables, visible(rows, catalogue, tenant, branch))
    non_empty = 0
    for case in SCOPED:
        if case.pg_only:
            continue
        scoped = scope_sql(case.sql, tenant, branch, catalogue)
        assert isinstance(scoped, Scoped), (case.name, scoped)
        got = run_sqlite(everything, scoped.sql)
        want = run_sqlite(oracle, case.sql)
        assert got == want, f"{case.name}: {scoped.sql}"
        full = run_sqlite(everything, case.sql)
        non_empty += bool(got and got != ["(0,)"])
        assert not case.tables or got != full, f"{case.name}: the data should tell scoped from unscoped"
    assert non_empty >= 30
