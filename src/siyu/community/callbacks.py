"""What WeCom's ``change_external_chat`` callbacks do to ``ws.groups``.

Every customer-group event comes from ``FromUserName=sys``, so several
different events share a sender and a second: an event is recognised as a
repeat by its chat, change, detail, changed members and time instead, claimed
in the same write that applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .wecom import GroupApi, GroupSync

if TYPE_CHECKING:
    from ..channels.wecom.client import WeComClient
    from .service import Groups

__all__ = ["apply_chat_event", "chat_event_key"]


def chat_event_key(fields: Mapping[str, str]) -> str:
    """The identity of one group event, for de-duplicating repeated deliveries."""
    parts = ("Event", "ChangeType", "ChatId", "UpdateDetail", "MemChangeList", "CurMemVer", "CreateTime")
    return ":".join(fields.get(p, "") for p in parts)


def apply_chat_event(groups: Groups, client: WeComClient, fields: Mapping[str, str]) -> str:
    """Apply one decrypted ``change_external_chat`` event once; returns what was done."""
    with groups.writing():
        if not groups.claim_event(chat_event_key(fields)):
            return "duplicate"
        return GroupSync(groups, GroupApi(client)).apply_event(fields)
