# mypy: ignore-errors
"""Invoices and invoice lines, per branch."""

from core.models import BranchScoped
from django.db import models
from django.utils.translation import gettext_lazy as _
from orders.models import Order


class Invoice(BranchScoped):
    """An invoice raised for one order."""

    class Status(models.TextChoices):
        """Where the invoice is in its life."""

        DRAFT = "draft", _("Draft")
        ISSUED = "issued", _("Issued")
        PAID = "paid", _("Paid")
        VOID = "void", _("Void")

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    number = models.CharField(max_length=20)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        """Table options."""

        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="invoice_number_unique_per_tenant")]

    def __str__(self):
        """Return the invoice number."""
        return self.number


class OverdueInvoice(Invoice):
    """Issued invoices past their due date (a proxy with its own admin page)."""

    class Meta:
        """Proxy options."""

        proxy = True


class InvoiceLine(BranchScoped):
    """One line of an invoice."""

    invoice = models.ForeignKey("Invoice", on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "orders.OrderLine", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
