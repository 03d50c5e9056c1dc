"""The event log, consumer checkpoints and due jobs in SQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ..contracts.event_log import ConsumerRow, EventLogStore, LogRow, NewLogEntry

if TYPE_CHECKING:
    from .backend import SqlTransaction

_EVENT = "position, type, schema_version, occurred_at, recorded_at, user_id, correlation_id, payload, redacted"
_CONSUMER = "name, kind, position, attempts, error, failed_position, parked, lease_owner, lease_until, updated_at"


def _log_row(r: Sequence[Any]) -> LogRow:
    return LogRow(
        position=int(r[0]), type=str(r[1]), schema_version=int(r[2]), occurred_at=from_us_required(int(r[3])),
        recorded_at=from_us_required(int(r[4])), user_id=None if r[5] is None else int(r[5]),
        correlation_id=str(r[6]), payload=str(r[7]), redacted=bool(r[8]),
    )


def _consumer_row(r: Sequence[Any]) -> ConsumerRow:
    return ConsumerRow(
        name=str(r[0]), kind=str(r[1]), position=int(r[2]), attempts=int(r[3]), error=r[4],
        failed_position=None if r[5] is None else int(r[5]), parked=bool(r[6]), lease_owner=r[7],
        lease_until=None if r[8] is None else int(r[8]), updated_at=from_us(r[9]),
    )


class SqlEventLogStore(EventLogStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- the log -------------------------------------------------------------------------------
    def append(self, entries: Sequence[NewLogEntry], recorded_at: datetime) -> list[int]:
        if not entries:
            return []
        tx = self.tx
        positions = tx.dialect.allocate_positions(tx, len(entries))
        recorded = to_us(recorded_at)
        tx.executemany(
            "INSERT INTO events (position, type, schema_version, occurred_at, recorded_at, user_id, "
            "correlation_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (p, kind, version, to_us(at), recorded, user, correlation, payload)
                for p, (kind, version, at, user, correlation, payload) in zip(positions, entries, strict=True)
            ],
        )
        return positions

    def head(self) -> int:
        return self.tx.dialect.log_head(self.tx)

    def read(self, after: int, upto: int | None, types: Sequence[str] | None, limit: int) -> list[LogRow]:
        sql = f"SELECT {_EVENT} FROM events WHERE position > ?"
        params: list[Any] = [after]
        if upto is not None:
            sql += " AND position <= ?"
            params.append(upto)
        if types is not None:
            if not types:
                return []
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params.extend(types)
        sql += " ORDER BY position LIMIT ?"
        params.append(limit)
        return [_log_row(r) for r in self.tx.execute(sql, params).fetchall()]

    def count(self, after: int, upto: int | None) -> int:
        if upto is None:
            row = self.tx.execute("SELECT COUNT(*) FROM events WHERE position > ?", (after,)).fetchone()
        else:
            row = self.tx.execute(
                "SELECT COUNT(*) FROM events WHERE position > ? AND position <= ?", (after, upto)
            ).fetchone()
        return int(row[0])

    def redact(self, user_ids: Sequence[int], redactor: Callable[[str], str]) -> int:
        changed = 0
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            rows = self.tx.execute(
                f"SELECT position, payload FROM events WHERE user_id IN ({marks}) AND redacted = 0", chunk
            ).fetchall()
            if rows:
                self.tx.executemany(
                    "UPDATE events SET payload = ?, redacted = 1 WHERE position = ?",
                    [(redactor(str(r[1])), int(r[0])) for r in rows],
                )
                changed += len(rows)
        return changed

    def prune(self, upto: int, recorded_before: datetime) -> int:
        cursor = self.tx.execute(
            "DELETE FROM events WHERE position <= ? AND recorded_at < ?", (upto, to_us(recorded_before))
        )
        return max(int(cursor.rowcount or 0), 0)

    # -- consumers -----------------------------------------------------------------------------------
    def consumers(self) -> list[ConsumerRow]:
        return [_consumer_row(r) for r in self.tx.execute(f"SELECT {_CONSUMER} FROM event_consumers ORDER BY name")]

    def ensure_consumers(self, consumers: Sequence[tuple[str, str]], position: int, at: datetime) -> None:
        if consumers:
            self.tx.executemany(
                "INSERT INTO event_consumers (name, kind, position, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                [(name, kind, position, to_us(at)) for name, kind in consumers],
            )

    def claim(self, names: Sequence[str], *, skip_locked: bool) -> list[ConsumerRow]:
        if not names:
            return []
        lock = self.tx.dialect.row_lock_skip if skip_locked else self.tx.dialect.row_lock
        rows = self.tx.execute(
            f"SELECT {_CONSUMER} FROM event_consumers WHERE name IN ({','.join('?' * len(names))}) "
            f"ORDER BY name{lock}",
            list(names),
        ).fetchall()
        return [_consumer_row(r) for r in rows]

    def save_consumers(self, rows: Sequence[ConsumerRow], at: datetime) -> None:
        if rows:
            self.tx.executemany(
                "UPDATE event_consumers SET position = ?, attempts = ?, error = ?, failed_position = ?, "
                "parked = ?, updated_at = ? WHERE name = ?",
                [(r.position, r.attempts, r.error, r.failed_position, int(r.parked), to_us(at), r.name) for r in rows],
            )

    def advance(self, name: str, position: int, *, expected: int, at: datetime) -> bool:
        cursor = self.tx.execute(
            "UPDATE event_consumers SET position = ?, attempts = 0, error = NULL, failed_position = NULL, "
            "updated_at = ? WHERE name = ? AND position = ?",
            (position, to_us(at), name, expected),
        )
        return int(cursor.rowcount or 0) == 1

    def note_failure(self, name: str, error: str, failed_position: int, at: datetime) -> None:
        self.tx.execute(
            "UPDATE event_consumers SET attempts = CASE WHEN failed_position = ? THEN attempts + 1 ELSE 1 END, "
            "error = ?, failed_position = ?, updated_at = ? WHERE name = ?",
            (failed_position, error, failed_position, to_us(at), name),
        )

    def lease(self, name: str, owner: str, until_us: int, now_us: int) -> bool:
        cursor = self.tx.execute(
            "UPDATE event_consumers SET lease_owner = ?, lease_until = ? WHERE name = ? "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until < ?)",
            (owner, until_us, name, owner, now_us),
        )
        return int(cursor.rowcount or 0) == 1

    def delete_consumer(self, name: str) -> bool:
        cursor = self.tx.execute("DELETE FROM event_consumers WHERE name = ?", (name,))
        return int(cursor.rowcount or 0) == 1

    # -- due jobs -----------------------------------------------------------------------------------
    def claim_job(self, name: str, now: datetime, next_due: datetime) -> bool:
        self.tx.execute(
            "INSERT INTO siyu_jobs (name, next_due) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, to_us(now))
        )
        cursor = self.tx.execute(
            "UPDATE siyu_jobs SET next_due = ? WHERE name = ? AND next_due <= ?",
            (to_us(next_due), name, to_us(now)),
        )
        return int(cursor.rowcount or 0) == 1

    def finish_job(self, name: str, at: datetime, result: str) -> None:
        self.tx.execute("UPDATE siyu_jobs SET last_run_at = ?, last_result = ? WHERE name = ?",
                        (to_us(at), result, name))

    def jobs(self) -> list[tuple[str, datetime, datetime | None, str | None]]:
        return [
            (str(r[0]), from_us_required(int(r[1])), from_us(r[2]), r[3])
            for r in self.tx.execute("SELECT name, next_due, last_run_at, last_result FROM siyu_jobs ORDER BY name")
        ]
