"""A small git repository with a duplicate block, a lint error and a failing test (used by the improve tests)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CALC = '''"""Prices."""

import os


def invoice_total(items: list[dict[str, float]], tax: float) -> str:
    """Return the invoice total."""
    subtotal = 0.0
    for item in items:
        subtotal += item["price"] * item["qty"]
    gross = round(subtotal * (1 + tax), 2)
    print("computed", gross)
    return f"invoice {gross:.2f}"


def quote_total(items: list[dict[str, float]], tax: float) -> str:
    """Return the quote total."""
    subtotal = 0.0
    for item in items:
        subtotal += item["price"] * item["qty"]
    gross = round(subtotal * (1 + tax), 2)
    print("computed", gross)
    return f"quote {gross:.2f}"
'''

TESTS = """from pkg.calc import invoice_total, quote_total

ITEMS = [{"price": 2.0, "qty": 3.0}, {"price": 1.5, "qty": 2.0}]


def test_invoice():
    assert invoice_total(ITEMS, 0.1) == "invoice 9.90"


def test_quote():
    assert quote_total(ITEMS, 0.0) == "quote 9.00"


def test_known_failure():
    assert quote_total([], 0.0) == "quote 1.00"
"""

CARD = """id = "chat.clients"
description = "Clients."
examples = [
  "who are Kestrel Logistics",
  "when did I last speak to Brightwater",
]
not_for = []
"""


FIXED_DATE = {"GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}


def sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, **FIXED_DATE}  # same content, same commit: every copy of the fixture has one HEAD
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def make_repo(root: Path) -> Path:
    """Create and commit the fixture repository; return its path."""
    repo = root / "fixture"
    (repo / "pkg").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "graphs" / "agents" / "chat").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "calc.py").write_text(CALC)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    (repo / "graphs" / "agents" / "chat" / "clients.toml").write_text(CARD)
    (repo / "pyproject.toml").write_text(
        '[tool.ruff]\nline-length = 120\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'
    )
    (repo / ".gitignore").write_text("__pycache__/\n")
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "fixture")
    return repo


def test_fixture_repo_is_committed_and_clean(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    assert sh(repo, "git", "status", "--porcelain") == ""
    assert "fixture" in sh(repo, "git", "log", "--oneline")
