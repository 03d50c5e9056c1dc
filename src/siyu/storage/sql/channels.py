"""The channel store in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import to_us
from ..contracts.channels import ChannelStore, OutboxRow
from ._rows import TIME_REQUIRED, Rows

if TYPE_CHECKING:
    from .backend import SqlTransaction

_OUTBOX = Rows(
    OutboxRow,
    "id, channel, recipient, user_id, body, template, variables, purpose, idem_key, created_at",
    {"created_at": TIME_REQUIRED},
    rename={"body": "text", "idem_key": "key"},
)
_COLUMNS = _OUTBOX.columns


class SqlChannelStore(ChannelStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def outbox_add(
        self, rows: Sequence[tuple[str, str, int | None, str, str | None, str, str, str | None]], at: datetime
    ) -> list[tuple[int, bool]]:
        if not rows:
            return []
        existing: dict[tuple[str, str], int] = {}
        keyed: dict[str, list[str]] = {}
        for row in rows:
            if row[7] is not None:
                keyed.setdefault(row[0], []).append(row[7])
        for channel, keys in keyed.items():
            for key, rid in self.outbox_find_keys(channel, keys).items():
                existing[(channel, key)] = rid
        # A key seen earlier in the same call is stored once, like a key already stored.
        firsts: set[tuple[str, str]] = set()
        unique: list[tuple[Any, ...]] = []
        for row in rows:
            if row[7] is not None:
                token = (row[0], row[7])
                if token in existing or token in firsts:
                    continue
                firsts.add(token)
            unique.append(row)
        ids = self.tx.dialect.allocate_ids(self.tx, "channel_outbox", len(unique)) if unique else []
        stamp = to_us(at)
        self.tx.executemany(
            f"INSERT INTO channel_outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(rid, *row, stamp) for rid, row in zip(ids, unique, strict=True)],
        )
        out: list[tuple[int, bool]] = []
        fresh_ids = iter(ids)
        assigned: dict[tuple[str, str], int] = {}
        for row in rows:
            tok = (row[0], row[7]) if row[7] is not None else None
            if tok is not None and tok in existing:
                out.append((existing[tok], False))
            elif tok is not None and tok in assigned:
                out.append((assigned[tok], False))
            else:
                rid = next(fresh_ids)
                if tok is not None:
                    assigned[tok] = rid
                out.append((rid, True))
        return out

    def outbox_find_keys(self, channel: str, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(keys))):
            for rid, key in self.tx.execute(
                f"SELECT id, idem_key FROM channel_outbox WHERE channel = ? AND idem_key IN ({marks})",
                [channel, *chunk],
            ):
                found[str(key)] = int(rid)
        return found

    def outbox_list(self, *, channel: str | None = None, after_id: int = 0, limit: int = 1000) -> list[OutboxRow]:
        where, params = "id > ?", list[object]([after_id])
        if channel is not None:
            where += " AND channel = ?"
            params.append(channel)
        rows = self.tx.execute(
            f"SELECT {_COLUMNS} FROM channel_outbox WHERE {where} ORDER BY id LIMIT ?", [*params, limit]
        ).fetchall()
        return _OUTBOX.all(rows)

    def outbox_count(self, *, channel: str | None = None) -> int:
        if channel is None:
            row = self.tx.execute("SELECT COUNT(*) FROM channel_outbox").fetchone()
        else:
            row = self.tx.execute("SELECT COUNT(*) FROM channel_outbox WHERE channel = ?", (channel,)).fetchone()
        return int(row[0])

    def outbox_clear(self, *, channel: str | None = None) -> int:
        count = self.outbox_count(channel=channel)
        if channel is None:
            self.tx.execute("DELETE FROM channel_outbox")
        else:
            self.tx.execute("DELETE FROM channel_outbox WHERE channel = ?", (channel,))
        return count

    def claim_callback(self, source: str, callback_id: str, at: datetime) -> bool:
        row = self.tx.execute(
            "INSERT INTO channel_callbacks (source, callback_id, processed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (source, callback_id) DO NOTHING RETURNING callback_id",
            (source, callback_id, to_us(at)),
        ).fetchone()
        return row is not None

    def claim_callbacks(self, source: str, callback_ids: Sequence[str], at: datetime) -> list[bool]:
        unique = list(dict.fromkeys(callback_ids))
        new: set[str] = set()
        for start in range(0, len(unique), 300):
            chunk = unique[start : start + 300]
            marks = ", ".join(["(?, ?, ?)"] * len(chunk))
            stamp = to_us(at)
            new.update(row[0] for row in self.tx.execute(
                f"INSERT INTO channel_callbacks (source, callback_id, processed_at) VALUES {marks} "
                "ON CONFLICT (source, callback_id) DO NOTHING RETURNING callback_id",
                [v for cid in chunk for v in (source, cid, stamp)]))
        out = []
        for cid in callback_ids:
            out.append(cid in new)
            new.discard(cid)  # a repeat later in the list is a duplicate
        return out

    def credits(self, channel: str, recipient: str, template: str) -> int:
        row = self.tx.execute(
            "SELECT credits FROM channel_credits WHERE channel = ? AND recipient = ? AND template = ?",
            (channel, recipient, template),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def add_credits(self, channel: str, recipient: str, template: str, delta: int, at: datetime) -> int:
        value = max(0, self.credits(channel, recipient, template) + delta)
        self.set_credits(channel, recipient, template, value, at)
        return value

    def take_credit(self, channel: str, recipient: str, template: str, at: datetime) -> bool:
        # One conditional UPDATE: the row lock makes concurrent takers see each other's decrement.
        row = self.tx.execute(
            "UPDATE channel_credits SET credits = credits - 1, updated_at = ? "
            "WHERE channel = ? AND recipient = ? AND template = ? AND credits > 0 RETURNING credits",
            (to_us(at), channel, recipient, template),
        ).fetchone()
        return row is not None

    def set_credits(self, channel: str, recipient: str, template: str, value: int, at: datetime) -> None:
        self.tx.execute(
            "INSERT INTO channel_credits (channel, recipient, template, credits, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, recipient, template) DO UPDATE SET credits = excluded.credits, "
            "updated_at = excluded.updated_at",
            (channel, recipient, template, value, to_us(at)),
        )

    def state_get(self, channel: str, key: str) -> str | None:
        row = self.tx.execute(
            "SELECT value FROM channel_state WHERE channel = ? AND name = ?", (channel, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def state_put(self, channel: str, key: str, value: str) -> None:
        self.tx.execute(
            "INSERT INTO channel_state (channel, name, value) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, name) DO UPDATE SET value = excluded.value",
            (channel, key, value),
        )

    def state_items(self, channel: str, prefix: str = "") -> list[tuple[str, str]]:
        rows = self.tx.execute(
            "SELECT name, value FROM channel_state WHERE channel = ? AND substr(name, 1, ?) = ? ORDER BY name",
            (channel, len(prefix), prefix),
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]
