"""The event log, consumer checkpoints and due jobs in SQL.

A row of ``events`` is a *run*: consecutive events of one write that share
type, schema version, instant and correlation id and hold consecutive
positions, ``position`` to ``position + run_length - 1``. A single earn is a run
of one; a bulk earn of 2,000 rows is one row instead of 2,000, which is what
keeps the log's cost on bulk writes small (a row insert with its index costs
more than encoding the event). The payloads of a run are its events' compact
JSON joined by newlines (compact JSON never holds a raw newline). ``user_id``
is the run's one person; a run about several people lists them per event in
``users`` and once each in ``event_users``, which erasure looks them up by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ..contracts.event_log import ConsumerRow, EventLogStore, LogRow, NewLogEntry

if TYPE_CHECKING:
    from .backend import SqlTransaction

_EVENT = ("position, type, schema_version, occurred_at, recorded_at, user_id, correlation_id, payload, redacted, "
          "run_length, users, redacted_lines")
_CONSUMER = "name, kind, position, attempts, error, failed_position, parked, lease_owner, lease_until, updated_at"
#: Where a read starts: the run holding the first position after ``?`` (positions are unique run starts).
_RUN_START = "COALESCE((SELECT MAX(position) FROM events WHERE position <= ?), 0)"


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
        self._store(positions, entries, to_us(recorded_at))
        tx.dialect.log_appended(tx, positions[-1])
        return positions

    def _store(self, positions: Sequence[int], entries: Sequence[NewLogEntry], recorded: int) -> None:
        tx = self.tx
        stamps: dict[datetime, int] = {}
        rows: list[tuple[Any, ...]] = []
        spread: list[tuple[int, int]] = []
        for start, stop in _runs(positions, entries):
            first, (kind, version, at, user, correlation, payload) = positions[start], entries[start]
            stamp = stamps.get(at)
            if stamp is None:
                stamp = stamps[at] = to_us(at)
            if stop - start == 1:
                rows.append((first, kind, version, stamp, recorded, user, correlation, payload, 1, None))
                continue
            run = entries[start:stop]
            payload = "\n".join([e[5] for e in run])
            people = {e[3] for e in run}
            if len(people) == 1:
                rows.append((first, kind, version, stamp, recorded, user, correlation, payload, len(run), None))
                continue
            listed = ",".join(["" if e[3] is None else str(e[3]) for e in run])
            rows.append((first, kind, version, stamp, recorded, None, correlation, payload, len(run), listed))
            spread.extend((person, first) for person in people if person is not None)
        tx.executemany(
            "INSERT INTO events (position, type, schema_version, occurred_at, recorded_at, user_id, "
            "correlation_id, payload, run_length, users) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if spread:
            tx.executemany("INSERT INTO event_users (user_id, position) VALUES (?, ?)", spread)

    def head(self) -> int:
        return self.tx.dialect.log_head(self.tx)

    def read(self, after: int, upto: int | None, types: Sequence[str] | None, limit: int) -> list[LogRow]:
        sql = f"SELECT {_EVENT} FROM events WHERE position >= {_RUN_START}"
        params: list[Any] = [after + 1]
        if upto is not None:
            sql += " AND position <= ?"
            params.append(upto)
        if types is not None:
            if not types:
                return []
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params.extend(types)
        # Every run read yields at least one event: ``limit`` runs are always enough.
        sql += " ORDER BY position LIMIT ?"
        params.append(limit)
        out: list[LogRow] = []
        for row in self.tx.execute(sql, params).fetchall():
            for event in _explode(row, after, upto):
                out.append(event)
                if len(out) == limit:
                    return out
        return out

    def count(self, after: int, upto: int | None) -> int:
        # Clip the runs at both ends: a checkpoint may sit inside a run.
        top = self.head() if upto is None else upto
        row = self.tx.execute(
            "SELECT COALESCE(SUM(CASE WHEN position + run_length - 1 > ? THEN ? ELSE position + run_length - 1 END "
            "- CASE WHEN position <= ? THEN ? ELSE position - 1 END), 0) FROM events "
            f"WHERE position >= {_RUN_START} AND position <= ? AND position + run_length - 1 > ?",
            (top, top, after, after, after + 1, top, after),
        ).fetchone()
        return int(row[0])

    def redact(self, user_ids: Sequence[int], redactor: Callable[[str], str]) -> int:
        changed = 0
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            rows = self.tx.execute(
                # Two indexed lookups: runs about one person, and runs listing several.
                f"SELECT {_EVENT} FROM events WHERE user_id IN ({marks}) UNION ALL SELECT {_EVENT} FROM events "
                f"WHERE position IN (SELECT position FROM event_users WHERE user_id IN ({marks}))", [*chunk, *chunk]
            ).fetchall()
            wanted = set(chunk)
            updates = []
            for row in rows:
                events = list(_explode(row))
                lines = [e.payload for e in events]
                done = {i for i, e in enumerate(events) if e.redacted}
                hit = [i for i, e in enumerate(events) if e.user_id in wanted and i not in done]
                if not hit:
                    continue
                for i in hit:
                    lines[i] = redactor(lines[i])
                done.update(hit)
                listed = ",".join(str(i) for i in sorted(done)) if len(events) > 1 else None
                updates.append(("\n".join(lines), listed, int(row[0])))
                changed += len(hit)
            if updates:
                self.tx.executemany(
                    "UPDATE events SET payload = ?, redacted = 1, redacted_lines = ? WHERE position = ?", updates
                )
        return changed

    def prune(self, upto: int, recorded_before: datetime) -> int:
        before = to_us(recorded_before)
        row = self.tx.execute(
            "SELECT COALESCE(SUM(run_length), 0) FROM events WHERE position + run_length - 1 <= ? AND recorded_at < ?",
            (upto, before),
        ).fetchone()
        removed = int(row[0])
        self.tx.execute(
            "DELETE FROM event_users WHERE position IN (SELECT position FROM events WHERE "
            "position + run_length - 1 <= ? AND recorded_at < ? AND users IS NOT NULL)", (upto, before),
        )
        self.tx.execute("DELETE FROM events WHERE position + run_length - 1 <= ? AND recorded_at < ?", (upto, before))
        straddling = self.tx.execute(
            f"SELECT {_EVENT} FROM events WHERE position <= ? AND position + run_length - 1 > ? AND recorded_at < ?",
            (upto, upto, before),
        ).fetchone()
        if straddling is not None:  # a run partly delivered: keep its tail as a run of its own
            removed += self._trim(straddling, upto)
        return removed

    def _trim(self, row: Sequence[Any], upto: int) -> int:
        events = list(_explode(row))
        kept = [e for e in events if e.position > upto]
        self.tx.execute("DELETE FROM event_users WHERE position = ?", (int(row[0]),))
        self.tx.execute("DELETE FROM events WHERE position = ?", (int(row[0]),))
        self._store([e.position for e in kept],
                    [NewLogEntry(e.type, e.schema_version, e.occurred_at, e.user_id, e.correlation_id, e.payload)
                     for e in kept], int(row[4]))
        marked = [i for i, e in enumerate(kept) if e.redacted]
        if marked:
            self.tx.execute("UPDATE events SET redacted = 1, redacted_lines = ? WHERE position = ?",
                            (",".join(map(str, marked)) if len(kept) > 1 else None, kept[0].position))
        return len(events) - len(kept)

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


def _runs(positions: Sequence[int], entries: Sequence[NewLogEntry]) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` index ranges of consecutive events sharing type, version, instant and
    correlation, at consecutive positions: the rows they are stored in."""
    start = 0
    for i in range(1, len(entries)):
        entry, previous = entries[i], entries[i - 1]
        if (positions[i] != positions[i - 1] + 1 or entry[0] != previous[0] or entry[2] != previous[2]
                or entry[4] != previous[4] or entry[1] != previous[1]):
            yield start, i
            start = i
    yield start, len(entries)


def _explode(r: Sequence[Any], after: int = 0, upto: int | None = None) -> Iterator[LogRow]:
    """The events of one stored run with ``after < position <= upto``."""
    count, first = int(r[9]), int(r[0])
    start = max(0, after - first + 1)
    stop = count if upto is None else min(count, upto - first + 1)
    if start >= stop:
        return
    occurred, recorded = from_us_required(int(r[3])), from_us_required(int(r[4]))
    if count == 1:
        yield LogRow(position=first, type=str(r[1]), schema_version=int(r[2]), occurred_at=occurred,
                     recorded_at=recorded, user_id=None if r[5] is None else int(r[5]), correlation_id=str(r[6]),
                     payload=str(r[7]), redacted=bool(r[8]))
        return
    lines = str(r[7]).split("\n")
    people: list[int | None] = (
        [None if r[5] is None else int(r[5])] * count if r[10] is None
        else [int(u) if u else None for u in str(r[10]).split(",")]
    )
    redacted = {int(i) for i in str(r[11]).split(",")} if r[11] else set()
    kind, version, correlation = str(r[1]), int(r[2]), str(r[6])
    for i in range(start, stop):
        yield LogRow(position=first + i, type=kind, schema_version=version, occurred_at=occurred,
                     recorded_at=recorded, user_id=people[i], correlation_id=correlation, payload=lines[i],
                     redacted=i in redacted)
