# mypy: ignore-errors
"""Suppliers and parts (per tenant) and machine models (shared by all tenants)."""

from core.models import TenantScoped as Scoped
from django.db import models


class Supplier(Scoped):
    """A company a tenant buys parts from."""

    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    lead_time_days = models.PositiveSmallIntegerField(default=7)

    class Meta:
        """Table options."""

        unique_together = ("tenant", "name")

    def __str__(self):
        """Return the supplier's name."""
        return self.name


class Machine(models.Model):
    """A machine model parts can fit, e.g. a JCB 3CX; reference data shared by every tenant."""

    manufacturer = models.CharField(max_length=60)
    model = models.CharField(max_length=60)
    year_from = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        """Table options."""

        unique_together = [("manufacturer", "model")]

    def __str__(self):
        """Return manufacturer and model."""
        return f"{self.manufacturer} {self.model}"


class Part(Scoped):
    """A stocked part in a tenant's catalogue."""

    class Unit(models.TextChoices):
        """How the part is counted."""

        EACH = "ea", "Each"
        METRE = "m", "Metre"
        LITRE = "l", "Litre"

    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=2, choices=Unit.choices, default=Unit.EACH)
    supplier = models.ForeignKey(Supplier, null=True, blank=True, on_delete=models.SET_NULL, related_name="parts")
    unit_cost = models.DecimalField(max_digits=10, decimal_places=2)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces")
    fits = models.ManyToManyField(Machine, blank=True, related_name="parts")

    class Meta:
        """Table options."""

        constraints = [models.UniqueConstraint(fields=["tenant", "sku"], name="part_sku_unique_per_tenant")]

    def __str__(self):
        """Return SKU and name."""
        return f"{self.sku} {self.name}"
