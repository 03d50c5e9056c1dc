"""Presales and their deposit orders in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ...models.presale import Presale, PresaleOrder
from ..contracts.presale import PresaleStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_ORDER = "id, presale_id, user_id, qty, deposit, status, key, at, updated_at, order_id, ship_by, refund"
_TIMES = ("starts_at", "ends_at", "balance_from", "balance_until")
_SPEC = ("price_fen", "deposit_fen", "deposit_kind", "expansion_fen", "deliver_days", "per_user", "double_refund")


def _presale(r: Sequence[Any]) -> Presale:
    spec = json.loads(r[3])
    for name in _TIMES:
        spec[name] = from_us_required(spec[name])
    return Presale(id=r[0], name=r[1], sku=r[2], stock=r[4], held=r[5], status=r[6], created_at=from_us(r[7]),
                   **spec)


def _order(r: Sequence[Any]) -> PresaleOrder:
    return PresaleOrder(id=r[0], presale_id=r[1], user_id=r[2], qty=r[3], deposit_fen=r[4], status=r[5], key=r[6],
                        at=from_us_required(r[7]), updated_at=from_us(r[8]), order_id=r[9], ship_by=from_us(r[10]),
                        refund_fen=r[11])


class SqlPresaleStore(PresaleStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def add_presale(self, presale: Presale) -> int:
        spec: dict[str, Any] = {name: getattr(presale, name) for name in _SPEC}
        spec.update({name: to_us(getattr(presale, name)) for name in _TIMES})
        [pid] = self.tx.dialect.allocate_ids(self.tx, "presales", 1)
        assert presale.created_at is not None
        self.tx.execute(
            "INSERT INTO presales (id, name, sku, spec, stock, held, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (pid, presale.name, presale.sku, json.dumps(spec, sort_keys=True), presale.stock, presale.status,
             to_us(presale.created_at)))
        return pid

    def presale(self, presale_id: int) -> Presale | None:
        row = self.tx.execute("SELECT id, name, sku, spec, stock, held, status, created_at FROM presales WHERE id = ?",
                              (presale_id,)).fetchone()
        return None if row is None else _presale(row)

    def presales(self) -> list[Presale]:
        rows = self.tx.execute("SELECT id, name, sku, spec, stock, held, status, created_at FROM presales ORDER BY id")
        return [_presale(r) for r in rows]

    def set_status(self, presale_id: int, status: str) -> None:
        self.tx.execute("UPDATE presales SET status = ? WHERE id = ?", (status, presale_id))

    def take_units(self, presale_id: int, qty: int) -> bool:
        row = self.tx.execute("UPDATE presales SET held = held + ? WHERE id = ? AND held + ? <= stock RETURNING id",
                              (qty, presale_id, qty)).fetchone()
        return row is not None

    def give_units(self, presale_id: int, qty: int) -> None:
        self.tx.execute("UPDATE presales SET held = held - ? WHERE id = ?", (qty, presale_id))

    def add_order(self, order: PresaleOrder) -> int | None:
        [oid] = self.tx.dialect.allocate_ids(self.tx, "presale_orders", 1)
        row = self.tx.execute(
            f"INSERT INTO presale_orders ({_ORDER}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 0) "
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            (oid, order.presale_id, order.user_id, order.qty, order.deposit_fen, order.status, order.key,
             to_us(order.at))).fetchone()
        return None if row is None else int(row[0])

    def order(self, order_id: int) -> PresaleOrder | None:
        row = self.tx.execute(f"SELECT {_ORDER} FROM presale_orders WHERE id = ?", (order_id,)).fetchone()
        return None if row is None else _order(row)

    def order_by_key(self, key: str) -> PresaleOrder | None:
        row = self.tx.execute(f"SELECT {_ORDER} FROM presale_orders WHERE key = ?", (key,)).fetchone()
        return None if row is None else _order(row)

    def orders(self, *, presale_id: int | None = None, user_id: int | None = None,
               status: str | None = None) -> list[PresaleOrder]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("presale_id = ?", presale_id), ("user_id = ?", user_id), ("status = ?", status)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_ORDER} FROM presale_orders" + (" WHERE " + " AND ".join(where) if where else "")
        return [_order(r) for r in self.tx.execute(sql + " ORDER BY id", params)]

    def move_order(self, order_id: int, *, from_status: Sequence[str], to_status: str, at: datetime,
                   refund_fen: int | None = None, order_ref: int | None = None,
                   ship_by: datetime | None = None) -> bool:
        sets = ["status = ?", "updated_at = ?"]
        params: list[Any] = [to_status, to_us(at)]
        for column, value in (("refund", refund_fen), ("order_id", order_ref),
                              ("ship_by", None if ship_by is None else to_us(ship_by))):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        marks = ",".join("?" * len(from_status))
        row = self.tx.execute(
            f"UPDATE presale_orders SET {', '.join(sets)} WHERE id = ? AND status IN ({marks}) RETURNING id",
            [*params, order_id, *from_status]).fetchone()
        return row is not None


