"""Segment metrics about groups and staff, declared for the workspace to register.

* ``groups`` — how many groups the customer is in now; ``relations`` — how many staff
  members follow them (active relations).
* ``in_group.<chat_id> = 1`` — members of one group;
  ``group_purpose.conversion >= 1`` — in at least one 转化型 group (also ``service``, ``other``);
  ``owned_by.<userid> = 1`` — customers a staff member owns.

Users a metric has no value for match no comparison (``in_group.X = 0`` is never true:
write ``not in_group.X = 1``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from ..segments.metrics import MetricSpec
from .models import GroupPurpose

if TYPE_CHECKING:
    from ..segments.metrics import MetricValues
    from ..storage.base import Transaction

__all__ = ["GROUP_METRICS", "group_purpose_metric", "in_group_metric", "owned_by_metric"]


def _groups(tx: Transaction, now: datetime) -> MetricValues:
    counts = Counter(uid for uid, _ in tx.groups.active_memberships())
    return {uid: counts.get(uid, 0) for uid in tx.segments.user_ids()}


def _relations(tx: Transaction, now: datetime) -> MetricValues:
    counts: Counter[int] = Counter()
    for staff, _ in tx.staff.relation_counts().items():
        counts.update(tx.staff.customers_of(staff))
    return {uid: counts.get(uid, 0) for uid in tx.segments.user_ids()}


GROUP_METRICS = (
    MetricSpec(name="groups", values=_groups, counters=("groups", "users")),
    MetricSpec(name="relations", values=_relations, counters=("staff", "users")),
)


def in_group_metric(chat_id: str) -> MetricSpec:
    """``in_group.<chat_id>``: 1 for the group's current members siyu knows as users."""

    def values(tx: Transaction, now: datetime) -> MetricValues:
        return {m.user_id: 1 for m in tx.groups.members(chat_id) if m.active and m.user_id is not None}

    return MetricSpec(name=f"in_group.{chat_id}", values=values, counters=("groups",))


def group_purpose_metric(purpose: str) -> MetricSpec | None:
    """``group_purpose.<purpose>``: how many groups of that purpose the customer is in."""
    if purpose not in {str(p) for p in GroupPurpose}:
        return None

    def values(tx: Transaction, now: datetime) -> MetricValues:
        chats = {g.chat_id for g in tx.groups.groups() if g.purpose == purpose}
        counts = Counter(uid for uid, chat in tx.groups.active_memberships() if chat in chats)
        return {uid: counts.get(uid, 0) for uid in tx.segments.user_ids()}

    return MetricSpec(name=f"group_purpose.{purpose}", values=values, counters=("groups", "users"))


def owned_by_metric(userid: str) -> MetricSpec:
    """``owned_by.<userid>``: 1 for the customers the staff member owns now."""

    def values(tx: Transaction, now: datetime) -> MetricValues:
        return dict.fromkeys(tx.staff.owned_by(userid), 1)

    return MetricSpec(name=f"owned_by.{userid}", values=values, counters=("staff",))
