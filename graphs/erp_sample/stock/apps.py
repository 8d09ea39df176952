# mypy: ignore-errors
"""App config for stock levels."""

from django.apps import AppConfig


class StockConfig(AppConfig):
    """Stock held per branch."""

    name = "stock"
