"""The erp.* agents' tools on the sample ERP: schema from source, scoped SQL on real Postgres, audit, issues."""

from __future__ import annotations

import psycopg

from api.db import migrate, open_pool
from api.erp import RuntimeErp
from api.settings import Settings


async def test_erp_port_on_the_sample(pg_url: str, tmp_path: object) -> None:
    settings = Settings(erp_tenant=1, erp_branch=2)  # acme, Bristol
    async with open_pool(pg_url) as pool:
        await migrate(pool)
        erp = RuntimeErp(settings, pool, pg_url)
        schema = await erp.schema("which fields does an invoice have?")
        assert "invoicing.Invoice (table invoicing_invoice; tenant key tenant, branch key branch)" in schema
        assert "orders.Order (table" not in schema

        rows = await erp.query("owner", "SELECT number FROM orders_order ORDER BY number")
        assert rows.startswith("Scoped to tenant 1, branch 2:")
        again = await erp.query("owner", "SELECT count(*) AS n FROM orders_order")
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM erp_sample.orders_order WHERE tenant_id = 1 AND branch_id = 2"
            )
            expected = (await cur.fetchone())[0]  # type: ignore[index]
        assert again.splitlines()[-1].strip() == str(expected)
        assert (await erp.query("owner", "DELETE FROM orders_order")).startswith("Refused:")

        audit = await erp.tenancy("orders/views.py")
        assert "orders/views.py:18 [get_object]" in audit and "invoicing" not in audit
        assert "#101 Order page shows another branch's order" in await erp.issues("")
        assert "order_detail in orders/views.py" in await erp.issues("show me issue 101")

        async with pool.connection() as conn:  # the seed's search_path did not leak into the pool
            path = await (await conn.execute("SHOW search_path")).fetchone()
            assert "erp_sample" not in str(path)
