# mypy: ignore-errors
"""Order pages."""

from django.shortcuts import get_object_or_404, render
from django.views.generic import ListView

from orders.models import Order, OrderLine


def order_list(request):
    """List this branch's open orders."""
    orders = Order.objects.for_branch(request.branch).filter(status="open")
    return render(request, "orders/list.html", {"orders": orders})


def order_detail(request, pk):
    """Show one order with its lines."""
    order = get_object_or_404(Order, pk=pk)
    return render(request, "orders/detail.html", {"order": order, "lines": order.lines.all()})


def order_search(request):
    """Find orders by customer name."""
    orders = Order.objects.filter(customer_name__icontains=request.GET.get("q", ""))
    return render(request, "orders/list.html", {"orders": orders})


class OrderLineList(ListView):
    """Every order line, newest first."""

    model = OrderLine
    ordering = ["-created_at"]


class BranchOrderList(ListView):
    """This branch's orders."""

    model = Order

    def get_queryset(self):
        """Scope to the request's branch."""
        return Order.objects.for_branch(self.request.branch)
