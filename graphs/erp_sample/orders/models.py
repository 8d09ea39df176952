# mypy: ignore-errors
"""Sales orders and order lines, per branch."""

from core.models import BranchScoped
from django.conf import settings
from django.db import models

STATUS_CHOICES = [
    ("draft", "Draft"),
    ("open", "Open"),
    ("shipped", "Shipped"),
    ("cancelled", "Cancelled"),
]


class Order(BranchScoped):
    """A customer's order taken at a branch."""

    number = models.CharField(max_length=20)
    customer_name = models.CharField(max_length=120)
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default="draft")
    placed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="erp_orders"
    )
    notes = models.TextField(blank=True)

    class Meta:
        """Table options."""

        unique_together = ("branch", "number")
        ordering = ["-placed_at"]

    def __str__(self):
        """Return the order number."""
        return self.number


class OrderLine(BranchScoped):
    """A part and quantity on an order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    part = models.ForeignKey("catalog.Part", on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
