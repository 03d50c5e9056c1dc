"""Customer groups (客户群 / 社群), their members, join ways and welcome templates (attrs values, no I/O)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "DeliveryStatus",
    "EventJoinScene",
    "Group",
    "GroupDelivery",
    "GroupMember",
    "GroupPurpose",
    "GroupSend",
    "GroupStatus",
    "JoinScene",
    "JoinWay",
    "MemberType",
    "QuitScene",
]


class GroupStatus(enum.StrEnum):
    ACTIVE = "active"
    DISMISSED = "dismissed"


class GroupPurpose(enum.StrEnum):
    """Why the group exists: 转化型 (``conversion``: people with buying intent, answered
    until they buy) or 服务型 (``service``: customers served after buying); ``other``."""

    CONVERSION = "conversion"
    SERVICE = "service"
    OTHER = "other"


class MemberType(enum.IntEnum):
    """``groupchat/get`` ``member_list[].type``: 1 a corp member (staff), 2 an external contact."""

    STAFF = 1
    CUSTOMER = 2


class JoinScene(enum.IntEnum):
    """How a member joined, as ``groupchat/get`` says (``join_scene``)."""

    INVITED = 1
    INVITE_LINK = 2
    QR_CODE = 3


class EventJoinScene(enum.IntEnum):
    """How a member joined, as the ``change_external_chat`` event says (``JoinScene``): a
    different code set from :class:`JoinScene`. Unknown values are kept as plain ints."""

    INVITED = 0
    QR_CODE = 3


class QuitScene(enum.IntEnum):
    """``QuitScene`` of a ``del_member`` event."""

    LEFT = 0
    REMOVED = 1


@attrs.frozen(kw_only=True)
class Group:
    """A customer group. ``member_version`` is WeCom's, to apply member changes as deltas;
    ``purpose`` and the members' ``role`` are the operator's."""

    chat_id: str
    name: str = ""
    owner: str = ""
    notice: str = ""
    admins: tuple[str, ...] = ()
    created_at: datetime | None = None
    status: GroupStatus = GroupStatus.ACTIVE
    purpose: GroupPurpose | None = None
    member_version: str = ""
    updated_at: datetime


@attrs.frozen(kw_only=True)
class GroupMember:
    """One member of a group: ``member_id`` is a staff userid (``type`` STAFF) or an
    ``external_userid``; ``user_id`` is the siyu user when the external contact is known.
    ``join_scene`` keeps WeCom's raw code (see :class:`JoinScene`, :class:`EventJoinScene`).
    ``state`` is the join way's channel code. ``active`` is ``False`` once they left
    (``quit_scene``, ``left_at``). ``role`` is set by operators (``"expert"``, ``"core"`` ...)."""

    chat_id: str
    member_id: str
    type: int
    user_id: int | None = None
    joined_at: datetime | None = None
    join_scene: int | None = None
    invitor: str | None = None
    state: str | None = None
    nickname: str = ""
    active: bool = True
    quit_scene: int | None = None
    left_at: datetime | None = None
    role: str | None = None


@attrs.frozen(kw_only=True)
class JoinWay:
    """A 群活码 (``add_join_way``): ``scene`` 1 mini-program plugin, 2 QR code (``qr_code``);
    up to 5 groups; ``auto_create_room`` opens ``room_base_name`` + number when they are full;
    ``state`` attributes the joins."""

    config_id: str
    scene: int
    chat_ids: tuple[str, ...]
    state: str | None = None
    remark: str = ""
    auto_create_room: bool = True
    room_base_name: str | None = None
    room_base_id: int | None = None
    qr_code: str | None = None


class DeliveryStatus(enum.StrEnum):
    """One group's delivery: ``pending`` (waiting for the owner), ``sent``, ``not_friend`` (2),
    ``cap_reached`` (3), ``skipped`` (siyu's frequency rule), ``no_recipients`` (41048),
    ``unknown`` (the call's outcome is unknown: never sent again)."""

    PENDING = "pending"
    SENT = "sent"
    NOT_FRIEND = "not_friend"
    CAP_REACHED = "cap_reached"
    SKIPPED = "skipped"
    NO_RECIPIENTS = "no_recipients"
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class GroupSend:
    id: int
    key: str
    text: str
    attachments: tuple[Mapping[str, Any], ...]
    created_at: datetime


@attrs.frozen(kw_only=True)
class GroupDelivery:
    send_id: int
    chat_id: str
    owner: str
    status: DeliveryStatus
    msgid: str | None = None
    updated_at: datetime
