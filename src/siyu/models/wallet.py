"""The member wallet: stored value (储值), gift cards, and the points mall (积分商城).

Money is integer fen in every field whose name ends in ``_fen``; the yuan
properties without the suffix are what people read. Stored value keeps the
cash a member paid (*principal*) apart from what the shop added (*bonus*):
only principal is ever paid back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from ..money import to_yuan

__all__ = [
    "GiftCard",
    "GiftCardEntry",
    "Liability",
    "Recharge",
    "RechargePlan",
    "RechargeTier",
    "Redemption",
    "Reward",
    "WalletBalance",
    "WalletEntry",
    "WalletRefund",
]


@attrs.frozen(kw_only=True)
class RechargeTier:
    """充 ``pay`` 送 ``bonus``: paying at least ``pay_fen`` adds ``bonus_fen``."""

    pay_fen: int
    bonus_fen: int

    @property
    def pay(self) -> Decimal:
        return to_yuan(self.pay_fen)

    @property
    def bonus(self) -> Decimal:
        return to_yuan(self.bonus_fen)


@attrs.frozen(kw_only=True)
class RechargePlan:
    """A named set of recharge tiers (充100送20, 充500送120 ...), lowest first."""

    id: int
    name: str
    tiers: tuple[RechargeTier, ...]
    active: bool = True
    created_at: datetime | None = None

    def bonus_for(self, pay_fen: int) -> int:
        """The bonus of the highest tier ``pay_fen`` reaches (0 below the lowest)."""
        reached = [t.bonus_fen for t in self.tiers if t.pay_fen <= pay_fen]
        return reached[-1] if reached else 0


@attrs.frozen(kw_only=True)
class Recharge:
    """One top-up. ``status``: ``pending`` (waiting for the payment callback),
    ``paid`` (credited), ``refused`` (paid, but crediting it would break a legal
    cap: the payment must be returned), ``cancelled``."""

    id: int
    user_id: int
    payment_id: str
    plan: str | None
    principal_fen: int
    bonus_fen: int
    status: str
    method: str
    created_at: datetime
    paid_at: datetime | None = None
    note: str = ""

    @property
    def amount(self) -> Decimal:
        return to_yuan(self.principal_fen)

    @property
    def bonus(self) -> Decimal:
        return to_yuan(self.bonus_fen)


@attrs.frozen(kw_only=True)
class WalletBalance:
    """A member's stored value: ``principal`` (cash paid in) and ``bonus`` (added by the shop)."""

    user_id: int
    principal_fen: int = 0
    bonus_fen: int = 0

    @property
    def principal(self) -> Decimal:
        return to_yuan(self.principal_fen)

    @property
    def bonus(self) -> Decimal:
        return to_yuan(self.bonus_fen)

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.bonus_fen

    @property
    def total(self) -> Decimal:
        return to_yuan(self.total_fen)


@attrs.frozen(kw_only=True)
class WalletEntry:
    """One change of a wallet, with the balances after it.

    ``kind``: ``recharge``, ``pay`` (an order or a debit), ``refund_in`` (an
    order refund back to the wallet), ``card_in`` (a gift card redeemed into the
    wallet), ``refund_out`` (principal paid back in cash) and ``forfeit``
    (bonus given up with that refund), ``merge_out`` / ``merge_in`` (two accounts
    of one person merged, or unmerged). The two deltas are signed."""

    id: int
    user_id: int
    kind: str
    principal_fen: int
    bonus_fen: int
    principal_after_fen: int
    bonus_after_fen: int
    ref: str
    at: datetime
    key: str | None = None

    @property
    def amount(self) -> Decimal:
        return to_yuan(self.principal_fen + self.bonus_fen)

    @property
    def principal_before_fen(self) -> int:
        return self.principal_after_fen - self.principal_fen

    @property
    def bonus_before_fen(self) -> int:
        return self.bonus_after_fen - self.bonus_fen


@attrs.frozen(kw_only=True)
class WalletRefund:
    """Principal paid back in cash, and the bonus forfeited with it."""

    user_id: int
    paid_out_fen: int
    forfeited_fen: int
    entry_ids: tuple[int, ...]

    @property
    def paid_out(self) -> Decimal:
        return to_yuan(self.paid_out_fen)

    @property
    def forfeited(self) -> Decimal:
        return to_yuan(self.forfeited_fen)


@attrs.frozen(kw_only=True)
class Liability:
    """What the shop owes on stored value now, and the escrow (资金存管) it must hold.

    ``base_fen`` is the prepaid cash outstanding at the end of the previous
    quarter (wallet principal plus gift-card balances); ``escrow_fen`` is that
    times ``escrow_ratio`` (the issuer tier's ratio in the prepaid-card rules)."""

    at: datetime
    principal_fen: int
    bonus_fen: int
    gift_cards_fen: int
    quarter_start: datetime
    base_fen: int
    issuer_tier: str
    escrow_ratio: Decimal
    escrow_fen: int
    rules_version: str

    @property
    def principal(self) -> Decimal:
        return to_yuan(self.principal_fen)

    @property
    def bonus(self) -> Decimal:
        return to_yuan(self.bonus_fen)

    @property
    def gift_cards(self) -> Decimal:
        return to_yuan(self.gift_cards_fen)

    @property
    def escrow(self) -> Decimal:
        return to_yuan(self.escrow_fen)

    @property
    def cash_owed_fen(self) -> int:
        """Cash the shop would pay back if every holder asked: principal and card balances."""
        return self.principal_fen + self.gift_cards_fen


@attrs.frozen(kw_only=True)
class GiftCard:
    """A prepaid card. The full code is shown once, when issued; storage keeps
    its hash and the last four characters (``last4``).

    ``status``: ``inactive`` (issued, not sold yet), ``active``, ``void``. The
    first member to use an active card becomes its ``owner_id``; nobody else
    can use it then. ``named`` cards (记名) have no expiry."""

    id: int
    last4: str
    value_fen: int
    balance_fen: int
    named: bool
    status: str
    owner_id: int | None
    expires_at: datetime | None
    created_at: datetime
    sold_at: datetime | None = None
    batch: str = ""
    code: str | None = attrs.field(default=None, repr=False)

    @property
    def balance(self) -> Decimal:
        return to_yuan(self.balance_fen)

    @property
    def value(self) -> Decimal:
        return to_yuan(self.value_fen)


@attrs.frozen(kw_only=True)
class GiftCardEntry:
    """One change of a card's balance, with the balance before and after."""

    id: int
    card_id: int
    kind: str
    amount_fen: int
    balance_before_fen: int
    balance_after_fen: int
    user_id: int | None
    ref: str
    at: datetime


@attrs.frozen(kw_only=True)
class Reward:
    """A reward in the points mall (积分商城).

    ``kind``: ``coupon`` (issues a coupon of ``coupon_template``), ``product``
    (a catalogue SKU to ship) or ``gift`` (a physical gift to ship). ``stock``
    ``None`` is unlimited; ``per_member`` and ``per_order`` likewise;
    ``per_period`` caps redemptions per member per ``period`` (``day``,
    ``week`` or ``month`` in the business time zone). ``tiers`` (empty: all)
    are the tiers allowed to redeem. ``terms`` is the published exchange rule,
    ``scope`` what it may be used for and ``validity`` how long it lasts:
    promotion rules require all three before a reward is offered."""

    id: int
    name: str
    kind: str
    points: int
    terms: str
    scope: str
    validity: str
    stock: int | None = None
    redeemed: int = 0
    per_member: int | None = None
    per_order: int | None = None
    per_period: int | None = None
    period: str = "month"
    tiers: tuple[str, ...] = ()
    coupon_template: str | None = None
    sku: str | None = None
    active: bool = True
    created_at: datetime | None = None

    @property
    def left(self) -> int | None:
        return None if self.stock is None else self.stock - self.redeemed


@attrs.frozen(kw_only=True)
class Redemption:
    """Points exchanged for a reward.

    ``status``: ``issued`` (a coupon was issued: done), ``pending`` (goods to
    ship), ``fulfilled`` (shipped), ``cancelled`` (points and stock given back)
    or ``failed`` (issuing failed after the debit; the points were restored)."""

    id: int
    reward_id: int
    user_id: int
    qty: int
    points: int
    status: str
    key: str
    at: datetime
    spend_entry_id: int | None = None
    refund_entry_id: int | None = None
    coupon_codes: tuple[str, ...] = ()
    note: str = ""
    updated_at: datetime | None = None
