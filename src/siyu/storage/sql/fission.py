"""任务宝 grants, 拼团 groups, 分销 ledger in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ..._clock import from_us, from_us_required, to_us
from ...models.referrals import InviteTask, Reward, RewardGrant, Stage, ValidInvite
from ..contracts.fission import CommissionRow, FissionStore, GroupRow, MemberRow
from ._where import where

if TYPE_CHECKING:
    from .backend import SqlTransaction

_TASK = "id, name, campaign, spec, starts_at, deadline"
_GRANT = "id, task_id, user_id, stage, reward, status, at, points_entry_id"
_GROUP = "id, leader_id, sku, size, price_fen, status, opened_at, expires_at, closed_at, loss_fen"
_COMMISSION = (
    "id, distributor_id, order_id, buyer_id, level, base_fen, rate_ppm, original_fen, amount_fen, "
    "refunded_base_fen, status, created_at, settle_after, settled_at, terms, lines"
)
_COMMISSION_FIELDS = {"amount_fen", "refunded_base_fen", "status", "settled_at", "lines"}


def _task(row: Sequence[Any]) -> InviteTask:
    spec = json.loads(row[3])
    return InviteTask(
        id=row[0], name=row[1], campaign=row[2],
        stages=tuple(Stage(invites=s["invites"], reward=Reward(**s["reward"])) for s in spec["stages"]),
        starts_at=from_us_required(row[4]), deadline=from_us_required(row[5]), valid=ValidInvite(**spec["valid"]),
    )


def _grant(row: Sequence[Any]) -> RewardGrant:
    return RewardGrant(id=row[0], task_id=row[1], user_id=row[2], stage=row[3], reward=Reward(**json.loads(row[4])),
                       status=row[5], at=from_us_required(row[6]), points_entry_id=row[7])


def _group(row: Sequence[Any]) -> GroupRow:
    return GroupRow(id=row[0], leader_id=row[1], sku=row[2], size=row[3], price_fen=row[4], status=row[5],
                    opened_at=from_us_required(row[6]), expires_at=from_us_required(row[7]),
                    closed_at=from_us(row[8]), loss_fen=int(row[9]))


def _commission(row: Sequence[Any]) -> CommissionRow:
    return CommissionRow(
        id=row[0], distributor_id=row[1], order_id=row[2], buyer_id=row[3], level=row[4], base_fen=row[5],
        rate_ppm=row[6], original_fen=row[7], amount_fen=row[8], refunded_base_fen=row[9], status=row[10],
        created_at=from_us_required(row[11]), settle_after=from_us_required(row[12]), settled_at=from_us(row[13]),
        excluded_roles=_excluded_roles(row[14]),
        lines=None if row[15] is None else tuple((int(n), int(b), int(a), int(r))
                                                 for n, b, a, r in json.loads(row[15])),
    )


def _lines(lines: object) -> str | None:
    return None if lines is None else json.dumps([list(x) for x in lines])  # type: ignore[attr-defined]


def _excluded_roles(terms: str | None) -> tuple[str, ...] | None:
    # Entries backfilled by migration 2 hold the whole configuration JSON; it has the same key.
    return None if terms is None else tuple(json.loads(terms)["excluded_roles"])


def _terms(row: CommissionRow) -> str | None:
    return None if row.excluded_roles is None else json.dumps({"excluded_roles": list(row.excluded_roles)})


class SqlFissionStore(FissionStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- 任务宝 ------------------------------------------------------------------------
    def add_task(self, task: InviteTask, at: datetime) -> int:
        spec = {"stages": [attrs.asdict(s) for s in task.stages], "valid": attrs.asdict(task.valid)}
        row = self.tx.execute(
            "INSERT INTO invite_tasks (name, campaign, spec, starts_at, deadline, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (task.name, task.campaign, json.dumps(spec, ensure_ascii=False), to_us(task.starts_at),
             to_us(task.deadline), to_us(at)),
        ).fetchone()
        return int(row[0])

    def task(self, task_id: int) -> InviteTask | None:
        row = self.tx.execute(f"SELECT {_TASK} FROM invite_tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else _task(row)

    def task_by_name(self, name: str) -> InviteTask | None:
        row = self.tx.execute(f"SELECT {_TASK} FROM invite_tasks WHERE name = ?", (name,)).fetchone()
        return None if row is None else _task(row)

    def tasks(self) -> list[InviteTask]:
        return [_task(r) for r in self.tx.execute(f"SELECT {_TASK} FROM invite_tasks ORDER BY id")]

    def add_grant(self, grant: RewardGrant) -> int | None:
        row = self.tx.execute(
            "INSERT INTO invite_rewards (task_id, user_id, stage, reward, status, at, points_entry_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, user_id, stage) DO NOTHING RETURNING id",
            (grant.task_id, grant.user_id, grant.stage, json.dumps(attrs.asdict(grant.reward), ensure_ascii=False),
             grant.status, to_us(grant.at), grant.points_entry_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def grants(self, task_id: int | None, user_id: int | None) -> list[RewardGrant]:
        condition, params = where(("task_id = ?", task_id), ("user_id = ?", user_id))
        return [_grant(r) for r in self.tx.execute(
            f"SELECT {_GRANT} FROM invite_rewards WHERE {condition} ORDER BY id", params)]

    def grant(self, grant_id: int) -> RewardGrant | None:
        row = self.tx.execute(f"SELECT {_GRANT} FROM invite_rewards WHERE id = ?", (grant_id,)).fetchone()
        return None if row is None else _grant(row)

    def update_grant(self, grant_id: int, *, status: str, points_entry_id: int | None) -> None:
        self.tx.execute("UPDATE invite_rewards SET status = ?, points_entry_id = ? WHERE id = ?",
                        (status, points_entry_id, grant_id))

    def move_grants(self, grant_ids: Sequence[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(grant_ids)):
            self.tx.execute(f"UPDATE invite_rewards SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])

    # -- 拼团 ----------------------------------------------------------------------------
    def add_group(self, group: GroupRow) -> int:
        row = self.tx.execute(
            "INSERT INTO group_buys (leader_id, sku, size, price_fen, status, opened_at, expires_at, loss_fen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (group.leader_id, group.sku, group.size, group.price_fen, group.status, to_us(group.opened_at),
             to_us(group.expires_at), group.loss_fen),
        ).fetchone()
        return int(row[0])

    def group(self, group_id: int, *, lock: bool = False) -> GroupRow | None:
        if lock and not self.tx.dialect.lock_rows(self.tx, "group_buys", [group_id]):
            return None
        row = self.tx.execute(f"SELECT {_GROUP} FROM group_buys WHERE id = ?", (group_id,)).fetchone()
        return None if row is None else _group(row)

    def members(self, group_id: int) -> list[MemberRow]:
        return [
            MemberRow(user_id=u, joined_at=from_us_required(j), order_id=o, paid_fen=p)
            for u, j, o, p in self.tx.execute(
                "SELECT user_id, joined_at, order_id, paid_fen FROM group_members WHERE group_id = ? "
                "ORDER BY joined_at, user_id", (group_id,))
        ]

    def add_member(self, group_id: int, member: MemberRow) -> None:
        self.tx.execute(
            "INSERT INTO group_members (group_id, user_id, joined_at, order_id, paid_fen) VALUES (?, ?, ?, ?, ?)",
            (group_id, member.user_id, to_us(member.joined_at), member.order_id, member.paid_fen),
        )

    def remove_member(self, group_id: int, user_id: int) -> None:
        self.tx.execute("DELETE FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id))

    def close_group(self, group_id: int, status: str, at: datetime) -> None:
        self.tx.execute("UPDATE group_buys SET status = ?, closed_at = ? WHERE id = ?", (status, to_us(at), group_id))

    def groups(self, *, status: str | None, expired_by: datetime | None, user_id: int | None) -> list[int]:
        condition, params = where(
            ("g.status = ?", status),
            ("g.expires_at <= ?", None if expired_by is None else to_us(expired_by)),
            ("g.id IN (SELECT group_id FROM group_members WHERE user_id = ?)", user_id),
        )
        return [int(r[0]) for r in self.tx.execute(
            f"SELECT g.id FROM group_buys g WHERE {condition} ORDER BY g.id", params)]

    def move_memberships(self, group_ids: Sequence[int], from_user: int, to_user: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(group_ids)):
            self.tx.execute(f"UPDATE group_members SET user_id = ? WHERE user_id = ? AND group_id IN ({marks})",
                            [to_user, from_user, *chunk])
            self.tx.execute(f"UPDATE group_buys SET leader_id = ? WHERE leader_id = ? AND id IN ({marks})",
                            [to_user, from_user, *chunk])

    # -- 分销 ----------------------------------------------------------------------------
    def add_commissions(self, rows: Sequence[CommissionRow]) -> list[int]:
        ids: list[int] = []
        for r in rows:
            row = self.tx.execute(
                "INSERT INTO commission_entries (distributor_id, order_id, buyer_id, level, base_fen, rate_ppm, "
                "original_fen, amount_fen, refunded_base_fen, status, created_at, settle_after, terms, lines) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, level) DO NOTHING "
                "RETURNING id",
                (r.distributor_id, r.order_id, r.buyer_id, r.level, r.base_fen, r.rate_ppm, r.original_fen,
                 r.amount_fen, r.refunded_base_fen, r.status, to_us(r.created_at), to_us(r.settle_after),
                 _terms(r), _lines(r.lines)),
            ).fetchone()
            if row is not None:
                ids.append(int(row[0]))
        return ids

    def commissions(
        self, *, distributor_id: int | None = None, order_id: int | None = None, status: str | None = None,
        due_by: datetime | None = None, buyer_id: int | None = None,
    ) -> list[CommissionRow]:
        condition, params = where(
            ("distributor_id = ?", distributor_id), ("order_id = ?", order_id), ("status = ?", status),
            ("settle_after <= ?", None if due_by is None else to_us(due_by)), ("buyer_id = ?", buyer_id),
        )
        return [_commission(r) for r in self.tx.execute(
            f"SELECT {_COMMISSION} FROM commission_entries WHERE {condition} ORDER BY id", params)]

    def update_commission(self, entry_id: int, **fields: object) -> None:
        unknown = set(fields) - _COMMISSION_FIELDS
        if unknown:
            raise ValueError(f"cannot update commission columns {sorted(unknown)}")
        values = [to_us(v) if isinstance(v, datetime) else _lines(v) if name == "lines" else v
                  for name, v in fields.items()]
        sets = ", ".join(f"{name} = ?" for name in fields)
        self.tx.execute(f"UPDATE commission_entries SET {sets} WHERE id = ?", [*values, entry_id])

    def move_commissions(self, entry_ids: Sequence[int], *, distributor_id: int | None = None,
                         buyer_id: int | None = None) -> None:
        for column, user_id in (("distributor_id", distributor_id), ("buyer_id", buyer_id)):
            if user_id is None:
                continue
            for marks, chunk in self.tx.in_chunks(list(entry_ids)):
                self.tx.execute(f"UPDATE commission_entries SET {column} = ? WHERE id IN ({marks})",
                                [user_id, *chunk])

    def claim_event(self, kind: str, ref: int, at: datetime) -> bool:
        row = self.tx.execute(
            "INSERT INTO fission_processed (kind, ref, at) VALUES (?, ?, ?) ON CONFLICT (kind, ref) DO NOTHING "
            "RETURNING ref", (kind, ref, to_us(at)),
        ).fetchone()
        return row is not None

    def claim_events(self, kind: str, refs: Sequence[tuple[int, datetime]]) -> None:
        if refs:
            self.tx.executemany(
                "INSERT INTO fission_processed (kind, ref, at) VALUES (?, ?, ?) ON CONFLICT (kind, ref) DO NOTHING",
                [(kind, ref, to_us(at)) for ref, at in refs])

    def add_adjustment(self, refund_id: int, entry_id: int, delta_fen: int, at: datetime) -> None:
        self.tx.execute(
            "INSERT INTO commission_adjustments (refund_id, entry_id, delta_fen, at) VALUES (?, ?, ?, ?)",
            (refund_id, entry_id, delta_fen, to_us(at)),
        )

