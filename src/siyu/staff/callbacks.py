"""What WeCom's customer-contact callbacks do to staff relations.

Called by :meth:`siyu.services.wecom_contacts.WeComContacts.process` inside the write that
claims the event, so a duplicate delivery changes nothing. Each event carries
its ``CreateTime``; relations keep the instant of their last change, so events
arriving late or out of order converge to the same state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .service import Staff

__all__ = ["apply_follow", "apply_unfollow", "event_time"]


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
    if change_type == "del_follow_user":
        by = "customer"
    elif fields.get("Source") == "DELETE_BY_TRANSFER":
        by = "transfer"
    else:
        by = "staff"
    staff.unfollow(user_id, member, by=by, at=event_time(create_time))  # type: ignore[arg-type]
    left = len(staff.relations(user_id, active=True))
    if left:
        return f"user {user_id} unfollowed by {member} ({by}); {left} active relation(s) left"
    return f"user {user_id} transferred away from {member}" if by == "transfer" else f"user {user_id} lost"
