"""Change counters, settings and idempotency records in SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..contracts import IdempotencyStore, MetaStore

if TYPE_CHECKING:
    from .backend import SqlTransaction


class SqlMetaStore(MetaStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def bump(self, counter: str) -> int:
        row = self.tx.execute(
            "INSERT INTO siyu_counters (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = siyu_counters.value + 1 RETURNING value",
            (counter,),
        ).fetchone()
        return int(row[0])

    def version(self, counter: str) -> int:
        row = self.tx.execute("SELECT value FROM siyu_counters WHERE name = ?", (counter,)).fetchone()
        return int(row[0]) if row else 0

    def get(self, key: str) -> str | None:
        row = self.tx.execute("SELECT value FROM siyu_settings WHERE name = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        self.tx.execute(
            "INSERT INTO siyu_settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class SqlIdempotencyStore(IdempotencyStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def get(self, scope: str, key: str) -> tuple[str, str] | None:
        row = self.tx.execute(
            "SELECT fingerprint, result FROM siyu_idempotency WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def put(self, scope: str, key: str, fingerprint: str, result: str) -> None:
        self.tx.execute(
            "INSERT INTO siyu_idempotency (scope, key, fingerprint, result) VALUES (?, ?, ?, ?)",
            (scope, key, fingerprint, result),
        )
