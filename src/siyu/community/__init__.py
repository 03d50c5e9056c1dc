"""Customer groups (客户群 / 社群): ``ws.groups`` is :class:`Groups`; :mod:`siyu.community.wecom`
talks to WeCom (groups, 群活码 join ways, welcome templates, group transfers)."""

from .models import (
    EventJoinScene,
    Group,
    GroupMember,
    GroupPurpose,
    GroupStatus,
    JoinScene,
    JoinWay,
    MemberType,
    QuitScene,
)
from .service import Groups, GroupStats

__all__ = [
    "EventJoinScene",
    "Group",
    "GroupMember",
    "GroupPurpose",
    "GroupStats",
    "GroupStatus",
    "Groups",
    "JoinScene",
    "JoinWay",
    "MemberType",
    "QuitScene",
]
