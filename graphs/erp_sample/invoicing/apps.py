# mypy: ignore-errors
"""App config for invoices."""

from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    """Invoices raised against orders."""

    name = "invoicing"
