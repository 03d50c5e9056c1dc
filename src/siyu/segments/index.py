"""Sorted value indexes: answer ``value op literal`` as a bitmap by bisection.

An index holds the users that have a value, sorted by that value, split by
kind of value (numbers, text, booleans, instants) because values of
different kinds do not compare. A comparison is two bisections and one
bitmap built from a slice of a C array, so ``spend_30d >= 500`` over a
million users costs milliseconds, and repeated atoms are memoised.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pyroaring import BitMap

__all__ = ["BOOL", "NUMBER", "TEXT", "TIME", "SortedIndex", "kind_of"]

NUMBER, TEXT, BOOL, TIME = "number", "text", "boolean", "time"
_MEMO_LIMIT = 512


_EXACT: dict[type, str] = {bool: BOOL, int: NUMBER, str: TEXT}


def kind_of(value: object) -> str | None:
    """The comparable kind of a value, or ``None`` for values an index skips."""
    kind = _EXACT.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float | Decimal):
        if isinstance(value, float) and value != value:  # NaN compares with nothing
            return None
        if isinstance(value, Decimal) and value.is_nan():
            return None
        return NUMBER
    if isinstance(value, str):
        return TEXT
    if isinstance(value, datetime) and value.tzinfo is not None:
        return TIME
    return None


class _Run:
    """Users of one kind of value, sorted by value."""

    __slots__ = ("ids", "values")

    def __init__(self, pairs: list[tuple[Any, int]]) -> None:
        pairs.sort()  # by value, then id
        self.values = [v for v, _ in pairs]
        self.ids = array("I", [u for _, u in pairs])

    def slice(self, lo: int, hi: int) -> BitMap:
        return BitMap(self.ids[lo:hi])


class SortedIndex:
    """Per-user values of one attribute or metric, ready for comparisons."""

    def __init__(self, values: Mapping[int, object] | Iterable[tuple[int, object]]) -> None:
        items = values.items() if isinstance(values, Mapping) else values
        by_kind: dict[str, list[tuple[Any, int]]] = {}
        exact = _EXACT
        for uid, value in items:
            kind = exact.get(type(value)) or kind_of(value)
            if kind is not None:
                bucket = by_kind.get(kind)
                if bucket is None:
                    bucket = by_kind[kind] = []
                bucket.append((value, uid))
        self.runs = {kind: _Run(pairs) for kind, pairs in by_kind.items()}
        self._memo: dict[tuple[Any, ...], BitMap] = {}
        self._all: BitMap | None = None

    @property
    def kinds(self) -> set[str]:
        return set(self.runs)

    def all(self) -> BitMap:
        """Every user with a value."""
        if self._all is None:
            result = BitMap()
            for run in self.runs.values():
                result |= BitMap(run.ids)
            self._all = result
        return self._all

    def compare(self, op: str, literal: object, key: Callable[[Any], Any] | None = None,
                memo: tuple[Any, ...] = ()) -> BitMap:
        """Users whose value ``op`` ``literal`` holds. With ``key``, compare
        ``key(value)`` instead (``key`` must be non-decreasing in the value)."""
        token = (op, literal, type(literal), *memo)
        cached = self._memo.get(token)
        if cached is not None:
            return cached
        result = self._compare(op, literal, key)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[token] = result
        return result

    def _compare(self, op: str, literal: Any, key: Callable[[Any], Any] | None) -> BitMap:
        if op == "in":
            assert isinstance(literal, tuple)
            result = BitMap()
            for one in literal:
                result |= self._compare("=", one, key)
            return result
        if op == "!=":
            return self.all() - self._compare("=", literal, key)
        kind = TIME if key is not None else kind_of(literal)
        run = self.runs.get(kind) if kind is not None else None
        if run is None:
            return BitMap()
        values = run.values
        lo_eq = bisect_left(values, literal, key=key)  # type: ignore[call-overload]
        if op == "<":
            return run.slice(0, lo_eq)
        if op == ">=":
            return run.slice(lo_eq, len(values))
        hi_eq = bisect_right(values, literal, key=key)  # type: ignore[call-overload]
        if op == "<=":
            return run.slice(0, hi_eq)
        if op == ">":
            return run.slice(hi_eq, len(values))
        if op == "=":
            return run.slice(lo_eq, hi_eq)
        raise ValueError(f"unknown operator {op!r}")
