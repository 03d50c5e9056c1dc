"""Pull staff members and their relations from WeCom into ``ws.staff``.

Each item is written as an upsert keyed by WeCom's ids (member userid,
``external_userid``), so a sync interrupted half-way is simply run again: the
customers already written are updated, never duplicated. A customer followed
by several members arrives once per member and becomes one user with several
relations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ChannelError

if TYPE_CHECKING:
    from ..services.users import Users
    from .service import Staff
    from .wecom import StaffApi

__all__ = ["StaffSync", "SyncReport"]


@attrs.frozen
class SyncReport:
    """What a sync did: members seen, customers created, relations written."""

    members: int = 0
    customers_created: int = 0
    relations: int = 0


class StaffSync:
    """Sync one WeCom app's members and relations into a workspace
    (``StaffSync(ws.staff, ws.users, api)``)."""

    def __init__(self, staff: Staff, users: Users, api: StaffApi) -> None:
        self.staff = staff
        self.users = users
        self.api = api

    def members(self) -> list[str]:
        """Add or update every member with customer contact (``get_follow_user_list``,
        details from ``user/get``; a member the app may not read keeps its userid as name)."""
        userids = self.api.follow_users()
        for userid in userids:
            try:
                info = self.api.member(userid)
            except ChannelError:
                info = {}
            departments = info.get("department") or []
            self.staff.add(userid, name=str(info.get("name") or userid),
                                     department=str(departments[0]) if departments else None)
        return userids

    def relations(self, userids: Iterable[str] | None = None) -> SyncReport:
        """Every customer of these members (default: all members with customer contact),
        from ``batch/get_by_user``, as users with one relation per member."""
        ids = list(userids) if userids is not None else self.members()
        created = written = 0
        for item in self.api.contacts_by_user(ids):
            contact, info = item.get("external_contact") or {}, item.get("follow_info") or {}
            if not contact.get("external_userid") or not info.get("userid"):
                continue
            is_new = self.apply(contact, info)
            created += is_new
            written += 1
        return SyncReport(members=len(ids), customers_created=created, relations=written)

    def customer(self, external_userid: str) -> int:
        """Re-read one customer (``externalcontact/get``, every page of followers); return the user id."""
        data = self.api.contact(external_userid)
        user_id = 0
        for follow in data["follow_user"]:
            self.apply(data["external_contact"], follow)
        user = self.users.find(wecom_external_userid=external_userid)
        if user is not None:
            user_id = user.id
        return user_id

    def apply(self, contact: Mapping[str, Any], follow: Mapping[str, Any]) -> bool:
        """Write one (member, customer) item; ``True`` if the customer was new."""
        ext = str(contact["external_userid"])
        # One write (the user and the relation) per item: a crash never leaves half of one.
        with self.staff.writing():
            user = self.users.find(wecom_external_userid=ext)
            is_new = user is None
            if user is None:
                user = self.users.add(wecom_external_userid=ext, source="wecom",
                                    state=str(follow.get("state") or "")[:30] or None)
            tags = [str(t.get("tag_name") or t.get("tag_id")) for t in follow.get("tags") or []] or [
                str(t) for t in follow.get("tag_id") or []]
            created = follow.get("createtime")
            self.staff.follow(
                user.id, str(follow["userid"]), add_way=_int(follow.get("add_way")),
                state=str(follow.get("state") or "") or None, remark=str(follow.get("remark") or "")[:20],
                description=str(follow.get("description") or "")[:150], tags=tags,
                oper_userid=str(follow.get("oper_userid") or "") or None,
                since=datetime.fromtimestamp(int(created), UTC) if created else None,
            )
        return is_new


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
