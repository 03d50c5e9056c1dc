"""The points ledger: entries, lots (what an earn left), allocations."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

import attrs

from ...models.points import PointsEntry, PointsLot

#: Entry kinds that open a lot (points that can later be spent).
LOT_KINDS = frozenset({"earn", "merge_in"})


@attrs.frozen(kw_only=True)
class NewEntry:
    """A ledger line to append. Entries of a kind in :data:`LOT_KINDS` also open a lot."""

    user_id: int
    kind: str
    amount: int
    reason: str
    at: datetime
    key: str | None = None
    fingerprint: str | None = None
    ref_entry_id: int | None = None
    available_at: datetime | None = None
    expires_at: datetime | None = None


class PointsStore(abc.ABC):
    @abc.abstractmethod
    def append(self, entries: Sequence[NewEntry]) -> list[int]:
        """Append entries (opening a lot for each of a kind in LOT_KINDS); return ids in order."""

    @abc.abstractmethod
    def by_keys(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """Existing entries for idempotency keys: key -> (entry id, fingerprint)."""

    @abc.abstractmethod
    def entry(self, entry_id: int) -> PointsEntry | None: ...

    @abc.abstractmethod
    def entries(self, user_id: int) -> list[PointsEntry]:
        """The user's ledger, oldest first."""

    @abc.abstractmethod
    def lot(self, entry_id: int) -> PointsLot | None: ...

    @abc.abstractmethod
    def usable_lots(self, user_id: int, now: datetime) -> list[PointsLot]:
        """Lots with points left, available and not expired at ``now``,
        earliest expiry first (no expiry last), then oldest first."""

    @abc.abstractmethod
    def lots(self, user_id: int) -> list[PointsLot]:
        """Every lot of the user with points left, in the order of ``usable_lots``."""

    @abc.abstractmethod
    def usable_lots_of(self, user_ids: Sequence[int], now: datetime) -> dict[int, list[PointsLot]]:
        """:meth:`usable_lots` for many users at once (users without lots are left out)."""

    @abc.abstractmethod
    def consume_many(self, takes: Sequence[tuple[int, int, int]]) -> None:
        """:meth:`consume` for many entries: ``(entry_id, lot_id, amount)`` rows."""

    @abc.abstractmethod
    def consume(self, entry_id: int, takes: Sequence[tuple[int, int]]) -> None:
        """Record that entry ``entry_id`` took ``amount`` from each ``(lot_id, amount)``
        and lower those lots' remaining points."""

    @abc.abstractmethod
    def restore(self, entry_id: int, gives: Sequence[tuple[int, int]]) -> None:
        """Record that ``entry_id`` gave ``amount`` back to each ``(lot_id, amount)``."""

    @abc.abstractmethod
    def allocations(self, entry_id: int) -> list[tuple[int, int]]:
        """``(lot_id, amount)`` an entry took (positive) or gave back (negative)."""

    @abc.abstractmethod
    def reversed_amount(self, entry_id: int) -> int:
        """Absolute points already reversed of an entry."""

    @abc.abstractmethod
    def balance(self, user_id: int, now: datetime) -> int: ...

    @abc.abstractmethod
    def pending(self, user_id: int, now: datetime) -> int:
        """Points earned but not yet available at ``now``."""

    @abc.abstractmethod
    def due_lots(self, now: datetime, limit: int) -> list[PointsLot]:
        """Lots with points left whose expiry is at or before ``now``."""

    @abc.abstractmethod
    def totals(self, now: datetime) -> dict[str, int]:
        """Ledger sums by entry kind, plus ``usable`` and ``pending`` (points left in lots
        available / not yet available at ``now``, unexpired): the points liability."""

    @abc.abstractmethod
    def expiring(self, start: datetime, end: datetime) -> list[PointsLot]:
        """Lots with points left that expire in ``(start, end]``."""

    @abc.abstractmethod
    def balances(self, now: datetime) -> dict[int, int]:
        """Every user's usable balance at ``now`` (users with 0 may be left out)."""
