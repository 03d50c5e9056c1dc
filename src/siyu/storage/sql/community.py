"""Customer groups, members and join ways in SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ...community.models import (
    DeliveryStatus,
    Group,
    GroupDelivery,
    GroupMember,
    GroupPurpose,
    GroupSend,
    GroupStatus,
    JoinWay,
)
from ..contracts.community import GroupStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_GROUP = "chat_id, name, owner, notice, admins, created_at, status, purpose, member_version, updated_at"
_MEMBER = ("chat_id, member_id, type, user_id, joined_at, join_scene, invitor, state, nickname, active, quit_scene, "
           "left_at, role")
_WAY = "config_id, scene, chat_ids, state, remark, auto_create_room, room_base_name, room_base_id, qr_code"


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _group(r: Sequence[Any]) -> Group:
    return Group(chat_id=r[0], name=r[1], owner=r[2], notice=r[3], admins=tuple(json.loads(r[4])),
                 created_at=from_us(r[5]), status=GroupStatus(r[6]),
                 purpose=None if r[7] is None else GroupPurpose(r[7]),
                 member_version=r[8], updated_at=from_us_required(r[9]))


def _member(r: Sequence[Any]) -> GroupMember:
    return GroupMember(chat_id=r[0], member_id=r[1], type=int(r[2]), user_id=None if r[3] is None else int(r[3]),
                       joined_at=from_us(r[4]), join_scene=None if r[5] is None else int(r[5]), invitor=r[6],
                       state=r[7], nickname=r[8], active=bool(r[9]), quit_scene=None if r[10] is None else int(r[10]),
                       left_at=from_us(r[11]), role=r[12])


def _way(r: Sequence[Any]) -> JoinWay:
    return JoinWay(config_id=r[0], scene=int(r[1]), chat_ids=tuple(json.loads(r[2])), state=r[3], remark=r[4],
                   auto_create_room=bool(r[5]), room_base_name=r[6], room_base_id=None if r[7] is None else int(r[7]),
                   qr_code=r[8])


class SqlGroupStore(GroupStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save_groups(self, groups: Sequence[Group]) -> None:
        self.tx.executemany(
            f"INSERT INTO chats ({_GROUP}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chat_id) DO UPDATE SET "
            "name = excluded.name, owner = excluded.owner, notice = excluded.notice, admins = excluded.admins, "
            "created_at = excluded.created_at, status = excluded.status, purpose = excluded.purpose, "
            "member_version = excluded.member_version, updated_at = excluded.updated_at",
            [(g.chat_id, g.name, g.owner, g.notice, json.dumps(list(g.admins)), _us(g.created_at), str(g.status),
              None if g.purpose is None else str(g.purpose), g.member_version, to_us(g.updated_at)) for g in groups],
        )

    def groups(self, chat_ids: Iterable[str] | None = None) -> list[Group]:
        if chat_ids is None:
            return [_group(r) for r in self.tx.execute(f"SELECT {_GROUP} FROM chats ORDER BY chat_id")]
        found: list[Group] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(chat_ids))):
            found.extend(_group(r) for r in self.tx.execute(
                f"SELECT {_GROUP} FROM chats WHERE chat_id IN ({marks}) ORDER BY chat_id", chunk))
        return found

    def save_members(self, members: Sequence[GroupMember]) -> None:
        self.tx.executemany(
            f"INSERT INTO chat_members ({_MEMBER}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (chat_id, member_id) DO UPDATE SET type = excluded.type, user_id = excluded.user_id, "
            "joined_at = excluded.joined_at, join_scene = excluded.join_scene, invitor = excluded.invitor, "
            "state = excluded.state, nickname = excluded.nickname, active = excluded.active, "
            "quit_scene = excluded.quit_scene, left_at = excluded.left_at, role = excluded.role",
            [(m.chat_id, m.member_id, m.type, m.user_id, _us(m.joined_at), m.join_scene, m.invitor, m.state,
              m.nickname, int(m.active), m.quit_scene, _us(m.left_at), m.role) for m in members],
        )

    def members(self, chat_id: str) -> list[GroupMember]:
        return [_member(r) for r in self.tx.execute(
            f"SELECT {_MEMBER} FROM chat_members WHERE chat_id = ? ORDER BY joined_at, member_id", (chat_id,))]

    def memberships(self, user_id: int) -> list[GroupMember]:
        return [_member(r) for r in self.tx.execute(
            f"SELECT {_MEMBER} FROM chat_members WHERE user_id = ? ORDER BY chat_id", (user_id,))]

    def active_memberships(self) -> list[tuple[int, str]]:
        return [(int(u), c) for u, c in self.tx.execute(
            "SELECT user_id, chat_id FROM chat_members WHERE active = 1 AND user_id IS NOT NULL")]

    def member_counts(self) -> dict[str, int]:
        return {c: int(n) for c, n in self.tx.execute(
            "SELECT chat_id, COUNT(*) FROM chat_members WHERE active = 1 GROUP BY chat_id")}

    def move_memberships(self, drop: int, keep: int) -> list[str]:
        chats = [str(r[0]) for r in self.tx.execute(
            "SELECT chat_id FROM chat_members WHERE user_id = ? ORDER BY chat_id", (drop,))]
        self.tx.execute("UPDATE chat_members SET user_id = ? WHERE user_id = ?", (keep, drop))
        return chats

    def log_members(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        self.tx.executemany("INSERT INTO chat_member_log (chat_id, member_id, action, at) VALUES (?, ?, ?, ?)",
                            [(c, m, a, to_us(at)) for c, m, a, at in rows])

    def member_log(self, chat_id: str | None, since: datetime, until: datetime) -> list[tuple[str, str, str, datetime]]:
        where, params = "at >= ? AND at < ?", [to_us(since), to_us(until)]
        if chat_id is not None:
            where += " AND chat_id = ?"
            params.append(chat_id)  # type: ignore[arg-type]
        return [(c, m, a, from_us_required(at)) for c, m, a, at in self.tx.execute(
            f"SELECT chat_id, member_id, action, at FROM chat_member_log WHERE {where} ORDER BY at, id", params)]

    def save_join_way(self, way: JoinWay) -> None:
        self.tx.execute(
            f"INSERT INTO join_ways ({_WAY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (config_id) DO UPDATE SET "
            "scene = excluded.scene, chat_ids = excluded.chat_ids, state = excluded.state, remark = excluded.remark, "
            "auto_create_room = excluded.auto_create_room, room_base_name = excluded.room_base_name, "
            "room_base_id = excluded.room_base_id, qr_code = excluded.qr_code",
            (way.config_id, way.scene, json.dumps(list(way.chat_ids)), way.state, way.remark,
             int(way.auto_create_room), way.room_base_name, way.room_base_id, way.qr_code),
        )

    def join_ways(self) -> list[JoinWay]:
        return [_way(r) for r in self.tx.execute(f"SELECT {_WAY} FROM join_ways ORDER BY config_id")]

    def delete_join_way(self, config_id: str) -> None:
        self.tx.execute("DELETE FROM join_ways WHERE config_id = ?", (config_id,))

    def group_send(self, key: str) -> GroupSend | None:
        row = self.tx.execute("SELECT id, send_key, text, attachments, created_at FROM chat_sends WHERE send_key = ?",
                              (key,)).fetchone()
        return None if row is None else GroupSend(id=int(row[0]), key=row[1], text=row[2],
                                                  attachments=tuple(json.loads(row[3])),
                                                  created_at=from_us_required(row[4]))

    def add_group_send(self, send: GroupSend) -> GroupSend:
        row = self.tx.execute(
            "INSERT INTO chat_sends (send_key, text, attachments, created_at) VALUES (?, ?, ?, ?) RETURNING id",
            (send.key, send.text, json.dumps([dict(a) for a in send.attachments], ensure_ascii=False),
             to_us(send.created_at))).fetchone()
        return GroupSend(id=int(row[0]), key=send.key, text=send.text, attachments=send.attachments,
                         created_at=send.created_at)

    def save_deliveries(self, rows: Sequence[GroupDelivery]) -> None:
        self.tx.executemany(
            "INSERT INTO chat_deliveries (send_id, chat_id, owner, status, msgid, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (send_id, chat_id) DO UPDATE SET owner = excluded.owner, status = excluded.status, "
            "msgid = excluded.msgid, updated_at = excluded.updated_at",
            [(d.send_id, d.chat_id, d.owner, str(d.status), d.msgid, to_us(d.updated_at)) for d in rows])

    def remove_deliveries(self, send_id: int, chat_ids: Sequence[str]) -> None:
        self.tx.executemany("DELETE FROM chat_deliveries WHERE send_id = ? AND chat_id = ?",
                            [(send_id, c) for c in chat_ids])

    def deliveries(self, send_id: int) -> list[GroupDelivery]:
        return [GroupDelivery(send_id=int(r[0]), chat_id=r[1], owner=r[2], status=DeliveryStatus(r[3]), msgid=r[4],
                              updated_at=from_us_required(r[5]))
                for r in self.tx.execute("SELECT send_id, chat_id, owner, status, msgid, updated_at FROM "
                                         "chat_deliveries WHERE send_id = ? ORDER BY chat_id", (send_id,))]

    def deliveries_since(self, chat_id: str, since: datetime) -> int:
        row = self.tx.execute(
            "SELECT COUNT(*) FROM chat_deliveries WHERE chat_id = ? AND updated_at >= ? AND status IN (?, ?, ?)",
            (chat_id, to_us(since), str(DeliveryStatus.PENDING), str(DeliveryStatus.SENT),
             str(DeliveryStatus.UNKNOWN))).fetchone()
        return int(row[0])

    def reminders(self, msgid: str, since: datetime) -> int:
        row = self.tx.execute("SELECT COUNT(*) FROM chat_send_reminders WHERE msgid = ? AND at >= ?",
                              (msgid, to_us(since))).fetchone()
        return int(row[0])

    def add_reminder(self, msgid: str, at: datetime) -> None:
        self.tx.execute("INSERT INTO chat_send_reminders (msgid, at) VALUES (?, ?)", (msgid, to_us(at)))
