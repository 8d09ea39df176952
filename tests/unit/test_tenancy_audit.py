"""The tenancy audit: the sample ERP's deliberate leaks are found, its scoped code is not, plus edge cases."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nodes.erp.schema import extract_schema
from nodes.erp.tenancy_audit import AuditReport, audit_tenancy, findings_for, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "graphs" / "erp_sample"


@pytest.fixture(scope="module")
def sample() -> AuditReport:
    return audit_tenancy(SAMPLE)


def test_finds_every_deliberate_leak_in_the_sample(sample: AuditReport) -> None:
    found = {(f.file, f.line, f.model, f.kind) for f in sample.findings}
    assert found == {
        ("catalog/views.py", 22, "catalog.Supplier", "queryset"),  # .get(pk=pk)
        ("stock/views.py", 12, "stock.StockLevel", "queryset"),  # .filter(part_id=...)
        ("orders/views.py", 18, "orders.Order", "get_object"),  # get_object_or_404(Order, pk=pk)
        ("orders/views.py", 24, "orders.Order", "queryset"),  # search by customer name
        ("orders/views.py", 31, "orders.OrderLine", "view"),  # ListView with model = OrderLine
        ("orders/reports.py", 18, "orders.Order", "raw_sql"),  # MONTHLY_SALES_SQL
        ("orders/reports.py", 18, "orders.OrderLine", "raw_sql"),
        ("orders/reports.py", 36, "stock.StockLevel", "raw_sql"),  # .raw() with a tenant filter only
        ("invoicing/views.py", 14, "invoicing.Invoice", "queryset"),  # tenant filter only
        ("invoicing/views.py", 20, "invoicing.Invoice", "queryset"),  # .get(pk=pk)
    }
    reasons = {(f.file, f.line): f.reason for f in sample.findings}
    assert "filtered by tenant but not by branch" in reasons[("invoicing/views.py", 14)]
    assert "filtered on tenant_id but not branch_id" in reasons[("orders/reports.py", 36)]
    assert "no tenant_id and branch_id predicate" in reasons[("orders/reports.py", 18)]
    codes = {(f.file, f.line): f.code for f in sample.findings}
    assert codes[("orders/views.py", 18)] == "get_object_or_404(Order, pk=pk)"
    assert "catalog.Machine" not in sample.scoped_models  # shared reference data


def test_the_issues_file_points_at_real_findings(sample: AuditReport) -> None:
    issues = json.loads((SAMPLE / "issues.json").read_text())
    assert 5 <= len(issues) <= 8
    assert {"number", "title", "body", "labels", "state"} <= set(issues[0])
    leaks = [i for i in issues if "tenancy" in i["labels"]]
    files = {f.file for f in sample.findings}
    assert leaks and all(any(path in i["body"] for path in files) for i in leaks)


def project(tmp_path: Path, views: str) -> Path:
    files = {
        "core/__init__.py": "",
        "core/models.py": """
            from django.db import models

            class Tenant(models.Model):
                name = models.CharField(max_length=9)

            class Branch(models.Model):
                tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
        """,
        "sales/__init__.py": "",
        "sales/models.py": """
            from django.db import models
            from core.models import Branch, Tenant

            class Quote(models.Model):
                company = models.ForeignKey(Tenant, on_delete=models.CASCADE)
                depot = models.ForeignKey(Branch, on_delete=models.CASCADE)
                total = models.IntegerField()

            class Customer(models.Model):
                tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
                name = models.CharField(max_length=9)
        """,
        "sales/views.py": views,
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path


def leaks(root: Path) -> list[tuple[int, str, str]]:
    return [(f.line, f.model, f.kind) for f in audit_tenancy(root).findings if f.file == "sales/views.py"]


def test_key_names_come_from_the_schema_and_lookups_are_understood(tmp_path: Path) -> None:
    views = """
        from django.apps import apps
        from django.db.models import Q
        from sales import models as sales_models
        from sales.models import Customer as C, Quote

        Q2 = apps.get_model("sales", "Quote")

        def ok(request, filters):
            a = Quote.objects.filter(depot=request.branch)                    # branch FK named `depot`
            b = Quote.objects.filter(Q(depot_id=1) & Q(total__gt=5))        # inside Q
            c = C.objects.filter(tenant=1) if False else C.objects.filter(tenant__name="x")
            d = Quote.objects.create(company_id=1, depot_id=1, total=3)     # a write of one row
            qs = Quote.objects.all()
            qs = qs.order_by("total").filter(depot__tenant=request.tenant, depot=request.branch)
            e = Quote.objects.filter(depot__in=request.user_branches)
            return a, b, c, d, qs, e

        def leaky(request, filters):
            Quote.objects.filter(company=request.tenant)                      # 19: tenant only
            sales_models.Quote.objects.all()                                  # 20: module attribute
            Q2.objects.exclude(total=0).count()                               # 21: get_model alias
            Quote.objects.filter(pk=1).update(total=0)                        # 22: cross-tenant write
            C.objects.get(name="x")                                           # 23: tenant-scoped, no filter
            Quote.objects.filter(**filters)                                   # 24: cannot verify
            qs = Quote.objects.all()                                          # 25: reassigned, never scoped
            return qs.order_by("total")
    """
    found = leaks(project(tmp_path, views))
    assert found == [
        (19, "sales.Quote", "queryset"),
        (20, "sales.Quote", "queryset"),
        (21, "sales.Quote", "queryset"),
        (22, "sales.Quote", "queryset"),
        (23, "sales.Customer", "queryset"),
        (24, "sales.Quote", "queryset"),
        (25, "sales.Quote", "queryset"),
    ]


def test_raw_sql_predicates_joins_and_dynamic_sql(tmp_path: Path) -> None:
    views = """
        from django.db import connection
        from django.db.models.expressions import RawSQL

        BASE = "SELECT q.total FROM sales_quote q "

        def reports(branch, table):
            cur = connection.cursor()
            cur.execute(BASE + "WHERE q.depot_id = %s", [branch.id])                          # ok
            cur.execute(
                "SELECT c.name, q.total FROM sales_customer c JOIN sales_quote q ON q.company_id = c.tenant_id "
                "WHERE q.depot_id = %s AND c.tenant_id = %s", [branch.id, branch.tenant_id])  # ok via the join
            cur.execute("SELECT * FROM sales_quote WHERE total > 0")                           # 12: no predicate
            cur.execute("SELECT * FROM sales_quote q WHERE q.company_id = %s", [1])            # 13: tenant only
            cur.execute(f"SELECT * FROM {table}")                                              # 14: dynamic
            cur.execute("SELECT * FROM core_tenant")                                           # not scoped
            return RawSQL("SELECT count(*) FROM sales_customer", [])                           # 16
    """
    found = leaks(project(tmp_path, views))
    assert found == [
        (12, "sales.Quote", "raw_sql"),
        (13, "sales.Quote", "raw_sql"),
        (14, "?", "raw_sql"),
        (16, "sales.Customer", "raw_sql"),
    ]


def test_generic_views(tmp_path: Path) -> None:
    views = """
        from django.views.generic import DetailView, ListView
        from sales.models import Quote

        class QuoteList(ListView):
            model = Quote                                      # 5: leaks

        class QuoteDetail(DetailView):
            model = Quote

            def get_queryset(self):
                return Quote.objects.filter(depot=self.request.branch)

        class BranchQuotes(ListView):
            model = Quote
            queryset = Quote.objects.all()                     # 15: the queryset itself leaks

        class NotAView:
            model = Quote
    """
    assert leaks(project(tmp_path, views)) == [(5, "sales.Quote", "view"), (15, "sales.Quote", "queryset")]


def test_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(SAMPLE)]) == 1
    out = capsys.readouterr().out
    assert "orders/views.py:18: [get_object] orders.Order" in out
    assert "10 finding(s)" in out
    assert main([str(SAMPLE), "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["findings"]) == 10
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 0
    assert main([str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize(
    ("request_text", "files", "says"),
    [
        # The request itself as the input: the model it names keeps its findings, other words are ignored.
        (
            "does the overdue invoices view leak invoices from other branches?",
            {"invoicing/views.py"},
            "invoicing.Invoice",
        ),
        ("invoicing/views.py", {"invoicing/views.py"}, "2 finding(s) in invoicing/views.py"),
        (f"{SAMPLE}/orders/views.py:18", {"orders/views.py"}, "3 finding(s) in orders/views.py"),
        ("", None, "10 finding(s) in the whole project"),
        # A path the model made up keeps every finding, and says so: it must not read as "no leak".
        ("~/code/erp/shop/views.py:123", None, "not a file of the project"),
        ("is InvoiceLine scoped?", set(), "0 finding(s) in invoicing.InvoiceLine"),
        # The models everything is scoped by, named as words, are what the question is about, not a filter: the
        # Branch model kept 0 findings for this, which read as "no leak".
        ("any querysets that skip the branch filter?", None, "10 finding(s) in the whole project"),
        ("which views forget to filter by tenant or branch", None, "10 finding(s) in the whole project"),
        ("are there leaks on core.Branch itself?", set(), "0 finding(s) in core.Branch"),
    ],
)
def test_findings_for_keeps_what_the_request_names_and_never_hides_a_leak_behind_a_bad_filter(
    sample: AuditReport, request_text: str, files: set[str] | None, says: str
) -> None:
    found, summary = findings_for(sample, extract_schema(SAMPLE).models, request_text)
    assert says in summary
    if files is None:
        assert found == list(sample.findings)
    else:
        assert {f.file for f in found} == files
