"""WeCom's customer-group APIs (客户群, 群活码, 入群欢迎语, 群继承), checked before any call.

:class:`GroupApi` refuses what WeCom would refuse before the request (group
lists always carry an owner filter of at most 100 members and a ``limit`` of
1-1000; 1-100 chats per transfer; join ways with 1-5 groups, a ``state`` of at
most 30 characters, a ``room_base_name`` of at most 40; welcome texts of at
most 3000 UTF-8 bytes) and follows pages to the end. :class:`GroupSync` reads
groups into ``ws.groups`` and applies ``change_external_chat`` callbacks,
re-reading a group only when the event cannot be applied as a delta.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ChannelError, InvalidMessage
from .models import JoinWay

if TYPE_CHECKING:
    from ..channels.wecom.client import WeComClient
    from .service import Groups

__all__ = ["GROUP_LIMITS", "GroupApi", "GroupLimits", "GroupSync"]


@attrs.frozen
class GroupLimits:
    """WeCom's group limits as data (documented 2023-12 .. 2026-01)."""

    owners_per_list: int = 100
    list_limit: int = 1000
    chats_per_transfer: int = 100
    join_way_chats: int = 5
    join_way_state: int = 30
    room_base_name: int = 40
    join_way_remark: int = 30
    welcome_text_bytes: int = 3000
    welcome_templates: int = 100


GROUP_LIMITS = GroupLimits()


class GroupApi:
    """Customer-group calls for one app's client."""

    def __init__(self, client: WeComClient, *, limits: GroupLimits = GROUP_LIMITS) -> None:
        self.client = client
        self.limits = limits

    # -- groups ------------------------------------------------------------------------------
    def chats(self, owners: Sequence[str], *, status_filter: int = 0, limit: int = 1000) -> Iterator[dict[str, Any]]:
        """``group_chat_list`` items (``chat_id``, ``status``) of these owners: WeCom refuses a
        list without an owner filter once the app sees more than 1000 people (81017), so one is
        always sent, split into calls of 100 owners; ``limit`` is kept to 1-1000."""
        ids = list(dict.fromkeys(owners))
        if not ids:
            raise InvalidMessage("groupchat/list needs at least one owner userid (WeCom answers 81017 without one)")
        size = max(1, min(int(limit), self.limits.list_limit))
        for start in range(0, len(ids), self.limits.owners_per_list):
            cursor = ""
            while True:
                body = {"status_filter": status_filter, "limit": size, "cursor": cursor,
                        "owner_filter": {"userid_list": ids[start : start + self.limits.owners_per_list]}}
                data = self.client.call("POST", "externalcontact/groupchat/list", body=body)
                yield from data.get("group_chat_list") or []
                cursor = str(data.get("next_cursor") or "")
                if not cursor:
                    break

    def get(self, chat_id: str, *, need_name: bool = True) -> dict[str, Any]:
        """One group's ``group_chat`` (members, admins, ``member_version``)."""
        data = self.client.call("POST", "externalcontact/groupchat/get",
                                body={"chat_id": chat_id, "need_name": int(need_name)})
        return dict(data.get("group_chat") or {})

    def transfer(self, chat_ids: Sequence[str], new_owner: str, *, resigned: bool) -> dict[str, int]:
        """Hand groups to ``new_owner`` (``groupchat/transfer`` for a resigned owner, else
        ``groupchat/onjob_transfer``); ``chat_id -> errcode`` (0 = transferred). WeCom answers 0
        at the top and lists failures in ``failed_chat_list`` (90500 owner not resigned,
        90501 not a customer group ...)."""
        ids = list(chat_ids)
        if not 1 <= len(ids) <= self.limits.chats_per_transfer:
            raise InvalidMessage(f"a group transfer takes 1-{self.limits.chats_per_transfer} chat ids, got {len(ids)}")
        path = "externalcontact/groupchat/transfer" if resigned else "externalcontact/groupchat/onjob_transfer"
        data = self.client.call("POST", path, body={"chat_id_list": ids, "new_owner": new_owner})
        failed = {str(f.get("chat_id")): int(f.get("errcode") or 0) for f in data.get("failed_chat_list") or []}
        return {c: failed.get(c, 0) for c in ids}

    # -- group mass messages ---------------------------------------------------------------------
    def add_group_msg(self, chat_ids: Sequence[str], *, sender: str, text: str | None = None,
                      attachments: Sequence[Mapping[str, Any]] = ()) -> str:
        """Create a group mass message (``add_msg_template``, ``chat_type="group"``) for the
        owner ``sender`` to confirm; returns the ``msgid``. Refused before the call: no sender,
        more than 2000 groups, text over 4000 bytes, more than 9 attachments. WeCom's 41048
        (no sendable group) and 41063 (being dispatched, retry later) raise ChannelErrors with
        those codes; an answer that may mean "created" raises ``timeout_unknown``."""
        body = _group_msg_body(list(chat_ids), sender, text, attachments)
        data = self.client.call("POST", "externalcontact/add_msg_template", body=body, idempotent=False)
        msgid = data.get("msgid")
        if not isinstance(msgid, str) or not msgid:
            raise ChannelError("WeCom add_msg_template: the answer has no msgid", retryable=False,
                               code="timeout_unknown")
        return msgid

    def send_results(self, msgid: str, sender: str) -> list[dict[str, Any]]:
        """``send_list`` of one owner's groups: ``chat_id``, ``status`` (0 pending, 1 sent,
        2 not a friend, 3 receive cap reached), ``send_time``; every page."""
        return self._pages("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": sender},
                           "send_list")

    def tasks(self, msgid: str) -> list[dict[str, Any]]:
        """``task_list`` of a mass message: ``userid``, ``status`` (0 not sent, 2 sent); every page."""
        return self._pages("externalcontact/get_groupmsg_task", {"msgid": msgid}, "task_list")

    def remind(self, msgid: str) -> None:
        """``remind_groupmsg_send``: notify the members again (WeCom allows 3 per 24 hours)."""
        self.client.call("POST", "externalcontact/remind_groupmsg_send", body={"msgid": msgid})

    def _pages(self, path: str, body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = ""
        while True:
            data = self.client.call("POST", path, body={**body, "limit": 1000, "cursor": cursor})
            out.extend(data.get(key) or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return out

    # -- join ways (群活码) ----------------------------------------------------------------------
    def _join_way_body(self, way: JoinWay) -> dict[str, Any]:
        limits = self.limits
        if way.scene not in (1, 2):
            raise InvalidMessage(f"scene must be 1 (mini-program plugin) or 2 (QR code), got {way.scene}")
        if not 1 <= len(way.chat_ids) <= limits.join_way_chats:
            raise InvalidMessage(f"a join way takes 1-{limits.join_way_chats} groups, got {len(way.chat_ids)}")
        if way.state is not None and len(way.state) > limits.join_way_state:
            raise InvalidMessage(f"state is limited to {limits.join_way_state} characters, got {len(way.state)}")
        if way.room_base_name is not None and len(way.room_base_name) > limits.room_base_name:
            raise InvalidMessage(f"room_base_name is limited to {limits.room_base_name} characters, got "
                                 f"{len(way.room_base_name)}")
        if len(way.remark) > limits.join_way_remark:
            raise InvalidMessage(f"remark is limited to {limits.join_way_remark} characters (WeCom would cut it)")
        body: dict[str, Any] = {"scene": way.scene, "remark": way.remark, "auto_create_room": int(way.auto_create_room),
                                "chat_id_list": list(way.chat_ids)}
        if way.auto_create_room and way.room_base_name:
            body["room_base_name"] = way.room_base_name
            if way.room_base_id is not None:
                body["room_base_id"] = way.room_base_id
        if way.state:
            body["state"] = way.state
        return body

    def add_join_way(self, way: JoinWay) -> JoinWay:
        """Create a 群活码; returns it with WeCom's ``config_id`` and (scene 2) ``qr_code``."""
        data = self.client.call("POST", "externalcontact/groupchat/add_join_way", body=self._join_way_body(way))
        created = attrs.evolve(way, config_id=str(data.get("config_id") or ""))
        return attrs.evolve(created, qr_code=self.get_join_way(created.config_id).qr_code)

    def get_join_way(self, config_id: str) -> JoinWay:
        data = self.client.call("POST", "externalcontact/groupchat/get_join_way", body={"config_id": config_id})
        w = data.get("join_way") or {}
        return JoinWay(config_id=str(w.get("config_id") or config_id), scene=int(w.get("scene") or 0),
                       chat_ids=tuple(w.get("chat_id_list") or ()), state=w.get("state") or None,
                       remark=str(w.get("remark") or ""), auto_create_room=bool(w.get("auto_create_room", 1)),
                       room_base_name=w.get("room_base_name") or None, room_base_id=w.get("room_base_id"),
                       qr_code=w.get("qr_code") or None)

    def update_join_way(self, config_id: str, **changes: Any) -> JoinWay:
        """Change some fields of a join way. WeCom overwrites the whole configuration, so the
        current one is read first and sent back with the changes (nothing is cleared by omission)."""
        current = self.get_join_way(config_id)
        updated = attrs.evolve(current, **changes)
        self.client.call("POST", "externalcontact/groupchat/update_join_way",
                         body={"config_id": config_id, **self._join_way_body(updated)})
        return updated

    def del_join_way(self, config_id: str) -> None:
        self.client.call("POST", "externalcontact/groupchat/del_join_way", body={"config_id": config_id})

    # -- welcome templates ---------------------------------------------------------------------------
    def add_welcome_template(self, *, text: str | None = None, notify: bool = True,
                             **attachment: Mapping[str, Any]) -> str:
        """Create a group welcome template (``%NICKNAME%`` is replaced by the newcomer's name);
        at most one of ``image``, ``link``, ``miniprogram``, ``file``, ``video``. Returns its
        ``template_id``. WeCom keeps at most 100 (41055 beyond: a ChannelError with that code)."""
        if text is not None and len(text.encode("utf-8")) > self.limits.welcome_text_bytes:
            raise InvalidMessage(f"welcome text is limited to {self.limits.welcome_text_bytes} UTF-8 bytes, got "
                                 f"{len(text.encode('utf-8'))}")
        kinds = {"image", "link", "miniprogram", "file", "video"}
        unknown = set(attachment) - kinds
        if unknown:
            raise InvalidMessage(f"unknown welcome attachment {sorted(unknown)}; use one of {sorted(kinds)}")
        if len(attachment) > 1:
            raise InvalidMessage("a group welcome template takes text and at most one attachment")
        if not text and not attachment:
            raise InvalidMessage("a group welcome template needs text or an attachment (all empty is refused)")
        body: dict[str, Any] = {**{k: dict(v) for k, v in attachment.items()}, "notify": int(notify)}
        if text:
            body["text"] = {"content": text}
        try:
            data = self.client.call("POST", "externalcontact/group_welcome_template/add", body=body)
        except ChannelError as exc:
            if exc.code == 41055:
                raise ChannelError(f"WeCom keeps at most {self.limits.welcome_templates} group welcome templates "
                                   "(41055); delete unused ones", retryable=False, code=41055) from None
            raise
        return str(data.get("template_id") or "")


def _group_msg_body(chat_ids: Sequence[str], sender: str, text: str | None,
                    attachments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if not sender:
        raise InvalidMessage("a group mass message needs a sender (the groups' owner); WeCom requires it")
    if not 1 <= len(chat_ids) <= 2000:
        raise InvalidMessage(f"a group mass message takes 1-2000 chat ids, got {len(chat_ids)}")
    if text is not None and len(text.encode("utf-8")) > 4000:
        raise InvalidMessage("a group mass message's text is limited to 4000 UTF-8 bytes")
    if len(attachments) > 9:
        raise InvalidMessage(f"a group mass message takes at most 9 attachments, got {len(attachments)}")
    if not text and not attachments:
        raise InvalidMessage("a group mass message needs text or attachments")
    body: dict[str, Any] = {"chat_type": "group", "sender": sender, "chat_id_list": list(chat_ids)}
    if text:
        body["text"] = {"content": text}
    if attachments:
        body["attachments"] = [dict(a) for a in attachments]
    return body


class GroupSync:
    """Read groups into ``ws.groups`` (``GroupSync(ws.groups, api)``) and apply
    ``change_external_chat`` callbacks."""

    def __init__(self, groups: Groups, api: GroupApi) -> None:
        self.store = groups
        self.api = api

    def groups(self, owners: Sequence[str]) -> int:
        """Read every group of these owners (e.g. ``[m.userid for m in ws.staff.members()]``);
        returns how many. Each group is written on its own, so an interrupted sync is run again
        safely."""
        count = 0
        for item in self.api.chats(owners):
            self.store.save_detail(self.api.get(str(item["chat_id"])))
            count += 1
        return count

    def apply_event(self, fields: Mapping[str, str]) -> str:
        """One ``change_external_chat`` event (decrypted fields); returns what was done.
        Call it outside a write: a re-read asks WeCom, and siyu never holds the database
        while it waits for WeCom."""
        outcome, stale = self.record_event(fields)
        return outcome if stale is None else self.reread(stale)

    def record_event(self, fields: Mapping[str, str]) -> tuple[str, str | None]:
        """The local part of :meth:`apply_event`: the outcome, and the chat to re-read with
        :meth:`reread` once the write is over (``None``: the event sufficed)."""
        chat_id = fields.get("ChatId", "")
        if not chat_id:
            return "ignored: no ChatId", None
        change, detail = fields.get("ChangeType", ""), fields.get("UpdateDetail", "")
        members = [m for m in (fields.get("MemChangeList") or "").split(",") if m.strip()]
        created = _int(fields.get("CreateTime"))
        reread = self.store.apply_change(
            chat_id, change, detail=detail, members=[m.strip() for m in members],
            join_scene=_int(fields.get("JoinScene")), quit_scene=_int(fields.get("QuitScene")),
            last_version=fields.get("LastMemVer", ""), current_version=fields.get("CurMemVer", ""),
            at=datetime.fromtimestamp(created, UTC) if created else None)
        return f"group {chat_id}: {change} {detail}".rstrip(), chat_id if reread else None

    def reread(self, chat_id: str) -> str:
        """Read one group from WeCom (``groupchat/get``) and store it as the whole truth."""
        self.store.save_detail(self.api.get(chat_id))
        return f"group {chat_id}: re-read"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
