"""Domain events: frozen records of committed changes.

Every change siyu makes emits one of these to the ``siyu_on_event`` hook
after the transaction commits. Events carry ids and values, never live
objects, so an observer may keep them, queue them or serialize them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "BargainBought",
    "BargainFailed",
    "BargainHelped",
    "BargainStarted",
    "BargainSucceeded",
    "CampaignCreated",
    "CampaignDecided",
    "CampaignLaunched",
    "CampaignPaused",
    "CampaignSent",
    "ConversionAttributed",
    "DeliverySkipped",
    "DrawMade",
    "DrawPublished",
    "DrawRevealed",
    "EventTracked",
    "FlashSaleCreated",
    "FlashSalePaid",
    "FlashSaleReleased",
    "FlashSaleReserved",
    "LifecycleChanged",
    "CommissionAdjusted",
    "CommissionRecorded",
    "CommissionSettled",
    "ConsentRecorded",
    "CouponIssued",
    "CouponRedeemed",
    "CouponReturned",
    "Event",
    "GiftCardChanged",
    "GroupBuyCompleted",
    "GroupBuyFailed",
    "GroupBuyJoined",
    "GroupBuyLeft",
    "GroupBuyOpened",
    "GroupBuyRefund",
    "IdentityLinked",
    "InviteRewardIssued",
    "IdentityUnlinked",
    "OrderLineInfo",
    "OrderRecorded",
    "OrderRefunded",
    "PersonalDataErased",
    "PointsEarned",
    "PointsExpired",
    "PointsReversed",
    "PointsSpent",
    "PresaleChanged",
    "RechargeRefused",
    "ReceiptsRecorded",
    "RedemptionReversed",
    "ReferralBound",
    "ReferralHeld",
    "ReferralUnbound",
    "RewardRedeemed",
    "TagApplied",
    "TierChanged",
    "TagRemoved",
    "StaffAdded",
    "StaffResigned",
    "CustomerFollowed",
    "CustomerUnfollowed",
    "OwnerChanged",
    "TransferStarted",
    "TransferFinished",
    "GroupChanged",
    "GroupMembersChanged",
    "TaskCompleted",
    "TasksCreated",
    "UserCreated",
    "UserUpdated",
    "UsersMerged",
    "UsersUnmerged",
    "WalletChanged",
]


@attrs.frozen(kw_only=True)
class Event:
    """Base of all events. ``at`` is when the change happened (workspace clock)."""

    at: datetime


@attrs.frozen(kw_only=True)
class UserCreated(Event):
    user_id: int
    source: str | None


@attrs.frozen(kw_only=True)
class UserUpdated(Event):
    user_id: int
    changed: tuple[str, ...]


@attrs.frozen(kw_only=True)
class IdentityLinked(Event):
    user_id: int
    kind: str
    scope: str


@attrs.frozen(kw_only=True)
class IdentityUnlinked(Event):
    user_id: int
    kind: str
    scope: str


@attrs.frozen(kw_only=True)
class ConsentRecorded(Event):
    user_id: int
    purpose: str
    channel: str
    granted: bool


@attrs.frozen(kw_only=True)
class UsersMerged(Event):
    merge_id: int
    keep_id: int
    drop_id: int


@attrs.frozen(kw_only=True)
class UsersUnmerged(Event):
    merge_id: int
    keep_id: int
    drop_id: int


@attrs.frozen(kw_only=True)
class PersonalDataErased(Event):
    """A person's personal data was erased (``ws.privacy.erase``); ``pseudonym`` replaces them."""

    user_id: int
    pseudonym: str


@attrs.frozen(kw_only=True)
class TagApplied(Event):
    user_id: int
    tag: str
    by: str


@attrs.frozen(kw_only=True)
class TagRemoved(Event):
    user_id: int
    tag: str
    by: str


@attrs.frozen(kw_only=True)
class PointsEarned(Event):
    user_id: int
    entry_id: int
    amount: int
    reason: str
    key: str


@attrs.frozen(kw_only=True)
class PointsSpent(Event):
    user_id: int
    entry_id: int
    amount: int
    reason: str
    key: str


@attrs.frozen(kw_only=True)
class PointsReversed(Event):
    user_id: int
    entry_id: int
    reversed_entry_id: int
    amount: int
    key: str


@attrs.frozen(kw_only=True)
class PointsExpired(Event):
    user_id: int
    entry_id: int
    amount: int


@attrs.frozen(kw_only=True)
class OrderLineInfo:
    """One order line as events carry it: what was bought, the role of the
    product, and the fen actually paid for the line after all discounts.
    ``line_no`` is the line's position in the order (0 first; ``None`` in events
    from before it was carried), so a refund's lines name the lines they return."""

    sku: str
    qty: int
    paid_fen: int
    role: str
    line_no: int | None = None


@attrs.frozen(kw_only=True)
class OrderRecorded(Event):
    """An order was paid. Referral rewards and commissions hang off this."""

    order_id: int
    user_id: int
    total_fen: int
    lines: tuple[OrderLineInfo, ...]
    channel: str | None
    paid_at: datetime
    coupon_codes: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OrderRefunded(Event):
    """Part or all of an order was refunded; ``lines`` hold the refunded part
    (units and money per order line). Whatever an order caused (points,
    commissions, fission rewards) is reversed for what the refunded lines
    earned: the refunded share of each line's own part."""

    order_id: int
    refund_id: int
    user_id: int
    amount_fen: int
    order_total_fen: int
    lines: tuple[OrderLineInfo, ...]
    full: bool


@attrs.frozen(kw_only=True)
class CouponIssued(Event):
    coupon_id: int
    code: str
    template: str
    user_id: int
    valid_until: datetime | None


@attrs.frozen(kw_only=True)
class CouponRedeemed(Event):
    coupon_id: int
    code: str
    user_id: int
    order_id: int
    saved_fen: int


@attrs.frozen(kw_only=True)
class CouponReturned(Event):
    """A full refund gave a coupon back (``status`` is ``"issued"`` again, or
    ``"expired"`` when its validity had already ended)."""

    coupon_id: int
    code: str
    user_id: int
    order_id: int
    status: str


@attrs.frozen(kw_only=True)
class TierChanged(Event):
    """A user's membership tier changed (``old``/``new`` may be ``None``: no tier)."""

    user_id: int
    old: str | None
    new: str | None
    growth: int
    reason: str


@attrs.frozen(kw_only=True)
class ReferralBound(Event):
    """``invitee_id`` now counts as invited by ``inviter_id``. ``via`` is ``"code"``,
    ``"direct"``, ``"rebind"``, ``"takeover"`` (protection window over) or ``"merge"``;
    ``held`` is true when a fraud guard holds the binding for review."""

    invitee_id: int
    inviter_id: int
    campaign: str | None
    channel_state: str | None
    via: str
    previous_inviter_id: int | None = None
    held: bool = False


@attrs.frozen(kw_only=True)
class ReferralUnbound(Event):
    invitee_id: int
    inviter_id: int
    reason: str


@attrs.frozen(kw_only=True)
class ReferralHeld(Event):
    """A fraud guard held a binding or a reward for review (``ws.referrals.fraud.held()``)."""

    hold_id: int
    kind: str
    user_id: int
    subject_id: int
    reasons: tuple[str, ...]


@attrs.frozen(kw_only=True)
class InviteRewardIssued(Event):
    """A 任务宝 stage reward was granted (once per task, user and stage)."""

    task_id: int
    user_id: int
    stage: int
    kind: str
    points: int = 0
    coupon: str | None = None
    sku: str | None = None
    qty: int = 0


@attrs.frozen(kw_only=True)
class GroupBuyOpened(Event):
    group_id: int
    leader_id: int
    sku: str
    size: int
    expires_at: datetime


@attrs.frozen(kw_only=True)
class GroupBuyJoined(Event):
    group_id: int
    user_id: int
    members: int
    size: int
    order_id: int | None = None


@attrs.frozen(kw_only=True)
class GroupBuyLeft(Event):
    group_id: int
    user_id: int
    order_id: int | None = None
    refund_fen: int = 0


@attrs.frozen(kw_only=True)
class GroupBuyCompleted(Event):
    group_id: int
    member_ids: tuple[int, ...]


@attrs.frozen(kw_only=True)
class GroupBuyRefund:
    """What the shop owes one member of a failed group buy."""

    user_id: int
    order_id: int | None
    amount_fen: int


@attrs.frozen(kw_only=True)
class GroupBuyFailed(Event):
    """The group expired before filling up; ``refunds`` lists what the shop must pay back."""

    group_id: int
    refunds: tuple[GroupBuyRefund, ...]


@attrs.frozen(kw_only=True)
class CommissionRecorded(Event):
    entry_id: int
    distributor_id: int
    order_id: int
    level: int
    amount_fen: int


@attrs.frozen(kw_only=True)
class CommissionAdjusted(Event):
    """A refund reduced (or voided, ``remaining_fen == 0``) a commission."""

    entry_id: int
    distributor_id: int
    order_id: int
    refund_id: int
    delta_fen: int
    remaining_fen: int


@attrs.frozen(kw_only=True)
class CommissionSettled(Event):
    entry_id: int
    distributor_id: int
    amount_fen: int


# -- segments & lifecycle
@attrs.frozen(kw_only=True)
class EventTracked(Event):
    """A behaviour event was recorded with ``ws.events.track`` (``kind`` such as
    ``"page_view"``; ``at`` is when the user did it)."""

    user_id: int
    kind: str
    event_id: int
    key: str | None


@attrs.frozen(kw_only=True)
class LifecycleChanged(Event):
    """A user moved between lifecycle stages (``from_stage`` is ``None`` for the
    first one). A churn alert is a plugin that watches ``to_stage`` in
    ``{"dormant", "lost"}``."""

    user_id: int
    from_stage: str | None
    to_stage: str
    reason: str

# -- campaigns


@attrs.frozen(kw_only=True)
class CampaignCreated(Event):
    campaign_id: int
    name: str
    channel: str


@attrs.frozen(kw_only=True)
class CampaignLaunched(Event):
    """A campaign phase started: ``phase`` is ``"pilot"``, ``"rollout"``, ``"send"``,
    ``"trigger"`` or ``"schedule"``; ``users`` how many were targeted."""

    campaign_id: int
    phase: str
    occurrence: str
    users: int


@attrs.frozen(kw_only=True)
class CampaignSent(Event):
    """A batch of a campaign's messages was accepted by the channel (one event per
    batch and variant, not per user)."""

    campaign_id: int
    variant: str
    user_ids: tuple[int, ...]


@attrs.frozen(kw_only=True)
class DeliverySkipped(Event):
    """Users of a batch a gate kept from receiving the message; ``reason`` is the gate
    (``consent``, ``suppressed``, ``budget``, ``platform_cap``, ``no_address``,
    ``inactive``, ``missing_variable``)."""

    campaign_id: int
    reason: str
    user_ids: tuple[int, ...]


@attrs.frozen(kw_only=True)
class CampaignPaused(Event):
    """A campaign stopped until ``until`` (rate limit, throttle); ``ws.campaigns.resume`` continues."""

    campaign_id: int
    until: datetime
    reason: str


@attrs.frozen(kw_only=True)
class CampaignDecided(Event):
    campaign_id: int
    winner: str
    test: str


@attrs.frozen(kw_only=True)
class ReceiptsRecorded(Event):
    """Provider delivery receipts changed campaign delivery records (one event per
    campaign and ``status`` per ``record_receipts`` call): ``status`` is
    ``"delivered"`` (reached the recipient) or ``"failed"``."""

    campaign_id: int
    status: str
    delivery_ids: tuple[int, ...]
    user_ids: tuple[int, ...]


@attrs.frozen(kw_only=True)
class ConversionAttributed(Event):
    """A goal (an order, a tracked event) was attributed to the last campaign touch."""

    campaign_id: int
    delivery_id: int
    user_id: int
    variant: str
    goal: str
    ref: str | None


@attrs.frozen(kw_only=True)
class WalletChanged(Event):
    """A member's stored value changed: ``kind`` is the ledger entry's (``recharge``,
    ``pay``, ``refund_in``, ``card_in``, ``refund_out``, ``forfeit``); the deltas
    are signed fen, principal and bonus apart."""

    user_id: int
    entry_id: int
    kind: str
    principal_fen: int
    bonus_fen: int
    ref: str


@attrs.frozen(kw_only=True)
class RechargeRefused(Event):
    """A recharge was paid but crediting it would break a prepaid-card cap: the
    payment must be returned to the payer."""

    user_id: int
    recharge_id: int
    payment_id: str
    amount_fen: int
    reason: str


@attrs.frozen(kw_only=True)
class GiftCardChanged(Event):
    """A gift card was issued, sold (activated) or redeemed; ``amount_fen`` is the
    signed balance change and ``balance_fen`` the balance after it."""

    card_id: int
    kind: str
    amount_fen: int
    balance_fen: int
    user_id: int | None


@attrs.frozen(kw_only=True)
class RewardRedeemed(Event):
    """Points were exchanged for a points-mall reward (``status`` ``issued`` or ``pending``)."""

    redemption_id: int
    reward_id: int
    user_id: int
    points: int
    status: str


@attrs.frozen(kw_only=True)
class RedemptionReversed(Event):
    """A redemption was cancelled before fulfilment, or failed after the debit: its
    points went back to their lots and its stock back to the reward."""

    redemption_id: int
    reward_id: int
    user_id: int
    points: int
    status: str


@attrs.frozen(kw_only=True)
class StaffAdded(Event):
    """A staff member was added (or their details changed: ``changed`` names the fields)."""

    userid: str
    changed: tuple[str, ...]


@attrs.frozen(kw_only=True)
class StaffResigned(Event):
    userid: str


@attrs.frozen(kw_only=True)
class CustomerFollowed(Event):
    """A (staff member, customer) relation became active: the staff member added the
    customer, or took them over in a transfer (``state`` is the channel code)."""

    user_id: int
    staff: str
    add_way: int | None
    state: str | None


@attrs.frozen(kw_only=True)
class CustomerUnfollowed(Event):
    """A relation ended: ``by`` is ``"customer"`` (the customer deleted the staff member),
    ``"staff"`` (the staff member deleted the customer) or ``"transfer"``. ``lost`` says
    whether it was the customer's last active relation (so the customer is now lost)."""

    user_id: int
    staff: str
    by: str
    lost: bool


@attrs.frozen(kw_only=True)
class OwnerChanged(Event):
    """The 导购 credited with a customer changed (``to_staff`` ``None``: nobody)."""

    user_id: int
    from_staff: str | None
    to_staff: str | None
    reason: str


@attrs.frozen(kw_only=True)
class TransferStarted(Event):
    transfer_id: int
    user_id: int
    from_staff: str
    to_staff: str
    kind: str


@attrs.frozen(kw_only=True)
class TransferFinished(Event):
    """A transfer ended: ``status`` ``"done"`` or why not (see ``siyu.staff.TransferStatus``)."""

    transfer_id: int
    user_id: int
    from_staff: str
    to_staff: str
    status: str


@attrs.frozen(kw_only=True)
class GroupChanged(Event):
    """A customer group was created, changed (name, owner, notice) or dismissed
    (``change`` is ``"create"``, ``"update"`` or ``"dismiss"``)."""

    chat_id: str
    change: str
    owner: str


@attrs.frozen(kw_only=True)
class GroupMembersChanged(Event):
    """Members joined or left a group: member ids, and the siyu users among them."""

    chat_id: str
    joined: tuple[str, ...]
    quit: tuple[str, ...]
    joined_users: tuple[int, ...]
    quit_users: tuple[int, ...]


@attrs.frozen(kw_only=True)
class PresaleChanged(Event):
    """A presale deposit order moved: ``status`` ``deposit_paid``, ``paid``, ``expired``,
    ``refunded`` or ``overdue`` (an alert: not shipped by the promised date);
    ``amount_fen`` the money involved (deposit, order total, refund)."""

    presale_order_id: int
    presale_id: int
    user_id: int
    status: str
    amount_fen: int


@attrs.frozen(kw_only=True)
class TasksCreated(Event):
    """Follow-up tasks were made (by an SOP rule or by hand) for these staff members."""

    task_ids: tuple[int, ...]
    staff: tuple[str, ...]


@attrs.frozen(kw_only=True)
class TaskCompleted(Event):
    task_id: int
    staff: str
    on_time: bool


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-friendly dict of an event, with its class name under ``"type"``."""
    data = attrs.asdict(event)
    data["at"] = event.at.isoformat()
    data["type"] = type(event).__name__
    return data


# -- activities: 秒杀 flash sales, 砍价 bargains, 抽奖 draws --------------------------------------
@attrs.frozen(kw_only=True)
class FlashSaleCreated(Event):
    sale_id: int
    sku: str
    price_fen: int
    stock: int
    starts_at: datetime
    ends_at: datetime


@attrs.frozen(kw_only=True)
class FlashSaleReserved(Event):
    """Units of a flash sale are held for a buyer until ``expires_at``."""

    sale_id: int
    reservation_id: int
    user_id: int
    qty: int
    expires_at: datetime


@attrs.frozen(kw_only=True)
class FlashSalePaid(Event):
    """A reservation became an order (recorded through ``ws.orders``)."""

    sale_id: int
    reservation_id: int
    user_id: int
    qty: int
    order_id: int


@attrs.frozen(kw_only=True)
class FlashSaleReleased(Event):
    """Units came back to the sale: an unpaid reservation was cancelled or ran
    out (``reason`` "cancelled" / "expired"), or a paid one was refunded ("refunded")."""

    sale_id: int
    reservation_id: int
    user_id: int
    qty: int
    reason: str


@attrs.frozen(kw_only=True)
class BargainStarted(Event):
    bargain_id: int
    attempt_id: int
    user_id: int
    deadline: datetime
    helpers: int


@attrs.frozen(kw_only=True)
class BargainHelped(Event):
    """``helper_id`` cut ``cut_fen`` off ``user_id``'s attempt (the ``seq``-th help)."""

    bargain_id: int
    attempt_id: int
    user_id: int
    helper_id: int
    seq: int
    cut_fen: int
    flagged: bool


@attrs.frozen(kw_only=True)
class BargainSucceeded(Event):
    bargain_id: int
    attempt_id: int
    user_id: int
    price_fen: int


@attrs.frozen(kw_only=True)
class BargainBought(Event):
    bargain_id: int
    attempt_id: int
    user_id: int
    order_id: int


@attrs.frozen(kw_only=True)
class BargainFailed(Event):
    bargain_id: int
    attempt_id: int
    user_id: int
    helps: int


@attrs.frozen(kw_only=True)
class DrawPublished(Event):
    """A draw's rules are frozen and its seed commitment is public."""

    draw_id: int
    commitment: str
    starts_at: datetime
    ends_at: datetime


@attrs.frozen(kw_only=True)
class DrawMade(Event):
    draw_id: int
    record_id: int
    user_id: int
    seq: int
    prize: str
    kind: str
    reason: str


@attrs.frozen(kw_only=True)
class DrawRevealed(Event):
    """The server seed is public: anyone can re-compute every draw."""

    draw_id: int
    seed: str
