"""Nova's own web app: static assets in `static/`, and the read models its health page draws."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
