"""Presales (预售 / 定金): a deposit holds a unit, the balance buys it, the shop ships by a date.

A 定金 (``deposit_kind="deposit"``) may not exceed 20 % of the price (民法典
Art. 586): configuring more is refused unless the presale calls it a refundable
订金 (``"prepayment"``). Deposits hold units through one conditional update, so
100 buyers racing for 10 units get 10. The balance is accepted only inside its
window and is recorded as an order through ``ws.orders`` (the deposit, or its
expanded value, counted towards the price). When the window closes unpaid,
:meth:`Presales.expire_due` releases the units once and keeps a 定金 or refunds a
订金. If the shop cancels, or a paid order is not shipped by its promised date,
buyers are refunded automatically -- a 定金 twice over where ``double_refund``
says so. A product cannot be in a presale and another activity (a flash sale,
a 砍价, another presale) at overlapping times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from .._clock import aware
from .._validation import check_id, check_int, check_key, check_optional_id, check_text
from ..errors import CapExceeded, IdempotencyConflict, InvalidTransition, NotFound, PolicyViolation, ValidationError
from ..events import PresaleChanged
from ..models.presale import Presale, PresaleOrder
from ..money import Money, to_fen, to_yuan
from ..services._common import require_user
from ..services.products import Products

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.orders import Orders
    from ..services.promotions import Promotions
    from ..storage.base import Transaction

__all__ = ["DEPOSIT_KINDS", "MAX_DEPOSIT_RATIO", "Presales"]

DEPOSIT_KINDS = ("deposit", "prepayment")
#: 民法典 Art. 586: a 定金 above 20 % of the contract is not a 定金.
MAX_DEPOSIT_RATIO = Decimal("0.20")


class Presales:
    """``ws.presales``: presale activities, deposits, balances, expiry, refunds."""

    name = "presales"

    def __init__(self, uow: UnitOfWork, *, orders: Orders, promotions: Promotions) -> None:
        self._uow = uow
        self._orders = orders
        self._promotions = promotions

    # -- the activity -----------------------------------------------------------------------
    def create(self, name: str, *, sku: str, price: Money, deposit: Money, stock: int, starts_at: datetime,
               ends_at: datetime, balance_from: datetime, balance_until: datetime, deliver_days: int,
               deposit_kind: str = "deposit", expansion: Money = 0, per_user: int | None = None,
               double_refund: bool = True) -> Presale:
        """A presale of ``stock`` units of ``sku`` at ``price`` (yuan), ``deposit`` per unit.

        ``expansion`` is what a deposit is worth at balance payment (定金膨胀: pay 20,
        get 50 off; at most the price). The effective price (price less the expanded
        deposit plus the deposit) goes through the margin guard."""
        if deposit_kind not in DEPOSIT_KINDS:
            raise ValidationError(f"deposit_kind={deposit_kind!r} is not one of {', '.join(DEPOSIT_KINDS)}")
        price_fen, deposit_fen = to_fen(price, name="price"), to_fen(deposit, name="deposit")
        expansion_fen = to_fen(expansion, name="expansion")
        if price_fen <= 0 or not 0 < deposit_fen <= price_fen:
            raise ValidationError("price must be > 0 and the deposit between 0 (excluded) and the price")
        if deposit_kind == "deposit" and deposit_fen > price_fen * MAX_DEPOSIT_RATIO:
            raise PolicyViolation(
                f"a 定金 may be at most 20 % of the price ({to_yuan(int(price_fen * MAX_DEPOSIT_RATIO))} of "
                f"{to_yuan(price_fen)}), not {to_yuan(deposit_fen)}; lower it, or take a refundable 订金 with "
                "deposit_kind='prepayment'")
        if expansion_fen and not deposit_fen <= expansion_fen <= price_fen:
            raise ValidationError("expansion must be at least the deposit and at most the price")
        times = [aware(t, n) for t, n in ((starts_at, "starts_at"), (ends_at, "ends_at"),
                                          (balance_from, "balance_from"), (balance_until, "balance_until"))]
        if not times[0] < times[1] <= times[3] or not times[2] < times[3] or times[2] < times[0]:
            raise ValidationError("need starts_at < ends_at <= balance_until, and starts_at <= balance_from < "
                                  "balance_until")
        presale = Presale(
            id=0, name=check_text(name, "name", max_length=64), sku=sku, price_fen=price_fen,
            deposit_fen=deposit_fen, deposit_kind=deposit_kind, expansion_fen=expansion_fen,
            stock=check_int(stock, "stock", minimum=1, maximum=10_000_000), held=0, starts_at=times[0],
            ends_at=times[1], balance_from=times[2], balance_until=times[3],
            deliver_days=check_int(deliver_days, "deliver_days", minimum=1, maximum=365),
            per_user=None if per_user is None else check_int(per_user, "per_user", minimum=1),
            double_refund=bool(double_refund), created_at=self._uow.now())
        self._promotions.check_price(sku, to_yuan(presale.price_fen - presale.credit_fen + presale.deposit_fen),
                                     units=presale.stock, what=f"presale {presale.name!r} price")
        with self._uow.write() as tx:
            Products.require(tx, [sku])
            self._check_overlap(tx, presale)
            presale = attrs.evolve(presale, id=tx.presales.add_presale(presale))
        return presale

    @staticmethod
    def _check_overlap(tx: Transaction, new: Presale) -> None:
        """No product in two activities at once: presales, flash sales, 砍价."""
        start, end = new.starts_at, new.balance_until
        busy = [(f"presale {p.name!r}", p.starts_at, p.balance_until) for p in tx.presales.presales()
                if p.sku == new.sku and p.status == "open"]
        busy += [(f"flash sale {s.name!r}", s.starts_at, s.ends_at) for s in tx.flash_sales.sales()
                 if s.sku == new.sku and getattr(s, "active", True)]
        busy += [(f"砍价 {b.name!r}", b.starts_at, b.ends_at) for b in tx.bargains.bargains()
                 if b.sku == new.sku and b.active]
        for label, other_start, other_end in busy:
            if other_start < end and start < other_end:
                raise PolicyViolation(f"{new.sku} is in {label} from {other_start.isoformat()} to "
                                      f"{other_end.isoformat()}; a product cannot be in two activities at once")

    def get(self, presale_id: int) -> Presale:
        with self._uow.read() as tx:
            return self._presale(tx, check_id(presale_id, "presale_id"))

    @staticmethod
    def _presale(tx: Transaction, pid: int) -> Presale:
        found = tx.presales.presale(pid)
        if found is None:
            raise NotFound(f"no presale with id {pid}")
        return found

    # -- deposits -----------------------------------------------------------------------------
    def reserve(self, presale_id: int, user_id: int, *, qty: int = 1, key: str) -> PresaleOrder:
        """Record a paid deposit for ``qty`` units (call it when the deposit payment
        succeeds): the units are held until the balance is paid or its window ends.
        Refused when sold out or over ``per_user`` (:class:`~siyu.errors.CapExceeded`)
        or outside the deposit window. ``key`` makes it idempotent."""
        pid = check_id(presale_id, "presale_id")
        qty = check_int(qty, "qty", minimum=1, maximum=10_000)
        key = check_key(key)
        now = self._uow.now()
        with self._uow.write() as tx:
            done = tx.presales.order_by_key(key)
            if done is not None:
                if (done.presale_id, done.user_id, done.qty) != (pid, user_id, qty):
                    raise IdempotencyConflict(f"key {key!r} was used for a different deposit")
                return done
            uid = require_user(tx, user_id, lock=True)
            presale = self._presale(tx, pid)
            if presale.status != "open" or not presale.starts_at <= now < presale.ends_at:
                raise PolicyViolation(f"presale {presale.name!r} takes deposits from {presale.starts_at.isoformat()} "
                                      f"to {presale.ends_at.isoformat()}")
            if presale.per_user is not None:
                mine = sum(o.qty for o in tx.presales.orders(presale_id=pid, user_id=uid)
                           if o.status in ("deposit_paid", "paid", "shipped"))
                if mine + qty > presale.per_user:
                    raise CapExceeded(f"user {uid} holds {mine} of presale {presale.name!r}; the limit is "
                                      f"{presale.per_user}")
            if not tx.presales.take_units(pid, qty):
                raise CapExceeded(f"presale {presale.name!r} is sold out")
            order = PresaleOrder(id=0, presale_id=pid, user_id=uid, qty=qty, deposit_fen=presale.deposit_fen * qty,
                                 status="deposit_paid", key=key, at=now)
            oid = tx.presales.add_order(order)
            assert oid is not None  # the key was checked under the member's lock
            tx.emit(PresaleChanged(at=now, presale_order_id=oid, presale_id=pid, user_id=uid, status="deposit_paid",
                                   amount_fen=order.deposit_fen))
        return attrs.evolve(order, id=oid)

    def pay_balance(self, presale_order_id: int, *, key: str | None = None) -> PresaleOrder:
        """The balance was paid: record the order through ``ws.orders`` (its total is the
        price less what the deposit is worth, plus the deposit) and promise shipping
        within ``deliver_days``. Refused outside ``[balance_from, balance_until)``,
        and for a deposit order already expired or refunded."""
        oid = check_id(presale_order_id, "presale_order_id")
        now = self._uow.now()
        with self._uow.write() as tx:
            found = self._order(tx, oid)
            if found.status in ("paid", "shipped"):
                return found
            presale = self._presale(tx, found.presale_id)
            if found.status != "deposit_paid":
                raise InvalidTransition(f"presale order {oid} is {found.status}; its balance cannot be paid",
                                        status=found.status, to="paid")
            if not presale.balance_from <= now < presale.balance_until:
                raise PolicyViolation(f"the balance of presale {presale.name!r} is paid from "
                                      f"{presale.balance_from.isoformat()} to {presale.balance_until.isoformat()}")
            unit = presale.price_fen - presale.credit_fen + presale.deposit_fen
            order = self._orders.record(found.user_id, [{"sku": presale.sku, "qty": found.qty,
                                                         "unit_price": to_yuan(unit)}],
                                        key=key or f"presale:{oid}", channel="presale")
            ship_by = now + timedelta(days=presale.deliver_days)
            if not tx.presales.move_order(oid, from_status=("deposit_paid",), to_status="paid", at=now,
                                          order_ref=order.id, ship_by=ship_by):
                raise InvalidTransition(f"presale order {oid} changed meanwhile", status="?", to="paid")
            tx.emit(PresaleChanged(at=now, presale_order_id=oid, presale_id=presale.id, user_id=found.user_id,
                                   status="paid", amount_fen=order.total_fen))
            return self._order(tx, oid)

    def ship(self, presale_order_id: int) -> PresaleOrder:
        """Mark a paid presale order shipped."""
        oid = check_id(presale_order_id, "presale_order_id")
        with self._uow.write() as tx:
            found = self._order(tx, oid)
            if found.status != "shipped" and not tx.presales.move_order(
                    oid, from_status=("paid",), to_status="shipped", at=self._uow.now()):
                raise InvalidTransition(f"presale order {oid} is {found.status}; only paid ones ship",
                                        status=found.status, to="shipped")
            return self._order(tx, oid)

    @staticmethod
    def _order(tx: Transaction, oid: int) -> PresaleOrder:
        found = tx.presales.order(oid)
        if found is None:
            raise NotFound(f"no presale order with id {oid}")
        return found

    def orders(self, presale_id: int | None = None, *, user_id: int | None = None) -> list[PresaleOrder]:
        check_optional_id(presale_id, "presale_id")
        check_optional_id(user_id, "user_id")
        with self._uow.read() as tx:
            return tx.presales.orders(presale_id=presale_id, user_id=user_id)

    # -- jobs -------------------------------------------------------------------------------------
    def expire_due(self) -> list[PresaleOrder]:
        """Close deposit orders whose balance window has ended unpaid: each releases its
        units once and its deposit is kept (定金) or refunded (订金, ``refund_fen``)."""
        now = self._uow.now()
        with self._uow.read() as tx:
            due = [(o, p) for p in tx.presales.presales() if p.balance_until <= now
                   for o in tx.presales.orders(presale_id=p.id, status="deposit_paid")]
        out = []
        for order, presale in due:
            refund = order.deposit_fen if presale.deposit_kind == "prepayment" else 0
            moved = self._close(order, presale, "expired", refund, now)
            if moved is not None:
                out.append(moved)
        return out

    def _close(self, order: PresaleOrder, presale: Presale, status: str, refund_fen: int,
               now: datetime) -> PresaleOrder | None:
        with self._uow.write() as tx:
            if not tx.presales.move_order(order.id, from_status=("deposit_paid",), to_status=status, at=now,
                                          refund_fen=refund_fen):
                return None
            tx.presales.give_units(presale.id, order.qty)
            tx.emit(PresaleChanged(at=now, presale_order_id=order.id, presale_id=presale.id, user_id=order.user_id,
                                   status=status, amount_fen=refund_fen))
            return self._order(tx, order.id)

    def cancel(self, presale_id: int, *, reason: str) -> list[PresaleOrder]:
        """The shop cancels the presale: every deposit is refunded (a 定金 twice over
        when ``double_refund``), every paid order refunded in full through ``ws.orders``."""
        pid = check_id(presale_id, "presale_id")
        check_text(reason, "reason", max_length=200)
        now = self._uow.now()
        with self._uow.write() as tx:
            presale = self._presale(tx, pid)
            tx.presales.set_status(pid, "cancelled")
            orders = tx.presales.orders(presale_id=pid)
        out = []
        for order in orders:
            if order.status == "deposit_paid":
                moved = self._close(order, presale, "refunded", self._default_refund(presale, order), now)
            elif order.status == "paid":
                moved = self._refund_paid(order, presale, now)
            else:
                moved = None
            if moved is not None:
                out.append(moved)
        return out

    @staticmethod
    def _default_refund(presale: Presale, order: PresaleOrder) -> int:
        """What the shop pays back when it defaults on a deposit order."""
        double = presale.deposit_kind == "deposit" and presale.double_refund
        return order.deposit_fen * (2 if double else 1)

    def _refund_paid(self, order: PresaleOrder, presale: Presale, now: datetime) -> PresaleOrder | None:
        with self._uow.write() as tx:
            if not tx.presales.move_order(order.id, from_status=("paid",), to_status="refunded", at=now):
                return None
            assert order.order_id is not None
            refund = self._orders.refund(order.order_id, key=f"presale:{order.id}:refund")
            extra = order.deposit_fen if presale.deposit_kind == "deposit" and presale.double_refund else 0
            tx.presales.move_order(order.id, from_status=("refunded",), to_status="refunded", at=now,
                                   refund_fen=refund.amount_fen + extra)
            tx.presales.give_units(presale.id, order.qty)
            tx.emit(PresaleChanged(at=now, presale_order_id=order.id, presale_id=presale.id, user_id=order.user_id,
                                   status="refunded", amount_fen=refund.amount_fen + extra))
            return self._order(tx, order.id)

    def overdue(self, *, refund: bool = True) -> list[PresaleOrder]:
        """Paid orders not shipped by their promised date: each fires a
        ``PresaleChanged`` alert (status ``overdue``) and, with ``refund``, is refunded
        in full automatically (a 定金 twice over when ``double_refund``)."""
        now = self._uow.now()
        with self._uow.read() as tx:
            late = [(o, self._presale(tx, o.presale_id)) for o in tx.presales.orders(status="paid")
                    if o.ship_by is not None and o.ship_by <= now]
        out = []
        for order, presale in late:
            if refund:
                moved = self._refund_paid(order, presale, now)
                if moved is not None:
                    out.append(moved)
                continue
            with self._uow.write() as tx:
                tx.emit(PresaleChanged(at=now, presale_order_id=order.id, presale_id=presale.id,
                                       user_id=order.user_id, status="overdue", amount_fen=0))
            out.append(order)
        return out
