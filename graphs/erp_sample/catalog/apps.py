# mypy: ignore-errors
"""App config for the parts catalogue."""

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Suppliers, parts, and the shared list of machine models."""

    name = "catalog"
    label = "catalog"
