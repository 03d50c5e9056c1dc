"""Membership tiers, growth entries and tier history in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..._clock import from_us_required, to_us
from ...models.commerce import Tier, TierChange
from ..contracts.commerce import GrowthEntry, TierStore

if TYPE_CHECKING:
    from .backend import SqlTransaction


class SqlTierStore(TierStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save_tier(self, tier: Tier) -> None:
        self.tx.execute(
            "INSERT INTO tiers (name, threshold, rank, benefits) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET threshold = excluded.threshold, rank = excluded.rank, "
            "benefits = excluded.benefits",
            (tier.name, tier.threshold, tier.rank, json.dumps(tier.benefits, sort_keys=True, ensure_ascii=False)),
        )

    def delete_tier(self, name: str) -> None:
        self.tx.execute("DELETE FROM tiers WHERE name = ?", (name,))

    def tiers(self) -> list[Tier]:
        return [
            Tier(name=r[0], threshold=r[1], rank=r[2], benefits=json.loads(r[3]))
            for r in self.tx.execute("SELECT name, threshold, rank, benefits FROM tiers ORDER BY rank, threshold")
        ]

    def add_growth(self, entries: Sequence[GrowthEntry]) -> None:
        if not entries:
            return
        ids = self.tx.dialect.allocate_ids(self.tx, "tier_growth", len(entries))
        self.tx.executemany(
            "INSERT INTO tier_growth (id, user_id, amount, at, reason, ref) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, e.user_id, e.amount, to_us(e.at), e.reason, e.ref) for i, e in zip(ids, entries, strict=True)],
        )

    def growth(self, user_id: int, since: datetime | None) -> int:
        if since is None:
            row = self.tx.execute("SELECT COALESCE(SUM(amount), 0) FROM tier_growth WHERE user_id = ?",
                                  (user_id,)).fetchone()
        else:
            row = self.tx.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM tier_growth WHERE user_id = ? AND at >= ?",
                (user_id, to_us(since)),
            ).fetchone()
        return int(row[0])

    def growth_of(self, user_ids: Sequence[int], since: datetime | None) -> dict[int, int]:
        found = dict.fromkeys(user_ids, 0)
        stamp = to_us(since) if since is not None else None
        for marks, chunk in self.tx.in_chunks(sorted(found)):
            where = f"user_id IN ({marks})" + (" AND at >= ?" if stamp is not None else "")
            params = [*chunk, stamp] if stamp is not None else chunk
            for uid, total in self.tx.execute(
                f"SELECT user_id, SUM(amount) FROM tier_growth WHERE {where} GROUP BY user_id", params
            ):
                found[int(uid)] = int(total)
        return found

    def growth_by_ref(self, ref: str) -> int:
        row = self.tx.execute("SELECT COALESCE(SUM(amount), 0) FROM tier_growth WHERE ref = ?", (ref,)).fetchone()
        return int(row[0])

    def growth_since(self, since: datetime | None) -> dict[int, int]:
        where, params = ("WHERE at >= ?", (to_us(since),)) if since is not None else ("", ())
        return {
            int(u): int(total)
            for u, total in self.tx.execute(
                f"SELECT user_id, SUM(amount) FROM tier_growth {where} GROUP BY user_id", params
            )
        }

    def current(self, user_ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for marks, chunk in self.tx.in_chunks(list(user_ids)):
            for uid, tier in self.tx.execute(
                f"SELECT user_id, tier FROM tier_current WHERE user_id IN ({marks})", chunk
            ):
                found[int(uid)] = str(tier)
        return found

    def set_current(self, changes: Sequence[TierChange]) -> None:
        if not changes:
            return
        gone = [c.user_id for c in changes if c.new is None]
        for marks, chunk in self.tx.in_chunks(gone):
            self.tx.execute(f"DELETE FROM tier_current WHERE user_id IN ({marks})", chunk)
        self.tx.executemany(
            "INSERT INTO tier_current (user_id, tier, since) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier, since = excluded.since",
            [(c.user_id, c.new, to_us(c.at)) for c in changes if c.new is not None],
        )
        ids = self.tx.dialect.allocate_ids(self.tx, "tier_history", len(changes))
        self.tx.executemany(
            "INSERT INTO tier_history (id, user_id, at, old, new, growth, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, c.user_id, to_us(c.at), c.old, c.new, c.growth, c.reason) for i, c in zip(ids, changes, strict=True)],
        )

    def history(self, user_id: int) -> list[TierChange]:
        return [
            TierChange(user_id=r[0], at=from_us_required(r[1]), old=r[2], new=r[3], growth=r[4], reason=r[5])
            for r in self.tx.execute(
                "SELECT user_id, at, old, new, growth, reason FROM tier_history WHERE user_id = ? ORDER BY id",
                (user_id,),
            )
        ]

    def growth_ids(self, user_id: int, refs: Sequence[str] | None = None) -> list[int]:
        if refs is None:
            return [int(r[0]) for r in self.tx.execute("SELECT id FROM tier_growth WHERE user_id = ? ORDER BY id",
                                                         (user_id,))]
        found: list[int] = []
        for marks, chunk in self.tx.in_chunks(list(refs)):
            found.extend(int(r[0]) for r in self.tx.execute(
                f"SELECT id FROM tier_growth WHERE user_id = ? AND ref IN ({marks})", [user_id, *chunk]))
        return sorted(found)

    def move_growth(self, entry_ids: Sequence[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(entry_ids)):
            self.tx.execute(f"UPDATE tier_growth SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])
