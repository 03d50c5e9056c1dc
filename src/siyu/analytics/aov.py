"""Average order value (客单价): money paid per counted order, by channel,
buyer source or period.

Counted orders are those not fully refunded, paid in ``[since, until)``;
revenue is net of refunds. ``per_buyer`` is revenue / distinct buyers. By
period, a last period still running at ``until`` (``report.running``) is
marked ``*`` in tables and hatched in the chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

import attrs
import numpy as np

from .._clock import to_us
from ..errors import ValidationError
from ..money import to_yuan
from ._time import PERIODS, buckets, label
from .facts import NEVER, distinct_per_group
from .results import INCOMPLETE, Report, covering

if TYPE_CHECKING:
    from datetime import tzinfo

    from .facts import UserFacts

__all__ = ["AOV_BREAKDOWNS", "AovReport", "aov_report", "check_aov_by"]

AOV_BREAKDOWNS = (None, "channel", "source", *PERIODS)
_CENT = Decimal("0.01")


def check_aov_by(by: object) -> str | None:
    if by not in AOV_BREAKDOWNS:
        raise ValidationError(
            f"by={by!r} is not an AOV breakdown; use None, 'channel', 'source', 'day', 'week' or 'month'"
        )
    return by  # type: ignore[return-value]


def _per(revenue_fen: int, n: int) -> Decimal | None:
    return (Decimal(revenue_fen) / 100 / n).quantize(_CENT, ROUND_HALF_UP) if n else None


@attrs.frozen(kw_only=True)
class AovReport(Report):
    """``rows``: ``(group, orders, buyers, revenue, aov, per_buyer)``; with a
    breakdown, groups by revenue (periods oldest first), then ``(all)``."""

    by: str | None
    since: datetime | None
    until: datetime
    #: Whether the last period (with ``by`` a period) had not ended by ``until``: its row is partial.
    running: bool = False

    def cells(self) -> list[list[str]]:
        cells = super().cells()
        if self.running and len(cells) > 1:
            cells[-2][0] += INCOMPLETE
        return cells

    @property
    def aov(self) -> Decimal | None:
        """AOV over every counted order in range."""
        value = self.rows[-1][4]
        assert value is None or isinstance(value, Decimal)
        return value


Totals = tuple[str | int | None, int, int, int]


def order_totals(
    facts: UserFacts, since: int | None, until: int, by: str | None, bounds: Sequence[int] = ()
) -> tuple[list[Totals], Totals]:
    """Counted orders paid in ``[since, until)`` grouped by ``by`` (``None``, ``"channel"``,
    ``"source"`` of the buyer, ``"period"``: the bucket in ``bounds``), as ``(key, orders, buyers, net fen)``,
    and the same over them all (one pass over the orders for both); zeros when nothing matched."""
    paid = facts.order_paid
    mask = (facts.order_user >= 0) & (facts.order_counted == 1) & (paid < until)
    if since is not None:
        mask &= paid >= since
    every = np.flatnonzero(mask)
    buyers_seen = np.zeros(len(facts.order_user) and int(facts.order_user.max()) + 1, dtype=bool)
    buyers_seen[facts.order_user[every]] = True
    total: Totals = (None, len(every), int(np.count_nonzero(buyers_seen)), int(facts.order_net[every].sum()))
    if by is None:
        return [total], total
    labels: Sequence[str | int | None]
    if by == "channel":
        codes, labels = facts.order_channel[mask], facts.channels
    elif by == "source":
        codes, labels = facts.attribution["source"][facts.order_user[mask]], facts.labels["source"]
    else:
        edges = np.array(bounds, dtype=np.int64)
        mask &= (paid >= edges[0]) & (paid < edges[-1])
        codes = np.searchsorted(edges, paid[mask], side="right") - 1
        labels = list(range(len(bounds) - 1))
    users, nets = facts.order_user[mask], facts.order_net[mask]
    n = len(labels)
    orders = np.bincount(codes, minlength=n)
    fen = np.bincount(codes, weights=nets, minlength=n)
    buyers = distinct_per_group(codes, users, n)
    return [(labels[i], int(orders[i]), int(buyers[i]), int(fen[i])) for i in np.flatnonzero(orders).tolist()], total


def aov_report(facts: UserFacts, by: str | None, since: datetime | None, until: datetime, tz: tzinfo) -> AovReport:
    since_us, until_us = (None if since is None else to_us(since)), to_us(until)
    rows: list[tuple[object, ...]] = []
    bounds: list[datetime] = []
    total: Totals | None = None
    if by is not None:
        key: str | None = by
        if by in PERIODS:
            start = since
            if start is None:
                first = int(facts.first_paid.min(initial=NEVER))
                start = datetime.fromtimestamp(first / 1e6, tz) if first < until_us else until
            if start < until:
                bounds = buckets(start, until, by, tz)
            key = "period"
        groups: list[Totals] = []
        if key != "period" or bounds:
            groups, total = order_totals(facts, since_us, until_us, key, [to_us(b) for b in bounds])
        if key == "period":
            groups.sort(key=lambda g: int(g[0] or 0))
            labelled = [(label(bounds[int(g[0] or 0)], by, tz), *g[1:]) for g in groups]
        else:
            groups.sort(key=lambda g: (-g[3], str(g[0])))
            labelled = [("(none)" if g[0] is None else str(g[0]), *g[1:]) for g in groups]
        for name, n, buyers, fen in labelled:
            rows.append((name, n, buyers, to_yuan(int(fen)), _per(int(fen), int(n)), _per(int(fen), int(buyers))))
    _, n, buyers, fen = total or order_totals(facts, since_us, until_us, None)[1]
    rows.append(("(all)", n, buyers, to_yuan(fen), _per(fen, n), _per(fen, buyers)))
    # Only a last row that is the running period is partial (periods with no orders have no row).
    running = bool(bounds) and bounds[-1] > until and len(rows) > 1 and rows[-2][0] == label(bounds[-2], str(by), tz)
    notes = () if not running else (
        f"{INCOMPLETE} {rows[-2][0]} had not ended by {until.astimezone(tz):%Y-%m-%d %H:%M}: it is counted so far",)
    covers = covering(bounds[0] if bounds and since is None else since, until, tz)
    return AovReport(
        title=f"average order value{' by ' + by if by else ''}, {covers}",
        covers=covers,
        footnotes=notes,
        running=running,
        columns=("group", "orders", "buyers", "revenue", "aov", "per_buyer"),
        rows=tuple(rows),
        by=by,
        since=since,
        until=until,
    )
