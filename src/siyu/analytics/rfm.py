"""RFM: recency, frequency and monetary scores per buyer, by quantiles.

Buyers are users with at least one counted order (not fully refunded)
paid before ``until``. R ranks the last order's time, F the number of
counted orders, M the money paid net of refunds.

A score places a buyer by the buyers who rank strictly below them: with
``n`` buyers and ``below`` of them holding a smaller value, the score is
``ceil(quantiles * (below + 1) / n)``. Ties share a score, and it is the
score of the tie group's lowest place, so a value most buyers share scores
low: when most buyers ordered once they all score F = 1 (given at least
``quantiles`` buyers), and a buyer with fewer orders, an older last order or
less money never scores higher than one with more. The single most recent /
most frequent / biggest spender scores ``quantiles``. Scores move only when
orders change (not with the clock). They are the segment metrics
``rfm.r``, ``rfm.f`` and ``rfm.m`` (5 quantiles):
``ws.segments.count("rfm.r >= 4 and rfm.f >= 4")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import numpy as np
import numpy.typing as npt

from .._clock import to_us
from .results import ColumnRows, Report, covering

if TYPE_CHECKING:
    from datetime import tzinfo

    from rich.console import RenderableType

    from .facts import Column, UserFacts

__all__ = ["RfmReport", "rfm_report"]

_DAY_US = 86_400_000_000
_CENT = Decimal("0.01")


@attrs.frozen(kw_only=True)
class RfmReport(Report):
    """Per-buyer scores.

    ``rows``: ``(user_id, r, f, m, recency_days, orders, spend)`` by user id;
    ``recency_days`` is whole days from the last order to ``until``,
    ``spend`` yuan net of refunds. ``str()`` shows the R × F grid (how many
    buyers in each cell), as does :meth:`grid`.
    """

    quantiles: int
    until: datetime

    def scores(self) -> dict[int, tuple[int, int, int]]:
        """``{user_id: (r, f, m)}``."""
        return {row[0]: (row[1], row[2], row[3]) for row in self.rows}

    def grid(self, y: str = "r", x: str = "f") -> list[list[int]]:
        """Buyers per cell: ``grid()[i][j]`` counts buyers with ``y`` score
        ``quantiles - i`` (best first) and ``x`` score ``j + 1``."""
        pick = {"r": 1, "f": 2, "m": 3}
        q = self.quantiles
        cells = [[0] * q for _ in range(q)]
        yi, xi = pick[y], pick[x]
        for row in self.rows:
            cells[q - row[yi]][row[xi] - 1] += 1
        return cells

    def summary(self) -> Report:
        """The R × F grid as a small report (what ``str()`` prints)."""
        q = self.quantiles
        rows = tuple((f"R={q - i}", *cells) for i, cells in enumerate(self.grid()))
        return Report(title=f"{self.title}: buyers per R (rows) x F (columns)",
                      columns=("", *(f"F={j}" for j in range(1, q + 1))), rows=rows)

    def __str__(self) -> str:
        return str(self.summary())

    def to_rich(self) -> RenderableType:
        return self.summary().to_rich()


def buyer_columns(facts: UserFacts, until_us: int) -> tuple[Column, Column, Column, Column]:
    """``(user ids, last paid_at, counted orders, net fen)`` of buyers before ``until_us``, by user id.

    The per-user columns hold every counted order. When some were paid at or after
    ``until_us`` (a report for a past moment, or orders dated ahead), those late orders are
    taken back out of the columns of the few users who placed them; only when most orders
    are late are the per-order columns grouped instead."""
    if until_us > facts.max_paid():
        uids = np.flatnonzero(facts.orders > 0)
        return uids, facts.last_paid[uids], facts.orders[uids], facts.net[uids]
    owner, paid = facts.order_user, facts.order_paid
    counted = (owner >= 0) & (facts.order_counted == 1)
    late = np.flatnonzero(counted & (paid >= until_us))
    if 4 * len(late) > len(owner):
        return _grouped(facts, counted & (paid < until_us))
    late_users = owner[late]
    orders = facts.orders.copy()
    orders -= np.bincount(late_users, minlength=len(orders))[:len(orders)]
    net = facts.net.copy()
    # Integer sums: np.subtract.at keeps fen exact where bincount's weights would go through floats.
    np.subtract.at(net, late_users, facts.order_net[late])
    # A late order may have been a user's last: their last order before `until` is re-read from their orders.
    touched = np.zeros(len(orders), dtype=bool)
    touched[late_users] = True
    mine = counted & (paid < until_us)
    mine[mine] = touched[owner[mine]]
    last = facts.last_paid.copy()
    last[late_users] = -1
    np.maximum.at(last, owner[mine], paid[mine])
    uids = np.flatnonzero(orders > 0)
    return uids, last[uids], orders[uids], net[uids]


def _grouped(facts: UserFacts, mask: npt.NDArray[np.bool_]) -> tuple[Column, Column, Column, Column]:
    """The buyer columns grouped from the orders ``mask`` selects."""
    users, paid, net = facts.order_user[mask], facts.order_paid[mask], facts.order_net[mask]
    size = int(users.max(initial=-1)) + 1
    counts = np.bincount(users, minlength=size)
    nets = np.zeros(size, dtype=np.int64)
    np.add.at(nets, users, net)
    lasts = np.full(size, -1, dtype=np.int64)
    np.maximum.at(lasts, users, paid)
    uids = np.flatnonzero(counts)
    return uids, lasts[uids], counts[uids].astype(np.int64), nets[uids]


def score_columns(values: Column, quantiles: int) -> Column:
    """``ceil(quantiles * (below(v) + 1) / n)`` for each ``v``, ``below(v)`` = how many values are < ``v``.

    ``ceil(q * (b + 1) / n) = 1 + #{k in 1..q-1 : b + 1 > k * n / q}``, and for
    an integer ``b`` that is ``b >= floor(k * n / q)``, which holds exactly
    when ``v`` is above the value at sorted position ``floor(k * n / q) - 1``
    (always, when that position is before the first). So q - 1 order
    statistics (``np.partition``, no full sort) and a binary search per value
    score the whole column."""
    n = len(values)
    if not n:
        return values
    positions = [k * n // quantiles for k in range(1, quantiles)]
    always = sum(1 for p in positions if p == 0)
    wanted = sorted({p - 1 for p in positions if p > 0})
    parted = np.partition(values, wanted) if wanted else values
    thresholds = np.array([parted[p - 1] for p in positions if p > 0], dtype=values.dtype)
    scores: Column = 1 + always + np.searchsorted(thresholds, values, side="left")
    return scores


def rfm_scores(rows: Sequence[tuple[int, int, int, int]], quantiles: int) -> dict[int, tuple[int, int, int]]:
    """``{user_id: (r, f, m)}`` for ``(user_id, last_paid, orders, net)`` rows."""
    if not rows:
        return {}
    uid, last, count, net = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    scores = [score_columns(axis, quantiles).tolist() for axis in (last, count, net)]
    return dict(zip(uid.tolist(), zip(*scores, strict=True), strict=True))


def rfm_report(facts: UserFacts, quantiles: int, until: datetime, tz: tzinfo) -> RfmReport:
    until_us = to_us(until)
    uids, lasts, counts, nets = buyer_columns(facts, until_us)
    scores = [score_columns(axis, quantiles) for axis in (lasts, counts, nets)]
    recency = (until_us - lasts) // _DAY_US
    # Scored on whole columns; the row tuples (and the Decimals) are only built if the rows are read.
    rows = ColumnRows((uids, *scores, recency, counts, nets), (None,) * 6 + (_CENT.__mul__,))
    covers = covering(None, until, tz)
    return RfmReport(
        title=f"RFM ({quantiles} quantiles, {len(rows)} buyers), orders {covers}",
        covers=covers,
        columns=("user_id", "r", "f", "m", "recency_days", "orders", "spend"),
        rows=rows,
        quantiles=quantiles,
        until=until,
    )
