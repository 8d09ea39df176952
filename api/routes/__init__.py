"""Thin HTTP handlers: validate, call the runtime or the run manager, map errors to status codes."""
