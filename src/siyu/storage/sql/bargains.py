"""砍价 activities, attempts, helps and per-user counts in SQL.

A help is three guarded writes in one transaction: the help row (its
primary key refuses a second help by the same helper, a unique ``seq`` a
second row at the same position), the helper's count (an upsert that
refuses to pass the limit) and the attempt's cut (a compare-and-set on the
number of helps so far). The caller also locks the attempt's row first, so
concurrent helpers of one attempt queue instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..._clock import from_us_required, to_us
from ...models.activities import AttemptStatus, Bargain, BargainAttempt, BargainHelp
from ..contracts.activities import BargainStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_BARGAIN = ("id, name, sku, price, floor, helpers, stock, sold, starts_at, ends_at, attempt_ttl_us, "
            "attempts_per_user, helps_per_helper, external_links, loss, active, created_at")
_ATTEMPT = ("id, bargain_id, user_id, status, price, floor, helpers, deadline, seed, cut, helps, created_at, "
            "order_id, closed_at")
_US = timedelta(microseconds=1)


def _bargain(r: Sequence[Any]) -> Bargain:
    return Bargain(id=r[0], name=r[1], sku=r[2], price_fen=r[3], floor_fen=r[4], helpers=r[5], stock=r[6],
                   sold=r[7], starts_at=from_us_required(r[8]), ends_at=from_us_required(r[9]),
                   attempt_ttl=timedelta(microseconds=r[10]), attempts_per_user=r[11], helps_per_helper=r[12],
                   external_links=r[13], loss_fen=r[14], active=bool(r[15]), created_at=from_us_required(r[16]))


def _attempt(r: Sequence[Any]) -> BargainAttempt:
    return BargainAttempt(id=r[0], bargain_id=r[1], user_id=r[2], status=AttemptStatus(r[3]), price_fen=r[4],
                          floor_fen=r[5], helpers=r[6], deadline=from_us_required(r[7]), seed=r[8], cut_fen=r[9],
                          helps=r[10], created_at=from_us_required(r[11]), order_id=r[12],
                          closed_at=None if r[13] is None else from_us_required(r[13]))


class SqlBargainStore(BargainStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def add_bargain(self, bargain: Bargain) -> int:
        [bid] = self.tx.dialect.allocate_ids(self.tx, "bargains", 1)
        b = bargain
        assert b.created_at is not None
        self.tx.execute(
            f"INSERT INTO bargains ({_BARGAIN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (bid, b.name, b.sku, b.price_fen, b.floor_fen, b.helpers, b.stock, b.sold, to_us(b.starts_at),
             to_us(b.ends_at), b.attempt_ttl // _US, b.attempts_per_user, b.helps_per_helper, b.external_links,
             b.loss_fen, int(b.active), to_us(b.created_at)),
        )
        return int(bid)

    def save_bargain(self, bargain: Bargain) -> None:
        b = bargain
        self.tx.execute(
            "UPDATE bargains SET name = ?, floor = ?, helpers = ?, ends_at = ?, attempt_ttl_us = ?, "
            "attempts_per_user = ?, helps_per_helper = ?, external_links = ?, active = ? WHERE id = ?",
            (b.name, b.floor_fen, b.helpers, to_us(b.ends_at), b.attempt_ttl // _US, b.attempts_per_user,
             b.helps_per_helper, b.external_links, int(b.active), b.id),
        )

    def bargain(self, bargain_id: int) -> Bargain | None:
        row = self.tx.execute(f"SELECT {_BARGAIN} FROM bargains WHERE id = ?", (bargain_id,)).fetchone()
        return None if row is None else _bargain(row)

    def bargains(self) -> list[Bargain]:
        return [_bargain(r) for r in self.tx.execute(f"SELECT {_BARGAIN} FROM bargains ORDER BY id")]

    def take_unit(self, bargain_id: int) -> bool:
        cursor = self.tx.execute("UPDATE bargains SET stock = stock - 1, sold = sold + 1 WHERE id = ? AND stock >= 1",
                                 (bargain_id,))
        return int(cursor.rowcount or 0) == 1

    def count(self, bargain_id: int, user_id: int, kind: str, limit: int) -> bool:
        if limit < 1:
            return False
        row = self.tx.execute(
            "INSERT INTO bargain_counts (bargain_id, user_id, kind, n) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (bargain_id, user_id, kind) DO UPDATE SET n = bargain_counts.n + 1 "
            "WHERE bargain_counts.n + 1 <= ? RETURNING n",
            (bargain_id, user_id, kind, limit),
        ).fetchone()
        return row is not None

    def counted(self, bargain_id: int, user_id: int, kind: str) -> int:
        row = self.tx.execute("SELECT n FROM bargain_counts WHERE bargain_id = ? AND user_id = ? AND kind = ?",
                              (bargain_id, user_id, kind)).fetchone()
        return 0 if row is None else int(row[0])

    def add_attempt(self, attempt: BargainAttempt) -> int:
        [aid] = self.tx.dialect.allocate_ids(self.tx, "bargain_attempts", 1)
        a = attempt
        self.tx.execute(
            f"INSERT INTO bargain_attempts ({_ATTEMPT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (aid, a.bargain_id, a.user_id, a.status.value, a.price_fen, a.floor_fen, a.helpers, to_us(a.deadline),
             a.seed, a.cut_fen, a.helps, to_us(a.created_at), a.order_id,
             None if a.closed_at is None else to_us(a.closed_at)),
        )
        return int(aid)

    def attempt(self, attempt_id: int, *, lock: bool = False) -> BargainAttempt | None:
        if lock:
            self.tx.dialect.lock_rows(self.tx, "bargain_attempts", [attempt_id])
        row = self.tx.execute(f"SELECT {_ATTEMPT} FROM bargain_attempts WHERE id = ?", (attempt_id,)).fetchone()
        return None if row is None else _attempt(row)

    def attempts(self, *, bargain_id: int | None = None, user_id: int | None = None) -> list[BargainAttempt]:
        where, params = ["1 = 1"], []
        if bargain_id is not None:
            where.append("bargain_id = ?")
            params.append(bargain_id)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        return [_attempt(r) for r in self.tx.execute(
            f"SELECT {_ATTEMPT} FROM bargain_attempts WHERE {' AND '.join(where)} ORDER BY id", params)]

    def add_help(self, help_: BargainHelp) -> bool:
        h = help_
        row = self.tx.execute(
            "INSERT INTO bargain_helps (attempt_id, helper_id, seq, cut, at, flagged) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (attempt_id, helper_id) DO NOTHING RETURNING seq",
            (h.attempt_id, h.helper_id, h.seq, h.cut_fen, to_us(h.at), int(h.flagged)),
        ).fetchone()
        return row is not None

    def helps(self, attempt_id: int) -> list[BargainHelp]:
        return [BargainHelp(attempt_id=r[0], helper_id=r[1], seq=r[2], cut_fen=r[3], at=from_us_required(r[4]),
                            flagged=bool(r[5]))
                for r in self.tx.execute("SELECT attempt_id, helper_id, seq, cut, at, flagged FROM bargain_helps "
                                         "WHERE attempt_id = ? ORDER BY seq", (attempt_id,))]

    def add_cut(self, attempt_id: int, helps_before: int, cut_fen: int) -> bool:
        cursor = self.tx.execute(
            "UPDATE bargain_attempts SET cut = cut + ?, helps = helps + 1 WHERE id = ? AND helps = ? AND status = ?",
            (cut_fen, attempt_id, helps_before, AttemptStatus.OPEN.value),
        )
        return int(cursor.rowcount or 0) == 1

    def close_attempt(self, attempt_id: int, source: Sequence[AttemptStatus], target: AttemptStatus, at: datetime,
                      *, order_id: int | None = None) -> bool:
        marks = ", ".join("?" for _ in source)
        cursor = self.tx.execute(
            f"UPDATE bargain_attempts SET status = ?, closed_at = ?, order_id = COALESCE(CAST(? AS BIGINT), order_id) "
            f"WHERE id = ? AND status IN ({marks})",
            [target.value, to_us(at), order_id, attempt_id, *(s.value for s in source)],
        )
        return int(cursor.rowcount or 0) == 1

    def due_attempts(self, now: datetime, limit: int) -> list[BargainAttempt]:
        return [_attempt(r) for r in self.tx.execute(
            f"SELECT {_ATTEMPT} FROM bargain_attempts WHERE status IN (?, ?) AND deadline <= ? ORDER BY deadline, id "
            "LIMIT ?", (AttemptStatus.OPEN.value, AttemptStatus.SUCCEEDED.value, to_us(now), limit))]

    def move_attempts(self, attempt_ids: Sequence[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(attempt_ids)):
            self.tx.execute(f"UPDATE bargain_attempts SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])
