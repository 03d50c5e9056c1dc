"""Sign-ins, reward budgets and benefit grants in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ..contracts.benefits import BenefitStore, Birthday, Grant, Sign

if TYPE_CHECKING:
    from .backend import SqlTransaction

_GRANT = "id, user_id, benefit, period, status, amount, at, due_at, ref"


def _grant(r: Sequence[Any]) -> Grant:
    return Grant(id=r[0], user_id=r[1], benefit=r[2], period=r[3], status=r[4], amount=r[5],
                 at=from_us_required(r[6]), due_at=from_us(r[7]), ref=r[8])


class SqlBenefitStore(BenefitStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def add_sign(self, sign: Sign) -> bool:
        row = self.tx.execute(
            "INSERT INTO signins (user_id, day, kind, points, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, day) DO NOTHING RETURNING user_id",
            (sign.user_id, sign.day.isoformat(), sign.kind, sign.points, to_us(sign.at))).fetchone()
        return row is not None

    def signs(self, user_id: int, first: date, last: date) -> list[Sign]:
        rows = self.tx.execute(
            "SELECT user_id, day, kind, points, at FROM signins WHERE user_id = ? AND day >= ? AND day <= ? "
            "ORDER BY day", (user_id, first.isoformat(), last.isoformat()))
        return [Sign(user_id=r[0], day=date.fromisoformat(r[1]), kind=r[2], points=r[3], at=from_us_required(r[4]))
                for r in rows]

    def use_budget(self, name: str, amount: int, cap: int) -> bool:
        self.tx.execute("INSERT INTO reward_budgets (name, used) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                        (name,))
        row = self.tx.execute("UPDATE reward_budgets SET used = used + ? WHERE name = ? AND used + ? <= ? "
                              "RETURNING used", (amount, name, amount, cap)).fetchone()
        return row is not None

    def budget_used(self, name: str) -> int:
        row = self.tx.execute("SELECT used FROM reward_budgets WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def add_grant(self, grant: Grant) -> int | None:
        [gid] = self.tx.dialect.allocate_ids(self.tx, "benefit_grants", 1)
        row = self.tx.execute(
            f"INSERT INTO benefit_grants ({_GRANT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, benefit, period) DO NOTHING RETURNING id",
            (gid, grant.user_id, grant.benefit, grant.period, grant.status, grant.amount, to_us(grant.at),
             None if grant.due_at is None else to_us(grant.due_at), grant.ref)).fetchone()
        return None if row is None else int(row[0])

    def grant(self, user_id: int, benefit: str, period: str) -> Grant | None:
        row = self.tx.execute(f"SELECT {_GRANT} FROM benefit_grants WHERE user_id = ? AND benefit = ? AND period = ?",
                              (user_id, benefit, period)).fetchone()
        return None if row is None else _grant(row)

    def grants(self, *, user_id: int | None = None, benefit: str | None = None, status: str | None = None,
               due_before: datetime | None = None, ref: str | None = None) -> list[Grant]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("user_id = ?", user_id), ("benefit = ?", benefit), ("status = ?", status),
                              ("due_at <= ?", None if due_before is None else to_us(due_before)), ("ref = ?", ref)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_GRANT} FROM benefit_grants" + (" WHERE " + " AND ".join(where) if where else "")
        return [_grant(r) for r in self.tx.execute(sql + " ORDER BY id", params)]

    def move_grant(self, grant_id: int, *, from_status: Sequence[str], to_status: str, ref: str | None = None) -> bool:
        marks = ",".join("?" * len(from_status))
        sets, params = "status = ?", [to_status]
        if ref is not None:
            sets += ", ref = ?"
            params.append(ref)
        row = self.tx.execute(f"UPDATE benefit_grants SET {sets} WHERE id = ? AND status IN ({marks}) RETURNING id",
                              [*params, grant_id, *from_status]).fetchone()
        return row is not None

    def set_birthday(self, birthday: Birthday) -> None:
        self.tx.execute(
            "INSERT INTO birthdays (user_id, month, day, year, set_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET month = excluded.month, day = excluded.day, year = excluded.year, "
            "set_at = excluded.set_at",
            (birthday.user_id, birthday.month, birthday.day, birthday.year, to_us(birthday.set_at)))

    def birthday(self, user_id: int) -> Birthday | None:
        row = self.tx.execute("SELECT user_id, month, day, year, set_at FROM birthdays WHERE user_id = ?",
                              (user_id,)).fetchone()
        return None if row is None else _birthday(row)

    def born_on(self, days: Sequence[tuple[int, int]]) -> list[Birthday]:
        found: list[Birthday] = []
        for month, day in sorted(set(days)):
            rows = self.tx.execute("SELECT user_id, month, day, year, set_at FROM birthdays "
                                   "WHERE month = ? AND day = ? ORDER BY user_id", (month, day))
            found.extend(_birthday(r) for r in rows)
        return found

    def erase_birthdays(self, user_ids: Sequence[int]) -> int:
        gone = 0
        for marks, chunk in self.tx.in_chunks(list(user_ids)):
            gone += int(self.tx.execute(f"DELETE FROM birthdays WHERE user_id IN ({marks})", chunk).rowcount or 0)
        return gone


def _birthday(r: Sequence[Any]) -> Birthday:
    return Birthday(user_id=r[0], month=r[1], day=r[2], year=r[3], set_at=from_us_required(r[4]))
