"""Commerce: products and their roles, orders, refunds, coupons, activities, tiers.

Money is integer fen in every model field whose name ends in ``_fen``; the
services convert to yuan ``Decimal`` at the public API (properties without the
suffix, such as :attr:`Product.price`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from ..money import to_yuan

__all__ = [
    "Activity",
    "Coupon",
    "CouponTemplate",
    "Order",
    "OrderLine",
    "Product",
    "ProductRole",
    "Refund",
    "Tier",
    "TierChange",
]


class ProductRole(enum.StrEnum):
    """The six roles of the 私域 product system. A role is data other rules read:
    traffic items earn no points or commission by default, only fission items may
    be fission prizes, exclusive items are reserved for tiers that own them."""

    #: 关系品: builds the relationship (samples, gifts for adding WeChat).
    RELATIONSHIP = "relationship"
    #: 引流品 / 流量品: cheap entry items that bring people in.
    TRAFFIC = "traffic"
    #: 活动品: items for activities and events.
    ACTIVITY = "activity"
    #: 裂变品: prizes for sharing and inviting.
    FISSION = "fission"
    #: 利润品: where the margin is made.
    PROFIT = "profit"
    #: 专属品: reserved for members of certain tiers.
    EXCLUSIVE = "exclusive"


@attrs.frozen(kw_only=True)
class Product:
    """A sellable item. ``min_margin`` overrides the workspace margin floor for it.

    ``loss_budget_fen``: what the shop accepts to lose selling a traffic or
    activity item below its floor at its own prices (list, member, 拼团);
    ``None``: it may not. ``loss_used_fen`` is what orders and groups used of it."""

    sku: str
    title: str
    price_fen: int
    cost_fen: int
    role: ProductRole
    category: str | None = None
    min_margin: Decimal | None = None
    active: bool = True
    #: Tier name -> member price in fen.
    member_prices_fen: dict[str, int] = attrs.field(factory=dict)
    #: Tiers that may buy an exclusive product (empty: everyone).
    tiers: tuple[str, ...] = ()
    loss_budget_fen: int | None = None
    loss_used_fen: int = 0

    @property
    def price(self) -> Decimal:
        return to_yuan(self.price_fen)

    @property
    def cost(self) -> Decimal:
        return to_yuan(self.cost_fen)

    @property
    def loss_budget(self) -> Decimal | None:
        return None if self.loss_budget_fen is None else to_yuan(self.loss_budget_fen)

    @property
    def loss_left_fen(self) -> int:
        """What is left of the loss budget (0 without one)."""
        return 0 if self.loss_budget_fen is None else max(0, self.loss_budget_fen - self.loss_used_fen)


@attrs.frozen(kw_only=True)
class OrderLine:
    """One line of an order. ``paid_fen`` is after every discount.

    ``points`` and ``growth`` are the purchase points and tier growth the line
    earned (the order's split over its lines); a refund of the line takes back
    those. ``None``: an order recorded before they were kept per line, whose
    refunds take back a share of the order's in proportion to the money."""

    sku: str
    qty: int
    unit_fen: int
    paid_fen: int
    role: ProductRole
    category: str | None = None
    cost_fen: int = 0
    refunded_fen: int = 0
    refunded_qty: int = 0
    points: int | None = None
    growth: int | None = None
    #: The product's own loss budget the line used (sold below its floor at the product's price).
    loss_fen: int = 0

    @property
    def paid(self) -> Decimal:
        return to_yuan(self.paid_fen)


@attrs.frozen(kw_only=True)
class Order:
    """A paid order. ``total_fen`` is what the user paid, ``discount_fen`` what
    promotions took off ``subtotal_fen``."""

    id: int
    user_id: int
    key: str | None
    channel: str | None
    paid_at: datetime
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    refunded_fen: int
    lines: tuple[OrderLine, ...]
    coupon_codes: tuple[str, ...] = ()
    points_entry_id: int | None = None
    points: int = 0
    growth: int = 0
    #: Loss-leader budget used: ``(kind, source_id, fen)`` per offer.
    budget: tuple[tuple[str, int, int], ...] = ()
    #: The same budget split by line: ``(kind, source_id, line_no, fen)`` (empty for
    #: orders recorded before the split was kept).
    budget_lines: tuple[tuple[str, int, int, int], ...] = ()

    @property
    def total(self) -> Decimal:
        return to_yuan(self.total_fen)

    @property
    def refunded(self) -> Decimal:
        return to_yuan(self.refunded_fen)

    @property
    def status(self) -> str:
        """``paid``, ``partially_refunded`` or ``refunded``."""
        if self.refunded_fen == 0:
            return "paid"
        return "refunded" if self.refunded_fen >= self.total_fen else "partially_refunded"


@attrs.frozen(kw_only=True)
class Refund:
    """A refund of part or all of an order. ``lines`` are ``(line_no, qty, fen)``;
    ``line_effects`` are ``(line_no, points, growth)``: what the refund took back
    of what each line earned (the points asked back, ``points_reversed`` plus
    ``points_shortfall``; empty for orders recorded before lines kept theirs)."""

    id: int
    order_id: int
    user_id: int
    key: str
    at: datetime
    amount_fen: int
    lines: tuple[tuple[int, int, int], ...]
    full: bool
    points_reversed: int = 0
    points_shortfall: int = 0
    growth_reversed: int = 0
    coupons_returned: tuple[str, ...] = ()
    line_effects: tuple[tuple[int, int, int], ...] = ()

    @property
    def amount(self) -> Decimal:
        return to_yuan(self.amount_fen)


@attrs.frozen(kw_only=True)
class CouponTemplate:
    """What a coupon gives and when it may be used.

    ``kind``: ``amount_off`` (满减: ``amount_fen`` off when the eligible amount
    reaches ``threshold_fen``), ``percent_off`` (``percent`` off, at most
    ``cap_fen``), ``free_item`` (one unit of ``free_sku`` free when the cart holds
    ``min_qty`` of it). ``skus`` / ``categories`` limit the eligible lines
    (empty: all). Validity is absolute (``valid_from``/``valid_until``) or
    relative to issue (``valid_days`` or ``valid_months_end``: end of the month
    N months after issue, 0 = this month)."""

    id: int
    name: str
    kind: str
    amount_fen: int = 0
    threshold_fen: int = 0
    percent: int = 0
    cap_fen: int | None = None
    free_sku: str | None = None
    min_qty: int = 1
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    new_customers_only: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    valid_months_end: int | None = None
    per_user_limit: int | None = 1
    total_limit: int | None = None
    issued: int = 0
    group: str = "coupon"
    priority: int = 100
    loss_leader: bool = False
    budget_fen: int | None = None
    budget_used_fen: int = 0
    active: bool = True
    created_at: datetime | None = None


@attrs.frozen(kw_only=True)
class Coupon:
    """One issued coupon. ``status``: ``issued``, ``redeemed``, ``expired``, ``void``."""

    id: int
    code: str
    template_id: int
    user_id: int
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime | None
    status: str = "issued"
    order_id: int | None = None
    redeemed_at: datetime | None = None

    def usable_at(self, at: datetime) -> bool:
        return self.status == "issued" and self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


@attrs.frozen(kw_only=True)
class Activity:
    """An activity price or flash sale: fixed unit prices (fen) for SKUs in a window."""

    id: int
    name: str
    kind: str
    prices_fen: dict[str, int]
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    group: str = "activity"
    priority: int = 10
    loss_leader: bool = False
    budget_fen: int | None = None
    budget_used_fen: int = 0
    active: bool = True

    def live_at(self, at: datetime) -> bool:
        return self.active and (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )


@attrs.frozen(kw_only=True)
class Tier:
    """A membership tier: reached when the rolling growth value hits ``threshold``.

    ``benefits`` is data: ``points_multiplier`` (Decimal as str, e.g. "1.5"),
    ``birthday_bonus`` (points), ``member_prices`` are kept on products,
    ``exclusive`` (SKUs), and anything else your own rules read."""

    name: str
    threshold: int
    rank: int
    benefits: dict[str, Any] = attrs.field(factory=dict)

    @property
    def points_multiplier(self) -> Decimal:
        return Decimal(str(self.benefits.get("points_multiplier", "1")))


@attrs.frozen(kw_only=True)
class TierChange:
    """One entry of a user's tier history."""

    user_id: int
    at: datetime
    old: str | None
    new: str | None
    growth: int
    reason: str
