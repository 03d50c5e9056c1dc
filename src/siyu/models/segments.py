"""Saved segments, audience snapshots and explanations."""

from __future__ import annotations

from datetime import datetime

import attrs
from pyroaring import FrozenBitMap


@attrs.frozen(kw_only=True)
class SavedSegment:
    """A named expression; ``segment:NAME`` in other expressions refers to it."""

    name: str
    expression: str
    description: str = ""
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class Snapshot:
    """A frozen audience: who matched ``expression`` at ``created_at``.

    ``resolved`` is the expression with every ``segment:NAME`` replaced by
    that segment's definition at the time, so the audience stays explainable
    after the saved segment changes. Campaigns send to snapshots: the ids
    never change once taken.
    """

    id: int
    name: str
    expression: str
    resolved: str
    created_at: datetime
    user_ids: FrozenBitMap = attrs.field(repr=False)

    @property
    def count(self) -> int:
        return len(self.user_ids)

    def users(self) -> list[int]:
        """The user ids, ascending."""
        return list(self.user_ids)

    def __len__(self) -> int:
        return len(self.user_ids)

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, int) and 0 <= user_id < 2**32 and user_id in self.user_ids


@attrs.frozen(kw_only=True)
class Explanation:
    """Counts for every clause of an expression, to see why a segment is small.

    ``count`` is how many users the clause matches on its own; in an ``and``
    chain, ``running`` is how many are left after intersecting it with the
    clauses before it. ``str()`` renders an indented tree.
    """

    text: str
    count: int
    running: int | None = None
    children: tuple[Explanation, ...] = ()

    def rows(self, depth: int = 0) -> list[tuple[int, str, int, int | None]]:
        """``(depth, clause, count, running)`` for the tree, top-down."""
        out = [(depth, self.text, self.count, self.running)]
        for child in self.children:
            out.extend(child.rows(depth + 1))
        return out

    def __str__(self) -> str:
        lines = []
        for depth, text, count, running in self.rows():
            tail = f"  (left after and: {running:,})" if running is not None else ""
            lines.append(f"{count:>10,}  {'  ' * depth}{text}{tail}")
        return "\n".join(lines)
