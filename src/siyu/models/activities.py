"""Activities: 秒杀 flash sales and their reservations, 砍价 bargains, 抽奖 / 盲盒 draws.

Money is integer fen in fields ending in ``_fen``; the properties without the
suffix give yuan as ``Decimal``. Instants are timezone-aware.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from decimal import Decimal

import attrs

from ..money import to_yuan

__all__ = [
    "AttemptStatus",
    "Bargain",
    "BargainAttempt",
    "BargainHelp",
    "Draw",
    "DrawRecord",
    "DrawStatus",
    "FlashSale",
    "Prize",
    "PrizeKind",
    "Reservation",
    "ReservationStatus",
]


class ReservationStatus(enum.StrEnum):
    """Where a flash-sale reservation is. Only ``reserved`` moves: to ``paid`` (the
    order was recorded) or ``released`` (cancelled, or its hold ran out); ``paid``
    moves once more, to ``refunded``, when the order is cancelled or refunded."""

    RESERVED = "reserved"
    PAID = "paid"
    RELEASED = "released"
    REFUNDED = "refunded"


@attrs.frozen(kw_only=True)
class FlashSale:
    """A 秒杀 / 限量抢购: ``sku`` at ``price_fen`` for units of its own stock, in the
    half-open window ``[starts_at, ends_at)``.

    ``stock`` is what is left to reserve, ``reserved`` what buyers hold unpaid,
    ``sold`` what they paid for; the three add up to :attr:`total` at all times.
    ``per_user`` caps the units one user holds or bought over the whole sale,
    ``per_user_day`` per business day (``None``: no cap). A reservation holds its
    units for ``hold``. ``base_price_fen`` is the crossed-out price shown next to
    the sale price (划线价), ``base_label`` what it means when it is not the
    lowest price of the last 7 days. ``clearance`` is the reason a price below
    the floor was allowed (fresh, seasonal, overstock, near_expiry), and
    ``loss_fen`` the product loss budget the sale holds for its units.
    """

    id: int
    name: str
    sku: str
    price_fen: int
    stock: int
    reserved: int
    sold: int
    starts_at: datetime
    ends_at: datetime
    hold: timedelta
    per_user: int | None = None
    per_user_day: int | None = None
    base_price_fen: int | None = None
    base_label: str | None = None
    clearance: str | None = None
    loss_fen: int = 0
    active: bool = True
    created_at: datetime | None = None

    @property
    def price(self) -> Decimal:
        return to_yuan(self.price_fen)

    @property
    def base_price(self) -> Decimal | None:
        return None if self.base_price_fen is None else to_yuan(self.base_price_fen)

    @property
    def total(self) -> int:
        """Units the sale was created with: ``stock + reserved + sold``."""
        return self.stock + self.reserved + self.sold

    def open_at(self, at: datetime) -> bool:
        """Whether reservations are taken at ``at`` (active and inside the window)."""
        return self.active and self.starts_at <= at < self.ends_at


@attrs.frozen(kw_only=True)
class Reservation:
    """Units of a flash sale held for one buyer until ``expires_at``.

    ``day`` is the business day it was made on (per-day quotas count it
    there); ``order_id`` is set once it is paid."""

    id: int
    sale_id: int
    user_id: int
    qty: int
    status: ReservationStatus
    key: str
    day: date
    created_at: datetime
    expires_at: datetime
    order_id: int | None = None
    closed_at: datetime | None = None


class AttemptStatus(enum.StrEnum):
    """Where a bargain attempt is: ``open`` while helpers cut, ``succeeded`` at the
    floor (buyable until its deadline), ``bought`` once ordered, ``failed`` when
    its deadline or the activity's end passed first."""

    OPEN = "open"
    SUCCEEDED = "succeeded"
    BOUGHT = "bought"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class Bargain:
    """A 砍价 activity: helpers cut ``sku``'s price from ``price_fen`` to
    ``floor_fen`` in exactly ``helpers`` helps; ``stock`` units sell at the floor.

    ``attempts_per_user`` caps how many attempts one user may start,
    ``helps_per_helper`` how many attempts one person may help in this activity.
    An attempt has ``attempt_ttl`` to succeed and be bought (never past
    ``ends_at``). ``external_links`` says what happens to a help whose entry
    point is a WeChat external link: ``"refuse"`` or ``"flag"``.
    """

    id: int
    name: str
    sku: str
    price_fen: int
    floor_fen: int
    helpers: int
    stock: int
    sold: int
    starts_at: datetime
    ends_at: datetime
    attempt_ttl: timedelta
    attempts_per_user: int = 1
    helps_per_helper: int = 1
    external_links: str = "refuse"
    loss_fen: int = 0
    active: bool = True
    created_at: datetime | None = None

    @property
    def price(self) -> Decimal:
        return to_yuan(self.price_fen)

    @property
    def floor(self) -> Decimal:
        return to_yuan(self.floor_fen)

    def open_at(self, at: datetime) -> bool:
        return self.active and self.starts_at <= at < self.ends_at


@attrs.frozen(kw_only=True)
class BargainAttempt:
    """One user's attempt, with the rules it started under (helpers needed,
    floor, deadline) copied onto it: editing the activity later changes nothing here.

    ``cut_fen`` is what the helps cut so far; the price reached is
    ``price_fen - cut_fen``. The cuts come from ``seed`` (see
    :func:`siyu.activities.fairness.cut_sequence`)."""

    id: int
    bargain_id: int
    user_id: int
    status: AttemptStatus
    price_fen: int
    floor_fen: int
    helpers: int
    deadline: datetime
    seed: str
    cut_fen: int
    helps: int
    created_at: datetime
    order_id: int | None = None
    closed_at: datetime | None = None

    @property
    def current_fen(self) -> int:
        return self.price_fen - self.cut_fen

    @property
    def current(self) -> Decimal:
        """The price reached so far (yuan)."""
        return to_yuan(self.current_fen)


@attrs.frozen(kw_only=True)
class BargainHelp:
    """One helper's cut: the ``seq``-th help of the attempt, ``cut_fen`` off.
    ``flagged`` marks a help that came through a WeChat external link under the
    ``"flag"`` policy."""

    attempt_id: int
    helper_id: int
    seq: int
    cut_fen: int
    at: datetime
    flagged: bool = False


class PrizeKind(enum.StrEnum):
    """What a prize gives: nothing (未中奖), points, a coupon, or a product to ship."""

    MISS = "miss"
    POINTS = "points"
    COUPON = "coupon"
    PRODUCT = "product"


@attrs.frozen(kw_only=True)
class Prize:
    """One line of a draw's prize table.

    ``weight`` over the sum of all weights is the published probability.
    ``stock`` caps how many are ever awarded (``None``: no cap). ``value_fen`` is
    the prize's value (cash, or the market price of goods) checked against the
    legal cap. ``points`` / ``coupon`` (a template name) / ``sku`` say what is
    delivered for the kind."""

    name: str
    kind: PrizeKind
    weight: int
    stock: int | None = None
    value_fen: int = 0
    points: int = 0
    coupon: str | None = None
    sku: str | None = None

    @property
    def value(self) -> Decimal:
        return to_yuan(self.value_fen)


class DrawStatus(enum.StrEnum):
    """``draft`` (editable, no draws), ``published`` (commitment public, rules
    frozen, draws taken in the window), ``revealed`` (seed public, verifiable)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    REVEALED = "revealed"


@attrs.frozen(kw_only=True)
class Draw:
    """A 抽奖 / 盲盒 activity.

    ``exhausted`` says what a draw that lands on a prize with no stock left
    gives: ``"miss"`` (the 未中奖 prize; actual odds fall, as disclosed) or
    ``"redraw"`` (drawn again among prizes still in stock). ``cost_points`` is
    charged per draw; with ``per_order`` each draw needs a paid order of the
    user, one draw per order. ``pity``: no user has that many consecutive
    misses (保底). ``blind_box``: buyers' ages are checked (no sales under 8,
    guardian consent under 18). ``commitment`` is the SHA-256 of the server
    seed, public from publication; ``seed`` is shown only once revealed."""

    id: int
    name: str
    status: DrawStatus
    prizes: tuple[Prize, ...]
    starts_at: datetime
    ends_at: datetime
    rules: dict[str, str]
    exhausted: str = "miss"
    cost_points: int = 0
    per_order: bool = False
    per_user_day: int | None = None
    per_user: int | None = None
    pity: int | None = None
    blind_box: bool = False
    commitment: str | None = None
    seed: str | None = None
    created_at: datetime | None = None

    def odds(self) -> list[tuple[str, Decimal]]:
        """Each prize's published probability, as a share of 1 (rounded to 6 places)."""
        total = sum(p.weight for p in self.prizes)
        return [(p.name, (Decimal(p.weight) / total).quantize(Decimal("0.000001"))) for p in self.prizes]


@attrs.frozen(kw_only=True)
class DrawRecord:
    """One draw: the user's ``seq``-th, what the seed rolled (``rolled``, a prize
    index), what was awarded (``prize``) and why (``reason``: "roll", "pity",
    "exhausted" or "redraw"; ``eligible`` the prize indexes the pity or redraw
    chose among). Enough to re-compute it from the revealed seed."""

    id: int
    draw_id: int
    user_id: int
    seq: int
    key: str
    rolled: int
    prize: int
    reason: str
    eligible: tuple[int, ...]
    at: datetime
    order_id: int | None = None
    cost_points: int = 0
