"""What WeCom's customer-contact callbacks do to staff relations.

Called by :meth:`siyu.services.wecom_contacts.WeComContacts.process` inside the write that
claims the event, so a duplicate delivery changes nothing. Each event carries
its ``CreateTime``; relations keep the instant of their last change, so events
arriving late or out of order converge to the same state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .models import Unfollow

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .service import Staff

__all__ = ["apply_follow", "apply_unfollow", "apply_unfollows", "event_time"]


def event_time(create_time: int) -> datetime | None:
    """``CreateTime`` (Unix seconds) as an aware instant; ``None`` when missing."""
    return datetime.fromtimestamp(create_time, UTC) if create_time > 0 else None


def apply_follow(staff: Staff, user_id: int, member: str, *, state: str, create_time: int) -> None:
    """``add_external_contact`` / ``add_half_external_contact``: member ``member`` added the customer."""
    staff.follow(user_id, member, state=state or None, at=event_time(create_time))


def apply_unfollow(staff: Staff, user_id: int, member: str, change_type: str, fields: Mapping[str, str],
                   create_time: int) -> str:
    """``del_follow_user`` (the customer deleted the member) or ``del_external_contact`` (the
    member deleted the customer; ``Source=DELETE_BY_TRANSFER``: a transfer, not churn).
    Returns the outcome text the callback log shows."""
    return apply_unfollows(staff, [(user_id, member, change_type, fields, create_time)])[0]


def apply_unfollows(staff: Staff, events: Sequence[tuple[int, str, str, Mapping[str, str], int]]) -> list[str]:
    """:func:`apply_unfollow` for many events ``(user_id, member, change_type, fields,
    create_time)`` in one write, in order; one outcome text each."""
    ends = [Unfollow(user_id=user_id, staff=member, by=_by(change_type, fields), at=event_time(create_time))
            for user_id, member, change_type, fields, create_time in events]
    out = []
    for end, (_, left) in zip(ends, staff._unfollow_many(ends), strict=True):
        if left:
            out.append(f"user {end.user_id} unfollowed by {end.staff} ({end.by}); {left} active relation(s) left")
        elif end.by == "transfer":
            out.append(f"user {end.user_id} transferred away from {end.staff}")
        else:
            out.append(f"user {end.user_id} lost")
    return out


def _by(change_type: str, fields: Mapping[str, str]) -> str:
    if change_type == "del_follow_user":
        return "customer"
    return "transfer" if fields.get("Source") == "DELETE_BY_TRANSFER" else "staff"
