"""The referral graph and what hangs off it: 任务宝 tasks, 拼团 group buys,
分销 commissions, fraud holds, fission metrics. Values only, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import attrs

__all__ = [
    "Binding",
    "BindingChange",
    "CommissionEntry",
    "CommissionLine",
    "CommissionSettings",
    "FissionStats",
    "FraudSettings",
    "Funnel",
    "GroupBuy",
    "GroupMember",
    "Hold",
    "InviteCode",
    "InviteTask",
    "ReferralCampaign",
    "ReferralSettings",
    "Reward",
    "RewardGrant",
    "Stage",
    "TaskProgress",
    "ValidInvite",
]


@attrs.frozen(kw_only=True)
class ReferralCampaign:
    """A named referral campaign. Codes of a campaign bind only between
    ``starts_at`` and ``ends_at`` (either may be open)."""

    name: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@attrs.frozen(kw_only=True)
class InviteCode:
    """An invite code (also usable as a link or channel-QR ``state`` value)."""

    code: str
    inviter_id: int
    campaign: str | None
    channel_state: str | None
    created_at: datetime


@attrs.frozen(kw_only=True)
class Binding:
    """The edge ``inviter_id`` → ``invitee_id`` of the referral graph.

    ``status`` is ``"active"``, or ``"held"`` while a fraud guard holds it
    for review (a held binding earns nothing until released). ``via`` says
    how it was made: ``"code"``, ``"direct"``, ``"rebind"``, ``"takeover"``
    (the protection window was over) or ``"merge"``.
    """

    invitee_id: int
    inviter_id: int
    campaign: str | None
    channel_state: str | None
    code: str | None
    bound_at: datetime
    via: str
    status: str = "active"
    device: str | None = None


@attrs.frozen(kw_only=True)
class BindingChange:
    """One line of a user's binding history."""

    invitee_id: int
    old_inviter_id: int | None
    new_inviter_id: int | None
    at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class ReferralSettings:
    """Binding rules (``ws.referrals.configure``).

    ``protection``: how long a binding is protected; after it, another
    inviter's valid binding takes the user over (``None``: forever, the
    default — first valid binding wins). ``require_new``: only users who are
    not customers yet may be bound. A *customer* has a recorded order or
    holds one of ``customer_tags``.
    """

    protection: timedelta | None = None
    require_new: bool = True
    customer_tags: tuple[str, ...] = ("lifecycle/customer", "lifecycle/repeat")


@attrs.frozen(kw_only=True)
class Funnel:
    """Invites sent → codes scanned → users bound → bound users who bought.

    ``sent`` and ``scanned`` are the shares and scans recorded
    (``record_share``, ``record_scan``); ``bound`` the invitees bound now
    (active, or held for review: a rejected binding leaves it);
    ``converted`` those of them whose first order came after their binding.
    Each stage counts at least as many as the next (``sent >= scanned >=
    bound >= converted``): whoever bound had an invitation sent and opened,
    even when the shop did not record that share or scan.
    """

    sent: int = 0
    scanned: int = 0
    bound: int = 0
    converted: int = 0


@attrs.frozen(kw_only=True)
class FissionStats:
    """Fission metrics of one campaign (or of all bindings).

    - ``new_users``: invitees with an active binding; ``seed_users``: their
      inviters who were not themselves brought in (by the campaign);
      ``fission_rate`` = new users / seed users.
    - ``inviters``: users who actually invited — who recorded a share
      (``record_share``) or has a bound invitee. Fetching an invite code
      does not make an inviter.
    - ``invites_sent``: ``funnel.sent``, the shares recorded (at least the
      invites scanned, at least the users bound).
    - ``k_factor`` = (invites sent / inviters) × (new users / invites sent):
      invites per inviter times the share of invites that became new users,
      so it comes to new users per inviter.
    - ``generations`` maps a generation (1 = invited by a seed) to its size.
    """

    campaign: str | None
    seed_users: int
    new_users: int
    fission_rate: float
    invites_sent: int
    inviters: int
    k_factor: float
    max_depth: int
    generations: dict[int, int]
    funnel: Funnel
    by_channel_state: dict[str, Funnel]
    top_inviters: list[tuple[int, int]]


@attrs.frozen(kw_only=True)
class Reward:
    """What a 任务宝 stage pays: points, a coupon, or a product (a 裂变品 the
    shop ships). Build with :meth:`of_points`, :meth:`of_coupon` or :meth:`of_product`."""

    kind: str
    points: int = 0
    coupon: str | None = None
    sku: str | None = None
    qty: int = 1

    @classmethod
    def of_points(cls, amount: int) -> Reward:
        return cls(kind="points", points=amount)

    @classmethod
    def of_coupon(cls, template: str) -> Reward:
        return cls(kind="coupon", coupon=template)

    @classmethod
    def of_product(cls, sku: str, qty: int = 1) -> Reward:
        return cls(kind="product", sku=sku, qty=qty)


@attrs.frozen(kw_only=True)
class Stage:
    """Reach ``invites`` valid invites, get ``reward``."""

    invites: int
    reward: Reward


@attrs.frozen(kw_only=True)
class ValidInvite:
    """What makes an invite count for a 任务宝 task.

    ``new_only``: the invitee was not a customer when bound (always true for
    bindings made under ``require_new``). ``stay_days``: the invitee must
    have stayed this long; one who leaves within the window is deducted.
    ``action``: a tracked action name the invitee must have completed
    (``ws.referrals.record_action``), and/or ``identity``: an identity kind
    the invitee must hold (``"wecom_external_userid"`` = added the WeCom
    account). ``purchase``: the invitee must have bought after being bound
    and kept it — when refunds take that away, the invite stops counting and
    stage rewards it carried are reversed.
    """

    new_only: bool = True
    stay_days: int = 0
    action: str | None = None
    identity: str | None = None
    purchase: bool = False


@attrs.frozen(kw_only=True)
class InviteTask:
    """A 任务宝 invite task: invites bound to ``campaign`` between ``starts_at``
    and ``deadline`` count toward ``stages``."""

    id: int
    name: str
    campaign: str
    stages: tuple[Stage, ...]
    starts_at: datetime
    deadline: datetime
    valid: ValidInvite


@attrs.frozen(kw_only=True)
class TaskProgress:
    """A participant's progress in a task.

    ``valid`` invites count; ``pending`` are bound but not yet valid (stay
    window or action missing); ``deducted`` left within the stay window.
    ``reached`` are the stage numbers (1-based) reached; ``granted`` those
    whose reward was granted (issued or held for review).
    """

    task_id: int
    user_id: int
    valid: int
    pending: int
    deducted: int
    reached: tuple[int, ...]
    granted: tuple[int, ...]
    next_stage_needs: int | None


@attrs.frozen(kw_only=True)
class RewardGrant:
    """A stage reward for one participant. ``status``: ``"issued"``, ``"held"``
    (a fraud guard is holding it), ``"rejected"`` (reviewed and refused),
    ``"revoked"`` (issued, then taken back on review) or ``"reversed"``
    (refunds took away the purchases it was earned with). A stage is granted
    at most once: a reversed stage is not granted again, so buy-refund loops
    cannot farm rewards."""

    id: int
    task_id: int
    user_id: int
    stage: int
    reward: Reward
    status: str
    at: datetime
    points_entry_id: int | None = None


@attrs.frozen(kw_only=True)
class GroupMember:
    user_id: int
    joined_at: datetime
    order_id: int | None = None
    paid: Decimal = Decimal("0.00")


@attrs.frozen(kw_only=True)
class GroupBuy:
    """A 拼团 group: ``size`` members (the leader included) before ``expires_at``.
    ``status``: ``"open"``, ``"completed"`` or ``"failed"``."""

    id: int
    leader_id: int
    sku: str
    size: int
    price: Decimal
    status: str
    opened_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    members: tuple[GroupMember, ...]

    @property
    def slots_left(self) -> int:
        return self.size - len(self.members)


@attrs.frozen(kw_only=True)
class CommissionSettings:
    """分销 commission rules (``ws.referrals.commissions.configure``).

    ``rates[i]`` is the share of the eligible amount paid to the buyer's
    level-``i+1`` upline (level 1 = the inviter). ``return_window``: a
    commission settles only after it. ``excluded_roles``: product roles
    that earn nothing (引流品 by default).
    """

    rates: tuple[Decimal, ...] = (Decimal("0.10"), Decimal("0.05"))
    return_window: timedelta = timedelta(days=7)
    excluded_roles: tuple[str, ...] = ("traffic",)
    pyramid_risk_accepted: bool = False


@attrs.frozen(kw_only=True)
class CommissionLine:
    """A commission's part earned on one order line: ``base`` is the line's paid
    money it was computed on, ``earned`` the part when recorded, ``refunded`` the
    money of the line refunded since, ``amount`` the part left now."""

    line_no: int
    base: Decimal
    earned: Decimal
    refunded: Decimal
    amount: Decimal


@attrs.frozen(kw_only=True)
class CommissionEntry:
    """One commission in a distributor's ledger. ``amount`` is what it is worth
    now (after refunds); ``original`` what it was when recorded. ``status``:
    ``"pending"`` (inside the return window), ``"settled"`` or ``"voided"``
    (fully refunded)."""

    id: int
    distributor_id: int
    order_id: int
    buyer_id: int
    level: int
    base: Decimal
    rate: Decimal
    original: Decimal
    amount: Decimal
    status: str
    created_at: datetime
    settle_after: datetime
    settled_at: datetime | None = None
    #: The entry per order line (empty for entries recorded before lines were kept):
    #: a refund takes back what the refunded lines earned.
    lines: tuple[CommissionLine, ...] = ()


@attrs.frozen(kw_only=True)
class FraudSettings:
    """Fraud guards (``ws.referrals.fraud.configure``); ``None`` turns a guard off.

    - ``burst``: ``(count, window)`` — hold a binding when its inviter bound
      more than ``count`` users within ``window``.
    - ``shared_device``: hold a binding when this many of the inviter's
      invitees (it included) share one device id.
    - ``phone_prefix``: ``(digits, count)`` — hold a binding when ``count``
      of the inviter's invitees have phones sharing the first ``digits``
      digits (number-farm batches).
    - ``inactive_share``: hold a stage reward when more than this share of
      the counted invitees never did anything (no action, no order).
    - ``leave_after_reward``: an invitee leaving within this time after
      their inviter got a reward holds that reward for review.
    """

    burst: tuple[int, timedelta] | None = (20, timedelta(hours=1))
    shared_device: int | None = 3
    phone_prefix: tuple[int, int] | None = (9, 5)
    inactive_share: float | None = None
    leave_after_reward: timedelta | None = timedelta(hours=48)


@attrs.frozen(kw_only=True)
class Hold:
    """An item held for review. ``kind`` is ``"binding"`` (``subject_id`` = the
    invitee) or ``"reward"`` (``subject_id`` = the reward grant id).
    ``status``: ``"held"``, ``"released"`` or ``"rejected"``."""

    id: int
    kind: str
    subject_id: int
    user_id: int
    reasons: tuple[str, ...]
    status: str
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
