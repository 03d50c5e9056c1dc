"""Analytics aggregates in SQL (portable: SQLite and PostgreSQL).

Calendar buckets are computed inside the database with a balanced ``CASE``
tree over the bound boundaries (``log2(n)`` comparisons per row), so no
date function or time-zone table is needed and every bucket follows the
business calendar the service computed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyroaring import BitMap

from ..contracts.analytics import AnalyticsStore
from .activity_slots import EVENTS, ORDERS, SLOT_US, ActivitySlots

if TYPE_CHECKING:
    from .backend import SqlTransaction

_COUNTED = "(o.refunded < o.total OR o.total = 0)"
_FIELDS = {"source": "source", "campaign": "source_campaign", "state": "source_state"}


def bucket_expr(column: str, bounds: Sequence[int]) -> tuple[str, list[int]]:
    """SQL giving the bucket index of ``column`` (assumed within ``[b0, bn)``) and its parameters."""
    params: list[int] = []

    def tree(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return str(lo)
        mid = (lo + hi) // 2
        params.append(bounds[mid])
        left = tree(lo, mid)
        right = tree(mid, hi)
        return f"CASE WHEN {column} < ? THEN {left} ELSE {right} END"

    sql = tree(0, len(bounds) - 1)
    return sql, params


def _range(column: str, since: int | None, until: int) -> tuple[str, list[int]]:
    if since is None:
        return f"{column} < ?", [until]
    return f"{column} >= ? AND {column} < ?", [since, until]


class SqlAnalyticsStore(AnalyticsStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def _ids(self, sql: str, params: Sequence[Any]) -> list[int]:
        return [r[0] for r in self.tx.execute(sql, params)]

    # -- steps ------------------------------------------------------------------------------
    def users_created(self, since: int | None, until: int) -> list[int]:
        where, params = _range("created_at", since, until)
        return self._ids(f"SELECT id FROM users WHERE status <> ? AND {where} ORDER BY id", ["merged", *params])

    def count_created(self, since: int | None, until: int) -> int:
        where, params = _range("created_at", since, until)
        row = self.tx.execute(f"SELECT COUNT(*) FROM users WHERE status <> ? AND {where}", ["merged", *params])
        return int(row.fetchone()[0])

    def users_outside(self, until: int) -> list[int]:
        return self._ids("SELECT id FROM users WHERE status = ? OR created_at >= ?", ["merged", until])

    def attribution(self, field: str) -> dict[str | None, list[int]]:
        column = _FIELDS[field]
        groups: dict[str | None, list[int]] = {}
        for uid, value in self.tx.execute(f"SELECT id, {column} FROM users WHERE status <> ?", ("merged",)):
            groups.setdefault(value, []).append(int(uid))
        return groups

    def identity_linked(self, kind: str, since: int | None, until: int) -> list[int]:
        having, params = _range("MIN(linked_at)", since, until)
        return self._ids(
            f"SELECT user_id FROM identities WHERE kind = ? GROUP BY user_id HAVING {having}", [kind, *params]
        )

    def event_reached(self, kind: str, since: int | None, until: int) -> list[int]:
        if since is None:
            # Any event before `until` means the first one is too: a plain range read of the index.
            return self._ids(
                "SELECT DISTINCT user_id FROM user_events WHERE kind = ? AND at < ?", [kind, until]
            )
        return self._ids(
            "SELECT user_id FROM user_events WHERE kind = ? GROUP BY user_id HAVING MIN(at) >= ? AND MIN(at) < ?",
            [kind, since, until],
        )

    def nth_order_reached(self, n: int, since: int | None, until: int) -> list[int]:
        if n == 1:
            if since is None:
                return self._ids(f"SELECT DISTINCT o.user_id FROM orders o WHERE o.paid_at < ? AND {_COUNTED}",
                                 [until])
            return self._ids(
                f"SELECT o.user_id FROM orders o WHERE {_COUNTED} GROUP BY o.user_id "
                "HAVING MIN(o.paid_at) >= ? AND MIN(o.paid_at) < ?",
                [since, until],
            )
        if since is None:
            return self._ids(
                f"SELECT o.user_id FROM orders o WHERE o.paid_at < ? AND {_COUNTED} GROUP BY o.user_id "
                "HAVING COUNT(*) >= ?",
                [until, n],
            )
        return self._ids(
            "SELECT user_id FROM (SELECT o.user_id, o.paid_at, ROW_NUMBER() OVER "
            f"(PARTITION BY o.user_id ORDER BY o.paid_at, o.id) AS rn FROM orders o WHERE o.paid_at < ? AND {_COUNTED}"
            ") ranked WHERE rn = ? AND paid_at >= ?",
            [until, n, since],
        )

    def order_counts(self, until: int) -> list[tuple[int, int]]:
        # `+paid_at` keeps the planner on the (user_id, paid_at, total, refunded) index: one ordered pass.
        rows: list[tuple[int, int]] = self.tx.execute(
            f"SELECT o.user_id, COUNT(*) FROM orders o WHERE +o.paid_at < ? AND {_COUNTED} GROUP BY o.user_id",
            [until],
        ).fetchall()
        return rows

    def invited_reached(self, since: int | None, until: int) -> list[int]:
        having, params = _range("MIN(bound_at)", since, until)
        return self._ids(
            "SELECT inviter_id FROM referral_nodes WHERE inviter_id IS NOT NULL AND status = ? "
            f"AND bound_at IS NOT NULL GROUP BY inviter_id HAVING {having}",
            ["active", *params],
        )

    def event_counts(self, kind: str) -> list[tuple[int, int]]:
        return [(int(u), int(n)) for u, n in self.tx.execute(
            "SELECT user_id, COUNT(*) FROM user_events WHERE kind = ? GROUP BY user_id", (kind,))]

    def event_kinds(self) -> list[str]:
        return [str(r[0]) for r in self.tx.execute("SELECT DISTINCT kind FROM user_events ORDER BY kind")]

    # -- cohorts -------------------------------------------------------------------------------
    def cohort_sizes(self, bounds: Sequence[int]) -> dict[int, int]:
        expr, params = bucket_expr("created_at", bounds)
        return {
            int(b): int(n)
            for b, n in self.tx.execute(
                f"SELECT {expr} AS b, COUNT(*) FROM users WHERE status <> ? AND created_at >= ? AND created_at < ? "
                "GROUP BY b",
                [*params, "merged", bounds[0], bounds[-1]],
            )
        }

    def _masks(self, table: str, column: str, extra: str, bounds: Sequence[int],
               chunks: list[int]) -> tuple[str, list[Any]]:
        """Per user, the buckets they appear in as bitmasks (62 buckets per column).

        The unary ``+`` keeps the planner off the time index: scanning the
        ``(user_id, at)`` index in user order lets ``GROUP BY user_id`` stream
        without sorting millions of rows, and ``SUM(DISTINCT 1 << b)`` ORs the
        buckets of one user together."""
        expr, params = bucket_expr(column, bounds)
        masks = ", ".join(
            f"CAST(SUM(DISTINCT CASE WHEN b >= {j} AND b < {j + 62} THEN CAST(1 AS BIGINT) << (b - {j}) ELSE 0 END) "
            f"AS BIGINT) AS m{j // 62}"
            for j in chunks
        )
        sql = (f"SELECT user_id, {masks} FROM (SELECT user_id, {expr} AS b FROM {table} "
               f"WHERE +{column} >= ? AND +{column} < ?{extra}) x GROUP BY user_id")
        return sql, [*params, bounds[0], bounds[-1]]

    def cohort_activity(self, bounds: Sequence[int], metric: str) -> dict[tuple[int, int], int]:
        chunks = list(range(0, len(bounds) - 1, 62))
        cohort, cohort_params = bucket_expr("u.created_at", bounds)
        sql, params = self._masks("orders", "paid_at", " AND (refunded < total OR total = 0)", bounds, chunks)
        columns = ", ".join(f"m{k}" for k in range(len(chunks)))
        if metric == "active":
            # Each source yields at most one row per user, so a user's masks OR together as MAX | MIN:
            # grouping the UNION ALL of the two per-user aggregates once more is cheaper than LEFT JOINing
            # both onto every user created in the range.
            events, event_params = self._masks("user_events", "at", "", bounds, chunks)
            merged = ", ".join(f"MAX(m{k}) | MIN(m{k}) AS m{k}" for k in range(len(chunks)))
            sql = f"SELECT user_id, {merged} FROM ({events} UNION ALL {sql}) s GROUP BY user_id"
            params = [*event_params, *params]
        sql = (
            f"SELECT {cohort} AS b, {columns}, COUNT(*) FROM ({sql}) a JOIN users u ON u.id = a.user_id "
            f"WHERE u.status <> ? AND u.created_at >= ? AND u.created_at < ? GROUP BY b, {columns}"
        )
        cells: dict[tuple[int, int], int] = {}
        for row in self.tx.execute(sql, [*cohort_params, *params, "merged", bounds[0], bounds[-1]]):
            cohort_index, users = int(row[0]), int(row[-1])
            for k, mask in enumerate(row[1:-1]):
                # Visit only the set bits at or after the cohort's own bucket (a few per row).
                offset = 62 * k
                mask = int(mask)
                if cohort_index > offset:
                    mask &= ~((1 << (cohort_index - offset)) - 1)
                while mask:
                    low = mask & -mask
                    key = (cohort_index, offset + low.bit_length() - 1)
                    cells[key] = cells.get(key, 0) + users
                    mask ^= low
        return cells

    def cohort_matrix(
        self, bounds: Sequence[int], metric: str
    ) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
        sources = (EVENTS, ORDERS) if metric == "active" else (ORDERS,)
        active = ActivitySlots(self.tx).active(sources, bounds)
        if active is None:
            return super().cohort_matrix(bounds, metric)
        members = self._cohort_members(bounds)
        cells: dict[tuple[int, int], int] = {}
        for i, cohort in members.items():
            for j in range(i, len(active)):
                users = cohort.intersection_cardinality(active[j])
                if users:
                    cells[i, j] = users
        return {i: len(cohort) for i, cohort in members.items()}, cells

    def activity(self, bounds: Sequence[int], metric: str) -> list[BitMap] | None:
        return ActivitySlots(self.tx).active((EVENTS, ORDERS) if metric == "active" else (ORDERS,), bounds)

    def activity_slots(self, metric: str, slots: Sequence[int] | None) -> tuple[int, dict[int, BitMap]] | None:
        rollup = ActivitySlots(self.tx)
        if not rollup.is_current():
            return None
        return SLOT_US, rollup.slots((EVENTS, ORDERS) if metric == "active" else (ORDERS,), slots)

    def _cohort_members(self, bounds: Sequence[int]) -> dict[int, BitMap]:
        expr, params = bucket_expr("created_at", bounds)
        return {
            int(b): BitMap(json.loads(ids))
            for b, ids in self.tx.execute(
                f"SELECT {expr} AS b, {self.tx.dialect.json_ids('id')} FROM users "
                "WHERE status <> ? AND created_at >= ? AND created_at < ? GROUP BY b",
                [*params, "merged", bounds[0], bounds[-1]],
            )
        }

    def reindex(self) -> None:
        ActivitySlots(self.tx).rebuild()

    # -- per-user facts ---------------------------------------------------------------------------
    def _for_users(self, sql: str, column: str, user_ids: Sequence[int] | None, params: Sequence[Any] = (),
                   tail: str = "") -> list[Any]:
        """Rows of ``sql`` (ending in a ``WHERE`` clause) for every user, or for ``user_ids`` in chunks."""
        if user_ids is None:
            return list(self.tx.execute(f"{sql} {tail}", params))
        rows: list[Any] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            rows.extend(self.tx.execute(f"{sql} AND {column} IN ({marks}) {tail}", [*params, *chunk]))
        return rows

    def user_rows(
        self, user_ids: Sequence[int] | None
    ) -> list[tuple[int, int, bool, str | None, str | None, str | None]]:
        rows = self._for_users(
            "SELECT id, created_at, status = ?, source, source_campaign, source_state FROM users WHERE 1 = 1", "id",
            user_ids, ["merged"], "ORDER BY id")
        if user_ids is None:
            # Every user, as fetched (the merged flag may be 0/1): a million rows with no conversion per row.
            return rows
        return [(int(u), int(c), bool(m), s, sc, ss) for u, c, m, s, sc, ss in rows]

    def order_rows(
        self, order_ids: Sequence[int] | None, user_ids: Sequence[int] = ()
    ) -> list[tuple[int, int, int, int, bool, str | None]]:
        select = (f"SELECT o.id, o.user_id, o.paid_at, o.total - o.refunded, {_COUNTED}, o.channel "
                  "FROM orders o WHERE 1 = 1")
        if order_ids is None:
            # Every order, as fetched: a million rows with no conversion per row.
            everything: list[tuple[int, int, int, int, bool, str | None]] = list(
                self.tx.execute(f"{select} ORDER BY o.id"))
            return everything
        rows = self._for_users(select, "o.id", order_ids)
        if user_ids:
            rows += self._for_users(select, "o.user_id", user_ids)
        return sorted({int(r[0]): (int(r[0]), int(r[1]), int(r[2]), int(r[3]), bool(r[4]), r[5])
                       for r in rows}.values())

    def first_links(self, kind: str, user_ids: Sequence[int] | None) -> list[tuple[int, int]]:
        rows = self._for_users("SELECT user_id, MIN(linked_at) FROM identities WHERE kind = ?", "user_id",
                               user_ids, [kind], "GROUP BY user_id")
        return [(int(u), int(at)) for u, at in rows]

    def first_events(self, kind: str, user_ids: Sequence[int] | None) -> list[tuple[int, int]]:
        rows = self._for_users("SELECT user_id, MIN(at) FROM user_events WHERE kind = ?", "user_id", user_ids,
                               [kind], "GROUP BY user_id")
        return [(int(u), int(at)) for u, at in rows]

    def counted_orders(self, user_ids: Sequence[int] | None) -> list[tuple[int, int, int]]:
        # Plain integer columns on every backend: the rows are returned as fetched (a million of them).
        return self._for_users(
            f"SELECT o.user_id, o.paid_at, o.total - o.refunded FROM orders o WHERE {_COUNTED}", "o.user_id",
            user_ids, (), "ORDER BY o.user_id, o.paid_at")

    def event_rows(
        self, event_ids: Sequence[int] | None, user_ids: Sequence[int] = ()
    ) -> list[tuple[int, int, str, int]]:
        select = "SELECT e.id, e.user_id, e.kind, e.at FROM user_events e WHERE 1 = 1"
        if event_ids is None:
            everything: list[tuple[int, int, str, int]] = list(self.tx.execute(f"{select} ORDER BY e.id"))
            return everything
        rows = self._for_users(select, "e.id", event_ids)
        if user_ids:
            rows += self._for_users(select, "e.user_id", user_ids)
        return sorted({int(r[0]): (int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows}.values())

    def order_line_items(self, order_ids: Sequence[int] | None) -> list[tuple[int, str, int]]:
        rows = self._for_users("SELECT order_id, sku, qty - refunded_qty FROM order_lines WHERE 1 = 1", "order_id",
                               order_ids, (), "ORDER BY order_id, line_no")
        return [(int(o), str(s), int(q)) for o, s, q in rows]

    def event_items(self, event_ids: Sequence[int] | None, kinds: Sequence[str]) -> list[tuple[int, str]]:
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        sku = self.tx.dialect.json_text("properties", "sku")
        rows = self._for_users(f"SELECT id, {sku} FROM user_events WHERE kind IN ({marks})", "id", event_ids, kinds,
                               "ORDER BY id")
        return [(int(event_id), str(value)) for event_id, value in rows if value]

    def erased_users(self) -> list[int]:
        return [int(u) for u, in self.tx.execute("SELECT id FROM users WHERE status = ? ORDER BY id", ["erased"])]

    def log_changes(
        self, after: int, upto: int, types: Sequence[str], limit: int
    ) -> list[tuple[int, str, int | None, int, str]]:
        marks = ",".join("?" * len(types))
        rows: list[tuple[int, str, int | None, int, str]] = self.tx.execute(
            f"SELECT position, type, user_id, occurred_at, payload FROM events WHERE position > ? AND position <= ? "
            f"AND type IN ({marks}) ORDER BY position LIMIT ?", [after, upto, *types, limit]).fetchall()
        return rows

    def first_invites(self) -> list[tuple[int, int]]:
        return [(int(u), int(at)) for u, at in self.tx.execute(
            "SELECT inviter_id, MIN(bound_at) FROM referral_nodes WHERE inviter_id IS NOT NULL AND status = ? "
            "AND bound_at IS NOT NULL GROUP BY inviter_id", ["active"])]

    # -- orders ---------------------------------------------------------------------------------
    def buyer_history(self, until: int) -> list[tuple[int, int, int | None]]:
        return [
            (int(u), int(first), None if second is None else int(second))
            for u, first, second in self.tx.execute(
                "SELECT user_id, MIN(CASE WHEN rn = 1 THEN paid_at END), MIN(CASE WHEN rn = 2 THEN paid_at END) "
                "FROM (SELECT o.user_id, o.paid_at, ROW_NUMBER() OVER (PARTITION BY o.user_id "
                f"ORDER BY o.paid_at, o.id) AS rn FROM orders o WHERE o.paid_at < ? AND {_COUNTED}) ranked "
                "WHERE rn <= 2 GROUP BY user_id ORDER BY user_id",
                [until],
            )
        ]

    def buyer_values(self, until: int) -> list[tuple[int, int, int, int]]:
        # Every column is an integer on every backend (the CAST turns PostgreSQL's numeric SUM back
        # into bigint), so the rows are returned as fetched: no per-row conversion for a million buyers.
        rows: list[tuple[int, int, int, int]] = self.tx.execute(
            "SELECT o.user_id, MAX(o.paid_at), COUNT(*), CAST(SUM(o.total - o.refunded) AS BIGINT) FROM orders o "
            f"WHERE +o.paid_at < ? AND {_COUNTED} GROUP BY o.user_id ORDER BY o.user_id",
            [until],
        ).fetchall()
        return rows

    def order_totals(
        self, since: int | None, until: int, by: str | None, bounds: Sequence[int] = ()
    ) -> list[tuple[str | int | None, int, int, int]]:
        where, params = _range("o.paid_at", since, until)
        join = ""
        key_params: list[int] = []
        if by is None:
            key = "NULL"
        elif by == "channel":
            key = "o.channel"
        elif by == "source":
            key, join = "u.source", "JOIN users u ON u.id = o.user_id "
        else:
            key, key_params = bucket_expr("o.paid_at", bounds)
            where += " AND o.paid_at >= ? AND o.paid_at < ?"
            params += [bounds[0], bounds[-1]]
        # No breakdown: one aggregate row (zeros when nothing matched) rather than grouping by a constant.
        group = "" if by is None else " GROUP BY k"
        sql = (
            f"SELECT {key} AS k, COUNT(*), COUNT(DISTINCT o.user_id), COALESCE(SUM(o.total - o.refunded), 0) "
            f"FROM orders o {join}"
            f"WHERE {where} AND {_COUNTED}{group}"
        )
        return [
            (k if k is None or isinstance(k, str) else int(k), int(n), int(b), int(s))
            for k, n, b, s in self.tx.execute(sql, [*key_params, *params])
        ]

    def buyers_by_bucket(self, bounds: Sequence[int]) -> list[tuple[int, bool, int, int, int]]:
        paid, paid_params = bucket_expr("o.paid_at", bounds)
        first, first_params = bucket_expr("f.first", bounds)
        sql = (
            f"SELECT b, is_new, COUNT(DISTINCT user_id), COUNT(*), SUM(net) FROM ("
            f"SELECT o.user_id, {paid} AS b, CASE WHEN f.first >= ? AND {first} = {paid} THEN 1 ELSE 0 END AS is_new, "
            "o.total - o.refunded AS net FROM orders o JOIN (SELECT o.user_id, MIN(o.paid_at) AS first FROM orders o "
            f"WHERE {_COUNTED} GROUP BY o.user_id) f ON f.user_id = o.user_id "
            f"WHERE o.paid_at >= ? AND o.paid_at < ? AND {_COUNTED}) tagged GROUP BY b, is_new"
        )
        params = [*paid_params, bounds[0], *first_params, *paid_params, bounds[0], bounds[-1]]
        return [
            (int(b), bool(new), int(u), int(n), int(s))
            for b, new, u, n, s in self.tx.execute(sql, params)
        ]
