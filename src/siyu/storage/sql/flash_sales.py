"""Flash sales, reservations and per-user quotas in SQL.

Each guarded change is one statement whose row count (or returned row)
says whether it happened: ``UPDATE ... WHERE stock >= ?`` for units,
``WHERE status = ?`` for reservations, an upsert with a ``WHERE held + ? <= ?``
for quotas. Under PostgreSQL the row lock the statement takes makes a
concurrent writer wait and re-check the condition on the newest row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..._clock import from_us_required, to_us
from ...models.activities import FlashSale, Reservation, ReservationStatus
from ..contracts.activities import UNITS, FlashSaleStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_SALE = ("id, name, sku, price, stock, reserved, sold, starts_at, ends_at, hold_us, per_user, per_user_day, "
         "base_price, base_label, clearance, loss, active, created_at")
_RES = "id, sale_id, user_id, qty, status, key, day, created_at, expires_at, order_id, closed_at"


def _day(day: date | None) -> int:
    return 0 if day is None else day.year * 10_000 + day.month * 100 + day.day


def _sale(r: Sequence[Any]) -> FlashSale:
    return FlashSale(id=r[0], name=r[1], sku=r[2], price_fen=r[3], stock=r[4], reserved=r[5], sold=r[6],
                     starts_at=from_us_required(r[7]), ends_at=from_us_required(r[8]),
                     hold=timedelta(microseconds=r[9]), per_user=r[10], per_user_day=r[11], base_price_fen=r[12],
                     base_label=r[13], clearance=r[14], loss_fen=r[15], active=bool(r[16]),
                     created_at=from_us_required(r[17]))


def _reservation(r: Sequence[Any]) -> Reservation:
    day = int(r[6])
    return Reservation(id=r[0], sale_id=r[1], user_id=r[2], qty=r[3], status=ReservationStatus(r[4]), key=r[5],
                       day=date(day // 10_000, day // 100 % 100, day % 100), created_at=from_us_required(r[7]),
                       expires_at=from_us_required(r[8]), order_id=r[9],
                       closed_at=None if r[10] is None else from_us_required(r[10]))


class SqlFlashSaleStore(FlashSaleStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- sales -------------------------------------------------------------------------------
    def add_sale(self, sale: FlashSale) -> int:
        [sid] = self.tx.dialect.allocate_ids(self.tx, "flash_sales", 1)
        assert sale.created_at is not None
        self.tx.execute(
            f"INSERT INTO flash_sales ({_SALE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sid, sale.name, sale.sku, sale.price_fen, sale.stock, sale.reserved, sale.sold, to_us(sale.starts_at),
             to_us(sale.ends_at), sale.hold // timedelta(microseconds=1), sale.per_user, sale.per_user_day,
             sale.base_price_fen, sale.base_label, sale.clearance, sale.loss_fen, int(sale.active),
             to_us(sale.created_at)),
        )
        return int(sid)

    def sale(self, sale_id: int) -> FlashSale | None:
        row = self.tx.execute(f"SELECT {_SALE} FROM flash_sales WHERE id = ?", (sale_id,)).fetchone()
        return None if row is None else _sale(row)

    def sales(self) -> list[FlashSale]:
        return [_sale(r) for r in self.tx.execute(f"SELECT {_SALE} FROM flash_sales ORDER BY id")]

    def set_active(self, sale_id: int, active: bool) -> None:
        self.tx.execute("UPDATE flash_sales SET active = ? WHERE id = ?", (int(active), sale_id))

    def move_units(self, sale_id: int, qty: int, source: str, target: str) -> bool:
        if source not in UNITS or target not in UNITS or source == target:
            raise ValueError(f"units move between two of {UNITS}, got {source!r} -> {target!r}")
        cursor = self.tx.execute(
            f"UPDATE flash_sales SET {source} = {source} - ?, {target} = {target} + ? WHERE id = ? AND {source} >= ?",
            (qty, qty, sale_id, qty),
        )
        return int(cursor.rowcount or 0) == 1

    # -- quotas ------------------------------------------------------------------------------
    def take_quota(self, sale_id: int, user_id: int, day: date | None, qty: int, limit: int) -> bool:
        if qty > limit:
            return False
        row = self.tx.execute(
            "INSERT INTO flash_quotas (sale_id, user_id, day, held) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sale_id, user_id, day) DO UPDATE SET held = flash_quotas.held + excluded.held "
            "WHERE flash_quotas.held + excluded.held <= ? RETURNING held",
            (sale_id, user_id, _day(day), qty, limit),
        ).fetchone()
        return row is not None

    def give_quota(self, sale_id: int, user_id: int, day: date | None, qty: int) -> None:
        self.tx.execute(
            "UPDATE flash_quotas SET held = held - ? WHERE sale_id = ? AND user_id = ? AND day = ? AND held >= ?",
            (qty, sale_id, user_id, _day(day), qty),
        )

    def quota_used(self, sale_id: int, user_id: int, day: date | None) -> int:
        row = self.tx.execute("SELECT held FROM flash_quotas WHERE sale_id = ? AND user_id = ? AND day = ?",
                              (sale_id, user_id, _day(day))).fetchone()
        return 0 if row is None else int(row[0])

    # -- reservations ------------------------------------------------------------------------
    def add_reservation(self, reservation: Reservation) -> int | None:
        r = reservation
        # The id comes from the table itself (SQLite's rowid, PostgreSQL's identity): one statement on the hot path.
        row = self.tx.execute(
            f"INSERT INTO flash_reservations ({_RES.removeprefix('id, ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            (r.sale_id, r.user_id, r.qty, r.status.value, r.key, _day(r.day), to_us(r.created_at),
             to_us(r.expires_at), r.order_id, None if r.closed_at is None else to_us(r.closed_at)),
        ).fetchone()
        return None if row is None else int(row[0])

    def _one(self, where: str, params: Sequence[Any]) -> Reservation | None:
        row = self.tx.execute(f"SELECT {_RES} FROM flash_reservations WHERE {where}", params).fetchone()
        return None if row is None else _reservation(row)

    def reservation(self, reservation_id: int) -> Reservation | None:
        return self._one("id = ?", (reservation_id,))

    def reservation_by_key(self, key: str) -> Reservation | None:
        return self._one("key = ?", (key,))

    def reservation_by_order(self, order_id: int) -> Reservation | None:
        return self._one("order_id = ?", (order_id,))

    def reservations(self, *, sale_id: int | None = None, user_id: int | None = None) -> list[Reservation]:
        where, params = ["1 = 1"], []
        if sale_id is not None:
            where.append("sale_id = ?")
            params.append(sale_id)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        return [_reservation(r) for r in self.tx.execute(
            f"SELECT {_RES} FROM flash_reservations WHERE {' AND '.join(where)} ORDER BY id", params)]

    def transition(self, reservation_id: int, source: ReservationStatus, target: ReservationStatus, at: datetime,
                   *, held_at: datetime | None = None, expired_by: datetime | None = None) -> bool:
        extra, params = "", [target.value, to_us(at), reservation_id, source.value]
        if held_at is not None:
            extra += " AND expires_at > ?"
            params.append(to_us(held_at))
        if expired_by is not None:
            extra += " AND expires_at <= ?"
            params.append(to_us(expired_by))
        cursor = self.tx.execute(
            f"UPDATE flash_reservations SET status = ?, closed_at = ? WHERE id = ? AND status = ?{extra}", params)
        return int(cursor.rowcount or 0) == 1

    def set_order(self, reservation_id: int, order_id: int) -> None:
        self.tx.execute("UPDATE flash_reservations SET order_id = ? WHERE id = ?", (order_id, reservation_id))

    def due(self, now: datetime, limit: int) -> list[Reservation]:
        return [_reservation(r) for r in self.tx.execute(
            f"SELECT {_RES} FROM flash_reservations WHERE status = ? AND expires_at <= ? ORDER BY expires_at, id "
            "LIMIT ?", (ReservationStatus.RESERVED.value, to_us(now), limit))]

    def lowest_unit_price(self, sku: str, since: datetime, until: datetime) -> int | None:
        row = self.tx.execute(
            "SELECT MIN(l.unit) FROM order_lines l JOIN orders o ON o.id = l.order_id "
            "WHERE l.sku = ? AND o.paid_at >= ? AND o.paid_at < ?",
            (sku, to_us(since), to_us(until)),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def move_user(self, reservation_ids: Sequence[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(reservation_ids)):
            self.tx.execute(f"UPDATE flash_reservations SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])

    def quotas_of(self, user_id: int) -> list[tuple[int, int, int]]:
        return [(int(r[0]), int(r[1]), int(r[2])) for r in self.tx.execute(
            "SELECT sale_id, day, held FROM flash_quotas WHERE user_id = ? AND held > 0 ORDER BY sale_id, day",
            (user_id,))]

    def shift_quotas(self, user_id: int, rows: Sequence[tuple[int, int, int]], sign: int) -> None:
        if sign > 0:
            self.tx.executemany(
                "INSERT INTO flash_quotas (sale_id, user_id, day, held) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sale_id, user_id, day) DO UPDATE SET held = flash_quotas.held + excluded.held",
                [(sale_id, user_id, day, held) for sale_id, day, held in rows])
            return
        self.tx.executemany(
            "UPDATE flash_quotas SET held = CASE WHEN held > ? THEN held - ? ELSE 0 END "
            "WHERE sale_id = ? AND user_id = ? AND day = ?",
            [(held, held, sale_id, user_id, day) for sale_id, day, held in rows])
