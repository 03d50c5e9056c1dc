"""Presales (预售 / 定金): a deposit now, the balance in a window, shipping by a promised date."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from ..money import to_yuan

__all__ = ["Presale", "PresaleOrder"]


@attrs.frozen(kw_only=True)
class Presale:
    """A presale of ``sku`` at ``price_fen`` a unit.

    ``deposit_kind`` is ``"deposit"`` (定金: kept by the shop if the buyer does not
    pay the balance, returned double if the shop defaults; at most 20 % of the
    price) or ``"prepayment"`` (订金: an ordinary prepayment, always refundable).
    ``expansion_fen`` is what the deposit is worth at balance payment (定金膨胀; the
    deposit itself when 0). Deposits are taken in ``[starts_at, ends_at)``, the
    balance in ``[balance_from, balance_until)``; paid orders ship within
    ``deliver_days`` of the balance payment."""

    id: int
    name: str
    sku: str
    price_fen: int
    deposit_fen: int
    deposit_kind: str
    expansion_fen: int
    stock: int
    held: int
    starts_at: datetime
    ends_at: datetime
    balance_from: datetime
    balance_until: datetime
    deliver_days: int
    per_user: int | None = None
    double_refund: bool = True
    status: str = "open"
    created_at: datetime | None = None

    @property
    def price(self) -> Decimal:
        return to_yuan(self.price_fen)

    @property
    def deposit(self) -> Decimal:
        return to_yuan(self.deposit_fen)

    @property
    def credit_fen(self) -> int:
        """What one unit's deposit counts for at balance payment."""
        return max(self.deposit_fen, self.expansion_fen)

    @property
    def balance_fen(self) -> int:
        """The balance due per unit."""
        return self.price_fen - self.credit_fen


@attrs.frozen(kw_only=True)
class PresaleOrder:
    """One buyer's deposit order. ``status``: ``deposit_paid`` (units held),
    ``paid`` (balance paid, ``order_id`` recorded in ``ws.orders``), ``shipped``,
    ``expired`` (balance not paid in time: units released, deposit handled by its
    kind), ``refunded`` (the shop cancelled or missed the ship date)."""

    id: int
    presale_id: int
    user_id: int
    qty: int
    deposit_fen: int
    status: str
    key: str
    at: datetime
    updated_at: datetime | None = None
    order_id: int | None = None
    ship_by: datetime | None = None
    refund_fen: int = 0

    @property
    def refund(self) -> Decimal:
        return to_yuan(self.refund_fen)
