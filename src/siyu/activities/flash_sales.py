"""秒杀 / 限量抢购: flash sales with their own stock, per-user quotas and reservations.

A sale sells ``stock`` units of one SKU at a fixed price in the half-open
window ``[starts_at, ends_at)``. A buyer who checks out gets a
:class:`~siyu.models.activities.Reservation` holding the units for ``hold``
(15 minutes by default); paying it (:meth:`FlashSales.pay`) records the order
through ``ws.orders`` at the sale price, and a hold that runs out gives the
units back (:meth:`FlashSales.release_due`). Cancelling or refunding a paid
reservation gives the units and the buyer's quota back.

Why it cannot oversell: every count is changed by one conditional statement
(units move between ``stock``, ``reserved`` and ``sold`` only if the source
holds enough; a per-user count rises only while it stays within its limit; a
reservation changes status only from the status it is expected to be in), all
in the transaction of the call, so a refused step undoes the others. Many
processes may reserve, pay, cancel and run the release job at once: each unit
is sold, released or restored exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import aware
from .._validation import check_id, check_many, check_optional_id, check_user_id
from ..errors import (
    ActivityClosed,
    IdempotencyConflict,
    NotFound,
    PriceBelowFloor,
    QuotaExceeded,
    ReservationClosed,
    SoldOut,
    ValidationError,
)
from ..events import Event, FlashSaleCreated, FlashSalePaid, FlashSaleReleased, FlashSaleReserved, OrderRefunded
from ..models.activities import FlashSale, Reservation, ReservationStatus
from ..models.commerce import Order
from ..money import Money, to_fen, to_yuan
from ..services._common import check_int, check_key, check_text, require_users
from ..services.pricing import check_price
from ..services.products import Products, check_sku
from ..services.promotions import Promotions

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.orders import Orders
    from ..storage.base import Transaction

__all__ = ["CLEARANCE_REASONS", "FlashSales"]

#: Why a price may go below cost: clearing fresh, seasonal, overstocked or near-expiry goods
#: (the exceptions pricing rules allow to selling below cost).
CLEARANCE_REASONS = ("fresh", "seasonal", "overstock", "near_expiry")
#: How far back the crossed-out price is checked against real sales.
BASE_LOOKBACK = timedelta(days=7)
MAX_STOCK = 10_000_000


class FlashSales:
    """``ws.flash_sales``: create sales, reserve, pay, cancel, release what ran out."""

    name = "flash_sales"
    #: The event classes :meth:`on_events` handles (full refunds of sale orders).
    event_types = (OrderRefunded,)

    def __init__(self, uow: UnitOfWork, *, orders: Orders) -> None:
        self._uow = uow
        self._orders = orders

    # -- create ---------------------------------------------------------------------------
    def create(
        self,
        *,
        sku: str,
        price: Money,
        stock: int,
        starts_at: datetime,
        ends_at: datetime,
        per_user: int | None = 1,
        per_user_day: int | None = None,
        hold: timedelta = timedelta(minutes=15),
        name: str | None = None,
        base_price: Money | None = None,
        base_label: str | None = None,
        clearance: str | None = None,
    ) -> FlashSale:
        """Create a flash sale of ``stock`` units of ``sku`` at ``price`` (yuan)
        from ``starts_at`` (included) to ``ends_at`` (excluded).

        ``per_user`` caps the units one user may hold or buy over the sale and
        ``per_user_day`` per business day (``None``: no cap). ``hold`` is how
        long a reservation waits for payment.

        The price goes through the margin guard: below the product's floor it
        raises :class:`~siyu.errors.PriceBelowFloor`, unless the product is a
        traffic or activity item whose loss budget covers every unit (the sale
        then holds that part of the budget), or ``clearance`` names why the
        goods are cleared (one of :data:`CLEARANCE_REASONS`).

        ``base_price`` is the crossed-out price shown next to the sale price.
        It may not be above the lowest price the SKU sold at in the 7 days
        before the sale starts (or its list price, if it did not sell), unless
        ``base_label`` says what it is instead (e.g. "建议零售价").
        """
        if not isinstance(stock, int) or isinstance(stock, bool):
            raise ValidationError(f"stock must be a whole number of units, got {stock!r}")
        check_int(stock, "stock", minimum=1, maximum=MAX_STOCK)
        fen = to_fen(price, name="price")
        if fen <= 0:
            raise ValidationError("price must be more than 0 yuan; give the item away with a coupon or a draw")
        aware(starts_at, "starts_at")
        aware(ends_at, "ends_at")
        if ends_at <= starts_at:
            raise ValidationError("ends_at must be after starts_at (the window is [starts_at, ends_at))")
        for value, what in ((per_user, "per_user"), (per_user_day, "per_user_day")):
            if value is not None:
                check_int(value, what, minimum=1, maximum=MAX_STOCK)
        if not isinstance(hold, timedelta) or not timedelta(seconds=30) <= hold <= timedelta(days=7):
            raise ValidationError(f"hold must be a timedelta between 30 seconds and 7 days, got {hold!r}")
        if clearance is not None and clearance not in CLEARANCE_REASONS:
            raise ValidationError(f"clearance must be one of {', '.join(CLEARANCE_REASONS)}, got {clearance!r}")
        base_fen = None if base_price is None else to_fen(base_price, name="base_price")
        label = None if base_label is None else check_text(base_label, "base_label", max_length=32)
        now = self._uow.now()
        with self._uow.write() as tx:
            product = Products.require(tx, [check_sku(sku)])[sku]
            rules = Promotions.rules_in(tx)
            left = None if product.loss_budget_fen is None else product.loss_left_fen
            try:
                loss = check_price(product, fen, rules, what="flash-sale price", units=stock, loss_left_fen=left)
            except PriceBelowFloor as exc:
                if clearance is None:
                    raise PriceBelowFloor(
                        f"{exc} Or, when the goods are cleared (fresh, seasonal, overstocked or near expiry), "
                        "say so with clearance=...", sku=exc.sku, price_fen=exc.price_fen, floor_fen=exc.floor_fen,
                    ) from None
                loss = 0
            if base_fen is not None and label is None:
                self._check_base(tx, product.sku, product.price_fen, base_fen, starts_at)
            if loss:
                tx.products.use_loss_budget([(product.sku, loss)])
                tx.meta.bump("commerce")
            sale = FlashSale(
                id=0, name=check_text(name or f"秒杀 {product.title}", "name", max_length=64), sku=product.sku,
                price_fen=fen, stock=stock, reserved=0, sold=0, starts_at=starts_at, ends_at=ends_at, hold=hold,
                per_user=per_user, per_user_day=per_user_day, base_price_fen=base_fen, base_label=label,
                clearance=clearance, loss_fen=loss, created_at=now,
            )
            sale = attrs.evolve(sale, id=tx.flash_sales.add_sale(sale))
            tx.emit(FlashSaleCreated(at=now, sale_id=sale.id, sku=sale.sku, price_fen=fen, stock=stock,
                                     starts_at=starts_at, ends_at=ends_at))
        return sale

    def _check_base(self, tx: Transaction, sku: str, list_fen: int, base_fen: int, starts_at: datetime) -> None:
        lowest = tx.flash_sales.lowest_unit_price(sku, starts_at - BASE_LOOKBACK, starts_at)
        reference, what = (list_fen, "its list price (it did not sell in the 7 days before the sale)") \
            if lowest is None else (lowest, "the lowest price it sold at in the 7 days before the sale")
        if base_fen > reference:
            raise ValidationError(
                f"base_price {to_yuan(base_fen)} is above {what}, {to_yuan(reference)}; a crossed-out price "
                f"must be a price the SKU really sold at. Lower it to {to_yuan(reference)}, or say what it is "
                "with base_label=... (e.g. '建议零售价')"
            )

    # -- read -----------------------------------------------------------------------------
    def get(self, sale_id: int) -> FlashSale:
        with self._uow.read() as tx:
            return self._sale(tx, sale_id)

    @staticmethod
    def _sale(tx: Transaction, sale_id: int) -> FlashSale:
        found = tx.flash_sales.sale(check_int(sale_id, "sale_id", minimum=1))
        if found is None:
            raise NotFound(f"no flash sale with id {sale_id}; list them with ws.flash_sales.sales()")
        return found

    def sales(self, *, live: bool = False) -> list[FlashSale]:
        """Every sale (only those taking reservations now with ``live=True``)."""
        now = self._uow.now()
        with self._uow.read() as tx:
            return [s for s in tx.flash_sales.sales() if not live or s.open_at(now)]

    def reservation(self, reservation_id: int) -> Reservation:
        with self._uow.read() as tx:
            return self._reservation(tx, reservation_id)

    @staticmethod
    def _reservation(tx: Transaction, reservation_id: int) -> Reservation:
        found = tx.flash_sales.reservation(check_int(reservation_id, "reservation_id", minimum=1))
        if found is None:
            raise NotFound(f"no flash-sale reservation with id {reservation_id}")
        return found

    def reservations(self, *, sale_id: int | None = None, user_id: int | None = None) -> list[Reservation]:
        check_optional_id(sale_id, "sale_id")
        check_optional_id(user_id, "user_id")
        with self._uow.read() as tx:
            return tx.flash_sales.reservations(sale_id=sale_id, user_id=user_id)

    def used(self, sale_id: int, user_id: int) -> int:
        """Units ``user_id`` holds or bought in the sale (what counts against ``per_user``)."""
        check_id(sale_id, "sale_id")
        check_user_id(user_id)
        with self._uow.read() as tx:
            return tx.flash_sales.quota_used(sale_id, user_id, None)

    def disclosure(self, sale_id: int) -> str:
        """The sale's terms as shown to buyers: price and what the crossed-out price
        means, the window in the business time zone, units, limits, payment time."""
        sale = self.get(sale_id)
        tz = self._uow.tz
        parts = [f"{sale.name}: {sale.sku} 秒杀价 {sale.price} 元"]
        if sale.base_price is not None:
            parts.append(f"划线价 {sale.base_price} 元（{sale.base_label or '活动前7日内最低成交价'}）")
        parts.append(f"活动时间 {sale.starts_at.astimezone(tz):%Y-%m-%d %H:%M:%S} 起，"
                     f"{sale.ends_at.astimezone(tz):%Y-%m-%d %H:%M:%S} 止（{tz}，不含结束时刻）")
        parts.append(f"限量 {sale.total} 件")
        if sale.per_user is not None:
            parts.append(f"每人限购 {sale.per_user} 件")
        if sale.per_user_day is not None:
            parts.append(f"每人每日限购 {sale.per_user_day} 件")
        parts.append(f"下单后 {int(sale.hold.total_seconds() // 60)} 分钟内未付款自动取消")
        return "；".join(parts) + "。"

    # -- reserve --------------------------------------------------------------------------
    def reserve(self, sale_id: int, user_id: int, qty: int = 1, *, key: str) -> Reservation:
        """Hold ``qty`` units of the sale for ``user_id`` until the hold runs out.

        ``key`` (e.g. the checkout request id) makes it idempotent: a retry
        returns the first reservation; the same key for another sale, user or
        quantity raises :class:`~siyu.errors.IdempotencyConflict`. Raises
        :class:`~siyu.errors.ActivityClosed` outside the window,
        :class:`~siyu.errors.QuotaExceeded` past a per-user limit, and
        :class:`~siyu.errors.SoldOut` when fewer units are left (units held by
        unpaid reservations may come back: try again later)."""
        check_key(key)
        check_int(qty, "qty", minimum=1, maximum=MAX_STOCK)
        now = self._uow.now()
        with self._uow.write() as tx:
            first = tx.flash_sales.reservation_by_key(key)
            if first is not None:
                return self._repeat(first, sale_id, user_id, qty)
            sale = self._sale(tx, sale_id)
            uid = check_user_id(user_id)
            require_users(tx, [uid])  # one query: exists and not merged away
            if not sale.open_at(now):
                raise ActivityClosed(self._closed(sale, now))
            day = now.astimezone(self._uow.tz).date()
            new = Reservation(id=0, sale_id=sale.id, user_id=uid, qty=qty, status=ReservationStatus.RESERVED,
                              key=key, day=day, created_at=now, expires_at=now + sale.hold)
            rid = tx.flash_sales.add_reservation(new)
            if rid is None:  # a concurrent call with this key committed first
                first = tx.flash_sales.reservation_by_key(key)
                assert first is not None
                return self._repeat(first, sale_id, user_id, qty)
            # The user's facts first: a user at their limit never takes a unit from the stock.
            if sale.per_user is not None and not tx.flash_sales.take_quota(sale.id, uid, None, qty, sale.per_user):
                used = tx.flash_sales.quota_used(sale.id, uid, None)
                raise QuotaExceeded(f"user {uid} holds or bought {used} of the {sale.per_user} unit(s) one user may "
                                    f"buy in flash sale {sale.id}; {qty} more would pass the limit")
            if sale.per_user_day is not None and not tx.flash_sales.take_quota(sale.id, uid, day, qty,
                                                                               sale.per_user_day):
                used = tx.flash_sales.quota_used(sale.id, uid, day)
                raise QuotaExceeded(f"user {uid} reserved {used} of the {sale.per_user_day} unit(s) a day one user "
                                    f"may buy in flash sale {sale.id} on {day}; try again tomorrow")
            if not tx.flash_sales.move_units(sale.id, qty, "stock", "reserved"):
                left = self._sale(tx, sale.id).stock
                raise SoldOut(f"flash sale {sale.id} has {left} unit(s) left, {qty} asked for; units held by "
                              "unpaid reservations come back when their hold runs out")
            tx.emit(FlashSaleReserved(at=now, sale_id=sale.id, reservation_id=rid, user_id=uid, qty=qty,
                                      expires_at=new.expires_at))
            return attrs.evolve(new, id=rid)

    @staticmethod
    def _repeat(first: Reservation, sale_id: int, user_id: int, qty: int) -> Reservation:
        if (first.sale_id, first.user_id, first.qty) != (sale_id, user_id, qty):
            raise IdempotencyConflict(
                f"reservation key {first.key!r} was used for {first.qty} unit(s) of sale {first.sale_id} for user "
                f"{first.user_id}; use a new key for a new reservation, or repeat the original arguments"
            )
        return first

    def _closed(self, sale: FlashSale, now: datetime) -> str:
        tz = self._uow.tz
        window = f"[{sale.starts_at.astimezone(tz).isoformat()}, {sale.ends_at.astimezone(tz).isoformat()})"
        if not sale.active:
            return f"flash sale {sale.id} was ended early; nothing can be reserved"
        if now < sale.starts_at:
            return f"flash sale {sale.id} has not started: it runs {window}; reserve from its start"
        return f"flash sale {sale.id} is over: it ran {window}"

    # -- pay, cancel, release -------------------------------------------------------------
    def pay(self, reservation_id: int, *, paid_at: datetime | None = None, channel: str | None = None) -> Order:
        """Turn a held reservation into an order at the sale price, through
        ``ws.orders`` (points, growth and events as for any order). A retry of a
        paid reservation returns its order. Raises :class:`~siyu.errors.ReservationClosed`
        if the reservation was released (cancelled or its hold ran out, even by a
        second) or refunded: the payment must then be refunded to the buyer."""
        now = self._uow.now()
        with self._uow.write() as tx:
            res = self._reservation(tx, reservation_id)
            if res.status is ReservationStatus.PAID and res.order_id is not None:
                return self._orders.get(res.order_id)
            # One conditional move decides between this payment and the release job.
            if not tx.flash_sales.transition(res.id, ReservationStatus.RESERVED, ReservationStatus.PAID, now,
                                             held_at=now):
                res = self._reservation(tx, res.id)
                if res.status is ReservationStatus.PAID and res.order_id is not None:
                    return self._orders.get(res.order_id)  # a concurrent delivery of this payment won
                status = "its hold ran out" if res.status is ReservationStatus.RESERVED else f"it is {res.status}"
                raise ReservationClosed(
                    f"reservation {res.id} cannot be paid: {status} (held until "
                    f"{res.expires_at.astimezone(self._uow.tz).isoformat()}); refund the payment to the buyer",
                    status=res.status.value)
            sale = self._sale(tx, res.sale_id)
            order = self._orders.record(res.user_id, [{"sku": sale.sku, "qty": res.qty, "unit_price": sale.price}],
                                        paid_at=paid_at, channel=channel, key=f"flash-sale:{res.id}")
            tx.flash_sales.set_order(res.id, order.id)
            if not tx.flash_sales.move_units(sale.id, res.qty, "reserved", "sold"):
                raise AssertionError(f"flash sale {sale.id}: a held reservation's units were not reserved")
            tx.emit(FlashSalePaid(at=now, sale_id=sale.id, reservation_id=res.id, user_id=res.user_id, qty=res.qty,
                                  order_id=order.id))
            return order

    def cancel(self, reservation_id: int) -> Reservation:
        """Give a reservation's units and quota back: an unpaid one is released,
        a paid one has its order refunded in full (through ``ws.orders``) in the
        same transaction. Cancelling twice changes nothing the second time."""
        now = self._uow.now()
        with self._uow.write() as tx:
            res = self._reservation(tx, reservation_id)
            if res.status is ReservationStatus.RESERVED:
                self._give_back(tx, res, ReservationStatus.RESERVED, "reserved", "cancelled", now)
            elif res.status is ReservationStatus.PAID and res.order_id is not None:
                self._orders.refund(res.order_id, None, key=f"flash-sale:{res.id}:refund")
                # The refund's event would restore the units too; the status move makes it happen once.
                self._give_back(tx, res, ReservationStatus.PAID, "sold", "refunded", now)
            return self._reservation(tx, res.id)

    def release_due(self, *, batch: int = 500) -> int:
        """Release every reservation whose hold ran out (their units go back on
        sale); returns how many. Safe to run from several workers at once, and
        against payments arriving at the same moment: each is released once, or
        paid, never both."""
        check_int(batch, "batch", minimum=1, maximum=100_000)
        now = self._uow.now()
        total = 0
        while True:
            with self._uow.write() as tx:
                due = tx.flash_sales.due(now, batch)
                released = sum(self._give_back(tx, res, ReservationStatus.RESERVED, "reserved", "expired", now)
                               for res in due)
            total += released
            if len(due) < batch:
                return total

    def _give_back(self, tx: Transaction, res: Reservation, source: ReservationStatus, units: str, reason: str,
                   now: datetime) -> bool:
        target = ReservationStatus.REFUNDED if source is ReservationStatus.PAID else ReservationStatus.RELEASED
        expired_by = now if reason == "expired" else None
        if not tx.flash_sales.transition(res.id, source, target, now, expired_by=expired_by):
            return False  # someone else moved it first: paid, released or restored once already
        if not tx.flash_sales.move_units(res.sale_id, res.qty, units, "stock"):
            raise AssertionError(f"flash sale {res.sale_id}: reservation {res.id}'s units were not {units}")
        tx.flash_sales.give_quota(res.sale_id, res.user_id, None, res.qty)
        tx.flash_sales.give_quota(res.sale_id, res.user_id, res.day, res.qty)
        tx.emit(FlashSaleReleased(at=now, sale_id=res.sale_id, reservation_id=res.id, user_id=res.user_id,
                                  qty=res.qty, reason=reason))
        return True

    def end(self, sale_id: int) -> FlashSale:
        """End a sale early: no new reservations; held ones may still be paid until their hold ends."""
        with self._uow.write() as tx:
            sale = self._sale(tx, sale_id)
            tx.flash_sales.set_active(sale.id, False)
            return self._sale(tx, sale.id)

    # -- merge participant -----------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> dict[str, list[Any]]:
        """``drop``'s reservations move to ``keep``, and their units count against ``keep``'s quotas."""
        moved = [r.id for r in tx.flash_sales.reservations(user_id=drop)]
        quotas = tx.flash_sales.quotas_of(drop)
        tx.flash_sales.move_user(moved, keep)
        tx.flash_sales.shift_quotas(keep, quotas, 1)
        tx.flash_sales.shift_quotas(drop, quotas, -1)
        return {"reservations": moved, "quotas": [list(q) for q in quotas]}

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: dict[str, list[Any]], at: datetime) -> None:
        quotas = [(int(a), int(b), int(c)) for a, b, c in record["quotas"]]
        tx.flash_sales.move_user(record["reservations"], drop)
        tx.flash_sales.shift_quotas(keep, quotas, -1)
        tx.flash_sales.shift_quotas(drop, quotas, 1)

    # -- the event consumer ---------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """The ``siyu.activities`` consumer: a flash-sale order refunded in full
        through ``ws.orders.refund`` gives its units and quota back (once)."""
        events = check_many(events, "events", "the events the event log delivered")
        with self._uow.write() as tx:
            for event in events:
                if not isinstance(event, OrderRefunded) or not event.full:
                    continue
                res = tx.flash_sales.reservation_by_order(event.order_id)
                if res is not None and res.status is ReservationStatus.PAID:
                    self._give_back(tx, res, ReservationStatus.PAID, "sold", "refunded", event.at)
