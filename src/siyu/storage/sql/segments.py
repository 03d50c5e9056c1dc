"""Saved segments, snapshots and the engine's bulk reads in SQL."""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us_required, to_us
from ...models.segments import SavedSegment
from ..contracts import SegmentStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_SNAP = "id, name, expression, resolved, created_at, user_count, key"
_FETCH = 65_536
_CACHE_KEY = "segments.bitmap_cache"


def _snapshot(row: Sequence[Any], bitmap: Any = None) -> dict[str, Any]:
    data = {
        "id": int(row[0]),
        "name": row[1],
        "expression": row[2],
        "resolved": row[3],
        "at": from_us_required(row[4]),
        "count": int(row[5]),
        "key": row[6],
    }
    if bitmap is not None:
        data["bitmap"] = bytes(bitmap)
    return data


class SqlSegmentStore(SegmentStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- saved segments ----------------------------------------------------------
    def save(self, segment: SavedSegment) -> None:
        self.tx.execute(
            "INSERT INTO segments (name, expression, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, "
            "description = excluded.description, updated_at = excluded.updated_at",
            (segment.name, segment.expression, segment.description, to_us(segment.created_at),
             to_us(segment.updated_at)),
        )

    def _segment(self, row: Sequence[Any]) -> SavedSegment:
        return SavedSegment(
            name=row[0], expression=row[1], description=row[2], created_at=from_us_required(row[3]),
            updated_at=from_us_required(row[4]),
        )

    def get(self, name: str) -> SavedSegment | None:
        row = self.tx.execute(
            "SELECT name, expression, description, created_at, updated_at FROM segments WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else self._segment(row)

    def all(self) -> list[SavedSegment]:
        return [
            self._segment(row)
            for row in self.tx.execute(
                "SELECT name, expression, description, created_at, updated_at FROM segments ORDER BY name"
            )
        ]

    def delete(self, name: str) -> bool:
        return bool(self.tx.execute("DELETE FROM segments WHERE name = ?", (name,)).rowcount)

    # -- snapshots ---------------------------------------------------------------
    def add_snapshot(
        self, *, name: str, expression: str, resolved: str, at: datetime, count: int, bitmap: bytes, key: str | None
    ) -> int:
        row = self.tx.execute(
            "INSERT INTO segment_snapshots (name, expression, resolved, created_at, user_count, bitmap, key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (name, expression, resolved, to_us(at), count, bitmap, key),
        ).fetchone()
        return int(row[0])

    def snapshot(self, snapshot_id: int) -> dict[str, Any] | None:
        row = self.tx.execute(
            f"SELECT {_SNAP}, bitmap FROM segment_snapshots WHERE id = ?", (snapshot_id,)
        ).fetchone()
        return None if row is None else _snapshot(row, row[7])

    def snapshot_by_key(self, key: str) -> dict[str, Any] | None:
        row = self.tx.execute(f"SELECT {_SNAP}, bitmap FROM segment_snapshots WHERE key = ?", (key,)).fetchone()
        return None if row is None else _snapshot(row, row[7])

    def snapshots(self, name: str | None = None) -> list[dict[str, Any]]:
        if name is None:
            rows = self.tx.execute(f"SELECT {_SNAP} FROM segment_snapshots ORDER BY id")
        else:
            rows = self.tx.execute(f"SELECT {_SNAP} FROM segment_snapshots WHERE name = ? ORDER BY id", (name,))
        return [_snapshot(row) for row in rows]

    # -- what the engine indexes ----------------------------------------------------
    def tag_holders(self, tag_id: int) -> Sequence[int]:
        # A cold build is dominated by turning rows into Python ints: aggregate the
        # tag's holders into one value that json (SQLite) or the driver decodes in C.
        dialect = self.tx.dialect.name
        if dialect == "sqlite":
            joined = self.tx.execute(
                "SELECT json_group_array(user_id) FROM user_tags WHERE tag_id = ?", (tag_id,)
            ).fetchone()[0]
            return array("I", json.loads(joined))
        if dialect == "postgresql":
            row = self.tx.execute("SELECT array_agg(user_id) FROM user_tags WHERE tag_id = ?", (tag_id,)).fetchone()
            return array("I", row[0] or ())
        rows = self.tx.execute("SELECT user_id FROM user_tags WHERE tag_id = ?", (tag_id,)).fetchall()
        return array("I", [r[0] for r in rows])

    def tag_log_position(self) -> int:
        row = self.tx.execute("SELECT COALESCE(MAX(id), 0) FROM tag_log").fetchone()
        return int(row[0])

    def tag_changes(self, after: int, also: Sequence[int] = ()) -> list[tuple[int, int, int]]:
        rows = [
            (int(i), int(u), int(t))
            for i, u, t in self.tx.execute(
                "SELECT id, user_id, tag_id FROM tag_log WHERE id > ? ORDER BY id", (after,)
            )
        ]
        for marks, chunk in self.tx.in_chunks(sorted(set(also))):
            rows.extend(
                (int(i), int(u), int(t))
                for i, u, t in self.tx.execute(
                    f"SELECT id, user_id, tag_id FROM tag_log WHERE id IN ({marks})", chunk
                )
            )
        rows.sort()
        return rows

    def user_span(self) -> tuple[int, int]:
        row = self.tx.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM users").fetchone()
        return int(row[0]), int(row[1])

    def user_ids(self, active: bool = True) -> list[int]:
        op = "=" if active else "<>"
        rows = self.tx.execute(f"SELECT id FROM users WHERE status {op} ? ORDER BY id", ("active",))
        return [int(r[0]) for r in rows]

    def profiles(self) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
        cursor = self.tx.execute("SELECT id, source, attributes FROM users WHERE status = ?", ("active",))
        empty: dict[str, Any] = {}
        while True:
            rows = cursor.fetchmany(_FETCH)
            if not rows:
                break
            for uid, source, attributes in rows:
                yield uid, source, (empty if attributes in ("{}", None) else json.loads(attributes))

    def identity_kinds(self) -> Iterator[tuple[str, int]]:
        yield from self.tx.execute(
            "SELECT i.kind, i.user_id FROM identities i JOIN users u ON u.id = i.user_id WHERE u.status = ?",
            ("active",),
        )

    def user_times(self, column: str) -> Iterator[tuple[int, datetime]]:
        if column not in ("created_at", "last_active_at"):
            raise ValueError(f"no instant column {column!r} on users")
        for uid, stamp in self.tx.execute(
            f"SELECT id, {column} FROM users WHERE status = ? AND {column} IS NOT NULL", ("active",)
        ):
            yield uid, from_us_required(stamp)

    def membership_count(self, tag_ids: Sequence[int] | None = None) -> int:
        if tag_ids is None:
            return int(self.tx.execute("SELECT COUNT(*) FROM user_tags").fetchone()[0])
        total = 0
        for marks, chunk in self.tx.in_chunks(list(tag_ids)):
            total += int(self.tx.execute(
                f"SELECT COUNT(*) FROM user_tags WHERE tag_id IN ({marks})", chunk).fetchone()[0])
        return total

    def cached_bitmaps(self) -> tuple[str, Iterator[tuple[int, bytes]]] | None:
        state = self.tx.meta.get(_CACHE_KEY)
        if state is None:
            return None
        rows = self.tx.execute("SELECT tag_id, bitmap FROM segment_bitmaps")
        return state, ((int(t), bytes(b)) for t, b in rows)

    def save_bitmaps(self, state: str, bitmaps: Iterator[tuple[int, bytes]]) -> None:
        self.tx.execute("DELETE FROM segment_bitmaps")
        self.tx.executemany("INSERT INTO segment_bitmaps (tag_id, bitmap) VALUES (?, ?)", bitmaps)
        self.tx.meta.set(_CACHE_KEY, state)
