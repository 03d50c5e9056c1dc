"""Change counters, settings and idempotency records in SQL."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ..contracts import IdempotencyStore, MetaStore

if TYPE_CHECKING:
    from .backend import SqlTransaction


class SqlMetaStore(MetaStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def bump(self, counter: str) -> None:
        # One row per counter would make every writer wait for the one before it to commit
        # (the row stays locked until then); a process and thread bump their own shard.
        shards = self.tx.dialect.counter_shards
        shard = (os.getpid() * 31 + threading.get_ident()) % shards if shards > 1 else 0
        self.tx.execute(
            "INSERT INTO siyu_counter_shards (name, shard, value) VALUES (?, ?, 1) "
            "ON CONFLICT (name, shard) DO UPDATE SET value = siyu_counter_shards.value + 1",
            (counter, shard),
        )

    def version(self, counter: str) -> int:
        # siyu_counters holds the totals of databases made before the shards (and bench loads).
        row = self.tx.execute(
            "SELECT COALESCE((SELECT value FROM siyu_counters WHERE name = ?), 0) "
            "+ COALESCE((SELECT SUM(value) FROM siyu_counter_shards WHERE name = ?), 0)",
            (counter, counter),
        ).fetchone()
        return int(row[0])

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
