"""What grows on the referral graph: 任务宝 tasks and their reward grants,
拼团 group buys, 分销 commission ledger. Money is integer fen."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

import attrs

from ...models.referrals import InviteTask, RewardGrant


@attrs.frozen(kw_only=True)
class GroupRow:
    id: int
    leader_id: int
    sku: str
    size: int
    price_fen: int
    status: str
    opened_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    #: The product's loss budget the group reserved (its price is below the floor).
    loss_fen: int = 0


@attrs.frozen(kw_only=True)
class MemberRow:
    user_id: int
    joined_at: datetime
    order_id: int | None
    paid_fen: int


@attrs.frozen(kw_only=True)
class CommissionRow:
    id: int
    distributor_id: int
    order_id: int
    buyer_id: int
    level: int
    base_fen: int
    rate_ppm: int
    original_fen: int
    amount_fen: int
    refunded_base_fen: int
    status: str
    created_at: datetime
    settle_after: datetime
    settled_at: datetime | None
    #: The product roles left out of ``base_fen`` when the entry was earned; refunds
    #: reverse with these. ``None``: an entry from before they were recorded, in a
    #: workspace whose commissions were never configured (so the defaults applied).
    excluded_roles: tuple[str, ...] | None = None
    #: The entry per order line: ``(line_no, base_fen, amount_fen, refunded_fen)``, so a refund
    #: takes back what the refunded lines earned. ``None``: an entry from before they were kept.
    lines: tuple[tuple[int, int, int, int], ...] | None = None


class FissionStore(abc.ABC):
    # -- 任务宝 ------------------------------------------------------------------------
    @abc.abstractmethod
    def add_task(self, task: InviteTask, at: datetime) -> int:
        """Store a task (its ``id`` is ignored) and return the new id."""

    @abc.abstractmethod
    def task(self, task_id: int) -> InviteTask | None: ...

    @abc.abstractmethod
    def task_by_name(self, name: str) -> InviteTask | None: ...

    @abc.abstractmethod
    def tasks(self) -> list[InviteTask]: ...

    @abc.abstractmethod
    def add_grant(self, grant: RewardGrant) -> int | None:
        """Record a stage grant; ``None`` if one exists for (task, user, stage)."""

    @abc.abstractmethod
    def grants(self, task_id: int | None, user_id: int | None) -> list[RewardGrant]: ...

    @abc.abstractmethod
    def grant(self, grant_id: int) -> RewardGrant | None: ...

    @abc.abstractmethod
    def update_grant(self, grant_id: int, *, status: str, points_entry_id: int | None) -> None: ...

    @abc.abstractmethod
    def move_grants(self, grant_ids: Sequence[int], user_id: int) -> None:
        """Give these grants to ``user_id`` (user merges); the caller checked that
        ``user_id`` holds no grant of the same (task, stage)."""

    # -- 拼团 ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_group(self, group: GroupRow) -> int: ...

    @abc.abstractmethod
    def group(self, group_id: int, *, lock: bool = False) -> GroupRow | None:
        """A group; ``lock`` serializes joins of the group until the transaction ends."""

    @abc.abstractmethod
    def members(self, group_id: int) -> list[MemberRow]: ...

    @abc.abstractmethod
    def add_member(self, group_id: int, member: MemberRow) -> None: ...

    @abc.abstractmethod
    def remove_member(self, group_id: int, user_id: int) -> None: ...

    @abc.abstractmethod
    def close_group(self, group_id: int, status: str, at: datetime) -> None: ...

    @abc.abstractmethod
    def groups(self, *, status: str | None, expired_by: datetime | None, user_id: int | None) -> list[int]: ...

    @abc.abstractmethod
    def move_memberships(self, group_ids: Sequence[int], from_user: int, to_user: int) -> None:
        """Hand ``from_user``'s slot in each group, and the lead where they led it,
        to ``to_user`` (user merges); the caller checked ``to_user`` holds no slot there."""

    # -- 分销 ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_commissions(self, rows: Sequence[CommissionRow]) -> list[int]:
        """Insert entries (ids ignored); an (order, level) already present is skipped."""

    @abc.abstractmethod
    def commissions(
        self, *, distributor_id: int | None = None, order_id: int | None = None, status: str | None = None,
        due_by: datetime | None = None, buyer_id: int | None = None,
    ) -> list[CommissionRow]: ...

    @abc.abstractmethod
    def move_commissions(self, entry_ids: Sequence[int], *, distributor_id: int | None = None,
                         buyer_id: int | None = None) -> None:
        """Give these entries another distributor and/or buyer (user merges)."""

    @abc.abstractmethod
    def update_commission(self, entry_id: int, **fields: object) -> None:
        """Change ``amount_fen``, ``refunded_base_fen``, ``status``, ``settled_at``, ``lines``."""

    @abc.abstractmethod
    def claim_event(self, kind: str, ref: int, at: datetime) -> bool:
        """Mark an order/refund as processed; ``False`` if it already was."""

    def claim_events(self, kind: str, refs: Sequence[tuple[int, datetime]]) -> None:
        """:meth:`claim_event` for many ``(ref, at)``, whether or not they were claimed
        before (a backend may batch it)."""
        for ref, at in refs:
            self.claim_event(kind, ref, at)

    @abc.abstractmethod
    def add_adjustment(self, refund_id: int, entry_id: int, delta_fen: int, at: datetime) -> None: ...
