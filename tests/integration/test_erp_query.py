"""The sample ERP in the embedded Postgres: every scoped query returns exactly one branch's rows, never another's.

For each (tenant, branch), every scoped case of tests/unit/test_erp_scoper.py runs through `run_scoped` on the full
seed, and as written on a second database holding only that tenant's and branch's rows; the results must be equal.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.db import ensure_database, open_pool
from nodes.erp import scoper
from nodes.erp.schema import extract_schema
from nodes.erp.scoper import Catalogue, QueryResult, Refused, run_scoped
from tests.unit.test_erp_scoper import REFUSED, SCOPED

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "graphs" / "erp_sample"
SEED = (SAMPLE / "seed.sql").read_text()
BRANCHES = [(1, 1), (1, 2), (2, 3), (2, 4)]  # (tenant, branch): acme Leeds/Bristol, northwind Manchester/Glasgow


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.from_schema(extract_schema(SAMPLE), schema="erp_sample")


@pytest.fixture()
def erp_url(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SEED.encode())
    return pg_url


@pytest.fixture()
async def erp_pool(erp_url: str) -> AsyncIterator[Any]:
    async with open_pool(erp_url, max_size=2) as pool:  # the app's pool: autocommit, dict rows
        yield pool


def visible_only(admin_url: str, catalogue: Catalogue, tenant: int, branch: int) -> str:
    """A second database with the seed, less every row the tenant's branch may not see."""
    url = ensure_database(admin_url, f"o_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED.encode())
        conn.execute("SET session_replication_role = replica")  # skip FK triggers while trimming
        for table, scope in catalogue.tables.items():
            for column, value in ((scope.tenant_column, tenant), (scope.branch_column, branch)):
                if column:
                    conn.execute(
                        psycopg.sql.SQL("DELETE FROM erp_sample.{} WHERE {} <> %s").format(
                            psycopg.sql.Identifier(table), psycopg.sql.Identifier(column)
                        ),
                        (value,),
                    )
    return url


def rows_as_written(url: str, sql: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path = erp_sample")
        return sorted(repr(r) for r in conn.execute(sql.encode()).fetchall())


def never_connect() -> Any:
    raise AssertionError("a refused query must not reach the database")


async def test_seed_matches_the_schema_read_from_source(erp_url: str) -> None:
    report = extract_schema(SAMPLE)
    expected = {
        m.table: sorted(f.column for f in m.fields if f.column and f.concrete and f.via_parent is None)
        for m in report.concrete
        if m.table and not m.proxy
    }
    with psycopg.connect(erp_url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'erp_sample'"
        ).fetchall()
    actual: dict[str, list[str]] = {}
    for table, column in rows:
        actual.setdefault(table, []).append(column)
    actual.pop("catalog_part_fits")  # Django's auto-created many-to-many table
    assert {t: sorted(c) for t, c in actual.items()} == expected


@pytest.mark.parametrize(("tenant", "branch"), BRANCHES)
async def test_every_scoped_query_returns_exactly_the_branchs_rows(
    tenant: int, branch: int, erp_pool: Any, pg_admin_url: str, catalogue: Catalogue
) -> None:
    oracle = visible_only(pg_admin_url, catalogue, tenant, branch)
    non_empty = 0
    for case in SCOPED:
        result = await run_scoped(erp_pool.connection, case.sql, tenant, branch, catalogue=catalogue, row_limit=1000)
        assert isinstance(result, QueryResult), (case.name, result)
        assert not result.truncated
        got = sorted(repr(r) for r in result.rows)
        assert got == rows_as_written(oracle, case.sql), f"{case.name}: {result.sql}"
        non_empty += bool(got) and got != ["(0,)"]
    assert non_empty >= 40


async def test_rows_never_carry_another_tenant_or_branch(erp_pool: Any, catalogue: Catalogue) -> None:
    probes = {
        "SELECT DISTINCT tenant_id, branch_id FROM orders_order WHERE tenant_id <> 1 OR branch_id <> 2 OR true": {
            (1, 2)
        },
        "SELECT DISTINCT l.tenant_id, l.branch_id FROM orders_order o RIGHT JOIN orders_orderline l ON false": {(1, 2)},
        "SELECT DISTINCT tenant_id, id FROM core_branch": {(1, 2)},
        "SELECT DISTINCT id, 0 FROM core_tenant": {(1, 0)},
        "SELECT DISTINCT tenant_id, 0 FROM catalog_part": {(1, 0)},
    }
    for sql, allowed in probes.items():
        result = await run_scoped(erp_pool.connection, sql, 1, 2, catalogue=catalogue)
        assert isinstance(result, QueryResult), result
        assert {tuple(r) for r in result.rows} == allowed, sql


async def test_refused_queries_never_reach_the_database(catalogue: Catalogue) -> None:
    for case in REFUSED:
        result = await run_scoped(never_connect, case.sql, 1, 1, catalogue=catalogue)
        assert isinstance(result, Refused), case.name


async def test_row_limit_columns_and_timeout(erp_pool: Any, catalogue: Catalogue) -> None:
    result = await run_scoped(
        erp_pool.connection, "SELECT number, status FROM orders_order ORDER BY number", 2, 3, catalogue=catalogue,
        row_limit=5,
    )  # fmt: skip
    assert isinstance(result, QueryResult)
    assert result.columns == ("number", "status")
    assert [r[0] for r in result.rows] == ["SO-1001", "SO-1002", "SO-1003", "SO-1004", "SO-1005"]
    assert result.truncated
    with pytest.raises(psycopg.errors.QueryCanceled):
        await run_scoped(
            erp_pool.connection, "SELECT count(*) FROM generate_series(1, 10000000000)", 1, 1,
            catalogue=catalogue, statement_timeout_ms=100,
        )  # fmt: skip
    async with erp_pool.connection() as conn:  # the pool's connection is clean afterwards
        row = await (await conn.execute("SHOW statement_timeout")).fetchone()
        assert row["statement_timeout"] != "100ms"


async def test_the_transaction_is_read_only_and_rolled_back(erp_url: str, catalogue: Catalogue) -> None:
    seen: list[Any] = []

    @asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(erp_url, autocommit=True) as conn:
            yield conn
            seen.append(conn.info.transaction_status)

    result = await run_scoped(connect, "SELECT count(*) FROM stock_level", 1, 1, catalogue=catalogue)
    assert isinstance(result, QueryResult) and result.rows == ((8,),)
    assert seen == [psycopg.pq.TransactionStatus.IDLE]

    @asynccontextmanager
    async def busy() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(erp_url) as conn:
            await conn.execute("SELECT 1")  # leaves a transaction open
            yield conn

    with pytest.raises(RuntimeError, match="idle connection"):
        await run_scoped(busy, "SELECT 1", 1, 1, catalogue=catalogue)


async def test_settings_inside_the_transaction_and_a_write_that_slips_through(
    erp_pool: Any, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Widen the allowlist for this test only, to look inside the transaction and to prove READ ONLY holds even if
    # a writing function were ever allowed by mistake.
    monkeypatch.setattr(scoper, "SAFE_FUNCTIONS", scoper.SAFE_FUNCTIONS | {"current_setting", "nextval"})
    settings = (
        "SELECT current_setting('transaction_read_only'), current_setting('statement_timeout'), "
        "current_setting('search_path'), current_setting('standard_conforming_strings')"
    )
    result = await run_scoped(erp_pool.connection, settings, 1, 1, catalogue=catalogue, statement_timeout_ms=1234)
    assert isinstance(result, QueryResult)
    assert result.rows == (("on", "1234ms", "pg_catalog", "on"),)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        await run_scoped(
            erp_pool.connection, "SELECT nextval('erp_sample.orders_order_id_seq')", 1, 1, catalogue=catalogue
        )
