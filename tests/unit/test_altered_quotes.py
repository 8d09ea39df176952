"""Lines of an answer that look copied from a tool result but are not in it (nodes/agents.py: altered_quotes)."""

from __future__ import annotations

from nodes.agents import ToolResult, altered_quotes

SCHEMA: ToolResult = {
    "tool": "erp_schema",
    "input": "is Customer linked to Branch by a FK?",
    "output": "core.Branch (table core_branch; tenant key tenant)\n"
    "  id: BigAutoField\n"
    "  tenant (column tenant_id): ForeignKey -> core.Tenant\n"
    "  name: CharField\n"
    "catalog.Supplier (table catalog_supplier; tenant key tenant)\n"
    "  email: EmailField\n",
}
SQL: ToolResult = {
    "tool": "erp_sql",
    "input": "SELECT count(*) AS n FROM orders_order WHERE status = 'open'",
    "output": "Scoped to tenant acme, branch leeds:\nn\n8",
}


def test_a_block_in_the_tools_shape_that_it_never_returned_is_found() -> None:
    reply = (
        "core.Customer (table core_customer; tenant key tenant)\n"
        "  id: BigAutoField\n"
        "  email: CharField\n"
        "core.Supplier (table core_supplier; tenant key tenant)"
    )
    assert altered_quotes(reply, [SCHEMA]) == [
        "core.Customer (table core_customer; tenant key tenant)",
        "email: CharField",
        "core.Supplier (table core_supplier; tenant key tenant)",
    ]


def test_faithful_copies_and_prose_pass() -> None:
    reply = (
        "- `core.Branch (table core_branch; tenant key tenant)`\n"
        "  tenant (column tenant_id): ForeignKey -> core.Tenant\n"
        "No: Customer is not in the schema, and Branch has no customer field."
    )
    assert altered_quotes(reply, [SCHEMA]) == []


def test_sql_shown_with_another_filter_than_the_one_that_ran_is_found() -> None:
    ran = "There are 8 open orders for the Leeds branch.\n```sql\n" + SQL["input"] + "\n```"
    assert altered_quotes(ran, [SQL]) == []
    assert altered_quotes(ran.replace("count(*)", "COUNT(*)"), [SQL]) == []  # the same query in other case
    shown = ran.replace("'open'", "'shipped'")
    assert altered_quotes(shown, [SQL]) == [SQL["input"].replace("'open'", "'shipped'")]
