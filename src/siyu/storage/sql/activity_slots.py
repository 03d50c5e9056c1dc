"""Who was active when, rolled up into 15-minute slots of Roaring bitmaps.

A retention matrix asks, for every period, *which* users were active in it.
Answering that from the raw rows means reading every event and order each
time (about 2 s per 5 million rows on SQLite, before any grouping). The
rollup keeps, per source (``"e"``: tracked events, ``"o"``: counted orders)
and per 15-minute slot of UTC time, the bitmap of users active in the slot,
written in the same transaction as the rows it summarizes. A report then
ORs the slots of each period together: tens of thousands of small blobs
instead of millions of rows.

Why 15 minutes rather than days: a day, week or month in the business time
zone starts at a local midnight, which in every zone in use today (UTC+5:45
and UTC+12:45 included) falls on a quarter hour of UTC. So one rollup serves
every time zone and every period, and changing ``ws.tz`` needs no rebuild.
A bucket boundary off the quarter hour (historic local mean time, say) makes
the report fall back to the raw rows; the running period's end (``until``)
may cut a slot, and that one slot is checked against the raw rows.

Writes that can only *add* activity (new events, new orders) set bits.
Writes that can take activity away (a refund that leaves an order uncounted,
a merge or unmerge moving rows between users) re-check the affected
(user, slot) pairs against the raw rows, so the rollup never drifts.

Rows written around siyu (a bulk SQL import) are not seen: the rollup is
then marked stale by the migration that finds rows already there, and
``ws.analytics.reindex()`` rebuilds it. Reports on a stale rollup are still
right; they read the raw rows.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
from pyroaring import BitMap

if TYPE_CHECKING:
    from .backend import SqlTransaction

__all__ = ["EVENTS", "ORDERS", "SLOT_US", "STALE_KEY", "ActivitySlots"]

#: One slot: 15 minutes, in microseconds.
SLOT_US = 15 * 60 * 1_000_000
EVENTS = "e"
ORDERS = "o"
#: ``siyu_settings`` entry present (any value) while the rollup may be missing rows.
STALE_KEY = "analytics.activity_slots_stale"
_COUNTED = "(refunded < total OR total = 0)"
_ID_LIMIT = 2**32
#: Raw rows, by source: the table, its user column and its instant column, and the filter for counted rows.
_RAW = {
    EVENTS: ("user_events", "at", ""),
    ORDERS: ("orders", "paid_at", f" AND {_COUNTED}"),
}


def _slot_of(column: str) -> str:
    """SQL for the slot of an instant column. Floor division (instants before 1970
    are negative, and SQL's ``/`` truncates) keeps it equal to Python's ``at // SLOT_US``."""
    return f"({column} - (({column} % {SLOT_US}) + {SLOT_US}) % {SLOT_US}) / {SLOT_US}"


class ActivitySlots:
    """The activity rollup as seen from one transaction."""

    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- state ------------------------------------------------------------------------------
    def is_current(self) -> bool:
        """Whether the rollup holds every row: not marked stale, and every user id
        fits a 32-bit bitmap (ids are dense, so in practice they always do)."""
        if self.tx.meta.get(STALE_KEY) is not None:
            return False
        row = self.tx.execute("SELECT MAX(id) FROM users").fetchone()
        return row is None or row[0] is None or int(row[0]) < _ID_LIMIT

    # -- writes -----------------------------------------------------------------------------
    def add(self, source: str, rows: Iterable[tuple[int, int]]) -> None:
        """Record activity: ``(user_id, instant_us)`` pairs from rows just written."""
        changes: dict[int, BitMap] = defaultdict(BitMap)
        for user_id, at in rows:
            # A larger id is left out, and is_current() then says no: reports read the raw rows.
            if 0 <= user_id < _ID_LIMIT:
                changes[at // SLOT_US].add(user_id)
        if changes:
            self._apply(source, {slot: (users, None) for slot, users in changes.items()})

    def recheck(self, source: str, pairs: Iterable[tuple[int, int]]) -> None:
        """Re-derive the bits of ``(user_id, instant_us)`` pairs from the raw rows,
        after a write that may have taken activity away from those users.

        One query per user reads which of the slots in question still hold a row
        (a merge re-checks every slot of the user merged away: thousands for an
        active user, so not one query per slot)."""
        wanted: dict[int, set[int]] = defaultdict(set)
        for user_id, at in pairs:
            if 0 <= user_id < _ID_LIMIT:
                wanted[user_id].add(at // SLOT_US)
        if not wanted:
            return
        table, column, counted = _RAW[source]
        changes: dict[int, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
        for user_id, slots in sorted(wanted.items()):
            present = {
                int(r[0])
                for r in self.tx.execute(
                    f"SELECT DISTINCT {_slot_of(column)} FROM {table} "
                    f"WHERE user_id = ? AND {column} >= ? AND {column} < ?{counted}",
                    (user_id, min(slots) * SLOT_US, (max(slots) + 1) * SLOT_US),
                )
            }
            for slot in slots:
                changes[slot][0 if slot in present else 1].add(user_id)
        self._apply(source, dict(changes))

    def _apply(self, source: str, changes: dict[int, tuple[BitMap, BitMap | None]]) -> None:
        slots = sorted(changes)
        # Read, merge and write back: two writers of one slot must not overwrite each other's users.
        self.tx.serialize("analytics.slots", [f"{source}\x00{slot}" for slot in slots])
        current: dict[int, BitMap] = {}
        for _, chunk in self.tx.in_chunks(slots):
            # A join on the slots as VALUES probes the primary key once per slot. `slot IN (...)`
            # let PostgreSQL, right after a bulk insert (no statistics yet), scan every row of
            # the source and test each against the whole list: 0.1 s per 500 slots at 20k rows.
            values = ", ".join("(CAST(? AS BIGINT))" for _ in chunk)
            for slot, blob in self.tx.execute(
                f"WITH wanted (slot) AS (VALUES {values}) SELECT a.slot, a.users FROM wanted "
                "JOIN analytics_slots a ON a.source = ? AND a.slot = wanted.slot",
                [*chunk, source],
            ):
                current[int(slot)] = BitMap.deserialize(bytes(blob))
        upserts: list[tuple[str, int, bytes]] = []
        emptied: list[int] = []
        for slot in slots:
            added, removed = changes[slot]
            before = current.get(slot)
            users = BitMap() if before is None else before.copy()
            users |= added
            if removed is not None:
                users -= removed
            if users == before or (before is None and not users):
                continue
            if users:
                upserts.append((source, slot, users.serialize()))
            else:
                emptied.append(slot)
        if upserts:
            self.tx.executemany(
                "INSERT INTO analytics_slots (source, slot, users) VALUES (?, ?, ?) "
                "ON CONFLICT (source, slot) DO UPDATE SET users = excluded.users",
                upserts,
            )
        for marks, chunk in self.tx.in_chunks(emptied):
            self.tx.execute(f"DELETE FROM analytics_slots WHERE source = ? AND slot IN ({marks})", [source, *chunk])

    def rebuild(self) -> None:
        """Derive the whole rollup again from the raw rows (after writes made around siyu)."""
        self.tx.execute("DELETE FROM analytics_slots")
        for source, (table, column, counted) in _RAW.items():
            # The rows are read as plain pairs and grouped by NumPy: sorting millions of rows by slot
            # in the database, and parsing a JSON list per slot, took several times longer.
            cursor = self.tx.execute(
                f"SELECT user_id, {column} FROM {table} WHERE user_id >= 0 AND user_id < {_ID_LIMIT}{counted}")
            pairs = np.fromiter(chain.from_iterable(cursor), dtype=np.int64).reshape(-1, 2)
            # One key per (slot, user), slot in the high bits: sorted, the slots come out in order.
            keys = np.sort((pairs[:, 1] // SLOT_US) * _ID_LIMIT + pairs[:, 0])
            keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys  # (np.unique hashes: slower)
            slots = keys >> 32
            starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]]) if len(keys) else keys
            users = (keys & (_ID_LIMIT - 1)).astype(np.uint32)
            bounds = [*starts.tolist(), len(keys)]
            batch: list[tuple[str, int, bytes]] = []
            for slot, lo, hi in zip(slots[starts].tolist(), bounds, bounds[1:], strict=False):
                # Through the buffer protocol: many times faster than a BitMap from NumPy or a list.
                batch.append((source, slot, BitMap(array("I", users[lo:hi].tobytes())).serialize()))
                if len(batch) >= 5_000:
                    self._insert(batch)
            self._insert(batch)
        self.tx.execute("DELETE FROM siyu_settings WHERE name = ?", (STALE_KEY,))

    def _insert(self, batch: list[tuple[str, int, bytes]]) -> None:
        if batch:
            self.tx.executemany("INSERT INTO analytics_slots (source, slot, users) VALUES (?, ?, ?)", batch)
            batch.clear()

    # -- reads ------------------------------------------------------------------------------
    def active(self, sources: Sequence[str], bounds: Sequence[int]) -> list[BitMap] | None:
        """Users active in each bucket ``[b_i, b_{i+1})`` in any of ``sources``, or
        ``None`` when the rollup cannot answer (stale, or a boundary off the quarter hour)."""
        if not self.is_current() or any(b % SLOT_US for b in bounds[:-1]):
            return None
        starts = [b // SLOT_US for b in bounds[:-1]]
        end = bounds[-1]
        whole = end // SLOT_US  # slots before this one end by `end`
        parts: list[list[BitMap]] = [[] for _ in starts]
        marks = ",".join("?" * len(sources))
        for slot, blob in self.tx.execute(
            f"SELECT slot, users FROM analytics_slots WHERE source IN ({marks}) AND slot >= ? AND slot < ?",
            [*sources, starts[0], whole],
        ):
            parts[bisect_right(starts, int(slot)) - 1].append(BitMap.deserialize(bytes(blob)))
        if end % SLOT_US:
            parts[-1].append(self._cut_slot(sources, whole, end))
        return [BitMap.union(*maps) if maps else BitMap() for maps in parts]

    def slots(self, sources: Sequence[str], only: Sequence[int] | None) -> dict[int, BitMap]:
        """``{slot: users active in it in any of sources}`` for the ``only`` slots (``None``: all)."""
        found: dict[int, BitMap] = {}
        marks = ",".join("?" * len(sources))
        sql = f"SELECT slot, users FROM analytics_slots WHERE source IN ({marks})"
        chunks: list[tuple[str, list[Any]]] = [("", [])] if only is None else list(self.tx.in_chunks(sorted(set(only))))
        for placeholders, chunk in chunks:
            where = "" if only is None else f" AND slot IN ({placeholders})"
            for slot, blob in self.tx.execute(sql + where, [*sources, *chunk]):
                users = BitMap.deserialize(bytes(blob))
                before = found.get(int(slot))
                found[int(slot)] = users if before is None else before | users
        return found

    def _cut_slot(self, sources: Sequence[str], slot: int, end: int) -> BitMap:
        """Users active in the part of ``slot`` before ``end``: the slot's users, checked against raw rows."""
        start = slot * SLOT_US
        found = BitMap()
        for source in sources:
            row = self.tx.execute(
                "SELECT users FROM analytics_slots WHERE source = ? AND slot = ?", (source, slot)
            ).fetchone()
            if row is None:
                continue
            table, column, counted = _RAW[source]
            candidates = list(BitMap.deserialize(bytes(row[0])))
            for marks, chunk in self.tx.in_chunks(candidates):
                found.update(
                    int(r[0])
                    for r in self.tx.execute(
                        f"SELECT DISTINCT user_id FROM {table} WHERE user_id IN ({marks}) "
                        f"AND {column} >= ? AND {column} < ?{counted}",
                        [*chunk, start, end],
                    )
                )
        return found
