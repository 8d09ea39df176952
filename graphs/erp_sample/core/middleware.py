# mypy: ignore-errors
"""Resolve the request's tenant and branch from the signed-in user's profile."""

from core.models import Branch


class TenantBranchMiddleware:
    """Set `request.tenant` and `request.branch` for every authenticated request."""

    def __init__(self, get_response):
        """Keep the next handler."""
        self.get_response = get_response

    def __call__(self, request):
        """Attach the tenant and branch, then continue."""
        request.branch = None
        request.tenant = None
        tenant_id, branch_id = request.session.get("tenant_id"), request.session.get("branch_id")
        if request.user.is_authenticated and tenant_id and branch_id:
            request.branch = Branch.objects.select_related("tenant").get(pk=branch_id, tenant_id=tenant_id)
            request.tenant = request.branch.tenant
        return self.get_response(request)
