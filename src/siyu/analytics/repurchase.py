"""Repurchase rate: of the users who first bought in a period, how many
bought again within a window of their first order.

A buyer *repurchased* when their second counted order (not fully refunded)
was paid at most ``window`` after the first and before ``until``.
``complete`` tells whether every buyer of the row had the whole window
before ``until``; an incomplete row's rate can still grow, so tables mark
it ``*`` and the chart draws its bar hatched.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import attrs

from .._clock import to_us
from ._time import buckets, label
from .results import INCOMPLETE, Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from ..storage.base import Transaction

__all__ = ["RepurchaseReport", "repurchase_report", "span"]


@attrs.frozen(kw_only=True)
class RepurchaseReport(Report):
    """``rows``: ``(first_order_period, buyers, repurchased, rate, complete)``,
    oldest period first, then a ``(all)`` row."""

    percent_columns: ClassVar[frozenset[str]] = frozenset({"rate"})

    window: timedelta
    period: str
    since: datetime | None
    until: datetime

    def cells(self) -> list[list[str]]:
        cells = super().cells()
        for row, cell in zip(self.rows, cells, strict=True):
            if not row[4]:
                cell[0] += INCOMPLETE
        return cells

    @property
    def rate(self) -> float | None:
        """The rate over every buyer in range."""
        value = self.rows[-1][3]
        assert value is None or isinstance(value, float)
        return value


def span(window: timedelta) -> str:
    """A window as the titles say it: ``90 days``, ``1 day``, ``0.5 days``."""
    days = window / timedelta(days=1)
    return f"{days:g} days" if days != 1 else "1 day"


def repurchase_report(
    tx: Transaction, window: timedelta, period: str, since: datetime | None, until: datetime, tz: tzinfo
) -> RepurchaseReport:
    until_us, window_us = to_us(until), window // timedelta(microseconds=1)
    since_us = None if since is None else to_us(since)
    history = [h for h in tx.analytics.buyer_history(until_us) if since_us is None or h[1] >= since_us]
    rows: list[tuple[object, ...]] = []
    start = since  # what the title says the report covers: every first order when no since is given
    if history:
        start = since if since is not None else datetime.fromtimestamp(min(h[1] for h in history) / 1e6, tz)
        bounds = buckets(start, until, period, tz)
        start = since if since is not None else bounds[0]
        bounds_us = [to_us(b) for b in bounds]
        stats = [[0, 0, True] for _ in range(len(bounds) - 1)]
        for _, first, second in history:
            cell = stats[bisect.bisect_right(bounds_us, first) - 1]
            cell[0] += 1
            if second is not None and second - first <= window_us:
                cell[1] += 1
            if first + window_us > until_us:
                cell[2] = False
        for i, (buyers, again, complete) in enumerate(stats):
            if buyers:
                rows.append((label(bounds[i], period, tz), buyers, again, rate(again, buyers), complete))
    total = sum(int(r[1]) for r in rows)  # type: ignore[call-overload]
    again_total = sum(int(r[2]) for r in rows)  # type: ignore[call-overload]
    rows.append(("(all)", total, again_total, rate(again_total, total), all(bool(r[4]) for r in rows)))
    notes = () if rows[-1][4] else (
        f"{INCOMPLETE} some first orders of the period came less than {span(window)} before "
        f"{until.astimezone(tz):%Y-%m-%d %H:%M}: their window is still open and the rate can still grow",)
    covers = covering(start, until, tz)
    return RepurchaseReport(
        title=f"repurchase within {span(window)}, by {period} of first order, {covers}",
        covers=covers,
        columns=("first_order", "buyers", "repurchased", "rate", "complete"),
        rows=tuple(rows),
        footnotes=notes,
        window=window,
        period=period,
        since=since,
        until=until,
    )
