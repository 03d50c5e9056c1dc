"""拼团 group buys: a leader opens a group of ``size``, friends join before it
expires; a full group completes, an expired one fails and its members are refunded.

Every join locks the group's row first, so concurrent joins — threads or
processes — queue up and a group never holds more members than its size.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from ..._validation import check_optional_text
from ...errors import (
    AlreadyBound,
    AlreadyJoined,
    CampaignClosed,
    GroupBuyClosed,
    GroupBuyFull,
    NotFound,
    NotNewUser,
    ReferralCycle,
    ValidationError,
)
from ...events import (
    GroupBuyCompleted,
    GroupBuyFailed,
    GroupBuyJoined,
    GroupBuyLeft,
    GroupBuyOpened,
    GroupBuyRefund,
)
from ...models.referrals import GroupBuy, GroupMember
from ...money import to_fen, to_yuan
from ...storage.contracts.fission import GroupRow, MemberRow
from .._common import check_int, check_text, require_user
from ..pricing import check_price
from ..products import Products
from ..promotions import Promotions

if TYPE_CHECKING:
    from ..._uow import UnitOfWork
    from ...storage.base import Transaction
    from ..orders import Orders
    from ..referrals import Referrals

__all__ = ["GROUP_BUY_CAMPAIGN", "GroupBuys"]

MAX_GROUP_SIZE = 100
#: The referral campaign of bindings made by joining a group (``join(..., bind_to_leader=True)``).
GROUP_BUY_CAMPAIGN = "group_buy"


class GroupBuys:
    """``ws.referrals.group_buys``: open, join, leave, expire 拼团 groups."""

    def __init__(self, uow: UnitOfWork, referrals: Referrals, *, orders: Orders) -> None:
        self._uow = uow
        self._referrals = referrals
        self._orders = orders

    def open(
        self,
        leader_id: int,
        *,
        sku: str,
        size: int,
        price: Decimal | int | str,
        expires_in: timedelta = timedelta(hours=24),
        order_id: int | None = None,
    ) -> GroupBuy:
        """Open a group led by ``leader_id`` (who takes the first slot) for
        ``size`` people at the group ``price`` (yuan) each. ``order_id`` is the
        leader's paid order, if the shop charges up front.

        The group price goes through the margin guard like any price set on a
        product (:func:`~siyu.services.pricing.check_price`): below the
        product's floor it raises :class:`~siyu.errors.PriceBelowFloor`, unless
        the product is a traffic or activity item whose loss budget covers the
        whole group (``size`` x the loss per unit), which the group then holds
        until it fails (given back) or completes (spent)."""
        check_text(sku, "sku", max_length=64)
        check_int(size, "size", minimum=2, maximum=MAX_GROUP_SIZE)
        fen = to_fen(price, name="price")
        if not isinstance(expires_in, timedelta) or expires_in <= timedelta():
            raise ValidationError(f"expires_in must be a positive timedelta, got {expires_in!r}")
        if order_id is not None:
            check_int(order_id, "order_id", minimum=1)
        now = self._uow.now()
        with self._uow.write() as tx:
            leader = require_user(tx, leader_id, lock=True)
            [product] = Products.require(tx, [sku]).values()
            left = None if product.loss_budget_fen is None else product.loss_left_fen
            loss = check_price(product, fen, Promotions.rules_in(tx), what="拼团 price", units=size,
                               loss_left_fen=left)
            if loss:
                tx.products.use_loss_budget([(sku, loss)])
                tx.meta.bump("commerce")
            group_id = tx.fission.add_group(GroupRow(id=0, leader_id=leader, sku=sku, size=size, price_fen=fen,
                                                     status="open", opened_at=now, expires_at=now + expires_in,
                                                     closed_at=None, loss_fen=loss))
            tx.fission.add_member(group_id, MemberRow(user_id=leader, joined_at=now, order_id=order_id,
                                                      paid_fen=fen if order_id is not None else 0))
            tx.emit(GroupBuyOpened(at=now, group_id=group_id, leader_id=leader, sku=sku, size=size,
                                   expires_at=now + expires_in))
            return self._load(tx, group_id)

    def get(self, group_id: int) -> GroupBuy:
        with self._uow.read() as tx:
            return self._load(tx, group_id)

    def of_user(self, user_id: int, *, status: str | None = None) -> list[GroupBuy]:
        """Groups the user is a member of (``status``: ``"open"``, ``"completed"``, ``"failed"``)."""
        check_optional_text(status, "status")
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return [self._load(tx, g) for g in tx.fission.groups(status=status, expired_by=None, user_id=uid)]

    def _load(self, tx: Transaction, group_id: int, *, lock: bool = False) -> GroupBuy:
        check_int(group_id, "group_id", minimum=1)
        row = tx.fission.group(group_id, lock=lock)
        if row is None:
            raise NotFound(f"no group buy with id {group_id}")
        members = tuple(GroupMember(user_id=m.user_id, joined_at=m.joined_at, order_id=m.order_id,
                                    paid=to_yuan(m.paid_fen)) for m in tx.fission.members(group_id))
        return GroupBuy(id=row.id, leader_id=row.leader_id, sku=row.sku, size=row.size, price=to_yuan(row.price_fen),
                        status=row.status, opened_at=row.opened_at, expires_at=row.expires_at,
                        closed_at=row.closed_at, members=members)

    def _check_open(self, group: GroupBuy, now: datetime) -> None:
        if group.status != "open":
            raise GroupBuyClosed(f"group buy {group.id} is {group.status}; open a new group with "
                                 "ws.referrals.group_buys.open(...)")
        if now >= group.expires_at:
            raise GroupBuyClosed(f"group buy {group.id} expired at {group.expires_at.isoformat()}; "
                                 "open a new group instead")

    def join(
        self, group_id: int, user_id: int, *, order_id: int | None = None, bind_to_leader: bool = False
    ) -> GroupBuy:
        """Take a slot. The last slot completes the group
        (:class:`~siyu.events.GroupBuyCompleted`). Refused, changing nothing:
        a full group (:class:`~siyu.errors.GroupBuyFull`), a second slot for the
        same user (:class:`~siyu.errors.AlreadyJoined`), a closed or expired
        group (:class:`~siyu.errors.GroupBuyClosed`).

        ``bind_to_leader``: the joiner came through the leader's share, so bind
        them as the leader's invitee (campaign ``"group_buy"``, channel state
        ``"group:<id>"``) under the usual binding rules; if a rule refuses (an
        existing customer, someone another inviter holds, a cycle), the join
        still happens without a binding."""
        if order_id is not None:
            check_int(order_id, "order_id", minimum=1)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            group = self._load(tx, group_id, lock=True)
            if any(m.user_id == uid for m in group.members):
                raise AlreadyJoined(f"user {uid} already holds a slot in group buy {group.id}; one slot per user")
            if group.slots_left <= 0:
                raise GroupBuyFull(f"group buy {group.id} is full ({group.size} members); open a new group")
            self._check_open(group, now)
            fen = to_fen(group.price) if order_id is not None else 0
            tx.fission.add_member(group.id, MemberRow(user_id=uid, joined_at=now, order_id=order_id, paid_fen=fen))
            if bind_to_leader and uid != group.leader_id:
                try:
                    self._referrals.bind(uid, inviter_id=group.leader_id, campaign=GROUP_BUY_CAMPAIGN,
                                         channel_state=f"group:{group.id}")
                except (AlreadyBound, NotNewUser, ReferralCycle, CampaignClosed):
                    pass  # bind checks its rules before it writes anything but its lock counter
            members = len(group.members) + 1
            tx.emit(GroupBuyJoined(at=now, group_id=group.id, user_id=uid, members=members, size=group.size,
                                   order_id=order_id))
            if members == group.size:
                tx.fission.close_group(group.id, "completed", now)
                tx.emit(GroupBuyCompleted(at=now, group_id=group.id,
                                          member_ids=tuple([*(m.user_id for m in group.members), uid])))
            return self._load(tx, group.id)

    def leave(self, group_id: int, user_id: int) -> GroupBuy:
        """Give a slot back while the group is open. The leader cannot leave
        (the group fails on expiry instead). The event carries the refund due."""
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, active=False)
            group = self._load(tx, group_id, lock=True)
            self._check_open(group, now)
            member = next((m for m in group.members if m.user_id == uid), None)
            if member is None:
                raise NotFound(f"user {uid} is not a member of group buy {group.id}")
            if uid == group.leader_id:
                raise ValidationError(f"user {uid} leads group buy {group.id} and cannot leave it; "
                                      "let it expire (members are refunded) instead")
            tx.fission.remove_member(group.id, uid)
            tx.emit(GroupBuyLeft(at=now, group_id=group.id, user_id=uid, order_id=member.order_id,
                                 refund_fen=to_fen(member.paid)))
            return self._load(tx, group.id)

    def expire_due(self) -> list[GroupBuy]:
        """Fail every open group past its expiry. Each failure emits
        :class:`~siyu.events.GroupBuyFailed` with the refunds the shop owes;
        members' orders known to ``ws.orders`` are refunded there too.
        Run it periodically; it is idempotent."""
        now = self._uow.now()
        failed: list[GroupBuy] = []
        with self._uow.write() as tx:
            for group_id in tx.fission.groups(status="open", expired_by=now, user_id=None):
                group = self._load(tx, group_id, lock=True)
                if group.status != "open":
                    continue
                tx.fission.close_group(group.id, "failed", now)
                row = tx.fission.group(group.id)
                if row is not None and row.loss_fen:
                    # Nobody bought at the group price: the loss it held did not happen.
                    tx.products.use_loss_budget([(row.sku, -row.loss_fen)])
                    tx.meta.bump("commerce")
                refunds = tuple(GroupBuyRefund(user_id=m.user_id, order_id=m.order_id, amount_fen=to_fen(m.paid))
                                for m in group.members if m.order_id is not None)
                tx.emit(GroupBuyFailed(at=now, group_id=group.id, refunds=refunds))
                self._refund_orders(group, refunds)
                failed.append(self._load(tx, group.id))
        return failed

    def _refund_orders(self, group: GroupBuy, refunds: tuple[GroupBuyRefund, ...]) -> None:
        for item in refunds:
            if item.order_id is None:
                continue
            try:
                # The key makes the refund exactly-once even if the shop also reacts to the event.
                self._orders.refund(item.order_id, None, key=f"group-buy:{group.id}:{item.user_id}")
            except (NotFound, ValidationError):
                # Not an order siyu recorded, or already refunded by hand: the event still tells the shop.
                continue
