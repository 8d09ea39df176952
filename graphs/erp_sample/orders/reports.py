# mypy: ignore-errors
"""Sales reports in raw SQL (the ORM version was too slow on the big tenants)."""

from django.db import connection
from stock.models import StockLevel

MONTHLY_SALES_SQL = """
    SELECT date_trunc('month', o.placed_at) AS month, count(*) AS orders, sum(l.quantity * l.unit_price) AS value
    FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
    WHERE o.status = 'shipped'
    GROUP BY 1 ORDER BY 1
"""


def monthly_sales():
    """Shipped order value per month."""
    with connection.cursor() as cursor:
        cursor.execute(MONTHLY_SALES_SQL)
        return cursor.fetchall()


def branch_sales(branch):
    """Shipped order value per month for one branch."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT date_trunc('month', placed_at), count(*) FROM orders_order "
            "WHERE tenant_id = %s AND branch_id = %s AND status = 'shipped' GROUP BY 1",
            [branch.tenant_id, branch.id],
        )
        return cursor.fetchall()


def low_stock(tenant):
    """Stock levels below their reorder level."""
    return list(
        StockLevel.objects.raw(
            "SELECT * FROM stock_level WHERE quantity < reorder_level AND tenant_id = %s", [tenant.id]
        )
    )
