# mypy: ignore-errors
"""Stock pages."""

from django.db.models import F
from django.shortcuts import render

from stock.models import StockLevel


def stock_for_part(request, part_id):
    """Show how many of a part each branch holds."""
    levels = StockLevel.objects.filter(part_id=part_id).select_related("branch")
    return render(request, "stock/for_part.html", {"levels": levels})


def reorder_list(request):
    """List this branch's parts at or below their reorder level."""
    levels = StockLevel.objects.for_branch(request.branch).filter(quantity__lte=F("reorder_level"))
    return render(request, "stock/reorder.html", {"levels": levels})
