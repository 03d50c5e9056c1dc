"""Repurchase rate: of the users who first bought in a period, how many
bought again within a window of their first order.

A buyer *repurchased* when their second counted order (not fully refunded)
was paid at most ``window`` after the first and before ``until``.
``complete`` tells whether every buyer of the row had the whole window
before ``until``; an incomplete row's rate can still grow, so tables mark
it ``*`` and the chart draws its bar hatched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np

from .._clock import to_us
from ._time import buckets, label
from .results import INCOMPLETE, Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from .facts import UserFacts

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
    facts: UserFacts, window: timedelta, period: str, since: datetime | None, until: datetime, tz: tzinfo
) -> RepurchaseReport:
    until_us, window_us = to_us(until), window // timedelta(microseconds=1)
    # First-time buyers in range, and their second counted order if it was paid before `until`.
    first = facts.first_paid
    buyers = first < until_us
    if since is not None:
        buyers &= first >= to_us(since)
    firsts = first[buyers]
    seconds = facts.second_paid[buyers]
    rows: list[tuple[object, ...]] = []
    start = since  # what the title says the report covers: every first order when no since is given
    if len(firsts):
        start = since if since is not None else datetime.fromtimestamp(int(firsts.min()) / 1e6, tz)
        bounds = buckets(start, until, period, tz)
        start = since if since is not None else bounds[0]
        bounds_us = np.array([to_us(b) for b in bounds], dtype=np.int64)
        cell = np.searchsorted(bounds_us, firsts, side="right") - 1
        n = len(bounds) - 1
        counts = np.bincount(cell, minlength=n)
        again = np.bincount(cell, weights=(seconds < until_us) & (seconds - firsts <= window_us), minlength=n)
        open_ = np.bincount(cell, weights=firsts + window_us > until_us, minlength=n)
        for i in np.flatnonzero(counts).tolist():
            buyers_i, again_i = int(counts[i]), int(again[i])
            rows.append((label(bounds[i], period, tz), buyers_i, again_i, rate(again_i, buyers_i), not open_[i]))
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
