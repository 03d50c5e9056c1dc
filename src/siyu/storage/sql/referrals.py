"""The referral graph in SQL: materialized ancestor paths plus downline counters.

Every user in the graph has a row whose ``path`` lists the ids from the root
down to the user (``"7/12/40/"``). A downline is then one range scan on the
path index (``path`` in ``["7/12/", "7/120")`` — ``'0'`` follows ``'/'``, so
the range holds exactly the paths that start with ``"7/12/"``), an upline is
parsing one string, and ``downline`` counters on every row make a downline
size one row read. Attaching or detaching a subtree rewrites the paths under
it and adjusts the counters of at most ``depth`` ancestors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ...models.referrals import Binding, BindingChange, Hold, InviteCode, ReferralCampaign
from ..contracts.referrals import ReferralStore
from ._where import where

if TYPE_CHECKING:
    from .backend import SqlTransaction

_BINDING = "user_id, inviter_id, campaign, channel_state, code, bound_at, via, status, device"


def _ids(path: str) -> list[int]:
    return [int(part) for part in path.split("/") if part]


def _upper(prefix: str) -> str:
    return prefix[:-1] + "0"


def _binding_columns(b: Binding | None) -> tuple[Any, ...]:
    if b is None:
        return (None,) * 7
    return (b.campaign, b.channel_state, b.code, to_us(b.bound_at), b.via, b.status, b.device)


def _binding(row: Sequence[Any]) -> Binding:
    return Binding(
        invitee_id=row[0], inviter_id=row[1], campaign=row[2], channel_state=row[3], code=row[4],
        bound_at=from_us_required(row[5]), via=row[6], status=row[7], device=row[8],
    )


def _hold(row: Sequence[Any]) -> Hold:
    return Hold(
        id=row[0], kind=row[1], subject_id=row[2], user_id=row[3], reasons=tuple(json.loads(row[4])),
        status=row[5], created_at=from_us_required(row[6]), decided_at=from_us(row[7]), decided_by=row[8],
    )


class SqlReferralStore(ReferralStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- campaigns and codes --------------------------------------------------------
    def save_campaign(self, campaign: ReferralCampaign, at: datetime) -> None:
        self.tx.execute(
            "INSERT INTO referral_campaigns (name, starts_at, ends_at, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET starts_at = excluded.starts_at, ends_at = excluded.ends_at",
            (campaign.name, _us(campaign.starts_at), _us(campaign.ends_at), to_us(at)),
        )

    def campaign(self, name: str) -> ReferralCampaign | None:
        row = self.tx.execute(
            "SELECT name, starts_at, ends_at FROM referral_campaigns WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else ReferralCampaign(name=row[0], starts_at=from_us(row[1]),
                                                         ends_at=from_us(row[2]))

    def _code(self, row: Sequence[Any] | None) -> InviteCode | None:
        if row is None:
            return None
        return InviteCode(code=row[0], inviter_id=row[1], campaign=row[2] or None, channel_state=row[3] or None,
                          created_at=from_us_required(row[4]))

    def code_for(self, inviter_id: int, campaign: str | None, channel_state: str | None) -> InviteCode | None:
        return self._code(self.tx.execute(
            "SELECT code, inviter_id, campaign, channel_state, created_at FROM referral_codes "
            "WHERE inviter_id = ? AND campaign = ? AND channel_state = ?",
            (inviter_id, campaign or "", channel_state or ""),
        ).fetchone())

    def add_code(self, code: InviteCode) -> None:
        self.tx.execute(
            "INSERT INTO referral_codes (code, inviter_id, campaign, channel_state, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (code.code, code.inviter_id, code.campaign or "", code.channel_state or "", to_us(code.created_at)),
        )

    def get_code(self, code: str) -> InviteCode | None:
        return self._code(self.tx.execute(
            "SELECT code, inviter_id, campaign, channel_state, created_at FROM referral_codes WHERE code = ?",
            (code,),
        ).fetchone())

    def code_stats(self, campaign: str | None) -> tuple[int, int]:
        sql = "SELECT COUNT(*), COUNT(DISTINCT inviter_id) FROM referral_codes"
        if campaign is None:
            row = self.tx.execute(sql).fetchone()
        else:
            row = self.tx.execute(sql + " WHERE campaign = ?", (campaign,)).fetchone()
        return int(row[0]), int(row[1])

    # -- the graph ----------------------------------------------------------------------
    def lock(self, user_id: int) -> None:
        self.tx.users.lock(user_id)

    def _node(self, user_id: int) -> tuple[str, int, int] | None:
        row = self.tx.execute(
            "SELECT path, depth, downline FROM referral_nodes WHERE user_id = ?", (user_id,)
        ).fetchone()
        return None if row is None else (row[0], int(row[1]), int(row[2]))

    def _ensure_root(self, user_id: int) -> tuple[str, int, int]:
        node = self._node(user_id)
        if node is None:
            node = (f"{user_id}/", 0, 0)
            self.tx.execute(
                "INSERT INTO referral_nodes (user_id, path, depth, downline) VALUES (?, ?, 0, 0)",
                (user_id, node[0]),
            )
        return node

    def binding(self, invitee_id: int) -> Binding | None:
        row = self.tx.execute(
            f"SELECT {_BINDING} FROM referral_nodes WHERE user_id = ? AND inviter_id IS NOT NULL", (invitee_id,)
        ).fetchone()
        return None if row is None else _binding(row)

    def bound(self, user_ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            found.update(int(r[0]) for r in self.tx.execute(
                f"SELECT user_id FROM referral_nodes WHERE inviter_id IS NOT NULL AND user_id IN ({marks})", chunk))
        return found

    def _move_subtree(self, old_prefix: str, new_prefix: str, depth_delta: int) -> None:
        self.tx.execute(
            "UPDATE referral_nodes SET path = ? || substr(path, ?), depth = depth + ? "
            "WHERE path >= ? AND path < ?",
            (new_prefix, len(old_prefix) + 1, depth_delta, old_prefix, _upper(old_prefix)),
        )

    def _add_to_ancestors(self, ancestors: list[int], delta: int) -> None:
        for marks, chunk in self.tx.in_chunks(ancestors):
            self.tx.execute(f"UPDATE referral_nodes SET downline = downline + ? WHERE user_id IN ({marks})",
                            [delta, *chunk])

    def attach(self, binding: Binding) -> None:
        parent_path, parent_depth, _ = self._ensure_root(binding.inviter_id)
        own_path, own_depth, own_downline = self._ensure_root(binding.invitee_id)
        new_path = f"{parent_path}{binding.invitee_id}/"
        self._move_subtree(own_path, new_path, parent_depth + 1 - own_depth)
        self.tx.execute(
            "UPDATE referral_nodes SET inviter_id = ?, campaign = ?, channel_state = ?, code = ?, bound_at = ?, "
            "via = ?, status = ?, device = ? WHERE user_id = ?",
            (binding.inviter_id, binding.campaign, binding.channel_state, binding.code, to_us(binding.bound_at),
             binding.via, binding.status, binding.device, binding.invitee_id),
        )
        self._add_to_ancestors(_ids(parent_path), own_downline + 1)

    def attach_many(self, bindings: Sequence[Binding]) -> None:
        if not bindings:
            return
        new_parent = {b.invitee_id: b for b in bindings}
        involved_set = set(new_parent) | {b.inviter_id for b in bindings}
        involved = sorted(involved_set)
        stored = self._paths(involved)
        roots = {_ids(path)[0] for path in stored.values()}
        sizes = self._downlines(sorted(roots))
        # Whole old trees are rebuilt: each new edge joins the invitee's tree (the invitee is its
        # root) to the inviter's. Trees untouched by the import keep their rows as they are.
        parent: dict[int, int | None] = {u: None for u in involved if u not in stored}
        for root in roots:
            if sizes.get(root, 0) == 0:
                parent[root] = None
                continue
            prefix = f"{root}/"
            for uid, inviter in self.tx.execute(
                "SELECT user_id, inviter_id FROM referral_nodes WHERE path >= ? AND path < ?",
                (prefix, _upper(prefix)),
            ):
                parent[int(uid)] = None if inviter is None else int(inviter)
        for invitee, b in new_parent.items():
            parent[invitee] = b.inviter_id
        depth: dict[int, int] = {}
        path: dict[int, str] = {}
        for start in parent:
            chain = []
            node: int | None = start
            while node is not None and node not in depth:
                chain.append(node)
                node = parent[node]
            prefix, level = ("", -1) if node is None else (path[node], depth[node])
            for member in reversed(chain):
                level += 1
                prefix = f"{prefix}{member}/"
                depth[member], path[member] = level, prefix
        downline = dict.fromkeys(parent, 0)
        for node in sorted(parent, key=depth.__getitem__, reverse=True):
            up = parent[node]
            if up is not None:
                downline[up] += downline[node] + 1
        existing = set(stored) | roots | {u for u in parent if u not in involved_set}
        fresh = [u for u in parent if u not in existing]
        self.tx.executemany(
            "INSERT INTO referral_nodes (user_id, inviter_id, path, depth, downline, campaign, channel_state, code, "
            "bound_at, via, status, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(u, parent[u], path[u], depth[u], downline[u], *_binding_columns(new_parent.get(u))) for u in fresh],
        )
        old = [u for u in parent if u in existing]
        self.tx.executemany(
            "UPDATE referral_nodes SET path = ?, depth = ?, downline = ? WHERE user_id = ?",
            [(path[u], depth[u], downline[u], u) for u in old],
        )
        self.tx.executemany(
            "UPDATE referral_nodes SET inviter_id = ?, campaign = ?, channel_state = ?, code = ?, bound_at = ?, "
            "via = ?, status = ?, device = ? WHERE user_id = ?",
            [(b.inviter_id, *_binding_columns(b), b.invitee_id) for u, b in new_parent.items() if u in existing],
        )

    def _paths(self, user_ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for marks, chunk in self.tx.in_chunks(list(user_ids)):
            for uid, path in self.tx.execute(
                    f"SELECT user_id, path FROM referral_nodes WHERE user_id IN ({marks})", chunk):
                found[int(uid)] = path
        return found

    def _downlines(self, user_ids: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for marks, chunk in self.tx.in_chunks(list(user_ids)):
            for uid, size in self.tx.execute(
                    f"SELECT user_id, downline FROM referral_nodes WHERE user_id IN ({marks})", chunk):
                found[int(uid)] = int(size)
        return found

    def roots(self, user_ids: Sequence[int]) -> dict[int, int]:
        stored = self._paths(sorted(set(user_ids)))
        return {u: _ids(stored[u])[0] if u in stored else u for u in user_ids}

    def parents(self) -> tuple[list[int], list[int]]:
        rows = self.tx.execute("SELECT user_id, inviter_id FROM referral_nodes ORDER BY user_id").fetchall()
        return [r[0] for r in rows], [r[1] or 0 for r in rows]

    def detach(self, invitee_id: int) -> None:
        node = self._node(invitee_id)
        if node is None:
            return
        path, depth, downline = node
        ancestors = _ids(path)[:-1]
        if not ancestors:
            return
        self._move_subtree(path, f"{invitee_id}/", -depth)
        self.tx.execute(
            "UPDATE referral_nodes SET inviter_id = NULL, campaign = NULL, channel_state = NULL, code = NULL, "
            "bound_at = NULL, via = NULL, status = NULL, device = NULL WHERE user_id = ?",
            (invitee_id,),
        )
        self._add_to_ancestors(ancestors, -(downline + 1))

    def set_status(self, invitee_id: int, status: str) -> None:
        self.tx.execute("UPDATE referral_nodes SET status = ? WHERE user_id = ?", (status, invitee_id))

    def upline(self, user_id: int, levels: int | None) -> list[int]:
        node = self._node(user_id)
        if node is None:
            return []
        ancestors = _ids(node[0])[:-1][::-1]
        return ancestors if levels is None else ancestors[:levels]

    def children(self, user_ids: Sequence[int]) -> list[int]:
        found: list[int] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            found.extend(r[0] for r in self.tx.execute(
                f"SELECT user_id FROM referral_nodes WHERE inviter_id IN ({marks})", chunk))
        return sorted(found)

    def downline(self, user_id: int) -> list[int]:
        node = self._node(user_id)
        if node is None:
            return []
        prefix = node[0]
        return sorted(
            r[0] for r in self.tx.execute(
                "SELECT user_id FROM referral_nodes WHERE path > ? AND path < ?", (prefix, _upper(prefix))
            )
        )

    def downline_size(self, user_id: int) -> int:
        row = self.tx.execute("SELECT downline FROM referral_nodes WHERE user_id = ?", (user_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def bindings(
        self,
        *,
        campaign: str | None = None,
        inviter_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Binding]:
        where: list[str] = ["inviter_id IS NOT NULL"]
        params: list[Any] = []
        for clause, value in (("campaign = ?", campaign), ("inviter_id = ?", inviter_id),
                              ("bound_at >= ?", _us(since)), ("bound_at <= ?", _us(until))):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_BINDING} FROM referral_nodes WHERE {' AND '.join(where)} ORDER BY bound_at, user_id"
        return [_binding(r) for r in self.tx.execute(sql, params)]

    def count_bound_since(self, inviter_id: int, since: datetime) -> int:
        row = self.tx.execute(
            "SELECT COUNT(*) FROM referral_nodes WHERE inviter_id = ? AND bound_at >= ?", (inviter_id, to_us(since))
        ).fetchone()
        return int(row[0])

    def leaderboard(self, campaign: str | None, top: int, statuses: Sequence[str]) -> list[tuple[int, int]]:
        marks = ",".join("?" * len(statuses))
        where = f"inviter_id IS NOT NULL AND status IN ({marks})"
        params: list[Any] = list(statuses)
        if campaign is not None:
            where += " AND campaign = ?"
            params.append(campaign)
        rows = self.tx.execute(
            f"SELECT inviter_id, COUNT(*) FROM referral_nodes WHERE {where} GROUP BY inviter_id "
            "ORDER BY COUNT(*) DESC, inviter_id LIMIT ?",
            [*params, top],
        )
        return [(int(a), int(b)) for a, b in rows]

    def log_change(self, change: BindingChange) -> None:
        self.tx.execute(
            "INSERT INTO referral_log (invitee_id, old_inviter_id, new_inviter_id, at, reason) VALUES (?, ?, ?, ?, ?)",
            (change.invitee_id, change.old_inviter_id, change.new_inviter_id, to_us(change.at), change.reason),
        )

    def log_changes(self, changes: Sequence[BindingChange]) -> None:
        self.tx.executemany(
            "INSERT INTO referral_log (invitee_id, old_inviter_id, new_inviter_id, at, reason) VALUES (?, ?, ?, ?, ?)",
            [(c.invitee_id, c.old_inviter_id, c.new_inviter_id, to_us(c.at), c.reason) for c in changes],
        )

    def changes(self, invitee_id: int) -> list[BindingChange]:
        return [
            BindingChange(invitee_id=r[0], old_inviter_id=r[1], new_inviter_id=r[2], at=from_us_required(r[3]),
                          reason=r[4])
            for r in self.tx.execute(
                "SELECT invitee_id, old_inviter_id, new_inviter_id, at, reason FROM referral_log "
                "WHERE invitee_id = ? ORDER BY id", (invitee_id,))
        ]

    # -- facts ---------------------------------------------------------------------------
    def add_action(self, user_id: int, action: str, at: datetime) -> bool:
        row = self.tx.execute(
            "INSERT INTO referral_actions (user_id, action, at) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id, action) DO NOTHING RETURNING user_id",
            (user_id, action, to_us(at)),
        ).fetchone()
        return row is not None

    def add_actions(self, rows: Sequence[tuple[int, str, datetime]]) -> None:
        if rows:
            self.tx.executemany(
                "INSERT INTO referral_actions (user_id, action, at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, action) DO NOTHING", [(u, a, to_us(at)) for u, a, at in rows])

    def actions(self, user_ids: Sequence[int], action: str | None) -> dict[int, datetime]:
        found: dict[int, int] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            if action is None:
                rows = self.tx.execute(
                    f"SELECT user_id, MIN(at) FROM referral_actions WHERE user_id IN ({marks}) GROUP BY user_id",
                    chunk)
            else:
                rows = self.tx.execute(
                    f"SELECT user_id, at FROM referral_actions WHERE action = ? AND user_id IN ({marks})",
                    [action, *chunk])
            found.update({int(u): int(a) for u, a in rows})
        return {u: from_us_required(a) for u, a in found.items()}

    def set_left(self, user_id: int, at: datetime | None) -> None:
        if at is None:
            self.tx.execute("DELETE FROM referral_leaves WHERE user_id = ?", (user_id,))
        else:
            self.tx.execute(
                "INSERT INTO referral_leaves (user_id, at) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
                (user_id, to_us(at)),
            )

    def left(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        found: dict[int, datetime] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            for u, a in self.tx.execute(f"SELECT user_id, at FROM referral_leaves WHERE user_id IN ({marks})", chunk):
                found[int(u)] = from_us_required(a)
        return found

    def add_customer(self, user_id: int, at: datetime) -> None:
        self.tx.execute(
            "INSERT INTO referral_customers (user_id, at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING",
            (user_id, to_us(at)),
        )

    def add_customers(self, rows: Sequence[tuple[int, datetime]]) -> None:
        if rows:
            self.tx.executemany(
                "INSERT INTO referral_customers (user_id, at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING",
                [(u, to_us(at)) for u, at in rows])

    def customers(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        found: dict[int, datetime] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            for u, a in self.tx.execute(
                    f"SELECT user_id, at FROM referral_customers WHERE user_id IN ({marks})", chunk):
                found[int(u)] = from_us_required(a)
        return found

    def add_purchase(self, order_id: int, user_id: int, paid_at: datetime, total_fen: int) -> bool:
        row = self.tx.execute(
            "INSERT INTO referral_purchases (order_id, user_id, paid_at, total_fen, refunded_fen) "
            "VALUES (?, ?, ?, ?, 0) ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
            (order_id, user_id, to_us(paid_at), total_fen),
        ).fetchone()
        return row is not None

    def add_purchases(self, rows: Sequence[tuple[int, int, datetime, int]]) -> list[int]:
        first: dict[int, tuple[int, int, datetime, int]] = {}
        for row in rows:
            first.setdefault(row[0], row)
        for marks, chunk in self.tx.in_chunks(sorted(first)):
            for (order_id,) in self.tx.execute(
                    f"SELECT order_id FROM referral_purchases WHERE order_id IN ({marks})", chunk):
                del first[int(order_id)]
        if first:
            self.tx.executemany(
                "INSERT INTO referral_purchases (order_id, user_id, paid_at, total_fen, refunded_fen) "
                "VALUES (?, ?, ?, ?, 0) ON CONFLICT (order_id) DO NOTHING",
                [(o, u, to_us(at), total) for o, u, at, total in first.values()])
        return list(first)

    def refund_purchase(self, order_id: int, amount_fen: int) -> None:
        self.tx.execute("UPDATE referral_purchases SET refunded_fen = refunded_fen + ? WHERE order_id = ?",
                        (amount_fen, order_id))

    def purchases(self, user_ids: Sequence[int]) -> dict[int, list[tuple[datetime, int, int]]]:
        found: dict[int, list[tuple[datetime, int, int]]] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            for u, at, total, refunded in self.tx.execute(
                    f"SELECT user_id, paid_at, total_fen, refunded_fen FROM referral_purchases "
                    f"WHERE user_id IN ({marks}) ORDER BY paid_at", chunk):
                found.setdefault(int(u), []).append((from_us_required(at), int(total), int(refunded)))
        return found

    def purchase_orders(self, user_id: int) -> list[int]:
        return [int(r[0]) for r in self.tx.execute(
            "SELECT order_id FROM referral_purchases WHERE user_id = ? ORDER BY order_id", (user_id,))]

    def move_purchases(self, order_ids: Sequence[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(order_ids)):
            self.tx.execute(f"UPDATE referral_purchases SET user_id = ? WHERE order_id IN ({marks})",
                            [user_id, *chunk])

    def add_funnel(self, campaign: str, channel_state: str, stage: str, count: int) -> None:
        self.tx.execute(
            "INSERT INTO referral_funnel (campaign, channel_state, stage, n) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (campaign, channel_state, stage) DO UPDATE SET n = referral_funnel.n + excluded.n",
            (campaign, channel_state, stage, count),
        )

    def funnel(self, campaign: str | None) -> dict[tuple[str, str, str], int]:
        if campaign is None:
            rows = self.tx.execute("SELECT campaign, channel_state, stage, n FROM referral_funnel")
        else:
            rows = self.tx.execute(
                "SELECT campaign, channel_state, stage, n FROM referral_funnel WHERE campaign = ?", (campaign,))
        return {(c, s, g): int(n) for c, s, g, n in rows}

    def add_share(self, campaign: str, channel_state: str, user_id: int, count: int) -> None:
        self.tx.execute(
            "INSERT INTO referral_shares (campaign, channel_state, user_id, n) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (campaign, user_id, channel_state) DO UPDATE SET n = referral_shares.n + excluded.n",
            (campaign, channel_state, user_id, count),
        )

    def sharers(self, campaign: str | None) -> set[int]:
        if campaign is None:
            rows = self.tx.execute("SELECT DISTINCT user_id FROM referral_shares")
        else:
            rows = self.tx.execute("SELECT DISTINCT user_id FROM referral_shares WHERE campaign = ?", (campaign,))
        return {int(r[0]) for r in rows}

    def erase_devices(self, user_ids: Sequence[int]) -> int:
        erased = 0
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            cursor = self.tx.execute(
                f"UPDATE referral_nodes SET device = NULL WHERE device IS NOT NULL AND user_id IN ({marks})", chunk)
            erased += max(cursor.rowcount, 0)
        return erased

    # -- holds ---------------------------------------------------------------------------
    def add_hold(self, kind: str, subject_id: int, user_id: int, reasons: Sequence[str], at: datetime) -> int:
        row = self.tx.execute(
            "INSERT INTO referral_holds (kind, subject_id, user_id, reasons, status, created_at) "
            "VALUES (?, ?, ?, ?, 'held', ?) RETURNING id",
            (kind, subject_id, user_id, json.dumps(list(reasons), ensure_ascii=False), to_us(at)),
        ).fetchone()
        return int(row[0])

    _HOLD = "id, kind, subject_id, user_id, reasons, status, created_at, decided_at, decided_by"

    def get_hold(self, hold_id: int) -> Hold | None:
        row = self.tx.execute(f"SELECT {self._HOLD} FROM referral_holds WHERE id = ?", (hold_id,)).fetchone()
        return None if row is None else _hold(row)

    def holds(self, status: str | None, kind: str | None) -> list[Hold]:
        condition, params = where(("status = ?", status), ("kind = ?", kind))
        return [_hold(r) for r in self.tx.execute(
            f"SELECT {self._HOLD} FROM referral_holds WHERE {condition} ORDER BY id", params)]

    def decide_hold(self, hold_id: int, status: str, at: datetime, by: str) -> None:
        self.tx.execute(
            "UPDATE referral_holds SET status = ?, decided_at = ?, decided_by = ? WHERE id = ?",
            (status, to_us(at), by, hold_id),
        )

    def move_holds(self, hold_ids: Sequence[int], *, user_id: int | None = None,
                   subject_id: int | None = None) -> None:
        for column, value in (("user_id", user_id), ("subject_id", subject_id)):
            if value is None:
                continue
            for marks, chunk in self.tx.in_chunks(list(hold_ids)):
                self.tx.execute(f"UPDATE referral_holds SET {column} = ? WHERE id IN ({marks})", [value, *chunk])


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)
