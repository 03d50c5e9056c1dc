"""What WeCom's ``change_external_chat`` callbacks do to ``ws.groups``.

Every customer-group event comes from ``FromUserName=sys``, so several
different events share a sender and a second: an event is recognised as a
repeat by its chat, change, detail, changed members and time instead, claimed
in the same write that applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import ChannelError
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
    """Apply one decrypted ``change_external_chat`` event once; returns what was done.

    The claim and the event's own changes commit together; a re-read of the group
    (``groupchat/get``) comes after that write, so no database lock is held while WeCom
    answers. If the re-read fails the stored member version still disagrees with WeCom's,
    so the group's next member event re-reads it (as does the next sync)."""
    sync = GroupSync(groups, GroupApi(client))
    with groups.writing():
        if not groups.claim_event(chat_event_key(fields)):
            return "duplicate"
        outcome, stale = sync.record_event(fields)
    if stale is None:
        return outcome
    try:
        return sync.reread(stale)
    except ChannelError as exc:
        return f"{outcome}; re-read failed ({exc}), left for the next event or sync"
