"""Schema extraction from source: the sample ERP, small synthetic projects, and django-oscar vs Django's registry."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nodes.erp.schema import SchemaReport, extract_schema, main, models_named

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "graphs" / "erp_sample"


@pytest.fixture(scope="module")
def sample() -> SchemaReport:
    return extract_schema(SAMPLE)


def write_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def fields_of(report: SchemaReport, label: str) -> dict[str, tuple[str, bool, str | None]]:
    model = report.get(label)
    assert model is not None, f"{label} missing; have {[m.label for m in report.models]}"
    return {f.name: (f.type, f.null, f.related_model) for f in model.fields if f.concrete}


# -- the sample ERP ------------------------------------------------------------------------------------------


def test_sample_models_tables_and_scope_keys(sample: SchemaReport) -> None:
    concrete = {m.label: (m.table, m.tenant_key, m.branch_key) for m in sample.concrete}
    assert concrete == {
        "core.Tenant": ("core_tenant", None, None),
        "core.Branch": ("core_branch", "tenant", None),
        "catalog.Supplier": ("catalog_supplier", "tenant", None),
        "catalog.Machine": ("catalog_machine", None, None),
        "catalog.Part": ("catalog_part", "tenant", None),
        "stock.StockLevel": ("stock_level", "tenant", "branch"),
        "orders.Order": ("orders_order", "tenant", "branch"),
        "orders.OrderLine": ("orders_orderline", "tenant", "branch"),
        "invoicing.Invoice": ("invoicing_invoice", "tenant", "branch"),
        "invoicing.OverdueInvoice": ("invoicing_invoice", "tenant", "branch"),
        "invoicing.InvoiceLine": ("invoicing_invoiceline", "tenant", "branch"),
    }
    abstract = {m.label for m in sample.models if m.abstract}
    assert abstract == {"core.TimeStamped", "core.TenantScoped", "core.BranchScoped"}
    assert sample.get("invoicing.OverdueInvoice").proxy  # type: ignore[union-attr]
    assert sample.warnings == ()


def test_sample_inherited_fields_through_aliases_and_module_imports(sample: SchemaReport) -> None:
    # catalog imports `TenantScoped as Scoped`; stock uses `core_models.BranchScoped`.
    part = fields_of(sample, "catalog.Part")
    assert list(part) == [
        "id", "created_at", "updated_at", "tenant", "sku", "name", "unit", "supplier", "unit_cost",
        "replaced_by", "fits",
    ]  # fmt: skip
    assert part["id"] == ("BigAutoField", False, None)  # DEFAULT_AUTO_FIELD from erp/settings.py
    assert part["tenant"] == ("ForeignKey", False, "core.Tenant")
    assert part["replaced_by"] == ("ForeignKey", True, "catalog.Part")  # "self"
    assert part["fits"] == ("ManyToManyField", False, "catalog.Machine")
    stock = fields_of(sample, "stock.StockLevel")
    assert stock["branch"] == ("ForeignKey", False, "core.Branch")
    assert stock["part"] == ("ForeignKey", False, "catalog.Part")


def test_sample_relation_targets(sample: SchemaReport) -> None:
    assert fields_of(sample, "invoicing.InvoiceLine")["invoice"][2] == "invoicing.Invoice"  # no app label
    assert fields_of(sample, "invoicing.Invoice")["order"] == ("OneToOneField", False, "orders.Order")
    assert fields_of(sample, "orders.Order")["created_by"] == ("ForeignKey", True, "auth.User")  # settings.AUTH_...
    line = sample.get("orders.OrderLine")
    assert line is not None and line.field("order") is not None
    assert line.field("order").related_name == "lines"  # type: ignore[union-attr]
    assert line.field("order").column == "order_id"  # type: ignore[union-attr]


def test_sample_meta_and_choices(sample: SchemaReport) -> None:
    stock = sample.get("stock.StockLevel")
    part = sample.get("catalog.Part")
    supplier = sample.get("catalog.Supplier")
    invoice = sample.get("invoicing.Invoice")
    order = sample.get("orders.Order")
    assert stock and part and supplier and invoice and order
    assert stock.meta.db_table == "stock_level"
    assert stock.meta.unique_together == (("branch", "part"),)
    assert supplier.meta.unique_together == (("tenant", "name"),)
    assert [(c.kind, c.name, c.fields) for c in part.meta.constraints] == [
        ("UniqueConstraint", "part_sku_unique_per_tenant", ("tenant", "sku"))
    ]
    assert stock.meta.constraints[0].condition == "models.Q(reorder_level__gte=0)"
    assert part.field("unit").choices == (("ea", "Each"), ("m", "Metre"), ("l", "Litre"))  # type: ignore[union-attr]
    assert invoice.field("status").choices[0] == ("draft", "Draft")  # type: ignore[index, union-attr]
    assert order.field("status").choices[2] == ("shipped", "Shipped")  # type: ignore[index, union-attr]
    assert order.meta.ordering == ("-placed_at",)


@pytest.mark.parametrize(
    ("text", "first", "others"),
    [
        # Invoice has a branch field: it answers "which model stores the branch", so it comes before Branch.
        ("which model stores the branch an invoice belongs to?", "invoicing.Invoice", {"core.Branch"}),
        # Neither names a field of the other: the order the text names them in.
        ("is Supplier linked to Branch by a FK?", "catalog.Supplier", {"core.Branch"}),
        ("list the invoices and the orders", "invoicing.Invoice", {"orders.Order"}),
        ("nothing relevant here", None, set()),
    ],
)
def test_models_named_puts_the_model_that_answers_first(
    sample: SchemaReport, text: str, first: str | None, others: set[str]
) -> None:
    named = [f"{m.app}.{m.name}" for m in models_named(sample.models, text)]
    assert (named[0] if named else None) == first
    assert set(named[1:]) >= others


def test_models_named_by_app_only_when_asked(sample: SchemaReport) -> None:
    by_app = {f"{m.app}.{m.name}" for m in models_named(sample.models, "what is in the invoicing app")}
    assert "invoicing.Invoice" in by_app and all(label.startswith("invoicing.") for label in by_app)
    assert models_named(sample.models, "what is in the invoicing app", apps=False) == []


def test_json_has_exactly_the_documented_shape(sample: SchemaReport) -> None:
    data = json.loads(sample.to_json())
    assert list(data) == ["models"]
    for model in data["models"]:
        assert list(model) == ["app", "name", "abstract", "table", "bases", "fields", "tenant_key", "branch_key"]
        for f in model["fields"]:
            assert list(f) == ["name", "type", "null", "related_model"]
    order = next(m for m in data["models"] if m["name"] == "Order")
    assert order["bases"] == ["core.BranchScoped"]
    detail = sample.to_dict(detail=True)
    inv = next(m for m in detail["models"] if m["name"] == "Invoice")
    assert inv["meta"]["constraints"][0]["name"] == "invoice_number_unique_per_tenant"


def test_cli_prints_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "orders.Order  table=orders_order  scoped by tenant=tenant, branch=branch" in out
    assert "11 concrete and 3 abstract models" in out
    assert main([str(SAMPLE), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["models"]) == 14
    assert main([str(SAMPLE / "nope")]) == 2


# -- Django's rules on small synthetic projects ---------------------------------------------------------------


def test_multi_table_inheritance_removed_fields_and_plain_mixins(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/models.py": """
                from django.db import models

                class Audit:
                    audited = models.BooleanField(default=False)  # not a model: never contributed

                class Named(models.Model):
                    name = models.CharField(max_length=10)
                    legacy = models.IntegerField()
                    class Meta:
                        abstract = True
                        ordering = ["name"]

                class Place(Named):
                    legacy = None  # removes the inherited field
                    city = models.CharField(max_length=20)

                class Restaurant(Audit, Place):
                    serves_pizza = models.BooleanField()

                class Shop(Named):
                    code: str = models.CharField(max_length=4, primary_key=True)
            """,
        },
    )
    report = extract_schema(tmp_path)
    assert fields_of(report, "shop.Place") == {
        "id": ("AutoField", False, None),
        "name": ("CharField", False, None),
        "city": ("CharField", False, None),
    }
    restaurant = report.get("shop.Restaurant")
    assert restaurant is not None
    assert [(f.name, f.via_parent) for f in restaurant.fields] == [
        ("serves_pizza", None),
        ("place_ptr", None),
        ("id", "shop.Place"),
        ("name", "shop.Place"),
        ("city", "shop.Place"),
    ]
    assert restaurant.field("place_ptr").primary_key  # type: ignore[union-attr]
    assert restaurant.meta.ordering == ("name",)  # Meta inherited from the abstract base
    shop = fields_of(report, "shop.Shop")
    assert "id" not in shop and shop["code"] == ("CharField", False, None)


def test_conditional_registration_settings_and_loaders(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": """
                INSTALLED_APPS = ["accounts", "billing.apps.BillingConfig", "django.contrib.auth"]
                AUTH_USER_MODEL = "accounts.Member"
            """,
            "accounts/__init__.py": "",
            "accounts/models.py": """
                from django.conf import settings
                from django.db import models
                from django.contrib.auth.models import AbstractUser

                if settings.AUTH_USER_MODEL == "accounts.Member":
                    class Member(AbstractUser):
                        nickname = models.CharField(max_length=20)

                if settings.AUTH_USER_MODEL == "accounts.Other":
                    class Other(models.Model):
                        x = models.IntegerField()
            """,
            "billing/__init__.py": "",
            "billing/apps.py": """
                from django.apps import AppConfig

                class BillingConfig(AppConfig):
                    name = "billing"
                    label = "money"
                    default_auto_field = "django.db.models.BigAutoField"
            """,
            "billing/abstract_models.py": """
                from django.conf import settings
                from django.db import models as m

                class NullableChar(m.CharField):
                    def __init__(self, *args, **kwargs):
                        kwargs["null"] = True
                        super().__init__(*args, **kwargs)

                class AbstractInvoice(m.Model):
                    payer = m.ForeignKey(settings.AUTH_USER_MODEL, on_delete=m.CASCADE)
                    ledger = m.ForeignKey("Ledger", on_delete=m.CASCADE)
                    ref = NullableChar(max_length=9)
                    class Meta:
                        abstract = True
                        app_label = "money"
            """,
            "billing/models.py": """
                from .abstract_models import AbstractInvoice as Base
                from .loading import is_model_registered

                if not is_model_registered("money", "Invoice"):
                    class Invoice(Base):
                        pass

                if not is_model_registered("money", "Invoice"):
                    class Invoice(Base):  # a second definition is skipped, as at runtime
                        duplicate = True

                from .proxies import *
            """,
            "billing/loading.py": "def is_model_registered(a, b): ...\ndef get_model(a, b): ...\n",
            "billing/proxies.py": """
                from .loading import get_model

                Invoice = get_model("money", "Invoice")

                class SpecialInvoice(Invoice):
                    class Meta:
                        proxy = True
                        app_label = "money"
            """,
            "tests/__init__.py": "",
            "tests/models.py": """
                from django.db import models

                class Fixture(models.Model):
                    pass
            """,
        },
    )
    report = extract_schema(tmp_path)
    labels = {m.label for m in report.concrete}
    assert labels == {"accounts.Member", "money.Invoice", "money.SpecialInvoice"}
    invoice = fields_of(report, "money.Invoice")
    assert invoice["id"] == ("BigAutoField", False, None)
    assert invoice["payer"] == ("ForeignKey", False, "accounts.Member")
    assert invoice["ledger"] == ("ForeignKey", False, "money.Ledger")  # resolved in the concrete model's app
    assert invoice["ref"] == ("NullableChar", True, None)  # the field class forces null=True
    assert report.get("money.Invoice").table == "money_invoice"  # type: ignore[union-attr]
    assert report.get("money.SpecialInvoice").table == "money_invoice"  # type: ignore[union-attr]
    assert report.get("money.SpecialInvoice").bases == ("money.Invoice",)  # type: ignore[union-attr]
    # AbstractUser lives in site-packages, which is not searched unless asked: the base stays unresolved.
    assert "nickname" in fields_of(report, "accounts.Member")
    assert any("accounts.Member" in w and "AbstractUser" in w for w in report.warnings), report.warnings


def test_overridden_settings_and_long_table_names(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "inventory/__init__.py": "",
            "inventory/models.py": """
                from django.conf import settings
                from django.db import models

                class AVeryLongModelNameThatGoesOnAndOnForMoreThanSixtyThreeCharactersTotal(models.Model):
                    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
                    tenant_id = models.IntegerField()
            """,
        },
    )
    report = extract_schema(tmp_path, settings={"AUTH_USER_MODEL": "people.Person"})
    (model,) = report.concrete
    assert model.field("owner").related_model == "people.Person"  # type: ignore[union-attr]
    assert model.table is not None and len(model.table) == 63
    assert model.tenant_key == "tenant_id"


# -- django-oscar against Django's own registry -----------------------------------------------------------------

DJANGO_REGISTRY = """
import json, django
from django.conf import settings
import oscar.defaults as defaults
from oscar import INSTALLED_APPS
settings.configure(
    INSTALLED_APPS=INSTALLED_APPS,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    HAYSTACK_CONNECTIONS={"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}},
    **{k: getattr(defaults, k) for k in dir(defaults) if k.isupper()},
)
django.setup()
from django.apps import apps
out = {}
for model in apps.get_models():
    if not model.__module__.startswith("oscar."):
        continue
    fields = []
    for f in model._meta.get_fields():
        if f.concrete:  # forward fields incl. implicit id and M2M; reverse relations are not concrete
            rm = f.related_model
            fields.append([f.name, f"{rm._meta.app_label}.{rm._meta.object_name}" if rm else None, f.null])
    out[f"{model._meta.app_label}.{model._meta.object_name}"] = {"table": model._meta.db_table, "fields": fields}
print(json.dumps(out))
"""


def precision_recall(found: set[tuple[str | None, ...]], truth: set[tuple[str | None, ...]]) -> tuple[float, float]:
    hits = len(found & truth)
    return (hits / len(found) if found else 1.0), (hits / len(truth) if truth else 1.0)


def test_django_oscar_matches_djangos_registry() -> None:
    oscar = pytest.importorskip("oscar", reason="dev dependency django-oscar is not installed")
    pytest.importorskip("django")
    truth_raw = json.loads(
        subprocess.run(
            [sys.executable, "-c", DJANGO_REGISTRY], check=True, capture_output=True, text=True, timeout=120
        ).stdout
    )
    report = extract_schema(Path(oscar.__file__).parent)

    truth_models = {(label,) for label in truth_raw}
    found_models = {(m.label,) for m in report.concrete}
    truth_fields = {(label, f[0], f[1]) for label, v in truth_raw.items() for f in v["fields"]}
    found_fields = {(m.label, f.name, f.related_model) for m in report.concrete for f in m.fields if f.concrete}
    truth_null = {(label, f[0], f[2]) for label, v in truth_raw.items() for f in v["fields"]}
    found_null = {(m.label, f.name, f.null) for m in report.concrete for f in m.fields if f.concrete}
    tables_ok = sum(1 for m in report.concrete if truth_raw.get(m.label, {}).get("table") == m.table)

    mp, mr = precision_recall(found_models, truth_models)
    fp, fr = precision_recall(found_fields, truth_fields)
    np_, nr = precision_recall(found_null, truth_null)
    print(
        f"\ndjango-oscar: {len(truth_models)} concrete models, {len(truth_fields)} fields in Django's registry\n"
        f"  models              precision {mp:.3f} recall {mr:.3f}\n"
        f"  fields (+FK target) precision {fp:.3f} recall {fr:.3f}\n"
        f"  fields (+null)      precision {np_:.3f} recall {nr:.3f}\n"
        f"  tables              {tables_ok}/{len(truth_models)} equal"
    )
    detail = f"missing {sorted(truth_fields - found_fields)[:10]} extra {sorted(found_fields - truth_fields)[:10]}"
    assert mp == 1.0 and mr >= 0.98, sorted(truth_models ^ found_models)
    assert fp == 1.0 and fr >= 0.98, detail
    assert len(truth_models) > 50 and len(truth_fields) > 500
