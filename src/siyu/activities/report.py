"""One table for every flash sale, bargain and draw: who took part and what it cost.

Columns: ``participants`` (buyers who reserved, users who started an attempt,
users who drew), ``helpers`` (bargain helpers), ``completions`` (paid
reservations, succeeded or bought attempts, winning draws), ``units`` (units
sold, prizes awarded), ``gmv`` (what buyers paid, yuan), ``discount`` (list
price minus activity price over the units sold), ``prize_cost`` (the stated
value of prizes awarded), and ``new_users`` (people taking part -- helpers
included -- whose account was created inside the activity's window).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from ..analytics.results import Report
from ..models.activities import AttemptStatus, PrizeKind, ReservationStatus
from ..money import to_yuan

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["ActivityReport", "ActivityReports"]

COLUMNS = ("kind", "id", "name", "participants", "helpers", "completions", "units", "gmv", "discount",
           "prize_cost", "new_users")


@attrs.frozen(kw_only=True)
class ActivityReport(Report):
    """``rows``: one per activity, with the :data:`COLUMNS`."""


def _new_users(tx: Transaction, users: Iterable[int], starts_at: datetime, ends_at: datetime) -> int:
    count = 0
    for uid in sorted(set(users)):
        user = tx.users.get(uid)
        if user is not None and starts_at <= user.created_at < ends_at:
            count += 1
    return count


class ActivityReports:
    """``ws.activities``: the per-activity report (``siyu report activities``)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def report(self, *, kind: str | None = None) -> ActivityReport:
        """Every activity's numbers (only ``"flash_sale"``, ``"bargain"`` or ``"draw"`` with ``kind``)."""
        rows: list[tuple[object, ...]] = []
        with self._uow.read() as tx:
            prices = {p.sku: p.price_fen for p in tx.products.all()}
            if kind in (None, "flash_sale"):
                for sale in tx.flash_sales.sales():
                    res = tx.flash_sales.reservations(sale_id=sale.id)
                    people = {r.user_id for r in res}
                    paid = [r for r in res if r.status is ReservationStatus.PAID]
                    list_fen = prices.get(sale.sku, sale.price_fen)
                    rows.append(("flash_sale", sale.id, sale.name, len(people), 0, len(paid), sale.sold,
                                 to_yuan(sale.sold * sale.price_fen),
                                 to_yuan(max(0, list_fen - sale.price_fen) * sale.sold), Decimal("0.00"),
                                 _new_users(tx, people, sale.starts_at, sale.ends_at)))
            if kind in (None, "bargain"):
                for b in tx.bargains.bargains():
                    attempts = tx.bargains.attempts(bargain_id=b.id)
                    owners = {a.user_id for a in attempts}
                    helpers = {h.helper_id for a in attempts for h in tx.bargains.helps(a.id)}
                    done = [a for a in attempts if a.status in (AttemptStatus.SUCCEEDED, AttemptStatus.BOUGHT)]
                    bought = [a for a in attempts if a.status is AttemptStatus.BOUGHT]
                    rows.append(("bargain", b.id, b.name, len(owners), len(helpers), len(done), len(bought),
                                 to_yuan(sum(a.current_fen for a in bought)),
                                 to_yuan(sum(a.price_fen - a.current_fen for a in bought)), Decimal("0.00"),
                                 _new_users(tx, owners | helpers, b.starts_at, b.ends_at)))
            if kind in (None, "draw"):
                for d in tx.draws.draws():
                    records = tx.draws.records(d.id)
                    won = [r for r in records if d.prizes[r.prize].kind is not PrizeKind.MISS]
                    people = {r.user_id for r in records}
                    rows.append(("draw", d.id, d.name, len(people), 0, len(won), len(won), Decimal("0.00"),
                                 Decimal("0.00"), to_yuan(sum(d.prizes[r.prize].value_fen for r in won)),
                                 _new_users(tx, people, d.starts_at, d.ends_at)))
        return ActivityReport(title="activities: flash sales, bargains, draws", columns=COLUMNS, rows=tuple(rows))
