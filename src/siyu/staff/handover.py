"""Hand over everything of one staff member (usually a leaver): customers and groups,
spread over colleagues by a distribution policy.

``round_robin`` deals customers out in turn; ``least_loaded`` gives each customer to
whoever has the fewest active relations so far; ``same_store`` keeps customers in the
leaver's store (least loaded among its members). Groups follow the same policy.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from ..errors import ValidationError
from .models import StaffMember, StaffStatus, Transfer

if TYPE_CHECKING:
    from ..community.service import Groups
    from ..community.wecom import GroupApi
    from .service import Staff

__all__ = ["Distribution", "HandOver", "plan"]


class Distribution(enum.StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    SAME_STORE = "same_store"


@attrs.frozen
class HandOver:
    """What a hand-over did: one :class:`Transfer` per customer, and per group the
    new owner and WeCom's code (0 = transferred)."""

    customers: list[Transfer]
    groups: dict[str, tuple[str, int]]


def plan(items: Sequence[str | int], leaver: StaffMember, members: Sequence[StaffMember], load: dict[str, int],
         policy: Distribution) -> dict[str, list[str | int]]:
    """Assign ``items`` to ``members``: ``takeover userid -> items``."""
    pool = [m for m in members if m.status is StaffStatus.ACTIVE and m.userid != leaver.userid]
    if policy is Distribution.SAME_STORE:
        pool = [m for m in pool if leaver.store is not None and m.store == leaver.store]
    if not pool:
        where = f" in store {leaver.store!r}" if policy is Distribution.SAME_STORE else ""
        raise ValidationError(f"no active staff member{where} to take over from {leaver.userid!r}; add one first")
    counts = {m.userid: load.get(m.userid, 0) for m in pool}
    out: dict[str, list[str | int]] = {m.userid: [] for m in pool}
    for index, item in enumerate(items):
        if policy is Distribution.ROUND_ROBIN:
            target = pool[index % len(pool)].userid
        else:
            target = min(counts, key=lambda u: (counts[u], u))
        out[target].append(item)
        counts[target] += 1
    return {k: v for k, v in out.items() if v}


def hand_over(staff: Staff, groups: Groups, userid: str, *, to: Sequence[str] | None, policy: Distribution | str,
              resigned: bool, group_api: GroupApi | None) -> HandOver:
    """See :meth:`siyu.staff.Staff.hand_over`."""
    try:
        how = Distribution(policy)
    except ValueError:
        raise ValidationError(f"policy must be one of {', '.join(Distribution)}, got {policy!r}") from None
    leaver = staff.get(userid)
    members = [staff.get(u) for u in to] if to is not None else staff.members()
    load = staff.relation_counts()
    customers = staff.customers(leaver.userid)
    results: list[Transfer] = []
    for target, ids in plan(customers, leaver, members, load, how).items():
        results.extend(staff.transfer([int(i) for i in ids], from_=leaver.userid, to=target, resigned=resigned))
    chats = [g.chat_id for g in groups.find(owner=leaver.userid)]
    moved: dict[str, tuple[str, int]] = {}
    for target, chat_ids in (plan(chats, leaver, members, {}, how).items() if chats else ()):
        names = [str(c) for c in chat_ids]
        codes = ({c: 0 for c in names} if group_api is None else
                 {c: code for start in range(0, len(names), 100)
                  for c, code in group_api.transfer(names[start : start + 100], target, resigned=resigned).items()})
        for chat_id, code in codes.items():
            if code == 0:
                groups.set_owner(chat_id, target)
            moved[chat_id] = (target, code)
    return HandOver(customers=results, groups=moved)
