# mypy: ignore-errors
"""Invoice pages."""

from django.db.models import Sum
from django.http import FileResponse
from django.shortcuts import render

from invoicing.models import Invoice
from invoicing.pdf import render_invoice


def overdue_invoices(request):
    """List issued invoices past their due date."""
    invoices = Invoice.objects.filter(tenant=request.tenant, status=Invoice.Status.ISSUED, due_on__lt=request.today)
    return render(request, "invoicing/overdue.html", {"invoices": invoices})


def invoice_pdf(request, pk):
    """Download an invoice as PDF."""
    invoice = Invoice.objects.get(pk=pk)
    return FileResponse(render_invoice(invoice), filename=f"{invoice.number}.pdf")


def invoice_totals(request):
    """Total invoiced by status for this branch."""
    qs = Invoice.objects.all()
    qs = qs.filter(tenant=request.tenant, branch=request.branch)
    return render(request, "invoicing/totals.html", {"totals": qs.values("status").annotate(total=Sum("total"))})
