"""Stored value, recharges, gift cards and the points mall in SQL.

Every balance moves in one ``UPDATE ... WHERE balance + delta >= 0 RETURNING``:
the statement takes the row's lock, checks and writes at once, so neither
SQLite's single writer nor PostgreSQL's row locks are needed for correctness
beyond the row itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ...models.wallet import (
    GiftCard,
    GiftCardEntry,
    Recharge,
    RechargePlan,
    RechargeTier,
    Redemption,
    Reward,
    WalletBalance,
    WalletEntry,
)
from ..contracts.wallet import PointsMallStore, WalletStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_ENTRY = "id, user_id, kind, principal, bonus, principal_after, bonus_after, ref, at, key"
_RECHARGE = "id, user_id, payment_id, plan, principal, bonus, status, method, created_at, paid_at, note"
_CARD = "id, last4, value, balance, named, status, owner_id, expires_at, created_at, sold_at, batch"
_CARD_ENTRY = "id, card_id, kind, amount, balance_before, balance_after, user_id, ref, at"
_REWARD = "id, name, spec, stock, redeemed, active, created_at"
_REDEMPTION = ("id, reward_id, user_id, qty, points, status, key, at, spend_entry_id, refund_entry_id, coupons, "
               "note, updated_at")


def _entry(r: Sequence[Any]) -> WalletEntry:
    return WalletEntry(id=r[0], user_id=r[1], kind=r[2], principal_fen=r[3], bonus_fen=r[4],
                       principal_after_fen=r[5], bonus_after_fen=r[6], ref=r[7], at=from_us_required(r[8]), key=r[9])


def _recharge(r: Sequence[Any]) -> Recharge:
    return Recharge(id=r[0], user_id=r[1], payment_id=r[2], plan=r[3], principal_fen=r[4], bonus_fen=r[5],
                    status=r[6], method=r[7], created_at=from_us_required(r[8]), paid_at=from_us(r[9]), note=r[10])


def _card(r: Sequence[Any]) -> GiftCard:
    return GiftCard(id=r[0], last4=r[1], value_fen=r[2], balance_fen=r[3], named=bool(r[4]), status=r[5],
                    owner_id=r[6], expires_at=from_us(r[7]), created_at=from_us_required(r[8]),
                    sold_at=from_us(r[9]), batch=r[10])


def _card_entry(r: Sequence[Any]) -> GiftCardEntry:
    return GiftCardEntry(id=r[0], card_id=r[1], kind=r[2], amount_fen=r[3], balance_before_fen=r[4],
                         balance_after_fen=r[5], user_id=r[6], ref=r[7], at=from_us_required(r[8]))


def _plan(r: Sequence[Any]) -> RechargePlan:
    tiers = tuple(RechargeTier(pay_fen=p, bonus_fen=b) for p, b in json.loads(r[2]))
    return RechargePlan(id=r[0], name=r[1], tiers=tiers, active=bool(r[3]), created_at=from_us(r[4]))


_REWARD_SPEC = ("kind", "points", "terms", "scope", "validity", "per_member", "per_order", "per_period", "period",
                "tiers", "coupon_template", "sku")


def _reward(r: Sequence[Any]) -> Reward:
    spec = json.loads(r[2])
    spec["tiers"] = tuple(spec.get("tiers", ()))
    return Reward(id=r[0], name=r[1], stock=r[3], redeemed=r[4], active=bool(r[5]), created_at=from_us(r[6]),
                  **{k: spec[k] for k in _REWARD_SPEC if k in spec})


def _redemption(r: Sequence[Any]) -> Redemption:
    return Redemption(id=r[0], reward_id=r[1], user_id=r[2], qty=r[3], points=r[4], status=r[5], key=r[6],
                      at=from_us_required(r[7]), spend_entry_id=r[8], refund_entry_id=r[9],
                      coupon_codes=tuple(json.loads(r[10])), note=r[11], updated_at=from_us(r[12]))


class SqlWalletStore(WalletStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- plans ----------------------------------------------------------------------
    def save_plan(self, plan: RechargePlan) -> int:
        tiers = json.dumps([[t.pay_fen, t.bonus_fen] for t in plan.tiers])
        if plan.id:
            self.tx.execute("UPDATE wallet_plans SET tiers = ?, active = ? WHERE id = ?",
                            (tiers, int(plan.active), plan.id))
            return plan.id
        [pid] = self.tx.dialect.allocate_ids(self.tx, "wallet_plans", 1)
        assert plan.created_at is not None
        self.tx.execute("INSERT INTO wallet_plans (id, name, tiers, active, created_at) VALUES (?, ?, ?, ?, ?)",
                        (pid, plan.name, tiers, int(plan.active), to_us(plan.created_at)))
        return pid

    def plan(self, name: str) -> RechargePlan | None:
        row = self.tx.execute("SELECT id, name, tiers, active, created_at FROM wallet_plans WHERE name = ?",
                              (name,)).fetchone()
        return None if row is None else _plan(row)

    def plans(self) -> list[RechargePlan]:
        rows = self.tx.execute("SELECT id, name, tiers, active, created_at FROM wallet_plans ORDER BY id")
        return [_plan(r) for r in rows]

    # -- accounts -------------------------------------------------------------------
    def balance(self, user_id: int, *, lock: bool = False) -> WalletBalance:
        if lock:
            self.tx.execute(
                "INSERT INTO wallet_accounts (user_id, principal, bonus, updated_at) VALUES (?, 0, 0, 0) "
                "ON CONFLICT (user_id) DO NOTHING", (user_id,))
        row = self.tx.execute(
            "SELECT principal, bonus FROM wallet_accounts WHERE user_id = ?" + (self.tx.dialect.row_lock if lock
                                                                                 else ""),
            (user_id,)).fetchone()
        if row is None:
            return WalletBalance(user_id=user_id)
        return WalletBalance(user_id=user_id, principal_fen=int(row[0]), bonus_fen=int(row[1]))

    def apply(self, user_id: int, principal_fen: int, bonus_fen: int, *, kind: str, ref: str, at: datetime,
              key: str | None = None) -> WalletEntry | None:
        self.tx.execute(
            "INSERT INTO wallet_accounts (user_id, principal, bonus, updated_at) VALUES (?, 0, 0, 0) "
            "ON CONFLICT (user_id) DO NOTHING", (user_id,))
        row = self.tx.execute(
            "UPDATE wallet_accounts SET principal = principal + ?, bonus = bonus + ?, updated_at = ? "
            "WHERE user_id = ? AND principal + ? >= 0 AND bonus + ? >= 0 RETURNING principal, bonus",
            (principal_fen, bonus_fen, to_us(at), user_id, principal_fen, bonus_fen)).fetchone()
        if row is None:
            return None
        [eid] = self.tx.dialect.allocate_ids(self.tx, "wallet_entries", 1)
        self.tx.execute(
            f"INSERT INTO wallet_entries ({_ENTRY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (eid, user_id, kind, principal_fen, bonus_fen, int(row[0]), int(row[1]), ref, to_us(at), key))
        return WalletEntry(id=eid, user_id=user_id, kind=kind, principal_fen=principal_fen, bonus_fen=bonus_fen,
                           principal_after_fen=int(row[0]), bonus_after_fen=int(row[1]), ref=ref, at=at, key=key)

    def entry_by_key(self, key: str) -> WalletEntry | None:
        row = self.tx.execute(f"SELECT {_ENTRY} FROM wallet_entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else _entry(row)

    def entries(self, user_id: int) -> list[WalletEntry]:
        rows = self.tx.execute(f"SELECT {_ENTRY} FROM wallet_entries WHERE user_id = ? ORDER BY id", (user_id,))
        return [_entry(r) for r in rows]

    def entries_by_ref(self, ref: str) -> list[WalletEntry]:
        rows = self.tx.execute(f"SELECT {_ENTRY} FROM wallet_entries WHERE ref = ? ORDER BY id", (ref,))
        return [_entry(r) for r in rows]

    def totals(self) -> tuple[int, int]:
        row = self.tx.execute("SELECT COALESCE(SUM(principal), 0), COALESCE(SUM(bonus), 0) "
                              "FROM wallet_accounts").fetchone()
        return int(row[0]), int(row[1])

    def ledger_totals(self, before: datetime | None = None) -> tuple[int, int]:
        where, params = ("WHERE at < ?", (to_us(before),)) if before is not None else ("", ())
        row = self.tx.execute(f"SELECT COALESCE(SUM(principal), 0), COALESCE(SUM(bonus), 0) FROM wallet_entries "
                              f"{where}", params).fetchone()
        return int(row[0]), int(row[1])

    # -- recharges ------------------------------------------------------------------
    def add_recharge(self, recharge: Recharge) -> int | None:
        [rid] = self.tx.dialect.allocate_ids(self.tx, "wallet_recharges", 1)
        row = self.tx.execute(
            f"INSERT INTO wallet_recharges ({_RECHARGE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (payment_id) DO NOTHING RETURNING id",
            (rid, recharge.user_id, recharge.payment_id, recharge.plan, recharge.principal_fen, recharge.bonus_fen,
             recharge.status, recharge.method, to_us(recharge.created_at),
             None if recharge.paid_at is None else to_us(recharge.paid_at), recharge.note)).fetchone()
        return None if row is None else int(row[0])

    def recharge(self, payment_id: str) -> Recharge | None:
        row = self.tx.execute(f"SELECT {_RECHARGE} FROM wallet_recharges WHERE payment_id = ?",
                              (payment_id,)).fetchone()
        return None if row is None else _recharge(row)

    def recharges(self, user_id: int) -> list[Recharge]:
        rows = self.tx.execute(f"SELECT {_RECHARGE} FROM wallet_recharges WHERE user_id = ? ORDER BY id",
                               (user_id,))
        return [_recharge(r) for r in rows]

    def settle_recharge(self, payment_id: str, *, status: str, at: datetime, note: str = "") -> bool:
        cursor = self.tx.execute(
            "UPDATE wallet_recharges SET status = ?, paid_at = ?, note = ? WHERE payment_id = ? AND status = 'pending'",
            (status, to_us(at), note, payment_id))
        return int(cursor.rowcount or 0) == 1

    # -- gift cards -----------------------------------------------------------------
    def add_cards(self, cards: Sequence[tuple[GiftCard, str]]) -> list[int]:
        ids = self.tx.dialect.allocate_ids(self.tx, "gift_cards", len(cards))
        self.tx.executemany(
            f"INSERT INTO gift_cards ({_CARD}, code_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(cid, c.last4, c.value_fen, c.balance_fen, int(c.named), c.status, c.owner_id,
              None if c.expires_at is None else to_us(c.expires_at), to_us(c.created_at),
              None if c.sold_at is None else to_us(c.sold_at), c.batch, code_hash)
             for cid, (c, code_hash) in zip(ids, cards, strict=True)])
        return ids

    def card(self, card_id: int) -> GiftCard | None:
        row = self.tx.execute(f"SELECT {_CARD} FROM gift_cards WHERE id = ?", (card_id,)).fetchone()
        return None if row is None else _card(row)

    def card_by_hash(self, code_hash: str) -> GiftCard | None:
        row = self.tx.execute(f"SELECT {_CARD} FROM gift_cards WHERE code_hash = ?", (code_hash,)).fetchone()
        return None if row is None else _card(row)

    def cards(self, *, batch: str | None = None, owner_id: int | None = None) -> list[GiftCard]:
        where: list[str] = []
        params: list[Any] = []
        if batch is not None:
            where.append("batch = ?")
            params.append(batch)
        if owner_id is not None:
            where.append("owner_id = ?")
            params.append(owner_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [_card(r) for r in self.tx.execute(f"SELECT {_CARD} FROM gift_cards{clause} ORDER BY id", params)]

    def activate_cards(self, card_ids: Sequence[int], at: datetime) -> int:
        changed = 0
        for marks, chunk in self.tx.in_chunks(list(card_ids)):
            cursor = self.tx.execute(
                f"UPDATE gift_cards SET status = 'active', sold_at = ? WHERE status = 'inactive' AND id IN ({marks})",
                [to_us(at), *chunk])
            changed += int(cursor.rowcount or 0)
        return changed

    def claim_card(self, card_id: int, user_id: int) -> bool:
        row = self.tx.execute(
            "UPDATE gift_cards SET owner_id = ? WHERE id = ? AND (owner_id IS NULL OR owner_id = ?) RETURNING id",
            (user_id, card_id, user_id)).fetchone()
        return row is not None

    def move_cards(self, card_ids: Sequence[int], owner_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(card_ids)):
            self.tx.execute(f"UPDATE gift_cards SET owner_id = ? WHERE id IN ({marks})", [owner_id, *chunk])

    def card_apply(self, card_id: int, amount_fen: int, *, kind: str, user_id: int | None, ref: str,
                   at: datetime) -> GiftCardEntry | None:
        row = self.tx.execute(
            "UPDATE gift_cards SET balance = balance + ? WHERE id = ? AND status = 'active' AND balance + ? >= 0 "
            "RETURNING balance", (amount_fen, card_id, amount_fen)).fetchone()
        if row is None:
            return None
        after = int(row[0])
        [eid] = self.tx.dialect.allocate_ids(self.tx, "gift_card_entries", 1)
        self.tx.execute(f"INSERT INTO gift_card_entries ({_CARD_ENTRY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (eid, card_id, kind, amount_fen, after - amount_fen, after, user_id, ref, to_us(at)))
        return GiftCardEntry(id=eid, card_id=card_id, kind=kind, amount_fen=amount_fen,
                             balance_before_fen=after - amount_fen, balance_after_fen=after, user_id=user_id,
                             ref=ref, at=at)

    def card_entries(self, card_id: int) -> list[GiftCardEntry]:
        rows = self.tx.execute(f"SELECT {_CARD_ENTRY} FROM gift_card_entries WHERE card_id = ? ORDER BY id",
                               (card_id,))
        return [_card_entry(r) for r in rows]

    def card_totals(self, before: datetime | None = None) -> int:
        if before is None:
            row = self.tx.execute("SELECT COALESCE(SUM(balance), 0) FROM gift_cards WHERE status = 'active'")
        else:
            row = self.tx.execute("SELECT COALESCE(SUM(amount), 0) FROM gift_card_entries WHERE at < ?",
                                  (to_us(before),))
        return int(row.fetchone()[0])


class SqlPointsMallStore(PointsMallStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save_reward(self, reward: Reward) -> int:
        spec = json.dumps({k: list(v) if isinstance(v := getattr(reward, k), tuple) else v for k in _REWARD_SPEC},
                          ensure_ascii=False, sort_keys=True)
        if reward.id:
            self.tx.execute("UPDATE mall_rewards SET spec = ?, stock = ?, active = ? WHERE id = ?",
                            (spec, reward.stock, int(reward.active), reward.id))
            return reward.id
        [rid] = self.tx.dialect.allocate_ids(self.tx, "mall_rewards", 1)
        assert reward.created_at is not None
        self.tx.execute(f"INSERT INTO mall_rewards ({_REWARD}) VALUES (?, ?, ?, ?, 0, ?, ?)",
                        (rid, reward.name, spec, reward.stock, int(reward.active), to_us(reward.created_at)))
        return rid

    def reward(self, reward_id: int) -> Reward | None:
        row = self.tx.execute(f"SELECT {_REWARD} FROM mall_rewards WHERE id = ?", (reward_id,)).fetchone()
        return None if row is None else _reward(row)

    def reward_by_name(self, name: str) -> Reward | None:
        row = self.tx.execute(f"SELECT {_REWARD} FROM mall_rewards WHERE name = ?", (name,)).fetchone()
        return None if row is None else _reward(row)

    def rewards(self) -> list[Reward]:
        return [_reward(r) for r in self.tx.execute(f"SELECT {_REWARD} FROM mall_rewards ORDER BY id")]

    def take_stock(self, reward_id: int, qty: int) -> bool:
        row = self.tx.execute(
            "UPDATE mall_rewards SET redeemed = redeemed + ? WHERE id = ? AND (stock IS NULL OR redeemed + ? <= stock) "
            "RETURNING id", (qty, reward_id, qty)).fetchone()
        return row is not None

    def give_stock(self, reward_id: int, qty: int) -> None:
        self.tx.execute("UPDATE mall_rewards SET redeemed = redeemed - ? WHERE id = ?", (qty, reward_id))

    def add_redemption(self, redemption: Redemption) -> int:
        [rid] = self.tx.dialect.allocate_ids(self.tx, "mall_redemptions", 1)
        r = redemption
        self.tx.execute(
            f"INSERT INTO mall_redemptions ({_REDEMPTION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rid, r.reward_id, r.user_id, r.qty, r.points, r.status, r.key, to_us(r.at), r.spend_entry_id,
             r.refund_entry_id, json.dumps(list(r.coupon_codes)), r.note,
             None if r.updated_at is None else to_us(r.updated_at)))
        return rid

    def redemption(self, redemption_id: int) -> Redemption | None:
        row = self.tx.execute(f"SELECT {_REDEMPTION} FROM mall_redemptions WHERE id = ?",
                              (redemption_id,)).fetchone()
        return None if row is None else _redemption(row)

    def redemption_by_key(self, key: str) -> Redemption | None:
        row = self.tx.execute(f"SELECT {_REDEMPTION} FROM mall_redemptions WHERE key = ?", (key,)).fetchone()
        return None if row is None else _redemption(row)

    def redemptions(self, *, user_id: int | None = None, reward_id: int | None = None,
                    since: datetime | None = None) -> list[Redemption]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("user_id = ?", user_id), ("reward_id = ?", reward_id),
                              ("at >= ?", None if since is None else to_us(since))):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_REDEMPTION} FROM mall_redemptions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_redemption(r) for r in self.tx.execute(sql + " ORDER BY id", params)]

    def move_redemption(self, redemption_id: int, *, from_status: Sequence[str], to_status: str, at: datetime,
                        refund_entry_id: int | None = None, coupon_codes: Sequence[str] = (),
                        note: str = "") -> bool:
        marks = ",".join("?" * len(from_status))
        sets = ["status = ?", "updated_at = ?"]
        params: list[Any] = [to_status, to_us(at)]
        if refund_entry_id is not None:
            sets.append("refund_entry_id = ?")
            params.append(refund_entry_id)
        if coupon_codes:
            sets.append("coupons = ?")
            params.append(json.dumps(list(coupon_codes)))
        if note:
            sets.append("note = ?")
            params.append(note)
        row = self.tx.execute(
            f"UPDATE mall_redemptions SET {', '.join(sets)} WHERE id = ? AND status IN ({marks}) RETURNING id",
            [*params, redemption_id, *from_status]).fetchone()
        return row is not None
