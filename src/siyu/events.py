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
    "ConsentRecorded",
    "Event",
    "IdentityLinked",
    "IdentityUnlinked",
    "OrderLineInfo",
    "OrderRecorded",
    "OrderRefunded",
    "PointsEarned",
    "PointsExpired",
    "PointsReversed",
    "PointsSpent",
    "TagApplied",
    "TagRemoved",
    "UserCreated",
    "UserUpdated",
    "UsersMerged",
    "UsersUnmerged",
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
    product, and the fen actually paid for the line after all discounts."""

    sku: str
    qty: int
    paid_fen: int
    role: str


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
    """Part or all of an order was refunded; ``lines`` hold the refunded part.
    Whatever an order caused (points, commissions, fission rewards) must be
    reversed in proportion to ``amount_fen`` / the order's ``total_fen``."""

    order_id: int
    refund_id: int
    user_id: int
    amount_fen: int
    order_total_fen: int
    lines: tuple[OrderLineInfo, ...]
    full: bool


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-friendly dict of an event, with its class name under ``"type"``."""
    data = attrs.asdict(event)
    data["at"] = event.at.isoformat()
    data["type"] = type(event).__name__
    return data
