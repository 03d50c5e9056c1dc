"""Lifecycle history, behaviour events and tag rules in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..._clock import from_us_required, to_us
from ...models.lifecycle import StageChange, TagRule, TrackedEvent
from ..contracts import ActivityStore, LifecycleStore, TagRuleStore
from .activity_slots import EVENTS, ActivitySlots

if TYPE_CHECKING:
    from .backend import SqlTransaction

_STAGE_OF = (
    "SELECT ut.user_id, t.name FROM user_tags ut JOIN tags t ON t.id = ut.tag_id WHERE t.group_name = ?"
)


class SqlLifecycleStore(LifecycleStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def record(self, changes: Sequence[StageChange]) -> None:
        self.tx.executemany(
            "INSERT INTO lifecycle_log (user_id, from_stage, to_stage, at, reason) VALUES (?, ?, ?, ?, ?)",
            [(c.user_id, c.from_stage, c.to_stage, to_us(c.at), c.reason) for c in changes],
        )

    def history(self, user_id: int) -> list[StageChange]:
        return [
            StageChange(user_id=user_id, from_stage=f, to_stage=t, at=from_us_required(at), reason=r)
            for f, t, at, r in self.tx.execute(
                "SELECT from_stage, to_stage, at, reason FROM lifecycle_log WHERE user_id = ? ORDER BY id",
                (user_id,),
            )
        ]

    def last_changes(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        found: dict[int, datetime] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            for uid, at in self.tx.execute(
                f"SELECT user_id, MAX(at) FROM lifecycle_log WHERE user_id IN ({marks}) GROUP BY user_id", chunk
            ):
                found[int(uid)] = from_us_required(at)
        return found

    def stages(self, group: str, user_ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            for uid, name in self.tx.execute(f"{_STAGE_OF} AND ut.user_id IN ({marks})", (group, *chunk)):
                found[int(uid)] = name
        return found

    def counts(self, group: str) -> dict[str, int]:
        return {
            name: int(n)
            for name, n in self.tx.execute(
                "SELECT t.name, COUNT(*) FROM user_tags ut JOIN tags t ON t.id = ut.tag_id "
                "JOIN users u ON u.id = ut.user_id WHERE t.group_name = ? AND u.status = ? GROUP BY t.name",
                (group, "active"),
            )
        }

    def without_stage(self, group: str) -> list[int]:
        return [
            int(r[0])
            for r in self.tx.execute(
                "SELECT u.id FROM users u WHERE u.status = ? AND NOT EXISTS (SELECT 1 FROM user_tags ut "
                "JOIN tags t ON t.id = ut.tag_id WHERE ut.user_id = u.id AND t.group_name = ?) ORDER BY u.id",
                ("active", group),
            )
        ]

    def inactive_since(self, group: str, stages: Sequence[str], cutoff: datetime) -> list[int]:
        found: list[int] = []
        for marks, chunk in self.tx.in_chunks(list(stages)):
            found.extend(
                int(r[0])
                for r in self.tx.execute(
                    "SELECT u.id FROM users u JOIN user_tags ut ON ut.user_id = u.id JOIN tags t ON t.id = ut.tag_id "
                    f"WHERE t.group_name = ? AND t.name IN ({marks}) AND u.status = ? "
                    "AND COALESCE(u.last_active_at, u.created_at) < ?",
                    (group, *chunk, "active", to_us(cutoff)),
                )
            )
        return sorted(found)

    def add_order(self, order_id: int, user_id: int, at: datetime) -> bool:
        row = self.tx.execute(
            "INSERT INTO lifecycle_orders (order_id, user_id, at) VALUES (?, ?, ?) "
            "ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
            (order_id, user_id, to_us(at)),
        ).fetchone()
        return row is not None

    def order_count(self, user_id: int) -> int:
        row = self.tx.execute(
            "SELECT COUNT(*) FROM lifecycle_orders WHERE user_id = ? AND refunded_at IS NULL", (user_id,)
        ).fetchone()
        return int(row[0])

    def add_orders(self, rows: Sequence[tuple[int, int, datetime]]) -> set[int]:
        # The first row of an order id wins, as one add_order call after another would.
        first: dict[int, tuple[int, int, int]] = {}
        for order, uid, at in rows:
            first.setdefault(order, (order, uid, to_us(at)))
        known: set[int] = set()
        for marks, chunk in self.tx.in_chunks(sorted(first)):
            known.update(int(r[0]) for r in self.tx.execute(
                f"SELECT order_id FROM lifecycle_orders WHERE order_id IN ({marks})", chunk))
        fresh = [row for order, row in first.items() if order not in known]
        self.tx.executemany("INSERT INTO lifecycle_orders (order_id, user_id, at) VALUES (?, ?, ?)", fresh)
        return {order for order, _, _ in fresh}

    def order_counts(self, user_ids: Sequence[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            counts.update((int(u), int(n)) for u, n in self.tx.execute(
                f"SELECT user_id, COUNT(*) FROM lifecycle_orders WHERE user_id IN ({marks}) AND refunded_at IS NULL "
                "GROUP BY user_id", chunk))
        return counts

    def order_owners(self, order_ids: Sequence[int]) -> dict[int, tuple[int, bool]]:
        found: dict[int, tuple[int, bool]] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(order_ids))):
            for order, uid, refunded in self.tx.execute(
                f"SELECT order_id, user_id, refunded_at FROM lifecycle_orders WHERE order_id IN ({marks})", chunk
            ):
                found[int(order)] = (int(uid), refunded is None)
        return found

    def refund_orders(self, rows: Sequence[tuple[int, int, datetime]]) -> None:
        first: dict[int, tuple[int, int, int]] = {}
        for order, uid, at in rows:
            first.setdefault(order, (order, uid, to_us(at)))
        known = self.order_owners(list(first))
        self.tx.executemany(
            "UPDATE lifecycle_orders SET refunded_at = ? WHERE order_id = ? AND refunded_at IS NULL",
            [(at, order) for order, _, at in first.values() if order in known],
        )
        # A refund heard of before its order leaves a row already refunded, so the order never counts.
        self.tx.executemany(
            "INSERT INTO lifecycle_orders (order_id, user_id, at, refunded_at) VALUES (?, ?, ?, ?)",
            [(order, uid, at, at) for order, uid, at in first.values() if order not in known],
        )

    def move_user(self, drop: int, keep: int) -> list[int]:
        log_ids = [int(r[0]) for r in self.tx.execute("SELECT id FROM lifecycle_log WHERE user_id = ?", (drop,))]
        orders = [int(r[0]) for r in self.tx.execute(
            "SELECT order_id FROM lifecycle_orders WHERE user_id = ?", (drop,))]
        self.tx.execute("UPDATE lifecycle_log SET user_id = ? WHERE user_id = ?", (keep, drop))
        self.tx.execute("UPDATE lifecycle_orders SET user_id = ? WHERE user_id = ?", (keep, drop))
        return log_ids + [-o for o in orders if o > 0]

    def restore_user(self, moved: Sequence[int], drop: int) -> None:
        logs = [i for i in moved if i > 0]
        orders = [-i for i in moved if i < 0]
        for marks, chunk in self.tx.in_chunks(logs):
            self.tx.execute(f"UPDATE lifecycle_log SET user_id = ? WHERE id IN ({marks})", (drop, *chunk))
        for marks, chunk in self.tx.in_chunks(orders):
            self.tx.execute(f"UPDATE lifecycle_orders SET user_id = ? WHERE order_id IN ({marks})", (drop, *chunk))


class SqlActivityStore(ActivityStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def known_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for marks, chunk in self.tx.in_chunks(sorted(set(keys))):
            found.update(r[0] for r in self.tx.execute(f"SELECT key FROM user_events WHERE key IN ({marks})", chunk))
        return found

    def add(self, rows: Sequence[tuple[int, str, datetime, str | None, str]]) -> list[int]:
        ids = self.tx.dialect.allocate_ids(self.tx, "user_events", len(rows))
        self.tx.executemany(
            "INSERT INTO user_events (id, user_id, kind, at, key, properties) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, u, k, to_us(at), key, props) for i, (u, k, at, key, props) in zip(ids, rows, strict=True)],
        )
        ActivitySlots(self.tx).add(EVENTS, [(u, to_us(at)) for u, _, at, _, _ in rows])
        return ids

    def for_user(self, user_id: int, limit: int) -> list[TrackedEvent]:
        return [
            TrackedEvent(id=i, user_id=user_id, kind=k, at=from_us_required(at), key=key, properties=json.loads(p))
            for i, k, at, key, p in self.tx.execute(
                "SELECT id, kind, at, key, properties FROM user_events WHERE user_id = ? "
                "ORDER BY at DESC, id DESC LIMIT ?",
                (user_id, limit),
            )
        ]

    def touch(self, last_active: dict[int, datetime]) -> None:
        self.tx.executemany(
            "UPDATE users SET last_active_at = ? WHERE id = ? AND (last_active_at IS NULL OR last_active_at < ?)",
            [(to_us(at), uid, to_us(at)) for uid, at in sorted(last_active.items())],
        )

    def move_user(self, drop: int, keep: int) -> list[int]:
        rows = [(int(i), int(at)) for i, at in self.tx.execute(
            "SELECT id, at FROM user_events WHERE user_id = ?", (drop,))]
        self.tx.execute("UPDATE user_events SET user_id = ? WHERE user_id = ?", (keep, drop))
        slots = ActivitySlots(self.tx)
        slots.add(EVENTS, [(keep, at) for _, at in rows])
        slots.recheck(EVENTS, [(drop, at) for _, at in rows])
        return [i for i, _ in rows]

    def restore_user(self, event_ids: Sequence[int], drop: int) -> None:
        moved: list[tuple[int, int]] = []
        for marks, chunk in self.tx.in_chunks(list(event_ids)):
            moved.extend((int(u), int(at)) for u, at in self.tx.execute(
                f"SELECT user_id, at FROM user_events WHERE id IN ({marks})", chunk))
            self.tx.execute(f"UPDATE user_events SET user_id = ? WHERE id IN ({marks})", (drop, *chunk))
        slots = ActivitySlots(self.tx)
        slots.add(EVENTS, [(drop, at) for _, at in moved])
        slots.recheck(EVENTS, moved)


class SqlTagRuleStore(TagRuleStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save(self, rule: TagRule) -> None:
        self.tx.execute(
            "INSERT INTO tag_rules (tag, expression, group_exclusive, created_at, enabled) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tag) DO UPDATE SET expression = excluded.expression, "
            "group_exclusive = excluded.group_exclusive, enabled = excluded.enabled",
            (rule.tag, rule.expression, int(rule.group_exclusive), to_us(rule.created_at), int(rule.enabled)),
        )

    def _rule(self, row: Sequence[object]) -> TagRule:
        tag, expression, exclusive, created, enabled = row
        assert isinstance(created, int)
        return TagRule(tag=str(tag), expression=str(expression), group_exclusive=bool(exclusive),
                       created_at=from_us_required(created), enabled=bool(enabled))

    def get(self, tag: str) -> TagRule | None:
        row = self.tx.execute(
            "SELECT tag, expression, group_exclusive, created_at, enabled FROM tag_rules WHERE tag = ?", (tag,)
        ).fetchone()
        return None if row is None else self._rule(row)

    def all(self) -> list[TagRule]:
        return [
            self._rule(row)
            for row in self.tx.execute(
                "SELECT tag, expression, group_exclusive, created_at, enabled FROM tag_rules ORDER BY id"
            )
        ]

    def delete(self, tag: str) -> bool:
        return bool(self.tx.execute("DELETE FROM tag_rules WHERE tag = ?", (tag,)).rowcount)
