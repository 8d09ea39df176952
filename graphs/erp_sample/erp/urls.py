# mypy: ignore-errors
"""URL routes of the sample ERP."""

from catalog import views as catalog_views
from django.urls import path
from invoicing import views as invoicing_views
from orders import views as order_views
from stock import views as stock_views

urlpatterns = [
    path("orders/", order_views.order_list, name="order-list"),
    path("orders/search/", order_views.order_search, name="order-search"),
    path("orders/<int:pk>/", order_views.order_detail, name="order-detail"),
    path("orders/lines/", order_views.OrderLineList.as_view(), name="order-lines"),
    path("orders/branch/", order_views.BranchOrderList.as_view(), name="branch-orders"),
    path("invoices/overdue/", invoicing_views.overdue_invoices, name="invoice-overdue"),
    path("invoices/<int:pk>/pdf/", invoicing_views.invoice_pdf, name="invoice-pdf"),
    path("invoices/totals/", invoicing_views.invoice_totals, name="invoice-totals"),
    path("stock/part/<int:part_id>/", stock_views.stock_for_part, name="stock-for-part"),
    path("stock/reorder/", stock_views.reorder_list, name="stock-reorder"),
    path("parts/", catalog_views.part_list, name="part-list"),
    path("machines/", catalog_views.machine_list, name="machine-list"),
    path("suppliers/<int:pk>/", catalog_views.supplier_detail, name="supplier-detail"),
]
