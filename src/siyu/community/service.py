"""``ws.groups``: customer groups (客户群 / 社群), kept current from WeCom.

A group is read in full from ``groupchat/get`` (:meth:`Groups.save_detail`) and
then kept current from ``change_external_chat`` callbacks
(:meth:`Groups.apply_change`): member joins and quits are applied as deltas
when the event's ``LastMemVer`` equals the stored ``member_version``; otherwise
the caller re-reads the group. Joins and quits are logged, so group sizes and
join/quit rates can be reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

import attrs

from .._clock import aware
from .._validation import check_mapping, check_text, check_user_id
from ..errors import NotFound, ValidationError
from ..events import GroupChanged, GroupMembersChanged
from .models import Group, GroupMember, GroupPurpose, GroupStatus, MemberType
from .sends import GroupSends

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["GroupStats", "Groups"]

_EXTERNAL = "wecom_external_userid"


@attrs.frozen
class GroupStats:
    """One group over a period: ``size`` now, ``joins`` and ``quits`` in the period."""

    chat_id: str
    size: int
    joins: int
    quits: int


class GroupsMoved(TypedDict):
    chats: list[str]


class Groups:
    """``ws.groups``: groups, members, purposes and roles."""

    name = "groups"

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        #: Group mass messages (客户群群发), see :class:`~siyu.community.sends.GroupSends`.
        self.sends = GroupSends(uow)

    # -- reading ------------------------------------------------------------------------------
    def get(self, chat_id: str) -> Group:
        """One group; :class:`~siyu.errors.NotFound` if siyu has never seen it."""
        cid = _chat_id(chat_id)
        with self._uow.read() as tx:
            found = tx.groups.groups([cid])
        if not found:
            raise NotFound(f"no group {cid!r}; sync groups from WeCom (GroupSync) or wait for its create event")
        return found[0]

    def find(self, *, owner: str | None = None, purpose: GroupPurpose | str | None = None,
             status: GroupStatus | str | None = GroupStatus.ACTIVE) -> list[Group]:
        """Groups by ``chat_id``, filtered by owner, purpose and status (active by default; ``None``: all)."""
        with self._uow.read() as tx:
            return [g for g in tx.groups.groups() if (owner is None or g.owner == owner)
                    and (purpose is None or g.purpose == purpose) and (status is None or g.status == status)]

    def members(self, chat_id: str, *, active: bool = True) -> list[GroupMember]:
        """A group's members by join time (with those who left when ``active=False``)."""
        cid = _chat_id(chat_id)
        with self._uow.read() as tx:
            return [m for m in tx.groups.members(cid) if m.active or not active]

    def of(self, user_id: int) -> list[Group]:
        """The active groups a customer is in now."""
        check_user_id(user_id)
        with self._uow.read() as tx:
            chats = [m.chat_id for m in tx.groups.memberships(user_id) if m.active]
            return [g for g in tx.groups.groups(chats) if g.status is GroupStatus.ACTIVE]

    def sizes(self) -> dict[str, int]:
        """``chat_id -> active members`` of every group."""
        with self._uow.read() as tx:
            return tx.groups.member_counts()

    def stats(self, since: datetime, until: datetime | None = None) -> list[GroupStats]:
        """Per group: its size now, and joins and quits with ``since <= at < until`` (default: now)."""
        aware(since, "since")
        end = self._uow.now() if until is None else aware(until, "until")
        with self._uow.read() as tx:
            sizes = tx.groups.member_counts()
            log = tx.groups.member_log(None, since, end)
            chats = [g.chat_id for g in tx.groups.groups()]
        return [GroupStats(chat_id=c, size=sizes.get(c, 0),
                           joins=sum(1 for lc, _, a, _ in log if lc == c and a == "join"),
                           quits=sum(1 for lc, _, a, _ in log if lc == c and a == "quit")) for c in chats]

    # -- what operators set ------------------------------------------------------------------------
    def set_purpose(self, chat_id: str, purpose: GroupPurpose | str | None) -> Group:
        """Mark a group 转化型 (``"conversion"``) or 服务型 (``"service"``) (``None`` clears it)."""
        try:
            value = None if purpose is None else GroupPurpose(purpose)
        except ValueError:
            raise ValidationError(f"purpose must be one of {', '.join(GroupPurpose)}, got {purpose!r}") from None
        with self._uow.write() as tx:
            group = attrs.evolve(self._require(tx, chat_id), purpose=value, updated_at=self._uow.now())
            tx.groups.save_groups([group])
            tx.meta.bump("groups")
        return group

    def set_owner(self, chat_id: str, userid: str) -> Group:
        """Record a group's new owner (after a group transfer)."""
        owner = check_text(userid, "userid", max_length=64)
        now = self._uow.now()
        with self._uow.write() as tx:
            group = attrs.evolve(self._require(tx, chat_id), owner=owner, updated_at=now)
            tx.groups.save_groups([group])
            tx.meta.bump("groups")
            tx.emit(GroupChanged(at=now, chat_id=group.chat_id, change="update", owner=owner))
        return group

    def set_role(self, chat_id: str, member: str | int, role: str | None) -> GroupMember:
        """Give a member an operator-assigned role (``"expert"``, ``"core"``, ``"admin"`` ...; ``None``
        clears it). ``member`` is a staff userid, an external userid or a siyu user id."""
        text = None if role is None else check_text(role, "role", max_length=32)
        with self._uow.write() as tx:
            group = self._require(tx, chat_id)
            found = [m for m in tx.groups.members(group.chat_id)
                     if (m.user_id == member if isinstance(member, int) else m.member_id == member)]
            if not found:
                raise NotFound(f"{member!r} is not a member of group {group.chat_id!r}")
            updated = attrs.evolve(found[0], role=text)
            tx.groups.save_members([updated])
        return updated

    # -- kept current from WeCom ------------------------------------------------------------------
    def writing(self) -> AbstractContextManager[object]:
        """One transaction around several calls (a callback's claim and its changes)."""
        return self._uow.write()

    def claim_event(self, key: str) -> bool:
        """Record that the callback event ``key`` is being applied; ``False`` if it already was."""
        text = check_text(key, "key", max_length=10_000)
        with self._uow.write() as tx:
            return tx.channels.claim_callback("wecom", text[:200], self._uow.now())

    def save_detail(self, detail: Mapping[str, Any]) -> Group:
        """Store a group as ``groupchat/get`` returns it (``group_chat``): its fields, and the
        member list as the whole truth (members missing from it have left)."""
        check_mapping(detail, "detail", "the group_chat object of groupchat/get")
        now = self._uow.now()
        cid = _chat_id(str(detail.get("chat_id") or ""))
        listed = [m for m in detail.get("member_list") or [] if m.get("userid")]
        with self._uow.write() as tx:
            old = {g.chat_id: g for g in tx.groups.groups([cid])}.get(cid)
            group = Group(chat_id=cid, name=str(detail.get("name") or ""), owner=str(detail.get("owner") or ""),
                          notice=str(detail.get("notice") or ""),
                          admins=tuple(str(a.get("userid")) for a in detail.get("admin_list") or []),
                          created_at=_instant(detail.get("create_time")),
                          purpose=old.purpose if old else None,
                          member_version=str(detail.get("member_version") or ""), updated_at=now)
            tx.groups.save_groups([group])
            tx.meta.bump("groups")
            stored = {m.member_id: m for m in tx.groups.members(cid)}
            externals = [str(m["userid"]) for m in listed if int(m.get("type") or 0) == MemberType.CUSTOMER]
            users = self._users(tx, externals)
            rows: list[GroupMember] = []
            joined: list[str] = []
            for m in listed:
                mid, before = str(m["userid"]), stored.get(str(m["userid"]))
                rows.append(GroupMember(
                    chat_id=cid, member_id=mid, type=int(m.get("type") or 0), user_id=users.get(mid),
                    joined_at=_instant(m.get("join_time")), join_scene=_int(m.get("join_scene")),
                    invitor=str((m.get("invitor") or {}).get("userid") or "") or None,
                    state=str(m.get("state") or "") or None,
                    nickname=str(m.get("group_nickname") or m.get("name") or ""),
                    role=before.role if before else None))
                if before is None or not before.active:
                    joined.append(mid)
            seen = {r.member_id for r in rows}
            gone = [attrs.evolve(m, active=False, left_at=now) for m in stored.values()
                    if m.active and m.member_id not in seen]
            tx.groups.save_members(rows + gone)
            tx.meta.bump("groups")
            self._log(tx, cid, joined, [m.member_id for m in gone], now, users,
                      {m.member_id: m.user_id for m in gone})
            if old is None or (old.name, old.owner, old.notice, old.status) != (group.name, group.owner, group.notice,
                                                                                 group.status):
                tx.emit(GroupChanged(at=now, chat_id=cid, change="create" if old is None else "update",
                                     owner=group.owner))
        return group

    def apply_change(self, chat_id: str, change: str, *, detail: str = "", members: Sequence[str] = (),
                     join_scene: int | None = None, quit_scene: int | None = None, last_version: str = "",
                     current_version: str = "", at: datetime | None = None) -> bool:
        """Apply one ``change_external_chat`` event. ``change`` is ``create``/``update``/``dismiss``;
        ``detail`` the ``UpdateDetail`` (``add_member``, ``del_member``, ``change_owner``,
        ``change_name``, ``change_notice``). Returns ``True`` when the group must be re-read with
        ``groupchat/get`` (a create, an unknown group, a member change whose ``last_version`` is not
        the stored version, or a change of owner, name or notice, which the event does not carry)."""
        cid = _chat_id(chat_id)
        now = self._uow.now()
        when = at or now
        with self._uow.write() as tx:
            group = {g.chat_id: g for g in tx.groups.groups([cid])}.get(cid)
            if change == "dismiss":
                if group is not None and group.status is not GroupStatus.DISMISSED:
                    tx.groups.save_groups([attrs.evolve(group, status=GroupStatus.DISMISSED, updated_at=now)])
                    tx.meta.bump("groups")
                    tx.emit(GroupChanged(at=now, chat_id=cid, change="dismiss", owner=group.owner))
                return False
            if change != "update" or group is None:
                return True
            if detail not in ("add_member", "del_member"):
                return True
            if not members or not last_version or last_version != group.member_version:
                return True
            stored = {m.member_id: m for m in tx.groups.members(cid)}
            if detail == "add_member":
                users = self._users(tx, list(members))
                rows = [GroupMember(chat_id=cid, member_id=mid, type=MemberType.CUSTOMER if mid in users or
                                    not _looks_like_staff(mid) else MemberType.STAFF,
                                    user_id=users.get(mid), joined_at=when, join_scene=join_scene,
                                    role=stored[mid].role if mid in stored else None)
                        for mid in members]
                joined, quit_ = [r.member_id for r in rows if not (stored.get(r.member_id) or _GONE).active], []
                ids = {r.member_id: r.user_id for r in rows}
            else:
                rows = [attrs.evolve(stored[mid], active=False, quit_scene=quit_scene, left_at=when)
                        for mid in members if mid in stored and stored[mid].active]
                joined, quit_ = [], [r.member_id for r in rows]
                ids = {r.member_id: r.user_id for r in rows}
            tx.groups.save_members(rows)
            tx.groups.save_groups([attrs.evolve(group, member_version=current_version, updated_at=now)])
            tx.meta.bump("groups")
            self._log(tx, cid, joined, quit_, when, ids, ids)
        return False

    # -- merge participant --------------------------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> GroupsMoved:
        tx.meta.bump("groups")
        return GroupsMoved(chats=tx.groups.move_memberships(drop, keep))

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: GroupsMoved, at: datetime) -> None:
        for m in tx.groups.memberships(keep):
            if m.chat_id in record["chats"]:
                tx.groups.save_members([attrs.evolve(m, user_id=drop)])

    # -- internals ------------------------------------------------------------------------------------------
    def _require(self, tx: Transaction, chat_id: str) -> Group:
        cid = _chat_id(chat_id)
        found = tx.groups.groups([cid])
        if not found:
            raise NotFound(f"no group {cid!r}")
        return found[0]

    @staticmethod
    def _users(tx: Transaction, external_ids: list[str]) -> dict[str, int]:
        return tx.users.find_identities(_EXTERNAL, "", external_ids) if external_ids else {}

    @staticmethod
    def _log(tx: Transaction, chat_id: str, joined: list[str], quit_: list[str], at: datetime,
             users: Mapping[str, int | None], gone_users: Mapping[str, int | None]) -> None:
        if not joined and not quit_:
            return
        tx.groups.log_members([(chat_id, m, "join", at) for m in joined] + [(chat_id, m, "quit", at) for m in quit_])
        tx.emit(GroupMembersChanged(
            at=at, chat_id=chat_id, joined=tuple(joined), quit=tuple(quit_),
            joined_users=tuple(u for m in joined if (u := users.get(m)) is not None),
            quit_users=tuple(u for m in quit_ if (u := gone_users.get(m)) is not None)))


_GONE = GroupMember(chat_id="", member_id="", type=0, active=False)


def _looks_like_staff(member_id: str) -> bool:
    # External userids start with "wm"/"wo" (WeCom's formats); staff userids are the corp's own ids.
    return not member_id.startswith(("wm", "wo"))


def _chat_id(value: object) -> str:
    return check_text(value, "chat_id", max_length=128)


def _instant(value: object) -> datetime | None:
    number = _int(value)
    return datetime.fromtimestamp(number, UTC) if number else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None
