"""抽奖 / 盲盒 draws in SQL.

A prize's stock is taken by ``UPDATE ... SET units_left = units_left - 1
WHERE units_left >= 1`` (a capped prize is never over-awarded, whatever the
concurrency); a user's state row is locked while they draw, so their
sequence numbers, daily count and pity counter move one draw at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..._clock import from_us_required, to_us
from ...models.activities import Draw, DrawRecord, DrawStatus, Prize, PrizeKind
from ..contracts.activities import DrawStore, PlayerState

if TYPE_CHECKING:
    from .backend import SqlTransaction

_DRAW = "id, name, status, spec, seed, commitment, starts_at, ends_at, created_at"
_RECORD = "id, draw_id, user_id, seq, key, rolled, prize, reason, eligible, at, order_id, cost_points"
_SPEC_FIELDS = ("rules", "exhausted", "cost_points", "per_order", "per_user_day", "per_user", "pity", "blind_box")


def _spec(draw: Draw) -> str:
    data: dict[str, Any] = {name: getattr(draw, name) for name in _SPEC_FIELDS}
    data["prizes"] = [{**attrs.asdict(p), "kind": p.kind.value} for p in draw.prizes]
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def _draw(r: Sequence[Any]) -> Draw:
    data = json.loads(r[3])
    prizes = tuple(Prize(**{**p, "kind": PrizeKind(p["kind"])}) for p in data.pop("prizes"))
    return Draw(id=r[0], name=r[1], status=DrawStatus(r[2]), prizes=prizes, seed=r[4], commitment=r[5],
                starts_at=from_us_required(r[6]), ends_at=from_us_required(r[7]), created_at=from_us_required(r[8]),
                **data)


def _record(r: Sequence[Any]) -> DrawRecord:
    return DrawRecord(id=r[0], draw_id=r[1], user_id=r[2], seq=r[3], key=r[4], rolled=r[5], prize=r[6], reason=r[7],
                      eligible=tuple(json.loads(r[8])), at=from_us_required(r[9]), order_id=r[10],
                      cost_points=r[11])


class SqlDrawStore(DrawStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def add_draw(self, draw: Draw) -> int:
        [did] = self.tx.dialect.allocate_ids(self.tx, "draws", 1)
        assert draw.created_at is not None and draw.seed is not None
        self.tx.execute(
            f"INSERT INTO draws ({_DRAW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (did, draw.name, draw.status.value, _spec(draw), draw.seed, draw.commitment, to_us(draw.starts_at),
             to_us(draw.ends_at), to_us(draw.created_at)),
        )
        self._prizes(int(did), draw.prizes)
        return int(did)

    def _prizes(self, draw_id: int, prizes: Sequence[Prize]) -> None:
        self.tx.execute("DELETE FROM draw_prizes WHERE draw_id = ?", (draw_id,))
        self.tx.executemany("INSERT INTO draw_prizes (draw_id, idx, units_left, awarded) VALUES (?, ?, ?, 0)",
                            [(draw_id, n, p.stock) for n, p in enumerate(prizes)])

    def save_draw(self, draw: Draw) -> None:
        self.tx.execute(
            "UPDATE draws SET name = ?, status = ?, spec = ?, commitment = ?, starts_at = ?, ends_at = ? WHERE id = ?",
            (draw.name, draw.status.value, _spec(draw), draw.commitment, to_us(draw.starts_at), to_us(draw.ends_at),
             draw.id),
        )
        if draw.status is DrawStatus.DRAFT:
            self._prizes(draw.id, draw.prizes)

    def draw(self, draw_id: int) -> Draw | None:
        row = self.tx.execute(f"SELECT {_DRAW} FROM draws WHERE id = ?", (draw_id,)).fetchone()
        return None if row is None else _draw(row)

    def draws(self) -> list[Draw]:
        return [_draw(r) for r in self.tx.execute(f"SELECT {_DRAW} FROM draws ORDER BY id")]

    def prizes_left(self, draw_id: int) -> dict[int, int | None]:
        return {int(r[0]): None if r[1] is None else int(r[1]) for r in self.tx.execute(
            "SELECT idx, units_left FROM draw_prizes WHERE draw_id = ? ORDER BY idx", (draw_id,))}

    def take_prize(self, draw_id: int, index: int) -> bool:
        cursor = self.tx.execute(
            "UPDATE draw_prizes SET units_left = units_left - 1, awarded = awarded + 1 "
            "WHERE draw_id = ? AND idx = ? AND (units_left IS NULL OR units_left >= 1)",
            (draw_id, index),
        )
        return int(cursor.rowcount or 0) == 1

    def player(self, draw_id: int, user_id: int) -> PlayerState:
        self.tx.execute(
            "INSERT INTO draw_players (draw_id, user_id, draws, misses, day, day_count) VALUES (?, ?, 0, 0, 0, 0) "
            "ON CONFLICT (draw_id, user_id) DO NOTHING", (draw_id, user_id))
        row = self.tx.execute(
            "SELECT draws, misses, day, day_count FROM draw_players WHERE draw_id = ? AND user_id = ?"
            + self.tx.dialect.row_lock, (draw_id, user_id)).fetchone()
        return PlayerState(draws=row[0], misses=row[1], day=row[2], day_count=row[3])

    def save_player(self, draw_id: int, user_id: int, state: PlayerState) -> None:
        self.tx.execute(
            "UPDATE draw_players SET draws = ?, misses = ?, day = ?, day_count = ? WHERE draw_id = ? AND user_id = ?",
            (state.draws, state.misses, state.day, state.day_count, draw_id, user_id))

    def add_record(self, record: DrawRecord) -> int | None:
        [rid] = self.tx.dialect.allocate_ids(self.tx, "draw_records", 1)
        r = record
        row = self.tx.execute(
            f"INSERT INTO draw_records ({_RECORD}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING id",
            (rid, r.draw_id, r.user_id, r.seq, r.key, r.rolled, r.prize, r.reason, json.dumps(list(r.eligible)),
             to_us(r.at), r.order_id, r.cost_points),
        ).fetchone()
        return None if row is None else int(row[0])

    def record_by_key(self, key: str) -> DrawRecord | None:
        row = self.tx.execute(f"SELECT {_RECORD} FROM draw_records WHERE key = ?", (key,)).fetchone()
        return None if row is None else _record(row)

    def records(self, draw_id: int, *, user_id: int | None = None) -> list[DrawRecord]:
        if user_id is None:
            rows = self.tx.execute(f"SELECT {_RECORD} FROM draw_records WHERE draw_id = ? ORDER BY user_id, seq",
                                   (draw_id,))
        else:
            rows = self.tx.execute(f"SELECT {_RECORD} FROM draw_records WHERE draw_id = ? AND user_id = ? "
                                   "ORDER BY seq", (draw_id, user_id))
        return [_record(r) for r in rows]
