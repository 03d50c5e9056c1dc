"""Orders and refunds, and everything an order causes.

Recording an order prices it (activities, the coupons given, member prices),
redeems the coupons, credits purchase points (the ``purchase`` points rule),
adds tier growth (upgrading at once) and emits
:class:`~siyu.events.OrderRecorded` -- all in one transaction. A refund
reverses, in its own single transaction, the points and tier growth the
refunded units earned (each line keeps what it earned; see
:mod:`siyu.services.line_effects`), downgrading if the tier is no longer
earned, gives back the loss-leader budget the refunded units used, and on a
full refund gives the coupons back (expired if their validity has ended);
then it emits :class:`~siyu.events.OrderRefunded`, which the referral engine
uses to void commissions and fission rewards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .._clock import aware, to_us
from ..errors import IdempotencyConflict, InsufficientPoints, NotFound, ValidationError
from ..events import CouponRedeemed, CouponReturned, OrderLineInfo, OrderRecorded, OrderRefunded
from ..models.commerce import Coupon, Order, OrderLine, ProductRole, Refund
from ..money import Money, to_fen, to_yuan
from ..storage.contracts import GrowthEntry
from ._common import (
    check_found,
    check_int,
    check_key,
    check_many,
    check_text,
    check_user_id,
    fingerprint,
    require_user,
)
from .coupons import Coupons
from .line_effects import earned_back, reversal, split
from .points import Credit
from .pricing import _distribute
from .products import check_sku

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..models.wallet import WalletEntry
    from ..storage.base import Transaction
    from .points import Points
    from .points_rules import PointsRules
    from .promotions import Promotions
    from .tiers import Tiers

__all__ = ["Orders", "WalletPayments"]

_ROW_FIELDS = {"user_id", "lines", "paid_at", "channel", "coupon", "key", "wallet"}


class WalletPayments(Protocol):
    """What orders need of stored value (:class:`siyu.wallet.Wallet` is one): pay part of
    an order from the member's wallet, and give it back when the order is refunded."""

    def pay_in(self, tx: Transaction, user_id: int, fen: int, *, ref: str, key: str,
               now: datetime) -> WalletEntry: ...

    def give_back_in(self, tx: Transaction, ref: str, fen: int | None, *, key: str,
                     now: datetime) -> WalletEntry | None: ...

    def paid_for(self, tx: Transaction, ref: str) -> int: ...


@attrs.frozen
class _Row:
    user_id: int
    lines: list[dict[str, Any]]
    paid_at: datetime
    channel: str | None
    codes: tuple[str, ...]
    key: str | None
    print_: str
    legacy: str
    wallet: int | str | None = None


def _codes(coupon: object) -> tuple[str, ...]:
    if coupon is None:
        return ()
    if isinstance(coupon, str):
        return (check_text(coupon, "coupon", max_length=64),)
    if isinstance(coupon, Iterable):
        codes = tuple(check_text(c, "coupon", max_length=64) for c in coupon)
        if len(set(codes)) != len(codes):
            raise ValidationError("the same coupon code is given twice")
        return codes
    raise ValidationError(f"coupon must be a code, a list of codes or None, got {type(coupon).__name__}")


def _budget_split(order: Order) -> list[tuple[str, int, int, int]]:
    """The order's loss-leader budget per line; orders recorded before the split was
    kept spread it over their traffic lines by quantity (only those may use it)."""
    if order.budget_lines:
        return list(order.budget_lines)
    lines = [n for n, ln in enumerate(order.lines) if ln.role is ProductRole.TRAFFIC] or list(range(len(order.lines)))
    return [(kind, source_id, n, share) for kind, source_id, fen in order.budget
            for n, share in zip(lines, _distribute(fen, [order.lines[n].qty for n in lines]), strict=True) if share]


def _budget_given_back(share: int, line: OrderLine, refunded_fen: int, refunded_qty: int) -> int:
    """How much of a line's budget is back once this much of the line was refunded: the
    share of its units or of its money returned, whichever is larger (a free unit has no money)."""
    if refunded_qty >= line.qty or (line.paid_fen > 0 and refunded_fen >= line.paid_fen):
        return share
    part = Fraction(refunded_qty, line.qty)
    if line.paid_fen > 0:
        part = max(part, Fraction(refunded_fen, line.paid_fen))
    return math.floor(share * part)


def _budget_back(order: Order, plan: Sequence[tuple[int, int, int]], full: bool) -> dict[tuple[str, int], int]:
    """Budget to give back per offer for this refund: what the refunded units used
    (all of it on a full refund), less what earlier refunds gave back already."""
    if not order.budget:
        return {}
    adds = {n: (qty, fen) for n, qty, fen in plan}
    back: dict[tuple[str, int], int] = {}
    for kind, source_id, n, share in _budget_split(order):
        if n >= len(order.lines):
            continue
        ln = order.lines[n]
        qty, fen = adds.get(n, (0, 0))
        before = _budget_given_back(share, ln, ln.refunded_fen, ln.refunded_qty)
        after = share if full else _budget_given_back(share, ln, ln.refunded_fen + fen, ln.refunded_qty + qty)
        back[kind, source_id] = back.get((kind, source_id), 0) + after - before
    return {k: v for k, v in back.items() if v > 0}


class Orders:
    """``ws.orders``: record orders (one or in batches), refund them, read them."""

    name = "orders"

    def __init__(self, uow: UnitOfWork, *, pricing: Promotions, points: Points, tiers: Tiers,
                 points_rules: PointsRules, wallet: WalletPayments | None = None) -> None:
        self._uow = uow
        self._wallet = wallet
        self._pricing = pricing
        self._points = points
        self._tiers = tiers
        self._rules = points_rules

    # -- record ---------------------------------------------------------------------------
    def _row(self, raw: Mapping[str, Any], now: datetime) -> _Row:
        unknown = set(raw) - _ROW_FIELDS
        if unknown:
            raise ValidationError(f"unknown order field(s) {sorted(unknown)}; an order has {sorted(_ROW_FIELDS)}")
        uid = check_user_id(raw.get("user_id"))
        lines = raw.get("lines")
        if isinstance(lines, str | bytes) or not isinstance(lines, Sequence) or not lines:
            raise ValidationError('lines must be a non-empty list of {"sku": ..., "qty": ..., "unit_price": ...}')
        normal = []
        for index, line in enumerate(lines):
            if not isinstance(line, Mapping):
                raise ValidationError(f"line {index}: expected a dict with sku and qty, got {line!r}")
            sku = line.get("sku")
            # Only the type here: pricing checks the SKU against the catalogue (and
            # runs the full check, with its message, on unknown values).
            qty = line.get("qty", 1)
            if type(qty) is not int or not 1 <= qty <= 100_000:
                qty = check_int(qty, f"line {index} qty", minimum=1, maximum=100_000)
            item = {"sku": sku if isinstance(sku, str) and sku else check_sku(sku), "qty": qty}
            extra = set(line) - {"sku", "qty", "unit_price"}
            if extra:
                raise ValidationError(f"line {index}: unknown field(s) {sorted(extra)}")
            if line.get("unit_price") is not None:
                item["unit_price"] = str(to_yuan(to_fen(line["unit_price"], name=f"line {index} unit_price")))
            normal.append(item)
        paid_at = raw.get("paid_at")
        paid = now if paid_at is None else aware(paid_at, "paid_at")
        channel = raw.get("channel")
        channel = None if channel is None else check_text(channel, "channel", max_length=64)
        codes = _codes(raw.get("coupon"))
        key = raw.get("key")
        if key is not None:
            check_key(key)
        # A retry must match the first call: an omitted paid_at means "now" for both (not
        # two different instants), and one instant in two time zones is the same order.
        print_ = fingerprint(uid, normal, None if paid_at is None else to_us(paid), channel, sorted(codes))
        legacy = fingerprint(uid, normal, paid.isoformat(), channel, codes)  # keys stored before that
        wallet = raw.get("wallet")
        if wallet is not None:
            wallet = "all" if wallet == "all" else to_fen(wallet, name="wallet")
            print_ = legacy = fingerprint(print_, {"wallet": wallet})
        return _Row(uid, normal, paid, channel, codes, key, print_, legacy, wallet)

    def record(
        self,
        user_id: int,
        lines: Sequence[Mapping[str, Any]],
        *,
        paid_at: datetime | None = None,
        channel: str | None = None,
        coupon: str | Sequence[str] | None = None,
        key: str | None = None,
        wallet: Money | None = None,
    ) -> Order:
        """Record a paid order.

        ``lines``: ``[{"sku": "TEA-1", "qty": 2, "unit_price": "39.90"}]``;
        ``unit_price`` (yuan) defaults to the product's price (or the user's
        member price), and live activity prices apply to lines without an
        explicit price. ``coupon``: a code or list of codes to redeem (each
        must be the user's, valid at ``paid_at`` and applicable, else
        ValidationError and nothing changes). ``wallet``: yuan of the total
        paid from the member's stored value (``"all"``: the whole total), in the
        same transaction (:class:`~siyu.errors.InsufficientFunds` if it holds
        less); a refund gives the wallet back its share. ``key`` makes the call
        idempotent: a repeat returns the first order.
        """
        row: dict[str, Any] = {"user_id": user_id, "lines": lines, "paid_at": paid_at, "channel": channel,
                               "coupon": coupon, "key": key}
        if wallet is not None:
            row["wallet"] = wallet
        [order_id] = self.record_many([row])
        return self.get(order_id)

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Record many orders in one transaction (all or none); returns their ids
        in row order. Each row is a dict of :meth:`record`'s arguments."""
        now = self._uow.now()
        parsed = []
        for index, raw in enumerate(check_many(rows, "rows", "[{'user_id': 1, 'lines': [{'sku': 'tea', 'qty': 1}]}]")):
            if not isinstance(raw, Mapping):
                raise ValidationError(f"row {index}: an order row is a dict with user_id, lines ...")
            try:
                parsed.append(self._row(raw, now))
            except ValidationError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
        if not parsed:
            return []
        with self._uow.write() as tx:
            return self._record(tx, parsed, now)

    def _record(self, tx: Transaction, rows: list[_Row], now: datetime) -> list[int]:
        # The buyers' rows first, in id order: a second process recording an order with the same
        # key for the same buyer waits here, then finds the key taken instead of racing to insert it.
        found = tx.users.statuses({r.user_id for r in rows}, lock=True)
        existing = tx.orders.by_keys([r.key for r in rows if r.key])
        result: list[int | None] = []
        fresh: list[tuple[int, _Row]] = []
        seen: dict[str, str] = {}
        for index, r in enumerate(rows):
            if r.key is not None and (r.key in existing or r.key in seen):
                previous = existing[r.key][1] if r.key in existing else seen[r.key]
                if previous not in (r.print_, r.legacy):
                    raise IdempotencyConflict(
                        f"order key {r.key!r} was already used for a different order; use a new key for a new "
                        "order, or repeat the original arguments to get the first order"
                    )
                result.append(existing[r.key][0] if r.key in existing else None)
                continue
            if r.key is not None:
                seen[r.key] = r.print_
            result.append(None)
            fresh.append((index, r))
        check_found({r.user_id for _, r in fresh}, found, tx)
        # One catalog and one tier lookup for the whole batch: tiers change only
        # when the batch's growth is settled, after every order is priced.
        catalog = self._pricing.catalog(tx)
        tiers = self._tiers.tiers_in(tx, [r.user_id for _, r in fresh])
        orders: list[Order] = []
        coupons_of: list[list[Coupon]] = []
        quotes = []
        used_codes: set[str] = set()
        buyers: set[int] = set()  # a user's earlier order in this batch is not stored yet when the next is priced
        loss_spent: dict[str, int] = {}  # products' own loss budgets used by earlier orders of the batch
        budget_spent: dict[tuple[str, int], int] = {}  # and loss-leader offers' budgets
        for _, r in fresh:
            coupons = Coupons.usable(tx, r.user_id, list(r.codes), r.paid_at) if r.codes else []
            again = used_codes & set(r.codes)
            if again:
                raise ValidationError(f"coupon {sorted(again)[0]!r} is used by two orders of this batch")
            used_codes |= set(r.codes)
            quote, cart = self._pricing.price_order(tx, r.user_id, r.lines, coupons, r.paid_at, catalog=catalog,
                                                    tier=tiers[r.user_id],
                                                    first_order=False if r.user_id in buyers else None,
                                                    loss_spent=loss_spent, budget_spent=budget_spent)
            for kind, source_id, fen in quote.budget_fen:
                budget_spent[kind, source_id] = budget_spent.get((kind, source_id), 0) + fen
            buyers.add(r.user_id)
            quotes.append(quote)
            coupons_of.append(coupons)
            orders.append(Order(
                id=0, user_id=r.user_id, key=r.key, channel=r.channel, paid_at=r.paid_at,
                subtotal_fen=quote.subtotal_fen, discount_fen=quote.discount_fen, total_fen=quote.total_fen,
                refunded_fen=0, coupon_codes=quote.coupon_codes, budget=quote.budget_fen,
                budget_lines=quote.budget_lines,
                lines=tuple(OrderLine(sku=q.sku, qty=q.qty, unit_fen=q.unit_fen, paid_fen=q.paid_fen, role=q.role,
                                      category=ln.product.category, cost_fen=ln.product.cost_fen * ln.qty,
                                      loss_fen=ln.loss_fen)
                            for q, ln in zip(quote.lines, cart, strict=True)),
            ))
        ids = tx.orders.insert(orders, [r.print_ if r.key else None for _, r in fresh])
        self._pay_from_wallets(tx, [(oid, order, r) for oid, order, (_, r) in zip(ids, orders, fresh, strict=True)],
                               now)
        budget_used = False
        earn_rows: list[Credit] = []
        growth_rows = []
        growth_of: dict[int, int] = {}
        line_rows: list[tuple[int, int, int, int]] = []
        infos: dict[int, tuple[OrderLineInfo, ...]] = {}
        for oid, order, coupons, quote in zip(ids, orders, coupons_of, quotes, strict=True):
            saved = dict(quote.applied)
            if coupons:
                tx.coupons.set_status([c.id for c in coupons], "redeemed", oid, order.paid_at)
                for c in coupons:
                    fen = next((v for label, v in saved.items() if f"({c.code})" in label), 0)
                    tx.emit(CouponRedeemed(at=now, coupon_id=c.id, code=c.code, user_id=order.user_id, order_id=oid,
                                           saved_fen=fen))
            for kind, source_id, fen in quote.budget_fen:
                tx.coupons.use_budget(kind, source_id, fen)
                budget_used = True
            infos[oid] = self._infos(order.lines)
            ctx = self._rules.context(tx, order.user_id, tier=tiers[order.user_id], lines=infos[oid],
                                          order_id=oid)
            points = self._rules.compute("purchase", ctx) if "purchase" in self._rules.names() else 0
            line_points = self._rules.split("purchase", ctx, points) if points > 0 else [0] * len(order.lines)
            if points > 0:
                earn_rows.append(Credit(user_id=order.user_id, amount=points, reason="purchase",
                                        key=f"order:{oid}:points", expires_at=self._rules.expiry_for("purchase", now)))
            growth = self._tiers.growth_for(tx, order.total_fen)
            growth_of[oid] = growth
            # Growth follows the money each line paid; a refund takes back the refunded lines' own.
            line_rows.extend((oid, n, p, g) for n, (p, g) in enumerate(zip(
                line_points, split(growth, [ln.paid_fen for ln in order.lines]), strict=True)))
            if growth > 0:
                growth_rows.append(GrowthEntry(user_id=order.user_id, amount=growth, at=order.paid_at,
                                               reason="order", ref=f"order:{oid}"))
        entry_ids = dict(zip([row.key for row in earn_rows], self._points.credit(tx, earn_rows, now), strict=True))
        points_by_key: dict[str, int] = {row.key: row.amount for row in earn_rows}
        effects = []
        for oid in ids:
            k = f"order:{oid}:points"
            effects.append((oid, entry_ids.get(k), points_by_key.get(k, 0), growth_of[oid]))
        tx.orders.set_effects(effects)
        tx.orders.set_line_effects(line_rows)
        if growth_rows:
            tx.tiers.add_growth(growth_rows)
            self._tiers.settle(tx, [g.user_id for g in growth_rows], reason="order", downgrade=False)
        if any(loss_spent.values()):
            tx.products.use_loss_budget(sorted(loss_spent.items()))
            budget_used = True
        if budget_used:
            tx.meta.bump("commerce")
        for oid, order in zip(ids, orders, strict=True):
            tx.emit(OrderRecorded(at=now, order_id=oid, user_id=order.user_id, total_fen=order.total_fen,
                                  lines=infos[oid], channel=order.channel, paid_at=order.paid_at,
                                  coupon_codes=order.coupon_codes))
        tx.meta.bump("orders")
        new_id = {index: oid for (index, _), oid in zip(fresh, ids, strict=True)}
        first_of_key = {r.key: new_id[index] for index, r in fresh if r.key is not None}
        out: list[int] = []
        for index, r in enumerate(rows):
            if index in new_id:
                out.append(new_id[index])
            elif r.key is not None and r.key in existing:
                out.append(existing[r.key][0])
            else:
                assert r.key is not None
                out.append(first_of_key[r.key])
        return out

    def _pay_from_wallets(self, tx: Transaction, paid: list[tuple[int, Order, _Row]], now: datetime) -> None:
        """Debit the stored value each order says it was paid with, in the order's transaction."""
        for oid, order, r in paid:
            if r.wallet is None:
                continue
            if self._wallet is None:
                raise ValidationError("this workspace has no wallet to pay from")
            fen = order.total_fen if r.wallet == "all" else int(r.wallet)
            if fen > order.total_fen:
                raise ValidationError(
                    f"wallet={to_yuan(fen)} is more than the order's total {to_yuan(order.total_fen)}")
            if fen > 0:
                self._wallet.pay_in(tx, order.user_id, fen, ref=f"order:{oid}", key=f"order:{oid}:wallet",
                                    now=now)

    def _refund_wallet(self, tx: Transaction, order: Order, amount: int, full: bool, key: str,
                       now: datetime) -> None:
        """Give the wallet back its share of a refund: in proportion to what it paid of the
        order, and all it paid that is left when the refund is the last one."""
        if self._wallet is None:
            return
        ref = f"order:{order.id}"
        paid = self._wallet.paid_for(tx, ref)
        if paid <= 0:
            return
        share = None if full else min(paid, amount * paid // max(order.total_fen, 1))
        if share == 0:
            return
        self._wallet.give_back_in(tx, ref, share, key=f"{ref}:refund:{key}:wallet"[:200], now=now)

    @staticmethod
    def _infos(lines: Iterable[OrderLine]) -> tuple[OrderLineInfo, ...]:
        return tuple(OrderLineInfo(sku=ln.sku, qty=ln.qty, paid_fen=ln.paid_fen, role=ln.role.value, line_no=n)
                     for n, ln in enumerate(lines))

    # -- refund ---------------------------------------------------------------------------
    def _plan(self, order: Order, what: object) -> list[tuple[int, int, int]]:
        left = [ln.paid_fen - ln.refunded_fen for ln in order.lines]
        if what is None:
            return [(n, ln.qty - ln.refunded_qty, left[n]) for n, ln in enumerate(order.lines)
                    if left[n] > 0 or ln.qty > ln.refunded_qty]
        if isinstance(what, Decimal | int | str | float):
            fen = to_fen(what, name="amount")
            if fen <= 0:
                raise ValidationError("a refund amount must be more than 0")
            if fen > sum(left):
                raise ValidationError(
                    f"order {order.id} has {sum(left) / 100:.2f} yuan left to refund; {fen / 100:.2f} was asked"
                )
            return [(n, 0, share) for n, share in enumerate(_distribute(fen, left)) if share]
        if not isinstance(what, Sequence):
            raise ValidationError("refund what: None (everything), an amount in yuan, or a list of {sku, qty}")
        if not what:
            raise ValidationError("the refund lines are an empty list; name at least one {'sku': ..., 'qty': ...}, "
                                  "give an amount, or None to refund everything left")
        plan: dict[int, list[int]] = {}
        for index, item in enumerate(what):
            if not isinstance(item, Mapping) or "sku" not in item:
                raise ValidationError(f"refund line {index}: expected {{'sku': ..., 'qty': ...}}, got {item!r}")
            sku = check_sku(item["sku"])
            qty = check_int(item.get("qty", 1), f"refund line {index} qty", minimum=1)
            candidates = [n for n, ln in enumerate(order.lines) if ln.sku == sku]
            if not candidates:
                raise ValidationError(f"order {order.id} has no line with sku {sku!r}")
            for n in candidates:
                ln = order.lines[n]
                free = ln.qty - ln.refunded_qty - plan.get(n, [0, 0])[0]
                take = min(free, qty)
                if take <= 0:
                    continue
                entry = plan.setdefault(n, [0, 0])
                entry[0] += take
                qty -= take
                if qty == 0:
                    break
            if qty:
                raise ValidationError(f"order {order.id}: sku {sku!r} has fewer units left to refund than asked")
        out = []
        for n, (qty, _) in sorted(plan.items()):
            ln = order.lines[n]
            remaining_qty = ln.qty - ln.refunded_qty
            fen = left[n] if qty == remaining_qty else min(left[n], ln.paid_fen * qty // ln.qty)
            out.append((n, qty, fen))
        return out

    def refund(self, order_id: int, lines_or_amount: object = None, *, key: str) -> Refund:
        """Refund part or all of an order.

        ``lines_or_amount``: ``None`` refunds everything left; an amount in yuan
        (``Decimal``/``int``/``str``) is spread over the lines in proportion to
        what is left of each; a list ``[{"sku": ..., "qty": ...}]`` refunds those
        units at what they were paid. More than what is left raises
        ValidationError. In the same transaction the points the refunded units
        earned are reversed (each line's own, in proportion to the share of the
        line refunded; if the user spent them already, what is left is taken and
        the rest recorded as ``points_shortfall``), their tier growth likewise
        (orders recorded before lines kept their own take a share of the
        order's, by money), the loss-leader budget its refunded lines used comes back
        (in proportion to their units or money refunded), and a full refund
        returns the coupons. An order refunded in full takes no further
        refund (ValidationError). ``key`` makes it idempotent."""
        oid = check_int(order_id, "order_id", minimum=1)
        check_key(key)
        now = self._uow.now()
        with self._uow.write() as tx:
            order = tx.orders.get(oid)
            if order is None:
                raise NotFound(f"no order with id {oid}")
            if lines_or_amount is None or isinstance(lines_or_amount, list | tuple):
                print_ = legacy = fingerprint(oid, lines_or_amount)
            else:
                # The same amount written differently ("10", Decimal("10.00")) is the same refund;
                # ``legacy`` is how amounts were keyed before they were compared in fen.
                print_ = fingerprint(oid, {"fen": to_fen(lines_or_amount, name="amount")})
                legacy = fingerprint(oid, str(lines_or_amount))
            done = tx.orders.refund_by_key(key)
            if done is not None:
                if done[1] not in (print_, legacy):
                    raise IdempotencyConflict(f"refund key {key!r} was already used for a different refund")
                found = tx.orders.refund(done[0])
                assert found is not None
                return found
            refunds = tx.orders.refunds(oid)
            if any(r.full for r in refunds):
                raise ValidationError(f"order {oid} was fully refunded already; there is nothing left to refund")
            require_user(tx, order.user_id, lock=True, active=False)
            plan = self._plan(order, lines_or_amount)
            amount = sum(fen for _, _, fen in plan)
            if amount <= 0 and not plan:
                raise ValidationError(f"order {oid} has nothing left to refund")
            after = order.refunded_fen + amount
            full = after >= order.total_fen
            if order.total_fen == 0:  # nothing was paid, so only the units say whether all came back
                units = {n: qty for n, qty, _ in plan}
                full = all(ln.refunded_qty + units.get(n, 0) >= ln.qty for n, ln in enumerate(order.lines))
            want, growth_back, effects = earned_back(order, refunds, plan, full)
            reversed_points, shortfall = 0, 0
            if want > 0 and order.points_entry_id is not None:
                try:
                    self._points.reverse_in(tx, order.points_entry_id, key=f"order:{oid}:refund:{key}"[:200],
                                            amount=want, reason="refund", now=now)
                    reversed_points = want
                except InsufficientPoints as exc:
                    if exc.available > 0:
                        self._points.reverse_in(tx, order.points_entry_id, key=f"order:{oid}:refund:{key}"[:200],
                                                amount=exc.available, reason="refund", now=now)
                    reversed_points, shortfall = exc.available, want - exc.available
            if growth_back > 0:
                tx.tiers.add_growth([GrowthEntry(user_id=order.user_id, amount=-growth_back, at=order.paid_at,
                                                 reason="refund", ref=f"order:{oid}")])
                self._tiers.settle(tx, [order.user_id], reason="refund", downgrade=True)
            self._give_back_budgets(tx, order, plan, full)
            self._refund_wallet(tx, order, amount, full, key, now)
            returned: list[str] = []
            if full and order.coupon_codes:
                for c in tx.coupons.by_codes(list(order.coupon_codes)).values():
                    if c.status != "redeemed" or c.order_id != oid:
                        continue
                    status = "issued" if c.valid_until is None or c.valid_until > now else "expired"
                    tx.coupons.set_status([c.id], status, None, None)
                    returned.append(c.code)
                    tx.emit(CouponReturned(at=now, coupon_id=c.id, code=c.code, user_id=c.user_id, order_id=oid,
                                           status=status))
                tx.meta.bump("coupons")
            tx.orders.apply_refund(oid, plan)
            refund = Refund(id=0, order_id=oid, user_id=order.user_id, key=key, at=now, amount_fen=amount,
                            lines=tuple(plan), full=full, points_reversed=reversed_points,
                            points_shortfall=shortfall, growth_reversed=max(0, growth_back),
                            coupons_returned=tuple(returned), line_effects=effects)
            refund = attrs.evolve(refund, id=tx.orders.add_refund(refund, print_))
            tx.emit(OrderRefunded(
                at=now, order_id=oid, refund_id=refund.id, user_id=order.user_id, amount_fen=amount,
                order_total_fen=order.total_fen, full=full,
                lines=tuple(OrderLineInfo(sku=order.lines[n].sku, qty=qty, paid_fen=fen,
                                          role=order.lines[n].role.value, line_no=n) for n, qty, fen in plan),
            ))
            tx.meta.bump("orders")
        return refund

    @staticmethod
    def _give_back_budgets(tx: Transaction, order: Order, plan: Sequence[tuple[int, int, int]], full: bool) -> None:
        """The loss-leader budgets and the products' own loss budgets the refunded units used."""
        back = _budget_back(order, plan, full)
        for (kind, source_id), fen in back.items():
            tx.coupons.use_budget(kind, source_id, -fen)
        loss_back: dict[str, int] = {}
        for ln, fen in zip(order.lines, reversal(order, [ln.loss_fen for ln in order.lines], plan, full),
                           strict=True):
            if fen:
                loss_back[ln.sku] = loss_back.get(ln.sku, 0) - fen
        if loss_back:
            tx.products.use_loss_budget(sorted(loss_back.items()))
        if back or loss_back:
            tx.meta.bump("commerce")

    # -- read ------------------------------------------------------------------------------
    def get(self, order_id: int) -> Order:
        with self._uow.read() as tx:
            order = tx.orders.get(check_int(order_id, "order_id", minimum=1))
        if order is None:
            raise NotFound(f"no order with id {order_id}")
        return order

    def of(self, user_id: int) -> list[Order]:
        """The user's orders, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.orders.of_user(uid)

    def refunds(self, order_id: int) -> list[Refund]:
        with self._uow.read() as tx:
            return tx.orders.refunds(check_int(order_id, "order_id", minimum=1))

    # -- merge participant ----------------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[int]:
        ids = tx.orders.ids_of(drop)
        tx.orders.move(ids, keep)
        tx.meta.bump("orders")
        return ids

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[int], at: datetime) -> None:
        tx.orders.move(list(record), drop)
        # Refunds since the merge booked their negative growth on ``keep``; it goes back with the
        # orders (the growth the orders earned moves back with the tiers' own merge record).
        tx.tiers.move_growth(tx.tiers.growth_ids(keep, [f"order:{oid}" for oid in record]), drop)
        tx.meta.bump("orders")

