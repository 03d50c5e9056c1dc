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

from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from .._clock import to_us
from .results import Report, covering

if TYPE_CHECKING:
    from datetime import tzinfo

    from rich.console import RenderableType

    from ..storage.base import Transaction

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


def _scorer(values: Sequence[int], quantiles: int) -> Callable[[int], int]:
    """``v -> ceil(quantiles * (below(v) + 1) / n)``, ``below(v)`` = how many of ``values`` are < ``v``.

    ``ceil(q * (b + 1) / n) = 1 + #{k in 1..q-1 : b + 1 > k * n / q}``, and for
    an integer ``b`` that is ``b >= floor(k * n / q)``, which holds exactly
    when ``v`` is above the value at sorted position ``floor(k * n / q) - 1``
    (always, when that position is before the first). So q - 1 order
    statistics and a bisection per user score everyone after a single sort."""
    ordered = sorted(values)
    n = len(ordered)
    positions = [k * n // quantiles for k in range(1, quantiles)]
    always = sum(1 for p in positions if p == 0)
    thresholds = [ordered[p - 1] for p in positions if p > 0]
    return lambda v: 1 + always + bisect_left(thresholds, v)


def rfm_scores(rows: Sequence[tuple[int, int, int, int]], quantiles: int) -> list[tuple[int, int, int]]:
    """``(r, f, m)`` for each ``(user_id, last_paid, orders, net)`` row, in order."""
    if not rows:
        return []
    _, lasts, counts, nets = zip(*rows, strict=True)
    return list(zip(*(map(_scorer(axis, quantiles), axis) for axis in (lasts, counts, nets)), strict=True))


def rfm_report(tx: Transaction, quantiles: int, until: datetime, tz: tzinfo) -> RfmReport:
    until_us = to_us(until)
    values = tx.analytics.buyer_values(until_us)
    rows: tuple[tuple[int, int, int, int, int, int, Decimal], ...] = ()
    if values:
        # Column-wise with C-level map/zip: a million buyers stay well under a second.
        uids, lasts, counts, nets = zip(*values, strict=True)
        scores = [map(_scorer(axis, quantiles), axis) for axis in (lasts, counts, nets)]
        recency = map(_DAY_US.__rfloordiv__, map(until_us.__sub__, lasts))
        rows = tuple(zip(uids, *scores, recency, counts, map(_CENT.__mul__, nets), strict=True))
    covers = covering(None, until, tz)
    return RfmReport(
        title=f"RFM ({quantiles} quantiles, {len(rows)} buyers), orders {covers}",
        covers=covers,
        columns=("user_id", "r", "f", "m", "recency_days", "orders", "spend"),
        rows=rows,
        quantiles=quantiles,
        until=until,
    )
