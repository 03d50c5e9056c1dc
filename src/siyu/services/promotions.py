"""Promotions: stacking rules, activity prices and flash sales, quotes, the margin guard.

``ws.promotions.quote(user_id, cart)`` finds the best legal combination of
the live activities and the user's usable coupons and explains it line by
line. The margin guard refuses any coupon, activity or flash sale whose
worst-case stacking would sell an eligible product below cost or the margin
floor (:class:`~siyu.errors.MarginViolation`, naming the product and the
combination), unless it is a budgeted loss leader on traffic or activity
items; and every quote is clamped to the floor as a second line of defence.
No quote is ever negative.

Prices set on a product itself -- its list price, member prices, a 拼团 price --
go through one guard, :func:`~siyu.services.pricing.check_price` (also
``ws.promotions.check_price``): below the floor they raise
:class:`~siyu.errors.PriceBelowFloor`, unless the product is a traffic or
activity item with a loss budget (``ws.products.add(..., loss_budget=...)``),
which orders at those prices use up; once it is spent, they sell at the floor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import aware
from .._validation import check_decimal, check_many, check_mapping
from ..errors import InvalidMoney, MarginViolation, NotFound, PolicyViolation, ValidationError
from ..models.commerce import Activity, Coupon, CouponTemplate, Product, ProductRole, Tier
from ..money import Money, to_fen, to_yuan
from ._cache import VersionedCache
from ._common import check_int, check_text, check_user_id
from .coupons import Coupons
from .pricing import (
    LOSS_ROLES,
    CartLine,
    Offer,
    Quote,
    StackingRules,
    best_quote,
    check_price,
    floor_fen,
    worst_combinations,
    worst_unit,
)
from .products import Products, check_sku

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .tiers import Tiers

__all__ = ["Promotions"]

_RULES = "promotions.rules"
#: Fen are stored in signed 64-bit integers, a line's and an order's amount too.
MAX_FEN = 2**63 - 1


@attrs.frozen
class _Catalog:
    products: dict[str, Product]
    templates: dict[int, CouponTemplate]
    activities: list[Activity]
    rules: StackingRules


class Promotions:
    """``ws.promotions``: stacking rules, activity prices, quotes, the margin guard."""

    def __init__(self, uow: UnitOfWork, *, tiers: Tiers) -> None:
        self._uow = uow
        self._tiers = tiers
        self._catalog = VersionedCache("commerce", self._load_catalog)

    # -- rules --------------------------------------------------------------------------
    @staticmethod
    def _rules(tx: Transaction) -> StackingRules:
        raw = tx.meta.get(_RULES)
        return StackingRules.from_json(json.loads(raw)) if raw else StackingRules()

    def rules(self) -> StackingRules:
        """The stacking rules and margin floor in force."""
        with self._uow.read() as tx:
            return self._rules(tx)

    @staticmethod
    def rules_in(tx: Transaction) -> StackingRules:
        """The rules in force, inside a transaction."""
        return Promotions._rules(tx)

    def configure(
        self,
        *,
        combinable: Iterable[Iterable[str]] | None = None,
        multi: Iterable[str] | None = None,
        base: str | None = None,
        margin_floor: Decimal | str | int | None = None,
        guard: bool | None = None,
    ) -> StackingRules:
        """Change how offers stack and the margin floor.

        ``combinable``: pairs of groups that may apply together (default
        ``[("activity", "coupon")]``: an activity price plus one coupon);
        ``multi``: groups whose offers stack with each other (default
        ``["activity"]``); ``base``: ``"discounted"`` or ``"original"``;
        ``margin_floor``: the share of the selling price to keep (``"0.1"``
        = 10 %); ``guard``: refuse risky offers and clamp quotes (default on).
        The live offers are re-checked under the new rules: a change that
        would let them sell below the floor is refused with MarginViolation."""
        with self._uow.write() as tx:
            rules = self._rules(tx)
            changes: dict[str, Any] = {}
            if combinable is not None:
                pairs = set()
                for pair in check_many(combinable, "combinable", "[('activity', 'coupon')]"):
                    names = frozenset(check_text(g, "group", max_length=32)
                                      for g in check_many(pair, "each combinable pair", "('activity', 'coupon')"))
                    if len(names) != 2:
                        raise ValidationError(f"combinable takes pairs of two different groups, got {pair!r}")
                    pairs.add(names)
                changes["combinable"] = frozenset(pairs)
            if multi is not None:
                changes["multi"] = frozenset(check_text(g, "group", max_length=32)
                                             for g in check_many(multi, "multi", "['activity']"))
            if base is not None:
                if base not in ("discounted", "original"):
                    raise ValidationError(f"base must be 'discounted' or 'original', got {base!r}")
                changes["base"] = base
            if margin_floor is not None:
                floor = check_decimal(margin_floor, "margin_floor", example="'0.1'")
                if not Decimal(0) <= floor < Decimal(1):
                    raise ValidationError(f"margin_floor must be in [0, 1), got {margin_floor!r}")
                changes["margin_floor"] = floor
            if guard is not None:
                changes["guard"] = bool(guard)
            rules = attrs.evolve(rules, **changes)
            tx.meta.set(_RULES, json.dumps(rules.to_json()))
            tx.meta.bump("commerce")
            if rules.guard:
                catalog = self._load_catalog(tx)
                for product in catalog.products.values():
                    self.check_product(product, rules)
                for offer in self._live_offers(catalog, self._uow.now()):
                    self._check(catalog, offer, rules)
        return rules

    # -- activities -----------------------------------------------------------------------
    def activity(
        self,
        name: str,
        prices: Mapping[str, Money],
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        kind: str = "activity",
        group: str = "activity",
        priority: int = 10,
        loss_leader: bool = False,
        budget: Money | None = None,
    ) -> Activity:
        """An activity price (活动价): ``prices`` maps SKUs to the unit price (yuan)
        while the activity runs (``starts_at`` .. ``ends_at``, open if omitted).
        Margin-guarded like coupons (worst case: stacked with every combinable
        coupon)."""
        if kind not in ("activity", "flash_sale"):
            raise ValidationError(f"kind must be 'activity' or 'flash_sale', got {kind!r}")
        if not prices:
            raise ValidationError("prices must name at least one SKU: {'SKU': '9.90'}")
        if starts_at is not None:
            aware(starts_at, "starts_at")
        if ends_at is not None:
            aware(ends_at, "ends_at")
            if starts_at is not None and ends_at <= starts_at:
                raise ValidationError("ends_at must be after starts_at")
        if loss_leader and budget is None:
            raise ValidationError("a loss leader needs budget=... (yuan the shop accepts to lose below the floor)")
        activity = Activity(
            id=0,
            name=check_text(name, "name", max_length=64),
            kind=kind,
            prices_fen={check_sku(s): to_fen(p, name=f"prices[{s!r}]")
                        for s, p in check_mapping(prices, "prices", "{'sku1': Decimal('9.90')}").items()},
            starts_at=starts_at,
            ends_at=ends_at,
            group=check_text(group, "group", max_length=32),
            priority=check_int(priority, "priority", minimum=0, maximum=1_000_000),
            loss_leader=bool(loss_leader),
            budget_fen=None if budget is None else to_fen(budget, name="budget"),
        )
        with self._uow.write() as tx:
            Products.require(tx, activity.prices_fen)
            self.check_offer(tx, activity=activity)
            activity = attrs.evolve(activity, id=tx.coupons.save_activity(activity))
            tx.meta.bump("commerce")
        return activity

    def flash_sale(self, name: str, prices: Mapping[str, Money], *, starts_at: datetime, ends_at: datetime,
                   **options: Any) -> Activity:
        """A flash sale (秒杀): an activity price with a mandatory time window."""
        if starts_at is None or ends_at is None:
            raise ValidationError("a flash sale needs starts_at and ends_at")
        return self.activity(name, prices, starts_at=starts_at, ends_at=ends_at, kind="flash_sale", **options)

    def activities(self, *, live: bool = False) -> list[Activity]:
        now = self._uow.now()
        with self._uow.read() as tx:
            return [a for a in tx.coupons.activities() if not live or a.live_at(now)]

    def end_activity(self, activity_id: int) -> Activity:
        with self._uow.write() as tx:
            found = [a for a in tx.coupons.activities() if a.id == activity_id]
            if not found:
                raise ValidationError(f"no activity with id {activity_id}")
            activity = attrs.evolve(found[0], active=False)
            tx.coupons.save_activity(activity)
            tx.meta.bump("commerce")
        return activity

    # -- the margin guard -----------------------------------------------------------------
    def _load_catalog(self, tx: Transaction) -> _Catalog:
        return _Catalog(
            products={p.sku: p for p in tx.products.all()},
            templates={t.id: t for t in tx.coupons.templates()},
            activities=tx.coupons.activities(),
            rules=self._rules(tx),
        )

    @staticmethod
    def _live_offers(catalog: _Catalog, now: datetime) -> list[Offer]:
        offers = [Offer.of_template(t) for t in catalog.templates.values()
                  if t.valid_until is None or t.valid_until > now]
        offers += [Offer.of_activity(a) for a in catalog.activities if a.active and (a.ends_at is None or
                                                                                      a.ends_at > now)]
        return offers

    def check_offer(self, tx: Transaction, *, template: CouponTemplate | None = None,
                    activity: Activity | None = None) -> None:
        """Raise MarginViolation if the new offer's worst-case stacking sells any
        eligible product below its floor (used by coupon and activity creation)."""
        catalog = self._load_catalog(tx)
        if not catalog.rules.guard:
            return
        offer = Offer.of_template(template) if template is not None else Offer.of_activity(activity)  # type: ignore[arg-type]
        self._check(catalog, offer, catalog.rules, others=self._live_offers(catalog, self._uow.now()))

    @staticmethod
    def check_product(product: Product, rules: StackingRules) -> None:
        """The product's own prices (list and member prices) through the price guard."""
        check_price(product, product.price_fen, rules, what="price", loss_left_fen=product.loss_budget_fen)
        for tier, fen in sorted(product.member_prices_fen.items()):
            check_price(product, fen, rules, what=f"member price for {tier!r}", loss_left_fen=product.loss_budget_fen)

    def check_price(self, sku: str, price: Money, *, units: int = 1, what: str = "price") -> Decimal:
        """The margin guard for one fixed unit price of ``sku`` -- the check list,
        member and 拼团 prices go through, for any price you set yourself (a flash
        sale in your own system): raises :class:`~siyu.errors.PriceBelowFloor` if
        ``price`` is below the product's floor (its cost, or cost / (1 - margin
        floor)), unless the product is a traffic or activity item whose loss
        budget has enough left for ``units`` sold at that price. Returns the loss
        below the floor those units would make (0 at or above it); stores nothing."""
        fen = to_fen(price, name="price")
        count = check_int(units, "units", minimum=1, maximum=1_000_000)
        label = check_text(what, "what", max_length=64)
        with self._uow.read() as tx:
            product = Products.require(tx, [sku])[check_sku(sku)]
            left = None if product.loss_budget_fen is None else product.loss_left_fen
            return to_yuan(check_price(product, fen, self._rules(tx), what=label, units=count, loss_left_fen=left))

    def guard_product(self, tx: Transaction, product: Product) -> None:
        """Check a product's own prices, then re-check the live offers for it (its
        price or cost changed)."""
        catalog = self._load_catalog(tx)
        if not catalog.rules.guard:
            return
        self.check_product(product, catalog.rules)
        catalog.products[product.sku] = product
        offers = self._live_offers(catalog, self._uow.now())
        for offer in offers:
            if offer.eligible(product):
                self._check(attrs.evolve(catalog, products={product.sku: product}), offer, catalog.rules, offers)

    def _check(self, catalog: _Catalog, offer: Offer, rules: StackingRules,
               others: Sequence[Offer] | None = None) -> None:
        pool = [o for o in (others if others is not None else self._live_offers(catalog, self._uow.now()))
                if (o.kind, o.source_id) != (offer.kind, offer.source_id) or offer.source_id == 0]
        problems = []
        for product in catalog.products.values():
            if not offer.eligible(product):
                continue
            margin = product.min_margin if product.min_margin is not None else rules.margin_floor
            floor = Fraction(product.cost_fen) / (1 - Fraction(margin))
            if product.role in LOSS_ROLES and product.loss_budget_fen is not None and \
                    min([product.price_fen, *product.member_prices_fen.values()]) < floor:
                # Priced below its floor on its own loss budget. Quotes never discount a line below its
                # floor except by a loss leader's budget, so such a line sells at its own price at worst.
                continue
            for combo in worst_combinations(offer, pool, product, rules):
                unit = worst_unit(product, combo, rules)
                if unit >= floor:
                    continue
                leader = [o for o in combo if o.loss_leader and o.budget_left_fen is not None]
                if leader and product.role in LOSS_ROLES:
                    continue
                names = " + ".join(o.label for o in combo)
                problems.append(
                    f"{product.sku} ({product.title}, {product.role.value}) could sell at "
                    f"{to_yuan(int(unit))} per unit with {names}; its floor is {to_yuan(math.ceil(floor))} "
                    f"(cost {product.cost}, margin floor {margin})"
                )
                break
        if problems:
            hint = ("raise the threshold or lower the discount, limit it to other SKUs/categories, make its group "
                    "exclusive (ws.promotions.configure(combinable=...))")
            if offer.loss_leader:
                hint = "a loss leader may only go below the floor on traffic and activity items; " + hint
            else:
                hint += (", or mark it loss_leader=True with a budget if every such product is a traffic or "
                         "activity item")
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            err = MarginViolation(f"{offer.label} would sell below the margin floor: " + "; ".join(problems[:5])
                                  + more + f". To fix: {hint}")
            err.problems = problems  # type: ignore[attr-defined]
            raise err

    # -- quotes -------------------------------------------------------------------------------
    def cart_lines(self, tx: Transaction, user_id: int, cart: Sequence[Mapping[str, Any]],
                   catalog: _Catalog | None = None, tier: Tier | bool | None = True,
                   loss_spent: dict[str, int] | None = None) -> list[CartLine]:
        """Validate a cart (``[{"sku", "qty", "unit_price"?}]``) into priced lines.

        A traffic or activity item priced below its floor uses its loss budget;
        ``loss_spent`` (SKU -> fen) is what earlier carts of the same batch used
        and is added to."""
        if isinstance(cart, str | bytes) or not isinstance(cart, Sequence) or not cart:
            raise ValidationError('lines must be a non-empty list of {"sku": ..., "qty": ..., "unit_price": ...}')
        catalog = catalog or self._catalog.get(tx)
        if tier is True:  # not looked up by the caller
            tier = self._tiers.tier_in(tx, user_id)
        assert tier is None or isinstance(tier, Tier)
        lines: list[CartLine] = []
        total = 0
        spent = loss_spent if loss_spent is not None else {}
        for index, raw in enumerate(cart):
            if not isinstance(raw, Mapping):
                raise ValidationError(f"line {index}: expected a dict with sku and qty, got {raw!r}")
            unknown = set(raw) - {"sku", "qty", "unit_price"}
            if unknown:
                raise ValidationError(
                    f"line {index}: unknown field(s) {sorted(unknown)}; a line has sku, qty, unit_price")
            # A SKU found in the catalogue was validated when it was added; only
            # unknown values pay for the full check (and get its error message).
            sku = raw.get("sku")
            product = catalog.products.get(sku) if isinstance(sku, str) else None
            if product is None:
                Products.require(tx, [check_sku(sku)])
                raise AssertionError  # require raised
            qty = raw.get("qty", 1)
            if type(qty) is not int or not 1 <= qty <= 100_000:
                qty = check_int(qty, f"line {index} qty", minimum=1, maximum=100_000)
            if product.role is ProductRole.EXCLUSIVE and product.tiers and (tier is None or
                                                                            tier.name not in product.tiers):
                raise PolicyViolation(
                    f"{sku} is exclusive to the tier(s) {', '.join(product.tiers)}; user {user_id} is "
                    f"{'in tier ' + repr(tier.name) if tier else 'in no tier'}"
                )
            if raw.get("unit_price") is not None:
                lines.append(CartLine(product=product, qty=qty, explicit=True,
                                      unit_fen=to_fen(raw["unit_price"], name=f"line {index} unit_price")))
            else:
                unit = product.price_fen
                if tier is not None and tier.name in product.member_prices_fen:
                    unit = min(unit, product.member_prices_fen[tier.name])
                loss = 0
                if product.loss_budget_fen is not None and product.role in LOSS_ROLES and catalog.rules.guard:
                    floor = floor_fen(product, qty, catalog.rules)
                    if unit * qty < floor:
                        left = max(0, product.loss_left_fen - spent.get(product.sku, 0))
                        # As far below the floor as the budget left allows, one price for every unit.
                        unit = max(unit, -(-(floor - left) // qty))
                        loss = max(0, floor - unit * qty)
                        spent[product.sku] = spent.get(product.sku, 0) + loss
                lines.append(CartLine(product=product, qty=qty, unit_fen=unit, loss_fen=loss))
            amount = lines[-1].unit_fen * qty
            total += amount
            if total > MAX_FEN:
                what = f"line {index} ({qty} x {to_yuan(lines[-1].unit_fen)} yuan)" if amount > MAX_FEN \
                    else f"the cart up to line {index}"
                raise InvalidMoney(f"{what} comes to more than siyu can store (at most {to_yuan(MAX_FEN)} yuan "
                                   "an order); split it into several orders")
        return lines

    def offers_for(self, tx: Transaction, user_id: int, coupons: Sequence[Coupon], now: datetime,
                   catalog: _Catalog, *, first_order: bool | None = None) -> tuple[list[Offer], list[str]]:
        """Offers a user may use now: live activities plus the given coupons whose
        templates allow them (new-customer-only checks the order history, unless
        ``first_order`` says whether this is the user's first order)."""
        offers = [Offer.of_activity(a) for a in catalog.activities if a.live_at(now)]
        skipped: list[str] = []
        for c in coupons:
            t = catalog.templates.get(c.template_id)
            if t is None:
                continue
            if t.new_customers_only:
                if first_order is None:
                    first_order = tx.orders.count_paid(user_id) == 0
                if not first_order:
                    skipped.append(f"coupon {t.name!r} ({c.code}): for new customers only")
                    continue
            offers.append(Offer.of_template(t, code=c.code))
        return offers, skipped

    def quote(self, user_id: int, cart: Sequence[Mapping[str, Any]], *,
              coupons: Sequence[str] | None = None) -> Quote:
        """The best legal combination of live activities and the user's coupons
        (all usable ones, or only ``coupons`` codes) for ``cart``, with a
        line-by-line explanation (``quote.explain()``). Nothing is stored."""
        now = self._uow.now()
        with self._uow.read() as tx:
            uid = check_user_id(user_id)
            if not tx.users.exists([uid]):
                raise NotFound(f"no user with id {uid}; quotes are for existing users (ws.users.add)")
            catalog = self._catalog.get(tx)
            lines = self.cart_lines(tx, uid, cart, catalog)
            if coupons is None:
                held = [c for c in tx.coupons.of_user(uid, "issued") if c.usable_at(now)]
            else:
                codes = [check_text(c, "coupon code", max_length=64)
                         for c in check_many(coupons, "coupons", "['CP-7KX2']")]
                held = Coupons.usable(tx, uid, codes, now)
            offers, skipped = self.offers_for(tx, uid, held, now, catalog)
        return best_quote(uid, lines, offers, catalog.rules, skipped)

    def catalog(self, tx: Transaction) -> _Catalog:
        """Products, templates, activities and rules, cached until the ``commerce`` counter moves."""
        return self._catalog.get(tx)

    def price_order(self, tx: Transaction, user_id: int, cart: Sequence[Mapping[str, Any]],
                    coupons: Sequence[Coupon], now: datetime, *, catalog: _Catalog | None = None,
                    tier: Tier | bool | None = True, first_order: bool | None = None,
                    loss_spent: dict[str, int] | None = None,
                    budget_spent: dict[tuple[str, int], int] | None = None) -> tuple[Quote, list[CartLine]]:
        """Price an order with exactly ``coupons`` (each must apply) plus the best
        legal activities; used by ``ws.orders.record`` (which passes the catalog
        and the user's tier it looked up once for a whole batch, and
        ``first_order=False`` for a user's later orders in the batch, and the loss
        budgets its earlier orders used in ``loss_spent`` (products) and
        ``budget_spent`` (loss-leader offers, by ``(kind, source_id)``): the
        catalogue was loaded before them)."""
        catalog = catalog or self._catalog.get(tx)
        lines = self.cart_lines(tx, user_id, cart, catalog, tier, loss_spent)
        offers, skipped = self.offers_for(tx, user_id, coupons, now, catalog, first_order=first_order)
        if budget_spent:
            offers = [attrs.evolve(o, budget_left_fen=max(0, o.budget_left_fen - budget_spent[o.kind, o.source_id]))
                      if o.budget_left_fen is not None and (o.kind, o.source_id) in budget_spent else o
                      for o in offers]
        if skipped:
            raise ValidationError(f"coupon not usable: {skipped[0]}")
        codes = {c.code for c in coupons}
        quote = best_quote(user_id, lines, offers, catalog.rules, required={o.code for o in offers if o.code})
        unused = codes - set(quote.coupon_codes)
        if unused:
            why = [s for s in quote.skipped if any(code in s for code in unused)]
            raise ValidationError(
                f"coupon {sorted(unused)[0]!r} cannot be used on this order"
                + (f": {why[0]}" if why else "") + "; drop it or change the cart"
            )
        return quote, lines
