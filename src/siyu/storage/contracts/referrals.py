"""The referral graph: campaigns, invite codes, bindings, and the facts the
binding rules and fraud guards read (actions, leaves, customers, funnels, holds).

The store keeps the graph a forest and answers ancestry questions fast; how
(materialized paths, closure tables, counters) is the backend's business.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from ...models.referrals import Binding, BindingChange, Hold, InviteCode, ReferralCampaign


class ReferralStore(abc.ABC):
    # -- campaigns and codes --------------------------------------------------------
    @abc.abstractmethod
    def save_campaign(self, campaign: ReferralCampaign, at: datetime) -> None:
        """Create or update a campaign."""

    @abc.abstractmethod
    def campaign(self, name: str) -> ReferralCampaign | None: ...

    @abc.abstractmethod
    def code_for(self, inviter_id: int, campaign: str | None, channel_state: str | None) -> InviteCode | None:
        """The code already issued for this inviter, campaign and channel state."""

    @abc.abstractmethod
    def add_code(self, code: InviteCode) -> None: ...

    @abc.abstractmethod
    def get_code(self, code: str) -> InviteCode | None: ...

    @abc.abstractmethod
    def code_stats(self, campaign: str | None) -> tuple[int, int]:
        """``(codes issued, distinct inviters holding them)``, of one campaign or all."""

    # -- the graph ----------------------------------------------------------------------
    @abc.abstractmethod
    def lock(self, user_id: int) -> None:
        """Serialize graph changes that involve ``user_id`` until the transaction ends."""

    @abc.abstractmethod
    def binding(self, invitee_id: int) -> Binding | None:
        """The edge into ``invitee_id``, or ``None`` if nobody invited them."""

    def bound(self, user_ids: Sequence[int]) -> set[int]:
        """Which of the users have a binding (any status); a backend may answer in one query."""
        return {u for u in user_ids if self.binding(u) is not None}

    @abc.abstractmethod
    def attach(self, binding: Binding) -> None:
        """Add the edge ``binding.inviter_id`` → ``binding.invitee_id``. The invitee
        has no inviter now, and the inviter is not in the invitee's downline
        (the caller checked), so the graph stays a forest."""

    @abc.abstractmethod
    def attach_many(self, bindings: Sequence[Binding]) -> None:
        """Attach many edges at once (a bulk import). No invitee has an inviter
        now, each appears once, and together with the stored edges they form a
        forest (the caller checked)."""

    @abc.abstractmethod
    def roots(self, user_ids: Sequence[int]) -> dict[int, int]:
        """The root of each user's tree (a user outside the graph is their own root)."""

    @abc.abstractmethod
    def parents(self) -> tuple[list[int], list[int]]:
        """Every user in the graph as ``(user ids ascending, inviter ids)`` with
        ``0`` for roots — the input of whole-forest computations."""

    @abc.abstractmethod
    def detach(self, invitee_id: int) -> None:
        """Remove the edge into ``invitee_id``; its downline stays with it."""

    @abc.abstractmethod
    def set_status(self, invitee_id: int, status: str) -> None: ...

    @abc.abstractmethod
    def upline(self, user_id: int, levels: int | None) -> list[int]:
        """Ancestors, nearest first (at most ``levels``; all if ``None``)."""

    @abc.abstractmethod
    def children(self, user_ids: Sequence[int]) -> list[int]:
        """Users directly invited by any of ``user_ids``, ascending."""

    @abc.abstractmethod
    def downline(self, user_id: int) -> list[int]:
        """Every user below ``user_id``, ascending."""

    @abc.abstractmethod
    def downline_size(self, user_id: int) -> int:
        """How many users are below ``user_id``, fast (no traversal)."""

    @abc.abstractmethod
    def bindings(
        self,
        *,
        campaign: str | None = None,
        inviter_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Binding]:
        """Edges matching every given filter, oldest first."""

    @abc.abstractmethod
    def count_bound_since(self, inviter_id: int, since: datetime) -> int: ...

    @abc.abstractmethod
    def leaderboard(self, campaign: str | None, top: int, statuses: Sequence[str]) -> list[tuple[int, int]]:
        """``(inviter_id, invitees)`` with the most invitees first (ties: lower id)."""

    @abc.abstractmethod
    def log_change(self, change: BindingChange) -> None: ...

    def log_changes(self, changes: Sequence[BindingChange]) -> None:
        """Record many changes (a backend may do it in one round trip)."""
        for change in changes:
            self.log_change(change)

    @abc.abstractmethod
    def changes(self, invitee_id: int) -> list[BindingChange]: ...

    # -- facts the rules read ------------------------------------------------------------
    @abc.abstractmethod
    def add_action(self, user_id: int, action: str, at: datetime) -> bool:
        """Record that the user did ``action`` (first time only); ``True`` if new."""

    def add_actions(self, rows: Sequence[tuple[int, str, datetime]]) -> None:
        """:meth:`add_action` for many ``(user_id, action, at)``, in order (a backend may batch it)."""
        for user_id, action, at in rows:
            self.add_action(user_id, action, at)

    @abc.abstractmethod
    def actions(self, user_ids: Sequence[int], action: str | None) -> dict[int, datetime]:
        """First time each user did ``action`` (any action if ``None``)."""

    @abc.abstractmethod
    def set_left(self, user_id: int, at: datetime | None) -> None:
        """Record that the user left (deleted the account, unfollowed); ``None`` = came back."""

    @abc.abstractmethod
    def left(self, user_ids: Sequence[int]) -> dict[int, datetime]: ...

    @abc.abstractmethod
    def add_customer(self, user_id: int, at: datetime) -> None:
        """Record that the user has bought something."""

    def add_customers(self, rows: Sequence[tuple[int, datetime]]) -> None:
        """:meth:`add_customer` for many ``(user_id, at)`` (a backend may batch it)."""
        for user_id, at in rows:
            self.add_customer(user_id, at)

    @abc.abstractmethod
    def customers(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        """When each of the users first bought (users who never did are absent)."""

    @abc.abstractmethod
    def add_purchase(self, order_id: int, user_id: int, paid_at: datetime, total_fen: int) -> bool:
        """Record a paid order; ``False`` if it was recorded before."""

    def add_purchases(self, rows: Sequence[tuple[int, int, datetime, int]]) -> list[int]:
        """:meth:`add_purchase` for many ``(order_id, user_id, paid_at, total_fen)``, in
        order; returns the ids of the orders that were new (an order repeated in
        ``rows`` counts once, as its first row)."""
        return [row[0] for row in rows if self.add_purchase(*row)]

    @abc.abstractmethod
    def refund_purchase(self, order_id: int, amount_fen: int) -> None:
        """Add a refund to a recorded order (unknown orders are ignored)."""

    @abc.abstractmethod
    def purchases(self, user_ids: Sequence[int]) -> dict[int, list[tuple[datetime, int, int]]]:
        """Each user's recorded orders as ``(paid_at, total_fen, refunded_fen)``."""

    @abc.abstractmethod
    def purchase_orders(self, user_id: int) -> list[int]:
        """Ids of the user's recorded orders, ascending."""

    @abc.abstractmethod
    def move_purchases(self, order_ids: Sequence[int], user_id: int) -> None:
        """Record these orders as ``user_id``'s (user merges)."""

    @abc.abstractmethod
    def add_funnel(self, campaign: str, channel_state: str, stage: str, count: int) -> None: ...

    @abc.abstractmethod
    def funnel(self, campaign: str | None) -> dict[tuple[str, str, str], int]:
        """``(campaign, channel_state, stage) -> count``."""

    @abc.abstractmethod
    def add_share(self, campaign: str, channel_state: str, user_id: int, count: int) -> None:
        """Record that ``user_id`` sent ``count`` more invites."""

    @abc.abstractmethod
    def sharers(self, campaign: str | None) -> set[int]:
        """Users who recorded a share (of one campaign, or of any)."""

    @abc.abstractmethod
    def erase_devices(self, user_ids: Sequence[int]) -> int:
        """Forget the device fingerprints recorded with these users' bindings (erasure)."""

    # -- holds ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_hold(self, kind: str, subject_id: int, user_id: int, reasons: Sequence[str], at: datetime) -> int: ...

    @abc.abstractmethod
    def get_hold(self, hold_id: int) -> Hold | None: ...

    @abc.abstractmethod
    def holds(self, status: str | None, kind: str | None) -> list[Hold]: ...

    @abc.abstractmethod
    def decide_hold(self, hold_id: int, status: str, at: datetime, by: str) -> None: ...

    @abc.abstractmethod
    def move_holds(self, hold_ids: Sequence[int], *, user_id: int | None = None,
                   subject_id: int | None = None) -> None:
        """Point these holds at another user and/or subject (user merges)."""
