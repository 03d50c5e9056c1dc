"""Rows to typed records by column name, not by position.

A :class:`Rows` names the columns of a ``SELECT`` once and builds the record
from them: each column goes to the field of the same name (``rename`` maps a
column to another field name), through the conversion given for it (stored
microseconds to datetimes, JSON text to dicts ...), unconverted otherwise. Adding
or moving a column changes the one column list, and a column the record does not
have fails when the mapper is built, not when a query runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from ..._clock import from_us, from_us_required

__all__ = ["JSON", "TIME", "TIME_REQUIRED", "Rows"]

T = TypeVar("T")



def _time_required(value: Any) -> Any:
    return from_us_required(int(value))


#: Conversions columns share: stored microseconds to an aware datetime, JSON text to its value.
TIME: Callable[[Any], Any] = from_us
TIME_REQUIRED: Callable[[Any], Any] = _time_required
JSON: Callable[[Any], Any] = json.loads


class Rows(Generic[T]):
    """Builds ``cls`` records from rows of ``columns`` (a comma-separated SELECT list)."""

    def __init__(
        self,
        cls: type[T],
        columns: str,
        convert: Mapping[str, Callable[[Any], Any]] | None = None,
        *,
        rename: Mapping[str, str] | None = None,
    ) -> None:
        self.cls = cls
        #: The SELECT list, to put in queries: ``f"SELECT {rows.columns} FROM ..."``.
        self.columns = columns
        names = [c.strip() for c in columns.split(",")]
        if not attrs.has(cls):
            raise TypeError(f"{cls!r} is not an attrs class")
        fields = {a.name for a in getattr(cls, "__attrs_attrs__", ())}
        self._fields = [(rename or {}).get(name, name) for name in names]
        unknown = sorted(set(self._fields) - fields)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {unknown} for the columns {columns!r}")
        conversions = dict(convert or {})
        wrong = sorted(set(conversions) - set(names))
        if wrong:
            raise TypeError(f"conversions for {wrong}, which are not among the columns {columns!r}")
        self._convert = [conversions.get(name) for name in names]

    def one(self, row: Sequence[Any]) -> T:
        """The record of one row."""
        values = {
            field: value if convert is None or value is None else convert(value)
            for field, convert, value in zip(self._fields, self._convert, row, strict=True)
        }
        return self.cls(**values)

    def all(self, rows: Any) -> list[T]:
        """The records of every row of a cursor or a list of rows."""
        return [self.one(row) for row in rows]
