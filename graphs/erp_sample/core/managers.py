# mypy: ignore-errors
"""Querysets that scope every read to one tenant, or one branch of one tenant."""

from django.db import models


class TenantScopedQuerySet(models.QuerySet):
    """Rows of one tenant."""

    def for_tenant(self, tenant):
        """Return this tenant's rows."""
        return self.filter(tenant=tenant)


class BranchScopedQuerySet(TenantScopedQuerySet):
    """Rows of one branch (and so of its tenant)."""

    def for_branch(self, branch):
        """Return this branch's rows, checking the tenant too."""
        return self.filter(tenant_id=branch.tenant_id, branch=branch)


TenantScopedManager = models.Manager.from_queryset(TenantScopedQuerySet)
BranchScopedManager = models.Manager.from_queryset(BranchScopedQuerySet)
