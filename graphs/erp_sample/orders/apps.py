# mypy: ignore-errors
"""App config for sales orders."""

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Sales orders and their lines."""

    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"
