# mypy: ignore-errors
"""Catalogue pages."""

from django.shortcuts import render

from catalog.models import Machine, Part, Supplier


def part_list(request):
    """List the tenant's parts."""
    parts = Part.objects.filter(tenant=request.tenant).select_related("supplier")
    return render(request, "catalog/part_list.html", {"parts": parts})


def machine_list(request):
    """List machine models; shared reference data, so no tenant filter is needed."""
    return render(request, "catalog/machine_list.html", {"machines": Machine.objects.all()})


def supplier_detail(request, pk):
    """Show one supplier."""
    supplier = Supplier.objects.get(pk=pk)
    return render(request, "catalog/supplier_detail.html", {"supplier": supplier})
