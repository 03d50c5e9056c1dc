"""Orders, their lines and refunds in SQL."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us_required, to_us
from ...models.commerce import Order, OrderLine, ProductRole, Refund
from ..contracts.commerce import OrderStats, OrderStore
from .activity_slots import ORDERS, ActivitySlots

if TYPE_CHECKING:
    from .backend import SqlTransaction

_COUNTED = "(refunded < total OR total = 0)"

_ORDER = ("id, user_id, key, channel, paid_at, subtotal, discount, total, refunded, coupons, points_entry_id, "
          "points, growth, budget")
_LINE = "order_id, sku, qty, unit, paid, role, category, cost, refunded, refunded_qty, points, growth, loss"
_REFUND = ("id, order_id, user_id, key, at, amount, lines, is_full, points_reversed, points_shortfall, "
           "growth_reversed, coupons_returned, effects")


def _refund(row: Sequence[Any]) -> Refund:
    lines = json.loads(row[6])
    return Refund(
        id=row[0], order_id=row[1], user_id=row[2], key=row[3], at=from_us_required(row[4]), amount_fen=row[5],
        lines=tuple((int(x[0]), int(x[1]), int(x[2])) for x in lines),
        full=bool(row[7]), points_reversed=row[8], points_shortfall=row[9], growth_reversed=row[10],
        coupons_returned=tuple(json.loads(row[11])),
        line_effects=tuple((int(n), int(p), int(g)) for n, p, g in json.loads(row[12] or "[]")),
    )


def _budget_json(order: Order) -> str | None:
    if not order.budget:
        return None
    # One entry per offer: [kind, source_id, fen, [[line_no, fen], ...]] (older rows lack the lines).
    return json.dumps([[kind, source_id, fen, [[n, f] for k, s, n, f in order.budget_lines
                                               if (k, s) == (kind, source_id)]]
                       for kind, source_id, fen in order.budget])


def _budget(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    entries = json.loads(text)
    return {
        "budget": tuple((str(e[0]), int(e[1]), int(e[2])) for e in entries),
        "budget_lines": tuple((str(e[0]), int(e[1]), int(n), int(f)) for e in entries if len(e) > 3
                              for n, f in e[3]),
    }


class SqlOrderStore(OrderStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def by_keys(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for marks, chunk in self.tx.in_chunks(list(keys)):
            for key, order_id, fingerprint in self.tx.execute(
                f"SELECT key, id, fingerprint FROM orders WHERE key IN ({marks})", chunk
            ):
                found[key] = (int(order_id), fingerprint or "")
        return found

    def insert(self, orders: Sequence[Order], fingerprints: Sequence[str | None]) -> list[int]:
        if not orders:
            return []
        ids = self.tx.dialect.allocate_ids(self.tx, "orders", len(orders))
        self.tx.executemany(
            "INSERT INTO orders (id, user_id, key, fingerprint, channel, paid_at, subtotal, discount, total, "
            "refunded, coupons, points_entry_id, points, growth, budget) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (oid, o.user_id, o.key, fp, o.channel, to_us(o.paid_at), o.subtotal_fen, o.discount_fen,
                 o.total_fen, 0, json.dumps(list(o.coupon_codes)), o.points_entry_id, o.points, o.growth,
                 _budget_json(o))
                for oid, o, fp in zip(ids, orders, fingerprints, strict=True)
            ],
        )
        self.tx.executemany(
            "INSERT INTO order_lines (order_id, line_no, sku, qty, unit, paid, role, category, cost, refunded, "
            "refunded_qty, loss) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
            [
                (oid, n, ln.sku, ln.qty, ln.unit_fen, ln.paid_fen, ln.role.value, ln.category, ln.cost_fen,
                 ln.loss_fen)
                for oid, o in zip(ids, orders, strict=True)
                for n, ln in enumerate(o.lines)
            ],
        )
        # Nothing is refunded yet, so every new order is a counted one.
        ActivitySlots(self.tx).add(ORDERS, [(o.user_id, to_us(o.paid_at)) for o in orders])
        return ids

    def set_effects(self, rows: Sequence[tuple[int, int | None, int, int]]) -> None:
        self.tx.executemany(
            "UPDATE orders SET points_entry_id = ?, points = ?, growth = ? WHERE id = ?",
            [(entry_id, points, growth, oid) for oid, entry_id, points, growth in rows],
        )

    def set_line_effects(self, rows: Sequence[tuple[int, int, int, int]]) -> None:
        self.tx.executemany(
            "UPDATE order_lines SET points = ?, growth = ? WHERE order_id = ? AND line_no = ?",
            [(points, growth, oid, n) for oid, n, points, growth in rows],
        )

    def _load(self, where: str, params: Sequence[Any]) -> list[Order]:
        rows = list(self.tx.execute(f"SELECT {_ORDER} FROM orders WHERE {where} ORDER BY paid_at, id", params))
        if not rows:
            return []
        lines: dict[int, list[OrderLine]] = defaultdict(list)
        for marks, chunk in self.tx.in_chunks([r[0] for r in rows]):
            for r in self.tx.execute(
                f"SELECT {_LINE} FROM order_lines WHERE order_id IN ({marks}) ORDER BY order_id, line_no", chunk
            ):
                lines[r[0]].append(
                    OrderLine(sku=r[1], qty=r[2], unit_fen=r[3], paid_fen=r[4], role=ProductRole(r[5]),
                              category=r[6], cost_fen=r[7], refunded_fen=r[8], refunded_qty=r[9], points=r[10],
                              growth=r[11], loss_fen=r[12])
                )
        return [
            Order(id=r[0], user_id=r[1], key=r[2], channel=r[3], paid_at=from_us_required(r[4]), subtotal_fen=r[5],
                  discount_fen=r[6], total_fen=r[7], refunded_fen=r[8], coupon_codes=tuple(json.loads(r[9])),
                  points_entry_id=r[10], points=r[11], growth=r[12], lines=tuple(lines[r[0]]),
                  **_budget(r[13]))
            for r in rows
        ]

    def get(self, order_id: int) -> Order | None:
        found = self._load("id = ?", (order_id,))
        return found[0] if found else None

    def of_user(self, user_id: int) -> list[Order]:
        return self._load("user_id = ?", (user_id,))

    def count_paid(self, user_id: int) -> int:
        row = self.tx.execute(
            "SELECT COUNT(*) FROM orders WHERE user_id = ? AND (refunded < total OR total = 0)", (user_id,)
        ).fetchone()
        return int(row[0])

    def apply_refund(self, order_id: int, lines: Sequence[tuple[int, int, int]]) -> None:
        self.tx.executemany(
            "UPDATE order_lines SET refunded = refunded + ?, refunded_qty = refunded_qty + ? "
            "WHERE order_id = ? AND line_no = ?",
            [(fen, qty, order_id, n) for n, qty, fen in lines],
        )
        row = self.tx.execute(
            f"UPDATE orders SET refunded = refunded + ? WHERE id = ? RETURNING user_id, paid_at, {_COUNTED}",
            (sum(fen for _, _, fen in lines), order_id),
        ).fetchone()
        if row is not None and not row[2]:
            # Fully refunded: no longer a counted order, which may leave its slot without the buyer.
            ActivitySlots(self.tx).recheck(ORDERS, [(int(row[0]), int(row[1]))])

    def add_refund(self, refund: Refund, fingerprint: str) -> int:
        [rid] = self.tx.dialect.allocate_ids(self.tx, "order_refunds", 1)
        self.tx.execute(
            "INSERT INTO order_refunds (id, order_id, user_id, key, fingerprint, at, amount, lines, is_full, "
            "points_reversed, points_shortfall, growth_reversed, coupons_returned, effects) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rid, refund.order_id, refund.user_id, refund.key, fingerprint, to_us(refund.at), refund.amount_fen,
             json.dumps([list(x) for x in refund.lines]), int(refund.full), refund.points_reversed,
             refund.points_shortfall, refund.growth_reversed, json.dumps(list(refund.coupons_returned)),
             json.dumps([list(x) for x in refund.line_effects]) if refund.line_effects else None),
        )
        return rid

    def refund_by_key(self, key: str) -> tuple[int, str] | None:
        row = self.tx.execute("SELECT id, fingerprint FROM order_refunds WHERE key = ?", (key,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def refund(self, refund_id: int) -> Refund | None:
        row = self.tx.execute(f"SELECT {_REFUND} FROM order_refunds WHERE id = ?", (refund_id,)).fetchone()
        return None if row is None else _refund(row)

    def refunds(self, order_id: int) -> list[Refund]:
        return [
            _refund(r)
            for r in self.tx.execute(f"SELECT {_REFUND} FROM order_refunds WHERE order_id = ? ORDER BY id", (order_id,))
        ]

    def stats(self, since: datetime | None = None) -> dict[int, OrderStats]:
        where, params = ("WHERE paid_at >= ?", (to_us(since),)) if since is not None else ("", ())
        return {
            int(uid): OrderStats(orders=int(n), spend_fen=int(spend), last_paid_at=from_us_required(last))
            for uid, n, spend, last in self.tx.execute(
                "SELECT user_id, SUM(CASE WHEN refunded < total OR total = 0 THEN 1 ELSE 0 END), "
                f"SUM(total - refunded), MAX(paid_at) FROM orders {where} GROUP BY user_id",
                params,
            )
        }

    def ids_of(self, user_id: int) -> list[int]:
        return [int(r[0]) for r in self.tx.execute("SELECT id FROM orders WHERE user_id = ? ORDER BY id", (user_id,))]

    def move(self, order_ids: Sequence[int], user_id: int) -> None:
        moved: list[tuple[int, int]] = []
        for marks, chunk in self.tx.in_chunks(list(order_ids)):
            moved.extend((int(u), int(at)) for u, at in self.tx.execute(
                f"SELECT user_id, paid_at FROM orders WHERE id IN ({marks}) AND {_COUNTED}", chunk))
            self.tx.execute(f"UPDATE orders SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])
            self.tx.execute(f"UPDATE order_refunds SET user_id = ? WHERE order_id IN ({marks})", [user_id, *chunk])
        slots = ActivitySlots(self.tx)
        slots.add(ORDERS, [(user_id, at) for _, at in moved])
        slots.recheck(ORDERS, moved)
