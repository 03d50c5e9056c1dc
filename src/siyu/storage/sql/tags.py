"""Tags in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..._clock import from_us_required, to_us
from ...models.tags import TagApplication, TagGroup
from ..contracts import TagStore

if TYPE_CHECKING:
    from .backend import SqlTransaction


class SqlTagStore(TagStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def get_group(self, name: str) -> TagGroup | None:
        row = self.tx.execute(
            "SELECT name, exclusive, description FROM tag_groups WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else TagGroup(name=row[0], exclusive=bool(row[1]), description=row[2])

    def save_group(self, group: TagGroup, at: datetime) -> None:
        self.tx.execute(
            "INSERT INTO tag_groups (name, exclusive, description, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET exclusive = excluded.exclusive, "
            "description = excluded.description",
            (group.name, int(group.exclusive), group.description, to_us(at)),
        )

    def groups(self) -> list[TagGroup]:
        return [
            TagGroup(name=n, exclusive=bool(e), description=d)
            for n, e, d in self.tx.execute("SELECT name, exclusive, description FROM tag_groups ORDER BY name")
        ]

    def tag_id(self, group: str, name: str) -> int | None:
        row = self.tx.execute(
            "SELECT id FROM tags WHERE group_name = ? AND name = ?", (group, name)
        ).fetchone()
        return None if row is None else int(row[0])

    def create_tag(self, group: str, name: str, at: datetime) -> int:
        row = self.tx.execute(
            "INSERT INTO tags (group_name, name, created_at) VALUES (?, ?, ?) RETURNING id",
            (group, name, to_us(at)),
        ).fetchone()
        return int(row[0])

    def tags(self) -> list[tuple[int, str, str]]:
        return [
            (i, g, n) for i, g, n in self.tx.execute("SELECT id, group_name, name FROM tags ORDER BY id")
        ]

    def applied(self, user_id: int) -> list[tuple[int, str, str]]:
        return [
            (i, g, n)
            for i, g, n in self.tx.execute(
                "SELECT t.id, t.group_name, t.name FROM user_tags ut JOIN tags t ON t.id = ut.tag_id "
                "WHERE ut.user_id = ? ORDER BY t.id",
                (user_id,),
            )
        ]

    def apply(self, rows: Sequence[tuple[int, int]], at: datetime, by: str) -> None:
        stamp = to_us(at)
        self.tx.executemany(
            "INSERT INTO user_tags (user_id, tag_id, applied_at, applied_by) VALUES (?, ?, ?, ?)",
            [(u, t, stamp, by) for u, t in rows],
        )
        self._log(rows, "apply", stamp, by)

    def remove(self, rows: Sequence[tuple[int, int]], at: datetime, by: str) -> None:
        self.tx.executemany("DELETE FROM user_tags WHERE user_id = ? AND tag_id = ?", list(rows))
        self._log(rows, "remove", to_us(at), by)

    def _log(self, rows: Sequence[tuple[int, int]], action: str, stamp: int, by: str) -> None:
        self.tx.executemany(
            "INSERT INTO tag_log (user_id, tag_id, action, at, by_what) VALUES (?, ?, ?, ?, ?)",
            [(u, t, action, stamp, by) for u, t in rows],
        )

    def holders(self, tag_id: int) -> list[int]:
        return [
            r[0] for r in self.tx.execute("SELECT user_id FROM user_tags WHERE tag_id = ? ORDER BY user_id", (tag_id,))
        ]

    def held(self, rows: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        by_user: dict[int, list[int]] = {}
        for u, t in rows:
            by_user.setdefault(u, []).append(t)
        users = sorted(by_user)
        for marks, chunk in self.tx.in_chunks(users):
            for u, t in self.tx.execute(
                f"SELECT user_id, tag_id FROM user_tags WHERE user_id IN ({marks})", chunk
            ):
                found.add((u, t))
        return found & set(rows)

    def history(self, user_id: int) -> list[TagApplication]:
        return [
            TagApplication(tag=f"{g}/{n}", action=a, at=from_us_required(at), by=b)
            for g, n, a, at, b in self.tx.execute(
                "SELECT t.group_name, t.name, l.action, l.at, l.by_what FROM tag_log l "
                "JOIN tags t ON t.id = l.tag_id WHERE l.user_id = ? ORDER BY l.id",
                (user_id,),
            )
        ]
