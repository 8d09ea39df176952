# mypy: ignore-errors
"""App config for tenants and branches."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Tenants, branches and the scoped base models."""

    name = "core"
    verbose_name = "Tenants and branches"
