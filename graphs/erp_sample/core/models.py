# mypy: ignore-errors
"""Tenants, branches, and the abstract bases every scoped model inherits from."""

from django.db import models

from core.managers import BranchScopedManager, TenantScopedManager


class Tenant(models.Model):
    """A customer company; every business row belongs to exactly one tenant."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        """Table options."""

        ordering = ["slug"]

    def __str__(self):
        """Return the tenant's name."""
        return self.name


class Branch(models.Model):
    """A depot or office of a tenant; most data is further scoped to one branch."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="branches")
    name = models.CharField(max_length=80)
    code = models.CharField(max_length=8)

    class Meta:
        """Table options."""

        unique_together = [("tenant", "code")]
        verbose_name_plural = "branches"

    def __str__(self):
        """Return the branch's name."""
        return self.name


class TimeStamped(models.Model):
    """Creation and update times."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        """Abstract base."""

        abstract = True


class TenantScoped(TimeStamped):
    """A row owned by one tenant; read it through `objects.for_tenant(tenant)`."""

    tenant = models.ForeignKey("core.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()

    class Meta:
        """Abstract base."""

        abstract = True


class BranchScoped(TenantScoped):
    """A row owned by one branch of one tenant; read it through `objects.for_branch(branch)`."""

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")

    objects = BranchScopedManager()

    class Meta(TenantScoped.Meta):
        """Abstract base."""

        abstract = True
