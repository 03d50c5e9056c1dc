"""New vs returning buyers per period.

In each period (day, week from Monday, calendar month in the business time
zone), a buyer is *new* if their first counted order ever was paid in that
period, *returning* if they had bought before it. Orders and revenue (net of
refunds) are split the same way. A last period still running at ``until``
(``report.running``) counts up to ``until`` only: tables mark it ``*`` and
the chart hatches its bar.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np

from .._clock import to_us
from ..money import to_yuan
from ._time import buckets, label
from .facts import distinct_per_group
from .results import INCOMPLETE, Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from .facts import UserFacts

__all__ = ["NewVsReturningReport", "new_vs_returning_report"]


@attrs.frozen(kw_only=True)
class NewVsReturningReport(Report):
    """``rows``: ``(period, buyers, new, returning, returning_share, orders_new,
    orders_returning, revenue_new, revenue_returning)``, oldest first."""

    percent_columns: ClassVar[frozenset[str]] = frozenset({"returning_share"})

    period: str
    since: datetime
    until: datetime
    #: Whether the last period had not ended by ``until``: its numbers are partial.
    running: bool = False

    def cells(self) -> list[list[str]]:
        cells = super().cells()
        if self.running and cells:
            cells[-1][0] += INCOMPLETE
        return cells


def buyers_by_bucket(facts: UserFacts, bounds: list[int]) -> dict[tuple[int, bool], tuple[int, int, int]]:
    """Counted orders per bucket, split by whether the buyer's first counted order ever is in
    that same bucket: ``{(bucket, new): (buyers, orders, net fen)}``."""
    edges = np.array(bounds, dtype=np.int64)
    paid = facts.order_paid
    mask = (facts.order_user >= 0) & (facts.order_counted == 1) & (paid >= edges[0]) & (paid < edges[-1])
    users, nets = facts.order_user[mask], facts.order_net[mask]
    bucket = np.searchsorted(edges, paid[mask], side="right") - 1
    first = facts.first_paid[users]
    new = (first >= edges[0]) & (np.searchsorted(edges, first, side="right") - 1 == bucket)
    key = bucket * 2 + new
    n = 2 * (len(bounds) - 1)
    orders = np.bincount(key, minlength=n)
    fen = np.bincount(key, weights=nets, minlength=n)
    buyers = distinct_per_group(key, users, n)
    return {(k // 2, bool(k % 2)): (int(buyers[k]), int(orders[k]), int(fen[k]))
            for k in np.flatnonzero(orders).tolist()}


def new_vs_returning_report(
    facts: UserFacts, period: str, since: datetime, until: datetime, tz: tzinfo
) -> NewVsReturningReport:
    bounds = buckets(since, until, period, tz)
    bounds_us = [to_us(b) for b in bounds]
    bounds_us[-1] = min(bounds_us[-1], to_us(until))
    cells = buyers_by_bucket(facts, bounds_us)
    rows = []
    for i in range(len(bounds) - 1):
        nu, nn, ns = cells.get((i, True), (0, 0, 0))
        ru, rn, rs = cells.get((i, False), (0, 0, 0))
        rows.append((label(bounds[i], period, tz), nu + ru, nu, ru, rate(ru, nu + ru), nn, rn,
                     to_yuan(ns), to_yuan(rs)))
    running = bounds[-1] > until
    notes = () if not running else (
        f"{INCOMPLETE} {rows[-1][0]} had not ended by {until.astimezone(tz):%Y-%m-%d %H:%M}: it is counted so far",)
    covers = covering(bounds[0], until, tz)
    return NewVsReturningReport(
        title=f"new vs returning buyers per {period}, {covers}",
        covers=covers,
        footnotes=notes,
        running=running,
        columns=("period", "buyers", "new", "returning", "returning_share", "orders_new", "orders_returning",
                 "revenue_new", "revenue_returning"),
        rows=tuple(rows),
        period=period,
        since=since,
        until=until,
    )
