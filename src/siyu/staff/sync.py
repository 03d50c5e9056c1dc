"""Pull staff members and their relations from WeCom into ``ws.staff``.

Each item is written as an upsert keyed by WeCom's ids (member userid,
``external_userid``), so a sync interrupted half-way is simply run again: the
customers already written are updated, never duplicated. A customer followed
by several members arrives once per member and becomes one user with several
relations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ChannelError
from .models import Follow

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

    def relations(self, userids: Iterable[str] | None = None, *, batch: int = 500) -> SyncReport:
        """Every customer of these members (default: all members with customer contact),
        from ``batch/get_by_user``, as users with one relation per member. Items are
        written ``batch`` at a time, one transaction each, never while a page is being fetched."""
        ids = list(userids) if userids is not None else self.members()
        created = written = 0
        valid = ((item.get("external_contact") or {}, item.get("follow_info") or {})
                 for item in self.api.contacts_by_user(ids))
        wanted = ((c, f) for c, f in valid if c.get("external_userid") and f.get("userid"))
        # islice pulls the next page from WeCom before the write starts, never during it.
        while chunk := list(islice(wanted, max(1, batch))):
            created += self.apply_many(chunk)
            written += len(chunk)
        return SyncReport(members=len(ids), customers_created=created, relations=written)

    def customer(self, external_userid: str) -> int:
        """Re-read one customer (``externalcontact/get``, every page of followers); return the user id."""
        data = self.api.contact(external_userid)
        self.apply_many([(data["external_contact"], follow) for follow in data["follow_user"]])
        user = self.users.find(wecom_external_userid=external_userid)
        return 0 if user is None else user.id

    def apply(self, contact: Mapping[str, Any], follow: Mapping[str, Any]) -> bool:
        """Write one (member, customer) item; ``True`` if the customer was new."""
        return bool(self.apply_many([(contact, follow)]))

    def apply_many(self, items: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> int:
        """Write (customer, member) items as ``batch/get_by_user`` returns them, in one
        transaction (the users and their relations together: a crash never leaves half of
        one); return how many customers were new."""
        if not items:
            return 0
        rows = [{"wecom_external_userid": str(c["external_userid"]), "source": "wecom",
                 "state": str(f.get("state") or "")[:30] or None} for c, f in items]
        with self.staff.writing():
            # First touch wins: a known customer keeps their source and state.
            result = self.users.upsert_many(rows)
            self.staff.follow_many([_follow(user_id, follow) for user_id, (_, follow) in zip(result.ids, items,
                                                                                             strict=True)])
        return len(result.created)


def _follow(user_id: int, follow: Mapping[str, Any]) -> Follow:
    tags = [str(t.get("tag_name") or t.get("tag_id")) for t in follow.get("tags") or []] or [
        str(t) for t in follow.get("tag_id") or []]
    created = follow.get("createtime")
    return Follow(user_id=user_id, staff=str(follow["userid"]), add_way=_int(follow.get("add_way")),
                  state=str(follow.get("state") or "") or None, remark=str(follow.get("remark") or "")[:20],
                  description=str(follow.get("description") or "")[:150], tags=tags,
                  oper_userid=str(follow.get("oper_userid") or "") or None,
                  since=datetime.fromtimestamp(int(created), UTC) if created else None)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
