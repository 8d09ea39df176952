"""ERP tools: Django schema extraction, tenant/branch SQL scoping, and the tenancy audit."""
