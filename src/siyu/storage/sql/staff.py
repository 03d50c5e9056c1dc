"""Staff, relations, owners and transfers in SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ...staff.models import (
    OwnerChange,
    Relation,
    RelationStatus,
    StaffMember,
    StaffStatus,
    Task,
    TaskStatus,
    Transfer,
    TransferStatus,
)
from ..contracts.staff import StaffStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_MEMBER = "userid, name, department, store, role, status, since, resigned_at"
_RELATION = ("user_id, staff, status, remark, description, tags, add_way, state, oper_userid, since, "
             "changed_at, ended_at")
_TASK = "id, rule, user_id, staff, title, created_at, due_at, status, completed_at"
_TRANSFER = ("id, user_id, from_staff, to_staff, kind, status, started_at, takeover_at, finished_at, errcode, "
             "raw_status")


def _member(row: Sequence[Any]) -> StaffMember:
    return StaffMember(userid=row[0], name=row[1], department=row[2], store=row[3], role=row[4],
                       status=StaffStatus(row[5]), since=from_us_required(row[6]), resigned_at=from_us(row[7]))


def _relation(row: Sequence[Any]) -> Relation:
    return Relation(user_id=int(row[0]), staff=row[1], status=RelationStatus(row[2]), remark=row[3],
                    description=row[4], tags=tuple(json.loads(row[5])),
                    add_way=None if row[6] is None else int(row[6]), state=row[7], oper_userid=row[8],
                    since=from_us_required(row[9]), changed_at=from_us_required(row[10]), ended_at=from_us(row[11]))


def _transfer(row: Sequence[Any]) -> Transfer:
    return Transfer(id=int(row[0]), user_id=int(row[1]), from_staff=row[2], to_staff=row[3], kind=row[4],
                    status=TransferStatus(row[5]), started_at=from_us_required(row[6]), takeover_at=from_us(row[7]),
                    finished_at=from_us(row[8]), errcode=None if row[9] is None else int(row[9]),
                    raw_status=None if row[10] is None else int(row[10]))


class SqlStaffStore(StaffStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save_member(self, member: StaffMember) -> None:
        self.tx.execute(
            f"INSERT INTO staff ({_MEMBER}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (userid) DO UPDATE SET "
            "name = excluded.name, department = excluded.department, store = excluded.store, role = excluded.role, "
            "status = excluded.status, since = excluded.since, resigned_at = excluded.resigned_at",
            (member.userid, member.name, member.department, member.store, member.role, str(member.status),
             to_us(member.since), None if member.resigned_at is None else to_us(member.resigned_at)),
        )

    def members(self, userids: Iterable[str] | None = None) -> list[StaffMember]:
        if userids is None:
            return [_member(r) for r in self.tx.execute(f"SELECT {_MEMBER} FROM staff ORDER BY userid")]
        found: list[StaffMember] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(userids))):
            found.extend(_member(r) for r in self.tx.execute(
                f"SELECT {_MEMBER} FROM staff WHERE userid IN ({marks}) ORDER BY userid", chunk))
        return found

    def save_relations(self, relations: Sequence[Relation]) -> None:
        self.tx.executemany(
            f"INSERT INTO staff_relations ({_RELATION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, staff) DO UPDATE SET status = excluded.status, remark = excluded.remark, "
            "description = excluded.description, tags = excluded.tags, add_way = excluded.add_way, "
            "state = excluded.state, oper_userid = excluded.oper_userid, since = excluded.since, "
            "changed_at = excluded.changed_at, ended_at = excluded.ended_at",
            [(r.user_id, r.staff, str(r.status), r.remark, r.description,
              json.dumps(list(r.tags), ensure_ascii=False), r.add_way, r.state, r.oper_userid, to_us(r.since),
              to_us(r.changed_at), None if r.ended_at is None else to_us(r.ended_at)) for r in relations],
        )

    def relations(self, user_ids: Iterable[int]) -> list[Relation]:
        found: list[Relation] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            found.extend(_relation(r) for r in self.tx.execute(
                f"SELECT {_RELATION} FROM staff_relations WHERE user_id IN ({marks}) "
                "ORDER BY user_id, since, staff", chunk))
        return found

    def relation(self, user_id: int, staff: str) -> Relation | None:
        row = self.tx.execute(
            f"SELECT {_RELATION} FROM staff_relations WHERE user_id = ? AND staff = ?", (user_id, staff)
        ).fetchone()
        return None if row is None else _relation(row)

    def customers_of(self, staff: str, *, active: bool = True) -> list[int]:
        where = " AND status = 'active'" if active else ""
        return [int(r[0]) for r in self.tx.execute(
            f"SELECT user_id FROM staff_relations WHERE staff = ?{where} ORDER BY user_id", (staff,))]

    def relation_counts(self, *, active: bool = True) -> dict[str, int]:
        where = " WHERE status = 'active'" if active else ""
        return {s: int(n) for s, n in self.tx.execute(
            f"SELECT staff, COUNT(*) FROM staff_relations{where} GROUP BY staff")}

    def owners(self, user_ids: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            found.update((int(u), s) for u, s in self.tx.execute(
                f"SELECT user_id, staff FROM staff_owners WHERE user_id IN ({marks})", chunk))
        return found

    def set_owners(self, changes: Sequence[OwnerChange]) -> None:
        if not changes:
            return
        # The last change of each customer decides the owner; the log keeps them all, in order.
        last = {c.user_id: c for c in changes}
        gone = [(c.user_id,) for c in last.values() if c.staff is None]
        kept = [(c.user_id, c.staff, to_us(c.at)) for c in last.values() if c.staff is not None]
        if gone:
            self.tx.executemany("DELETE FROM staff_owners WHERE user_id = ?", gone)
        if kept:
            self.tx.executemany(
                "INSERT INTO staff_owners (user_id, staff, since) VALUES (?, ?, ?) ON CONFLICT (user_id) "
                "DO UPDATE SET staff = excluded.staff, since = excluded.since", kept)
        self.tx.executemany("INSERT INTO staff_owner_log (user_id, staff, at, reason) VALUES (?, ?, ?, ?)",
                            [(c.user_id, c.staff, to_us(c.at), c.reason) for c in changes])

    def owned_by(self, staff: str) -> list[int]:
        return [int(r[0]) for r in self.tx.execute(
            "SELECT user_id FROM staff_owners WHERE staff = ? ORDER BY user_id", (staff,))]

    def owner_history(self, user_id: int) -> list[OwnerChange]:
        return [OwnerChange(user_id=user_id, staff=s, at=from_us_required(at), reason=why)
                for s, at, why in self.tx.execute(
                    "SELECT staff, at, reason FROM staff_owner_log WHERE user_id = ? ORDER BY id", (user_id,))]

    def move_customer(self, drop: int, keep: int) -> tuple[list[str], bool]:
        moved = [str(r[0]) for r in self.tx.execute(
            "SELECT staff FROM staff_relations d WHERE user_id = ? AND NOT EXISTS (SELECT 1 FROM staff_relations k "
            "WHERE k.user_id = ? AND k.staff = d.staff) ORDER BY staff", (drop, keep))]
        for staff in moved:
            self.tx.execute("UPDATE staff_relations SET user_id = ? WHERE user_id = ? AND staff = ?",
                            (keep, drop, staff))
        owner = self.owners([drop, keep])
        moves_owner = drop in owner and keep not in owner
        if moves_owner:
            self.tx.execute("UPDATE staff_owners SET user_id = ? WHERE user_id = ?", (keep, drop))
        return moved, moves_owner

    def move_back(self, keep: int, drop: int, staff: Sequence[str], owner: bool) -> None:
        for name in staff:
            self.tx.execute("UPDATE staff_relations SET user_id = ? WHERE user_id = ? AND staff = ?",
                            (drop, keep, name))
        if owner:
            self.tx.execute("UPDATE staff_owners SET user_id = ? WHERE user_id = ?", (drop, keep))

    def add_transfer(self, transfer: Transfer) -> int:
        t = transfer
        row = self.tx.execute(
            "INSERT INTO staff_transfers (user_id, from_staff, to_staff, kind, status, started_at, takeover_at, "
            "finished_at, errcode, raw_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (t.user_id, t.from_staff, t.to_staff, t.kind, str(t.status), to_us(t.started_at),
             None if t.takeover_at is None else to_us(t.takeover_at),
             None if t.finished_at is None else to_us(t.finished_at), t.errcode, t.raw_status),
        ).fetchone()
        return int(row[0])

    def remove_transfers(self, ids: Sequence[int]) -> None:
        self.tx.executemany("DELETE FROM staff_transfers WHERE id = ?", [(i,) for i in ids])

    def update_transfer(self, transfer: Transfer) -> None:
        t = transfer
        self.tx.execute(
            "UPDATE staff_transfers SET status = ?, takeover_at = ?, finished_at = ?, errcode = ?, raw_status = ? "
            "WHERE id = ?",
            (str(t.status), None if t.takeover_at is None else to_us(t.takeover_at),
             None if t.finished_at is None else to_us(t.finished_at), t.errcode, t.raw_status, t.id),
        )

    def transfers(
        self,
        *,
        user_ids: Iterable[int] | None = None,
        status: Sequence[TransferStatus] | None = None,
        since: datetime | None = None,
    ) -> list[Transfer]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append(f"status IN ({','.join('?' * len(status))})" if status else "1 = 0")
            params.extend(str(s) for s in status)
        if since is not None:
            where.append("started_at >= ?")
            params.append(to_us(since))
        if user_ids is None:
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            return [_transfer(r) for r in self.tx.execute(
                f"SELECT {_TRANSFER} FROM staff_transfers{clause} ORDER BY id", params)]
        found: list[Transfer] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            clause = " AND ".join([f"user_id IN ({marks})", *where])
            found.extend(_transfer(r) for r in self.tx.execute(
                f"SELECT {_TRANSFER} FROM staff_transfers WHERE {clause}", [*chunk, *params]))
        return sorted(found, key=lambda t: t.id)

    def add_tasks(self, tasks: Sequence[tuple[Task, str]]) -> list[int]:
        ids: list[int] = []
        for task, key in tasks:
            row = self.tx.execute(
                "INSERT INTO staff_tasks (rule, user_id, staff, title, created_at, due_at, status, completed_at, "
                "task_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_key) DO NOTHING RETURNING id",
                (task.rule, task.user_id, task.staff, task.title, to_us(task.created_at), to_us(task.due_at),
                 str(task.status), None, key),
            ).fetchone()
            if row is not None:
                ids.append(int(row[0]))
        return ids

    def tasks(self, *, ids: Iterable[int] | None = None, staff: str | None = None,
              status: TaskStatus | None = None, user_id: int | None = None,
              due_before: datetime | None = None) -> list[Task]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("staff", staff), ("status", None if status is None else str(status)),
                              ("user_id", user_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if due_before is not None:
            where.append("due_at < ?")
            params.append(to_us(due_before))
        if ids is not None:
            chosen = sorted(set(ids))
            if not chosen:
                return []
            where.append(f"id IN ({','.join('?' * len(chosen))})")
            params.extend(chosen)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [Task(id=int(r[0]), rule=r[1], user_id=int(r[2]), staff=r[3], title=r[4],
                     created_at=from_us_required(r[5]), due_at=from_us_required(r[6]), status=TaskStatus(r[7]),
                     completed_at=from_us(r[8]))
                for r in self.tx.execute(f"SELECT {_TASK} FROM staff_tasks{clause} ORDER BY due_at, id", params)]

    def set_task_status(self, task_id: int, status: TaskStatus, at: datetime | None) -> None:
        self.tx.execute("UPDATE staff_tasks SET status = ?, completed_at = ? WHERE id = ?",
                        (str(status), None if at is None else to_us(at), task_id))
