# mypy: ignore-errors
"""Settings for the sample ERP (invented data; never deployed)."""

import os

SECRET_KEY = "erp-sample-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "core",
    "catalog.apps.CatalogConfig",
    "stock",
    "orders.apps.OrdersConfig",
    "invoicing",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.TenantBranchMiddleware",
]

ROOT_URLCONF = "erp.urls"
AUTH_USER_MODEL = "auth.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("ERP_DB_NAME", "erp"),
        "OPTIONS": {"options": "-c search_path=erp_sample"},
    }
}

USE_TZ = True
TIME_ZONE = "Europe/London"
