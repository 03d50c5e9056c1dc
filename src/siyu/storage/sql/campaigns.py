"""The campaign store in SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyroaring import BitMap

from ..._clock import from_us, from_us_required, to_us
from ..contracts.campaigns import CampaignRow, CampaignStore, DeliveryRow, NewDelivery, ReceiptRow
from ._rows import JSON, TIME, TIME_REQUIRED, Rows

if TYPE_CHECKING:
    from .backend import SqlTransaction

_CAMPAIGNS = Rows(
    CampaignRow,
    "id, name, channel, consent_channel, template, variants, goal, attribution_us, purpose, "
    "non_personalized, status, config, audience, audience_count, created_at, state",
    {"variants": JSON, "non_personalized": bool, "config": JSON, "audience": bytes, "created_at": TIME_REQUIRED,
     "state": JSON},
)
_CAMPAIGN = _CAMPAIGNS.columns
_DELIVERIES = Rows(
    DeliveryRow,
    "id, campaign_id, user_id, occurrence, variant, phase, status, reason, channel, purpose, due_at, "
    "claimed_at, completed_at, attempts, idem_key, recipient, provider_id, code, detail, holder",
    {"due_at": TIME, "claimed_at": TIME, "completed_at": TIME},
)
_DELIVERY = _DELIVERIES.columns
_RECEIPTS = Rows(
    ReceiptRow,
    "delivery_id, campaign_id, status, code, detail, reported_at, recorded_at",
    {"reported_at": TIME, "recorded_at": TIME_REQUIRED},
)
_TIME_COLUMNS = {"due_at", "claimed_at", "completed_at"}
_SETTABLE = {
    "status", "reason", "due_at", "claimed_at", "completed_at", "attempts", "recipient",
    "provider_id", "code", "detail", "idem_key", "variant", "holder",
}
#: Up to this many users, the credit gate reads their addresses rather than every credit holder.
_FEW_USERS = 10_000
#: Statuses that count as a contact for budgets and caps (pending: may have gone out).
TOUCH_STATUSES = ("pending", "sent", "unknown")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_campaign = _CAMPAIGNS.one
_delivery = _DELIVERIES.one


class SqlCampaignStore(CampaignStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- helpers ---------------------------------------------------------------------
    def _ranges(self, user_ids: Iterable[int]) -> Iterator[tuple[int, int, set[int]]]:
        """Cover ``user_ids`` with id ranges: one ``BETWEEN`` query per dense run
        is far cheaper than long ``IN`` lists, and campaign batches are id-ordered."""
        ids = sorted(set(user_ids))
        i = 0
        while i < len(ids):
            end = min(i + 20_000, len(ids))
            if ids[end - 1] - ids[i] <= 8 * (end - i) + 64:
                # Dense (campaign batches are id-ordered): one range, no per-id scan.
                yield ids[i], ids[end - 1], set(ids[i:end])
                i = end
                continue
            j = i + 1
            while j < end and ids[j] - ids[i] <= 8 * (j - i + 1) + 64:
                j += 1
            yield ids[i], ids[j - 1], set(ids[i:j])
            i = j

    # -- campaigns ---------------------------------------------------------------------
    def add(self, row: CampaignRow) -> int:
        cid = self.tx.dialect.allocate_ids(self.tx, "campaigns", 1)[0]
        self.tx.execute(
            f"INSERT INTO campaigns ({_CAMPAIGN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid, row.name, row.channel, row.consent_channel, row.template, _dumps(row.variants), row.goal,
                row.attribution_us, row.purpose, int(row.non_personalized), row.status, _dumps(row.config),
                row.audience, row.audience_count, to_us(row.created_at), _dumps(row.state),
            ),
        )
        return cid

    def get(self, campaign_id: int) -> CampaignRow | None:
        r = self.tx.execute(f"SELECT {_CAMPAIGN} FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        return None if r is None else _campaign(r)

    def by_name(self, name: str) -> CampaignRow | None:
        r = self.tx.execute(f"SELECT {_CAMPAIGN} FROM campaigns WHERE name = ?", (name,)).fetchone()
        return None if r is None else _campaign(r)

    def all(self) -> list[CampaignRow]:
        return [_campaign(r) for r in self.tx.execute(f"SELECT {_CAMPAIGN} FROM campaigns ORDER BY id")]

    def update(self, campaign_id: int, *, status: str | None = None, state: dict[str, Any] | None = None) -> None:
        if status is not None:
            self.tx.execute("UPDATE campaigns SET status = ? WHERE id = ?", (status, campaign_id))
        if state is not None:
            self.tx.execute("UPDATE campaigns SET state = ? WHERE id = ?", (_dumps(state), campaign_id))

    # -- deliveries ------------------------------------------------------------------------
    def add_deliveries(
        self, campaign_id: int, channel: str, purpose: str, rows: Sequence[NewDelivery], at: datetime
    ) -> list[int]:
        if not rows:
            return []
        ids = self.tx.dialect.allocate_ids(self.tx, "campaign_deliveries", len(rows))
        stamp = to_us(at)
        self.tx.executemany(
            "INSERT INTO campaign_deliveries (id, campaign_id, user_id, occurrence, variant, phase, status, reason, "
            "channel, purpose, due_at, claimed_at, completed_at, attempts, idem_key, recipient, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    rid, campaign_id, r.user_id, r.occurrence, r.variant, r.phase, r.status, r.reason, channel,
                    purpose, None if r.due_at is None else to_us(r.due_at),
                    None if r.claimed_at is None else to_us(r.claimed_at),
                    None if r.completed_at is None else to_us(r.completed_at), int(r.status == "pending"), r.idem_key,
                    r.recipient, stamp,
                )
                for rid, r in zip(ids, rows, strict=True)
            ],
        )
        return ids

    def add_pending(
        self, campaign_id: int, channel: str, purpose: str, phase: str, occurrence: str,
        rows: Sequence[tuple[int, str, str | None, str | None]], at: datetime, holder: str | None = None,
    ) -> list[int]:
        if not rows:
            return []
        ids = self.tx.dialect.allocate_ids(self.tx, "campaign_deliveries", len(rows))
        stamp = to_us(at)
        self.tx.executemany(
            "INSERT INTO campaign_deliveries (id, campaign_id, user_id, occurrence, variant, phase, status, "
            "channel, purpose, claimed_at, attempts, idem_key, recipient, created_at, holder) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (rid, campaign_id, uid, occurrence, variant, phase, "pending", channel, purpose, stamp, 1, key,
                 recipient, stamp, holder)
                for rid, (uid, variant, key, recipient) in zip(ids, rows, strict=True)
            ],
        )
        return ids

    def mark_sent(self, rows: Sequence[tuple[int, str | None]], at: datetime) -> None:
        stamp = to_us(at)
        self.tx.executemany(
            "UPDATE campaign_deliveries SET status = ?, completed_at = ?, provider_id = ? WHERE id = ? AND status = ?",
            [("sent", stamp, provider_id, rid, "pending") for rid, provider_id in rows],
        )

    def existing_users(self, campaign_id: int, occurrence: str = "") -> list[int]:
        return [
            int(r[0])
            for r in self.tx.execute(
                "SELECT user_id FROM campaign_deliveries WHERE campaign_id = ? AND occurrence = ? ORDER BY user_id",
                (campaign_id, occurrence),
            )
        ]

    def has_delivery(self, campaign_id: int, user_id: int, occurrence: str) -> bool:
        row = self.tx.execute(
            "SELECT 1 FROM campaign_deliveries WHERE campaign_id = ? AND user_id = ? AND occurrence = ?",
            (campaign_id, user_id, occurrence),
        ).fetchone()
        return row is not None

    def due(
        self, campaign_id: int, now: datetime, limit: int, status: str = "queued", reason: str | None = None,
    ) -> list[DeliveryRow]:
        sql = f"SELECT {_DELIVERY} FROM campaign_deliveries WHERE campaign_id = ? AND status = ? AND due_at <= ?"
        params: list[Any] = [campaign_id, status, to_us(now)]
        if reason is not None:
            sql += " AND reason = ?"
            params.append(reason)
        rows = self.tx.execute(sql + " ORDER BY due_at, id LIMIT ?", [*params, limit]).fetchall()
        return [_delivery(r) for r in rows]

    def pending(self, campaign_id: int, claimed_before: datetime | None = None) -> list[DeliveryRow]:
        sql = f"SELECT {_DELIVERY} FROM campaign_deliveries WHERE campaign_id = ? AND status = ?"
        params: list[Any] = [campaign_id, "pending"]
        if claimed_before is not None:
            sql += " AND claimed_at <= ?"
            params.append(to_us(claimed_before))
        return [_delivery(r) for r in self.tx.execute(sql + " ORDER BY id", params).fetchall()]

    def next_due(self, campaign_id: int, status: str = "queued", reason: str | None = None) -> datetime | None:
        sql = "SELECT MIN(due_at) FROM campaign_deliveries WHERE campaign_id = ? AND status = ?"
        params: list[Any] = [campaign_id, status]
        if reason is not None:
            sql += " AND reason = ?"
            params.append(reason)
        row = self.tx.execute(sql, params).fetchone()
        return None if row is None or row[0] is None else from_us(int(row[0]))

    def set_status(self, updates: Sequence[tuple[int, dict[str, Any]]], only_from: str | None = None) -> None:
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for rid, fields in updates:
            unknown = set(fields) - _SETTABLE
            if unknown:
                raise ValueError(f"cannot set {sorted(unknown)} on a delivery record")
            columns = tuple(sorted(fields))
            values = tuple(
                (to_us(fields[c]) if fields[c] is not None else None) if c in _TIME_COLUMNS else fields[c]
                for c in columns
            )
            groups.setdefault(columns, []).append((*values, rid) if only_from is None else (*values, rid, only_from))
        where = "id = ?" if only_from is None else "id = ? AND status = ?"
        for columns, rows in groups.items():
            sets = ", ".join(f"{c} = ?" for c in columns)
            self.tx.executemany(f"UPDATE campaign_deliveries SET {sets} WHERE {where}", rows)

    def records(self, delivery_ids: Sequence[int]) -> list[DeliveryRow]:
        out: list[DeliveryRow] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(delivery_ids))):
            out.extend(
                _delivery(r)
                for r in self.tx.execute(f"SELECT {_DELIVERY} FROM campaign_deliveries WHERE id IN ({marks})", chunk)
            )
        return sorted(out, key=lambda d: d.id)

    def deliveries(
        self, campaign_id: int, *, user_id: int | None = None, status: str | None = None, after_id: int = 0,
        limit: int = 1000,
    ) -> list[DeliveryRow]:
        sql = f"SELECT {_DELIVERY} FROM campaign_deliveries WHERE campaign_id = ? AND id > ?"
        params: list[Any] = [campaign_id, after_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        params.append(limit)
        return [_delivery(r) for r in self.tx.execute(sql + " ORDER BY id LIMIT ?", params).fetchall()]

    def counts(self, campaign_id: int, phase: str | None = None) -> dict[tuple[str, str], int]:
        sql = "SELECT variant, status, COUNT(*) FROM campaign_deliveries WHERE campaign_id = ?"
        params: list[Any] = [campaign_id]
        if phase is not None:
            sql += " AND phase = ?"
            params.append(phase)
        rows = self.tx.execute(sql + " GROUP BY variant, status", params).fetchall()
        return {(str(v), str(s)): int(n) for v, s, n in rows}

    def reasons(self, campaign_id: int) -> dict[str, int]:
        rows = self.tx.execute(
            "SELECT reason, COUNT(*) FROM campaign_deliveries WHERE campaign_id = ? AND status = ? GROUP BY reason",
            (campaign_id, "skipped"),
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    # -- provider receipts ----------------------------------------------------------------------
    def by_provider_ids(self, channel: str, provider_ids: Sequence[str]) -> list[DeliveryRow]:
        columns = ", ".join(f"d.{c.strip()}" for c in _DELIVERY.split(","))
        out: list[DeliveryRow] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(provider_ids))):
            out.extend(
                _delivery(r)
                for r in self.tx.execute(
                    f"SELECT {columns} FROM campaign_deliveries d JOIN campaigns c ON c.id = d.campaign_id "
                    f"WHERE d.provider_id IN ({marks}) AND d.status = ? AND c.channel = ?",
                    [*chunk, "sent", channel],
                )
            )
        return sorted(out, key=lambda d: d.id)

    def receipts(self, delivery_ids: Sequence[int]) -> dict[int, ReceiptRow]:
        out: dict[int, ReceiptRow] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(delivery_ids))):
            query = f"SELECT {_RECEIPTS.columns} FROM campaign_receipts WHERE delivery_id IN ({marks})"
            for receipt in _RECEIPTS.all(self.tx.execute(query, chunk)):
                out[receipt.delivery_id] = receipt
        return out

    def put_receipts(self, rows: Sequence[ReceiptRow]) -> None:
        self.tx.executemany(
            "INSERT INTO campaign_receipts (delivery_id, campaign_id, status, code, detail, reported_at, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE SET status = excluded.status, "
            "code = excluded.code, detail = excluded.detail, reported_at = excluded.reported_at, "
            "recorded_at = excluded.recorded_at",
            [
                (r.delivery_id, r.campaign_id, r.status, r.code, r.detail,
                 None if r.reported_at is None else to_us(r.reported_at), to_us(r.recorded_at))
                for r in rows
            ],
        )

    def receipt_counts(self, campaign_id: int, phase: str | None = None) -> dict[tuple[str, str], int]:
        sql = (
            "SELECT d.variant, r.status, COUNT(*) FROM campaign_receipts r "
            "JOIN campaign_deliveries d ON d.id = r.delivery_id WHERE r.campaign_id = ?"
        )
        params: list[Any] = [campaign_id]
        if phase is not None:
            sql += " AND d.phase = ?"
            params.append(phase)
        rows = self.tx.execute(sql + " GROUP BY d.variant, r.status", params).fetchall()
        return {(str(v), str(s)): int(n) for v, s, n in rows}

    # -- touches ----------------------------------------------------------------------------
    def touches(
        self, since: datetime, *, purpose: str | None = "marketing", user_ids: Iterable[int] | None = None
    ) -> list[tuple[int, datetime, str]]:
        base = (
            "SELECT user_id, claimed_at, channel FROM campaign_deliveries WHERE claimed_at >= ? "
            "AND status IN (?, ?, ?)"
        )
        params: list[Any] = [to_us(since), *TOUCH_STATUSES]
        if purpose is not None:
            base += " AND purpose = ?"
            params.append(purpose)
        out: list[tuple[int, datetime, str]] = []
        if user_ids is None:
            for uid, at, channel in self.tx.execute(base, params):
                out.append((int(uid), from_us_required(int(at)), str(channel)))
            return out
        for lo, hi, wanted in self._ranges(user_ids):
            for uid, at, channel in self.tx.execute(base + " AND user_id BETWEEN ? AND ?", [*params, lo, hi]):
                if uid in wanted:
                    out.append((int(uid), from_us_required(int(at)), str(channel)))
        return out

    def last_touch(self, user_id: int, at: datetime, goal: str) -> DeliveryRow | None:
        stamp = to_us(at)
        columns = ", ".join(f"d.{c.strip()}" for c in _DELIVERY.split(","))
        row = self.tx.execute(
            f"SELECT {columns} FROM campaign_deliveries d JOIN campaigns c ON c.id = d.campaign_id "
            "WHERE d.user_id = ? AND d.status IN (?, ?) AND c.goal = ? AND d.claimed_at <= ? "
            "AND d.claimed_at >= ? - c.attribution_us ORDER BY d.claimed_at DESC, d.id DESC LIMIT 1",
            (user_id, "sent", "holdout", goal, stamp, stamp),
        ).fetchone()
        return None if row is None else _delivery(row)

    # -- conversions ----------------------------------------------------------------------------
    def add_conversion(self, delivery: DeliveryRow, goal: str, ref: str | None, value: int, at: datetime) -> bool:
        row = self.tx.execute(
            "INSERT INTO campaign_conversions (delivery_id, campaign_id, user_id, variant, goal, ref, value, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
            (delivery.id, delivery.campaign_id, delivery.user_id, delivery.variant, goal, ref, value, to_us(at)),
        ).fetchone()
        return row is not None

    def conversions(self, campaign_id: int, phase: str | None = None) -> dict[str, tuple[int, int]]:
        sql = (
            "SELECT c.variant, COUNT(*), COALESCE(SUM(c.value), 0) FROM campaign_conversions c "
            "JOIN campaign_deliveries d ON d.id = c.delivery_id WHERE c.campaign_id = ?"
        )
        params: list[Any] = [campaign_id]
        if phase is not None:
            sql += " AND d.phase = ?"
            params.append(phase)
        rows = self.tx.execute(sql + " GROUP BY c.variant", params).fetchall()
        return {str(v): (int(n), int(total)) for v, n, total in rows}

    def move_user(self, drop: int, keep: int) -> list[int]:
        taken = {
            (int(c), str(o))
            for c, o in self.tx.execute(
                "SELECT campaign_id, occurrence FROM campaign_deliveries WHERE user_id = ?", (keep,)
            )
        }
        moved = [
            int(rid)
            for rid, c, o in self.tx.execute(
                "SELECT id, campaign_id, occurrence FROM campaign_deliveries WHERE user_id = ? ORDER BY id", (drop,)
            ).fetchall()
            if (int(c), str(o)) not in taken
        ]
        self._reassign(moved, keep)
        return moved

    def restore_user(self, delivery_ids: Sequence[int], drop: int) -> None:
        own = {
            (int(c), str(o)): (int(rid), str(status), reason)
            for rid, c, o, status, reason in self.tx.execute(
                "SELECT id, campaign_id, occurrence, status, reason FROM campaign_deliveries WHERE user_id = ?",
                (drop,),
            )
        }
        back: list[int] = []
        placeholders: list[int] = []
        for marks, chunk in self.tx.in_chunks(sorted(set(delivery_ids))):
            for rid, c, o in self.tx.execute(
                f"SELECT id, campaign_id, occurrence FROM campaign_deliveries WHERE id IN ({marks})", chunk
            ).fetchall():
                clash = own.get((int(c), str(o)))
                if clash is None:
                    back.append(int(rid))
                elif clash[1] == "skipped" and clash[2] == "inactive":
                    placeholders.append(clash[0])
                    back.append(int(rid))
        for marks, chunk in self.tx.in_chunks(placeholders):
            self.tx.execute(f"DELETE FROM campaign_deliveries WHERE id IN ({marks})", chunk)
        self._reassign(back, drop)

    def _reassign(self, ids: list[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(ids):
            self.tx.execute(f"UPDATE campaign_deliveries SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])
            self.tx.execute(
                f"UPDATE campaign_conversions SET user_id = ? WHERE delivery_id IN ({marks})", [user_id, *chunk]
            )

    # -- audience facts ---------------------------------------------------------------------------
    def consented(self, purpose: str, channel: str, user_ids: Iterable[int] | None = None) -> list[int]:
        # Most users only ever granted (or only refused): two flat scans settle them; only
        # users with both kinds of records need the latest one (by at, then id), as
        # ws.users.has_consent decides.
        base = "FROM consents WHERE purpose = ? AND channel IN (?, ?)"
        params: list[Any] = [purpose, channel, "*"]
        spans: list[tuple[str, list[Any], set[int] | None]] = []
        if user_ids is None:
            spans.append(("", [], None))
        else:
            spans.extend(
                (" AND user_id BETWEEN ? AND ?", [lo, hi], wanted) for lo, hi, wanted in self._ranges(user_ids)
            )
        result = BitMap()
        for extra, bounds, wanted in spans:
            granted = BitMap(
                r[0] for r in self.tx.execute(f"SELECT user_id {base}{extra} AND granted = ?", [*params, *bounds, 1])
            )
            refused = BitMap(
                r[0] for r in self.tx.execute(f"SELECT user_id {base}{extra} AND granted = ?", [*params, *bounds, 0])
            )
            part = granted - refused
            mixed = sorted(granted & refused)
            for marks, chunk in self.tx.in_chunks(mixed):
                latest: dict[int, int] = {}
                for uid, ok in self.tx.execute(
                    f"SELECT user_id, granted {base} AND user_id IN ({marks}) ORDER BY user_id, at, id",
                    [*params, *chunk],
                ):
                    latest[int(uid)] = int(ok)
                part.update(uid for uid, ok in latest.items() if ok)
            if wanted is not None:
                part &= BitMap(wanted)
            result |= part
        return list(result)

    def credited(self, channel: str, template: str, kind: str, user_ids: Iterable[int]) -> list[int]:
        wanted = BitMap(user_ids)
        if not wanted:
            return []
        # A send batch asks about a few thousand users: read their addresses. A preview asks
        # about a whole audience: start from the credit holders instead.
        if len(wanted) <= _FEW_USERS:
            return self._credited_users(channel, template, kind, wanted)
        return self._credited_holders(channel, template, kind, wanted)

    def _first_identities(self, kind: str, users: Iterable[int]) -> dict[int, tuple[int, str, str, str | None]]:
        """Each user's first identity of ``kind``: ``(row id, scope, stored value, sealed)``.
        (No kind in the WHERE: with it, planners scan the (kind, scope, value) index instead.)"""
        first: dict[int, tuple[int, str, str, str | None]] = {}
        for marks, chunk in self.tx.in_chunks(sorted(users)):
            for uid, rid, k, scope, value, sealed in self.tx.execute(
                f"SELECT user_id, id, kind, scope, value, sealed FROM identities WHERE user_id IN ({marks})", chunk
            ):
                if k == kind and (uid not in first or rid < first[uid][0]):
                    first[int(uid)] = (int(rid), str(scope), str(value), sealed)
        return first

    def _credited_users(self, channel: str, template: str, kind: str, wanted: BitMap) -> list[int]:
        users = self.tx.users
        address = {
            uid: users._open_identity(kind, value, sealed)
            for uid, (_, _, value, sealed) in self._first_identities(kind, wanted).items()
        }
        held: set[str] = set()
        for marks, chunk in self.tx.in_chunks(sorted(set(address.values()))):
            held.update(
                str(r[0])
                for r in self.tx.execute(
                    "SELECT recipient FROM channel_credits WHERE channel = ? AND template = ? AND credits > 0 "
                    f"AND recipient IN ({marks})",
                    [channel, template, *chunk],
                )
            )
        return list(BitMap(uid for uid, value in address.items() if value in held))

    def _credited_holders(self, channel: str, template: str, kind: str, wanted: BitMap) -> list[int]:
        holders = [
            str(r[0])
            for r in self.tx.execute(
                "SELECT recipient FROM channel_credits WHERE channel = ? AND template = ? AND credits > 0",
                (channel, template),
            )
        ]
        if not holders:
            return []
        # Credits are kept per plain address, identities by blind index when sealed: look the
        # holders up through the index (no decryption), once per scope (app) of the kind.
        users = self.tx.users
        scopes = [str(r[0]) for r in self.tx.execute("SELECT DISTINCT scope FROM identities WHERE kind = ?", (kind,))]
        holding: dict[int, int] = {}  # identity row id -> its user
        for scope in scopes:
            tokens = sorted({users.token(kind, scope, h) for h in holders})
            for marks, chunk in self.tx.in_chunks(tokens):
                for rid, uid in self.tx.execute(
                    f"SELECT id, user_id FROM identities WHERE kind = ? AND scope = ? AND value IN ({marks})",
                    [kind, scope, *chunk],
                ):
                    if uid in wanted:
                        holding[int(rid)] = int(uid)
        # A send addresses the user's first identity of the kind; a credit on another one is no use.
        first = self._first_identities(kind, set(holding.values()))
        return list(BitMap(uid for uid, (rid, *_) in first.items() if holding.get(rid) == uid))

    def inactive_users(self) -> tuple[list[int], int]:
        rows = self.tx.execute("SELECT id FROM users WHERE status <> ? ORDER BY id", ("active",)).fetchall()
        (top,) = self.tx.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()
        return [int(r[0]) for r in rows], int(top)

    def suppress(self, user_id: int, channel: str, reason: str, at: datetime) -> None:
        self.tx.execute(
            "INSERT INTO campaign_suppressions (user_id, channel, reason, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_id, channel) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            (user_id, channel, reason, to_us(at)),
        )

    def unsuppress(self, user_id: int, channel: str) -> bool:
        row = self.tx.execute(
            "DELETE FROM campaign_suppressions WHERE user_id = ? AND channel = ? RETURNING user_id",
            (user_id, channel),
        ).fetchone()
        return row is not None

    def suppressed(self, channel: str, also: Sequence[str] = ()) -> list[int]:
        entries = sorted({channel, "*", *also})
        marks = ",".join("?" * len(entries))
        return [
            int(r[0])
            for r in self.tx.execute(
                f"SELECT DISTINCT user_id FROM campaign_suppressions WHERE channel IN ({marks}) ORDER BY user_id",
                entries,
            )
        ]

    def attributes(self, user_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for lo, hi, wanted in self._ranges(user_ids):
            for uid, raw in self.tx.execute("SELECT id, attributes FROM users WHERE id BETWEEN ? AND ?", (lo, hi)):
                if uid in wanted:
                    out[int(uid)] = {} if raw in (None, "{}") else json.loads(raw)
        return out

    def attribute_values(self, name: str) -> dict[int, Any]:
        out: dict[int, Any] = {}
        # A bound LIKE pattern narrows the rows to parse; the JSON check below is exact.
        pattern = "%" + json.dumps(name, ensure_ascii=False) + "%"
        for uid, raw in self.tx.execute(
            "SELECT id, attributes FROM users WHERE status = ? AND attributes LIKE ?", ("active", pattern)
        ):
            attrs_ = json.loads(raw)
            if name in attrs_ and attrs_[name] is not None:
                out[int(uid)] = attrs_[name]
        return out

    def active_users(self, user_ids: Iterable[int]) -> list[int]:
        out: list[int] = []
        for lo, hi, wanted in self._ranges(user_ids):
            out.extend(
                int(r[0])
                for r in self.tx.execute(
                    "SELECT id FROM users WHERE status = ? AND id BETWEEN ? AND ? ORDER BY id", ("active", lo, hi)
                )
                if r[0] in wanted
            )
        return out

    # -- settings ------------------------------------------------------------------------------
    def setting(self, name: str) -> str | None:
        row = self.tx.execute("SELECT value FROM campaign_settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, name: str, value: str) -> None:
        self.tx.execute(
            "INSERT INTO campaign_settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
