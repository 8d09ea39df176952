"""Reducers for accumulating state fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def replace_list(current: Sequence[T] | None, update: Sequence[T] | None) -> list[T]:
    """Replace the list wholesale each turn; `None` keeps the current value.

    Recalled memories describe one turn, so they are replaced, not appended: appending would grow
    the checkpoint with every turn.
    """
    if update is None:
        return list(current or [])
    return list(update)


def merge_dict(current: dict[str, Any] | None, update: dict[str, Any] | None) -> dict[str, Any]:
    """Merge by key; a key in the update replaces the current value (a re-run step replaces its output)."""
    return {**(current or {}), **(update or {})}
