"""Saved segments, snapshots, and the bulk reads the segment engine indexes."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from ...models.segments import SavedSegment


class SegmentStore(abc.ABC):
    # -- saved segments ----------------------------------------------------------
    @abc.abstractmethod
    def save(self, segment: SavedSegment) -> None:
        """Create or replace a saved segment (by name)."""

    @abc.abstractmethod
    def get(self, name: str) -> SavedSegment | None: ...

    @abc.abstractmethod
    def all(self) -> list[SavedSegment]:
        """Every saved segment, by name."""

    @abc.abstractmethod
    def delete(self, name: str) -> bool: ...

    # -- snapshots ---------------------------------------------------------------
    @abc.abstractmethod
    def add_snapshot(
        self, *, name: str, expression: str, resolved: str, at: datetime, count: int, bitmap: bytes, key: str | None
    ) -> int:
        """Store a snapshot (``bitmap`` is a serialized Roaring bitmap); return its id."""

    @abc.abstractmethod
    def snapshot(self, snapshot_id: int) -> dict[str, Any] | None:
        """A snapshot as a dict with the keys of :meth:`add_snapshot` plus ``id``."""

    @abc.abstractmethod
    def snapshot_by_key(self, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def snapshots(self, name: str | None = None) -> list[dict[str, Any]]:
        """Snapshots (of one name if given), oldest first, without ``bitmap`` (``count`` is there)."""

    # -- what the engine indexes ----------------------------------------------------
    @abc.abstractmethod
    def tag_holders(self, tag_id: int) -> Sequence[int]:
        """The user ids holding a tag, in any order (a bulk read: make it fast)."""

    @abc.abstractmethod
    def tag_log_position(self) -> int:
        """An increasing position in the tag history (0 if empty)."""

    @abc.abstractmethod
    def tag_changes(self, after: int, also: Sequence[int] = ()) -> list[tuple[int, int, int]]:
        """History lines past position ``after`` (and at the positions in ``also``),
        as ``(position, user_id, tag_id)`` ordered by position."""

    @abc.abstractmethod
    def user_span(self) -> tuple[int, int]:
        """``(number of users of any status, highest user id)``."""

    @abc.abstractmethod
    def user_ids(self, active: bool = True) -> list[int]:
        """Ids of active users (or, with ``active=False``, of all others), ascending."""

    @abc.abstractmethod
    def profiles(self) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
        """``(user_id, source, attributes)`` of every active user."""

    @abc.abstractmethod
    def identity_kinds(self) -> Iterator[tuple[str, int]]:
        """``(kind, user_id)`` for every identity of an active user."""

    @abc.abstractmethod
    def user_times(self, column: str) -> Iterator[tuple[int, datetime]]:
        """``(user_id, instant)`` of active users for ``"created_at"`` or ``"last_active_at"`` (nulls left out)."""

    @abc.abstractmethod
    def membership_count(self, tag_ids: Sequence[int] | None = None) -> int:
        """How many ``(user, tag)`` applications are held (of the given tags, or in total)."""

    @abc.abstractmethod
    def cached_bitmaps(self) -> tuple[str, Iterator[tuple[int, bytes]]] | None:
        """The engine's stored bitmaps: ``(state, [(tag_id, serialized bitmap)...])``,
        ``state`` being what :meth:`save_bitmaps` was given; ``None`` if none are stored."""

    @abc.abstractmethod
    def save_bitmaps(self, state: str, bitmaps: Iterator[tuple[int, bytes]]) -> None:
        """Replace the stored bitmaps (a cache: dropping them only costs a rebuild)."""
