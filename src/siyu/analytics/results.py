"""The result base every report returns: rows, CSV, JSON and a text table.

A report is a small frozen attrs object. ``columns`` names the fields of
each row in ``rows`` (plain tuples, in display order); ``to_csv()`` and
``to_json()`` serialize them, ``str(report)`` is an aligned text table and
``to_rich()`` a :class:`rich.table.Table` for terminals. Money is a
``Decimal`` in yuan, rates are floats in ``[0, 1]`` (shown as percentages),
bucket labels are strings such as ``2026-05-04`` or ``2026-05``. The
title says which time the report covers (:func:`covering`); ``footnotes``
explain marked cells, such as a period still running at ``until``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, overload

import attrs

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["INCOMPLETE", "ColumnRows", "Report", "covering", "format_value", "rate"]

#: How a table marks a cell whose period had not ended (or whose window had not closed) by ``until``.
INCOMPLETE = "*"

Row = tuple[Any, ...]


class ColumnRows(Sequence[Row]):
    """Rows kept as columns until they are read: a report with a row per buyer
    (hundreds of thousands) is computed on whole columns, and the row tuples are
    built once, on first access. Reads like a tuple of tuples, and compares equal
    to one."""

    def __init__(self, columns: Sequence[Any], convert: Sequence[Callable[[Any], Any] | None] = ()) -> None:
        self._columns = columns
        self._convert = convert
        self._rows: tuple[Row, ...] | None = None

    def _built(self) -> tuple[Row, ...]:
        if self._rows is None:
            convert = list(self._convert) + [None] * (len(self._columns) - len(self._convert))
            # NumPy columns become Python values in one C call each (``tolist``), not one per cell.
            plain = [c.tolist() if hasattr(c, "tolist") else list(c) for c in self._columns]
            columns = [c if f is None else list(map(f, c)) for c, f in zip(plain, convert, strict=True)]
            self._rows = tuple(zip(*columns, strict=True))
        return self._rows

    def __len__(self) -> int:
        return len(self._columns[0]) if self._columns else 0

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Row, ...]: ...
    def __getitem__(self, index: int | slice) -> Row | tuple[Row, ...]:
        return self._built()[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnRows):
            other = other._built()
        return isinstance(other, tuple | list) and self._built() == tuple(other)

    def __hash__(self) -> int:
        return hash(self._built())

    def __repr__(self) -> str:
        return repr(self._built())


def rate(part: int | Decimal, whole: int | Decimal) -> float | None:
    """``part / whole``, or ``None`` when ``whole`` is zero (no base, no rate)."""
    return float(part) / float(whole) if whole else None


def _moment(instant: datetime, tz: tzinfo, end: bool) -> str:
    local = instant.astimezone(tz)
    if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
        return f"{local:%Y-%m-%d %H:%M}"
    # An exclusive end at midnight covers the day before it, whole.
    return f"{(local - timedelta(days=1)) if end else local:%Y-%m-%d}"


def covering(since: datetime | None, until: datetime, tz: tzinfo) -> str:
    """The time a report covers, as its title states it, in the business time zone:
    ``2026-05-04 to 2026-06-07`` (whole days, both included), with the time of
    day where a bound is not at midnight, and ``up to 2026-06-07`` without a start."""
    last = _moment(until, tz, end=True)
    return f"up to {last}" if since is None else f"{_moment(since, tz, end=False)} to {last}"


def format_value(value: Any, percent: bool = False) -> str:
    """How a cell reads in a text table."""
    if value is None:
        return "-"
    if percent and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@attrs.frozen(kw_only=True)
class Report:
    """Base of every analytics result.

    Subclasses add their own fields (the parameters they were computed
    with, richer structures such as a matrix) and set :attr:`columns`,
    :attr:`rows` and :attr:`title`.
    """

    #: Columns shown as percentages in tables.
    percent_columns: ClassVar[frozenset[str]] = frozenset()

    title: str
    columns: tuple[str, ...]
    #: A tuple of row tuples (:class:`ColumnRows` for a report with a row per user, built on first read).
    rows: Sequence[Row]
    #: The time the report covers, as its title states it (see :func:`covering`).
    covers: str = ""
    #: Lines printed under the table (what a ``*`` marks).
    footnotes: tuple[str, ...] = ()

    def is_percent(self, column: str) -> bool:
        """Whether ``column`` holds rates shown as percentages."""
        return column in self.percent_columns

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_csv(self) -> str:
        """The rows as CSV text with a header line (money as ``12.30``, rates as fractions)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else _plain(v) for v in row])
        return out.getvalue()

    def to_json(self, *, indent: int | None = None) -> str:
        """``{"title": ..., "columns": [...], "rows": [{column: value}, ...]}`` as JSON
        (money as strings so no precision is lost)."""
        payload: dict[str, Any] = {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [{k: _plain(v) for k, v in row.items()} for row in self.as_dicts()],
        }
        if self.footnotes:
            payload["notes"] = list(self.footnotes)
        return json.dumps(payload, ensure_ascii=False, indent=indent)

    def cells(self) -> list[list[str]]:
        """Every row formatted as text, as in :meth:`__str__`."""
        flags = [self.is_percent(c) for c in self.columns]
        return [[format_value(v, p) for v, p in zip(row, flags, strict=True)] for row in self.rows]

    def __str__(self) -> str:
        right = [_numeric_column(self.rows, i) for i in range(len(self.columns))]
        return "\n".join([render_text(self.title, self.columns, self.cells(), right), *self.footnotes])

    def to_rich(self) -> RenderableType:
        """A :class:`rich.table.Table` of the rows (numbers right-aligned)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table()
        numeric = [_numeric_column(self.rows, i) for i in range(len(self.columns))]
        for column, right in zip(self.columns, numeric, strict=True):
            table.add_column(column, justify="right" if right else "left")
        for cells in self.cells():
            table.add_row(*cells)
        # The title goes above the table rather than into it, so a narrow table
        # does not wrap a long title over several lines.
        return Group(Text(self.title, style="bold"), table, *(Text(note, style="dim") for note in self.footnotes))


def _numeric_column(rows: Sequence[Row], index: int) -> bool:
    values = [r[index] for r in rows if r[index] is not None]
    return bool(values) and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values)


def render_text(title: str, columns: Sequence[str], cells: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """An aligned plain-text table (numbers right-aligned)."""
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True))

    lines = [title, line(columns).rstrip(), "  ".join("-" * w for w in widths)]
    lines.extend(line(row).rstrip() for row in cells)
    if not cells:
        lines.append("(no rows)")
    return "\n".join(lines)
