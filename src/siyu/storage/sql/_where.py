"""Optional filters of the list queries (``holds(status=None, kind="binding")`` ...)."""

from __future__ import annotations

from typing import Any

__all__ = ["where"]


def where(*terms: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``(SQL condition, parameters)`` from ``(clause with one ?, value)`` pairs,
    keeping the clauses whose value is not ``None`` (all of them true: ``1 = 1``)."""
    kept = [(clause, value) for clause, value in terms if value is not None]
    return " AND ".join(clause for clause, _ in kept) or "1 = 1", [value for _, value in kept]
