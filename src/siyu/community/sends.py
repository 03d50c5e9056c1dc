"""Group mass messages (客户群群发): one WeCom message per group owner, a delivery record per
group, each group sent to at most once per send, within WeCom's frequency rule for groups.

WeCom pushes a group mass message to the owner (``sender``), who confirms it in the app;
:meth:`GroupSends.refresh` reads each group's status back (``get_groupmsg_send_result``:
0 pending, 1 sent, 2 not a friend, 3 receive cap reached) and :meth:`GroupSends.remind`
re-notifies owners, at most 3 times per message within 24 hours (counted by siyu, refused
before any call).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._validation import check_key, check_text, check_unicode
from ..errors import CapExceeded, ChannelError, InvalidMessage, NotFound, ValidationError
from .models import DeliveryStatus, GroupDelivery, GroupSend, GroupStatus

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .wecom import GroupApi

__all__ = ["FREQUENCY_RULES", "DeliveryStatus", "GroupDelivery", "GroupSend", "GroupSends"]


def _check_api(api: object) -> None:
    if not all(callable(getattr(api, name, None)) for name in ("add_group_msg", "send_results", "remind")):
        raise ValidationError(
            f"api must be a GroupApi (siyu.community.wecom.GroupApi(client)), got {type(api).__name__} {api!r:.80}"
        )


#: ``get_groupmsg_send_result`` statuses.
RESULT_STATUSES = {0: DeliveryStatus.PENDING, 1: DeliveryStatus.SENT, 2: DeliveryStatus.NOT_FRIEND,
                   3: DeliveryStatus.CAP_REACHED}
#: WeCom's per-group receive rules as versioned data (/92135, 2025-11-17): by default a group
#: receives at most as many mass messages per month as the month has days; admins may choose
#: 7 per week or 1 per day instead.
FREQUENCY_RULES: Mapping[str, Mapping[str, Any]] = {
    "month_days": {"since": "2025-11-17", "window": "month"},
    "week_7": {"since": "2025-11-17", "window": "week", "limit": 7},
    "day_1": {"since": "2025-11-17", "window": "day", "limit": 1},
}
MAX_CHATS = 2000
MAX_REMINDERS = 3


class GroupSends:
    """``ws.groups.sends``: group mass messages through WeCom."""

    def __init__(self, uow: UnitOfWork, *, rule: str = "month_days") -> None:
        if rule not in FREQUENCY_RULES:
            raise ValidationError(f"rule must be one of {', '.join(FREQUENCY_RULES)}, got {rule!r}")
        self._uow = uow
        self.rule = rule

    def send(self, api: GroupApi, chat_ids: Sequence[str], *, text: str | None = None,
             attachments: Sequence[Mapping[str, Any]] = (), key: str) -> list[GroupDelivery]:
        """Send ``text`` / ``attachments`` to these groups: one WeCom message per owner (the
        required ``sender``), at most 2000 groups each. ``key`` names the send: repeating it
        (after a crash, say) sends only to groups not yet attempted, never twice."""
        send_key = check_key(key)
        _check_api(api)
        if text is not None and not isinstance(text, str):
            raise ValidationError(f"text must be a str, got {type(text).__name__} {text!r:.80}")
        if text is not None and len(check_unicode(text, "text").encode("utf-8")) > 4000:
            raise InvalidMessage("a group mass message's text is limited to 4000 UTF-8 bytes")
        if len(attachments) > 9:
            raise InvalidMessage(f"a group mass message takes at most 9 attachments, got {len(attachments)}")
        if not text and not attachments:
            raise InvalidMessage("a group mass message needs text or attachments")
        now = self._uow.now()
        with self._uow.write() as tx:
            send = tx.groups.group_send(send_key) or tx.groups.add_group_send(GroupSend(
                id=0, key=send_key, text=text or "", attachments=tuple(attachments), created_at=now))
            claimed = self._claim(tx, send, list(dict.fromkeys(chat_ids)), now)
        by_owner: dict[str, list[GroupDelivery]] = {}
        for d in claimed:
            by_owner.setdefault(d.owner, []).append(d)
        for owner, rows in sorted(by_owner.items()):
            for start in range(0, len(rows), MAX_CHATS):
                self._call(api, send, owner, rows[start : start + MAX_CHATS])
        return self.deliveries(send_key)

    def _claim(self, tx: Transaction, send: GroupSend, chat_ids: list[str], now: datetime) -> list[GroupDelivery]:
        done = {d.chat_id for d in tx.groups.deliveries(send.id)}
        groups = {g.chat_id: g for g in tx.groups.groups([c for c in chat_ids if c not in done])}
        missing = [c for c in chat_ids if c not in done and c not in groups]
        if missing:
            raise NotFound(f"unknown groups {missing[:3]}; sync them first (GroupSync)")
        rows: list[GroupDelivery] = []
        for chat_id, group in groups.items():
            status = DeliveryStatus.PENDING if group.status is GroupStatus.ACTIVE and self._room(tx, chat_id, now) \
                else DeliveryStatus.SKIPPED
            rows.append(GroupDelivery(send_id=send.id, chat_id=chat_id, owner=group.owner, status=status,
                                      updated_at=now))
        tx.groups.save_deliveries(rows)
        return [r for r in rows if r.status is DeliveryStatus.PENDING]

    def _room(self, tx: Transaction, chat_id: str, now: datetime) -> bool:
        """Whether the group may receive one more mass message under the frequency rule."""
        local = now.astimezone(self._uow.tz)
        rule = FREQUENCY_RULES[self.rule]
        if rule["window"] == "month":
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            limit = calendar.monthrange(local.year, local.month)[1]
        elif rule["window"] == "week":
            start = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
            limit = int(rule["limit"])
        else:
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            limit = int(rule["limit"])
        return tx.groups.deliveries_since(chat_id, start) < limit

    def _call(self, api: GroupApi, send: GroupSend, owner: str, rows: list[GroupDelivery]) -> None:
        now = self._uow.now()
        try:
            msgid = api.add_group_msg([r.chat_id for r in rows], sender=owner, text=send.text or None,
                                      attachments=send.attachments)
            status = DeliveryStatus.PENDING
        except ChannelError as exc:
            if exc.code == 41048:
                msgid, status = None, DeliveryStatus.NO_RECIPIENTS
            elif exc.code == "timeout_unknown":
                msgid, status = None, DeliveryStatus.UNKNOWN
            else:
                with self._uow.write() as tx:  # nothing was created: forget the claims, a rerun retries
                    tx.groups.remove_deliveries(send.id, [r.chat_id for r in rows])
                raise
        with self._uow.write() as tx:
            tx.groups.save_deliveries([attrs.evolve(r, msgid=msgid, status=status, updated_at=now) for r in rows])

    def deliveries(self, key: str) -> list[GroupDelivery]:
        """Every group's delivery of the send ``key``."""
        with self._uow.read() as tx:
            send = tx.groups.group_send(check_key(key))
            return [] if send is None else tx.groups.deliveries(send.id)

    def refresh(self, api: GroupApi, key: str) -> list[GroupDelivery]:
        """Read each pending group's status back from WeCom; returns the deliveries."""
        pending = [d for d in self.deliveries(key) if d.status is DeliveryStatus.PENDING and d.msgid]
        now = self._uow.now()
        updates: list[GroupDelivery] = []
        for msgid, owner in sorted({(d.msgid, d.owner) for d in pending if d.msgid}):
            answers = {str(r.get("chat_id")): int(r.get("status") or 0) for r in api.send_results(msgid, owner)}
            updates += [attrs.evolve(d, status=RESULT_STATUSES.get(answers[d.chat_id], DeliveryStatus.PENDING),
                                     updated_at=now)
                        for d in pending if d.msgid == msgid and d.chat_id in answers]
        with self._uow.write() as tx:
            tx.groups.save_deliveries(updates)
        return self.deliveries(key)

    def remind(self, api: GroupApi, msgid: str) -> int:
        """Re-notify the owner of a group mass message; at most 3 times within 24 hours
        (:class:`~siyu.errors.CapExceeded` before any call beyond). Returns reminders used."""
        mid = check_text(msgid, "msgid", max_length=128)
        _check_api(api)
        now = self._uow.now()
        with self._uow.read() as tx:
            used = tx.groups.reminders(mid, now - timedelta(hours=24))
        if used >= MAX_REMINDERS:
            raise CapExceeded(f"message {mid} was already reminded {MAX_REMINDERS} times in the last 24 hours "
                              "(WeCom's limit); try again later")
        api.remind(mid)
        with self._uow.write() as tx:
            tx.groups.add_reminder(mid, now)
        return used + 1
