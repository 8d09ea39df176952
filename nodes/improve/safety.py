"""What a proposed diff may touch: files inside the target, never its tools, tests, gates or `.git/`.

Checked before validation, so a refused diff never reaches a worktree, let alone the reviewer.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PROTECTED: tuple[str, ...] = (
    "tests/*",
    "test/*",
    "test_*.py",
    "*/test_*.py",
    "*_test.py",
    ".ci/*",
    ".github/*",
    "graphs/improve.py",
    "nodes/improve/*",
    "state/improve.py",
    "api/improve.py",
    "api/migrations/*_improve.sql",
    "nodes/review.py",
    "state/review.py",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "Makefile",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    "tox.ini",
    ".importlinter",
    "conftest.py",
    "*/conftest.py",
    "langgraph.json",
    ".pre-commit-config.yaml",
    ".gitignore",
    ".gitattributes",
)
"""Glob patterns (relative, POSIX) the loop may not change: its own oracle and the project's tooling."""

_HEADER = re.compile(r"^(?:---|\+\+\+) (?P<path>\S+)")
_GIT_HEADER = re.compile(r"^diff --git (?P<a>\S+) (?P<b>\S+)$")
_RENAME = re.compile(r"^(?:rename|copy) (?:from|to) (?P<path>.+)$")


class UnsafeDiff(ValueError):
    """A diff touches something it may not; the message says what and why."""


@dataclass(frozen=True)
class DiffFiles:
    """The paths a diff names, as written in it (prefixes `a/` and `b/` removed)."""

    paths: tuple[str, ...]
    mode_changes: tuple[str, ...] = ()


def diff_paths(diff: str) -> DiffFiles:
    """Return every path a unified or git diff names (headers, renames, copies, mode lines)."""
    paths: list[str] = []
    modes: list[str] = []
    for line in diff.splitlines():
        if m := _GIT_HEADER.match(line):
            paths.extend(_strip(p) for p in (m["a"], m["b"]))
        elif (m := _HEADER.match(line)) and m["path"] != "/dev/null":
            paths.append(_strip(m["path"]))
        elif m := _RENAME.match(line):
            paths.append(m["path"].strip())
        elif line.startswith(("new mode", "old mode", "new file mode", "deleted file mode")):
            modes.append(line)
    return DiffFiles(tuple(dict.fromkeys(p for p in paths if p)), tuple(modes))


def _strip(path: str) -> str:
    path = path.strip().strip('"')
    return path[2:] if path.startswith(("a/", "b/")) else path


def is_protected(path: str, protected: tuple[str, ...] = PROTECTED) -> str | None:
    """Return the pattern protecting a relative path, or None."""
    for pattern in protected:
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/*")):
            return pattern
    return None


def check_path(root: Path, path: str, protected: tuple[str, ...] = PROTECTED) -> str:
    """Return the normalised relative path, or raise `UnsafeDiff` saying why it may not be touched."""
    if not path or "\x00" in path:
        raise UnsafeDiff(f"empty or binary path {path!r}")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or path.startswith("~"):
        raise UnsafeDiff(f"{path}: absolute paths are refused")
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeDiff(f"{path}: paths with '..' are refused")
    if any(p.lower() == ".git" for p in parts):
        raise UnsafeDiff(f"{path}: nothing under .git/ may be changed")
    rel = "/".join(p for p in parts if p != ".")
    if pattern := is_protected(rel, protected):
        raise UnsafeDiff(f"{rel}: protected file (matches {pattern!r}); the loop may not change its own oracle")
    real_root = Path(os.path.realpath(root))
    # Walk each existing prefix: a symlinked directory or file that resolves outside the repository is refused.
    current = real_root
    for part in rel.split("/"):
        current = current / part
        if current.is_symlink() or current.exists():
            resolved = Path(os.path.realpath(current))
            if resolved != real_root and real_root not in resolved.parents:
                raise UnsafeDiff(f"{rel}: goes through a symlink that leaves the repository ({resolved})")
        if current.is_symlink():
            raise UnsafeDiff(f"{rel}: changing a path through a symlink is refused")
    return rel


def check_diff(root: Path, diff: str, protected: tuple[str, ...] = PROTECTED) -> list[str]:
    """Return the files a diff changes, or raise `UnsafeDiff` naming the first rule it breaks."""
    if not diff.strip():
        raise UnsafeDiff("the diff is empty")
    if "GIT binary patch" in diff or "Binary files" in diff:
        raise UnsafeDiff("binary patches are refused")
    found = diff_paths(diff)
    if not found.paths:
        raise UnsafeDiff("the diff names no files")
    for mode in found.mode_changes:
        if "120000" in mode:
            raise UnsafeDiff("creating or changing symlinks is refused")
        if mode.startswith(("new mode", "old mode")):
            raise UnsafeDiff(f"file mode changes are refused ({mode})")
    return [check_path(root, p, protected) for p in found.paths]
