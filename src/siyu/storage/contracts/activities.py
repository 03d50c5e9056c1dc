"""Activities in storage: flash sales, bargains, their counters and per-user limits.

Every counter an activity guards is changed by one conditional step that
says whether it happened (a decrement that refuses to pass zero, a status
move from one named status, a per-user count that refuses to pass its
limit), never by reading a value and writing a new one. That keeps them
right when many processes write at once, whatever lock the backend takes.
Money is integer fen; instants are aware ``datetime``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import date, datetime

import attrs

from ...models.activities import (
    AttemptStatus,
    Bargain,
    BargainAttempt,
    BargainHelp,
    Draw,
    DrawRecord,
    FlashSale,
    Reservation,
    ReservationStatus,
)

__all__ = ["UNITS", "BargainStore", "DrawStore", "FlashSaleStore", "PlayerState"]

#: The three places a flash sale's units can be; they always add up to the sale's total.
UNITS = ("stock", "reserved", "sold")


class FlashSaleStore(abc.ABC):
    """秒杀 sales, their reservations and per-user quotas."""

    # -- sales ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_sale(self, sale: FlashSale) -> int:
        """Store a new sale (its ``id`` is ignored) and return its id."""

    @abc.abstractmethod
    def sale(self, sale_id: int) -> FlashSale | None: ...

    @abc.abstractmethod
    def sales(self) -> list[FlashSale]: ...

    @abc.abstractmethod
    def set_active(self, sale_id: int, active: bool) -> None: ...

    @abc.abstractmethod
    def move_units(self, sale_id: int, qty: int, source: str, target: str) -> bool:
        """Move ``qty`` units from one of :data:`UNITS` to another, only if
        ``source`` holds at least ``qty``; whether it did."""

    # -- per-user quotas -------------------------------------------------------------------
    @abc.abstractmethod
    def take_quota(self, sale_id: int, user_id: int, day: date | None, qty: int, limit: int) -> bool:
        """Count ``qty`` more units against the user's quota for the whole sale
        (``day=None``) or for one business day, only if the count stays within
        ``limit``; whether it did."""

    @abc.abstractmethod
    def give_quota(self, sale_id: int, user_id: int, day: date | None, qty: int) -> None:
        """Take ``qty`` units off the user's count (a released or refunded reservation)."""

    @abc.abstractmethod
    def quota_used(self, sale_id: int, user_id: int, day: date | None) -> int: ...

    # -- reservations ----------------------------------------------------------------------
    @abc.abstractmethod
    def add_reservation(self, reservation: Reservation) -> int | None:
        """Store a reservation and return its id; ``None`` if one with the same
        ``key`` exists (written by a concurrent or earlier call)."""

    @abc.abstractmethod
    def reservation(self, reservation_id: int) -> Reservation | None: ...

    @abc.abstractmethod
    def reservation_by_key(self, key: str) -> Reservation | None: ...

    @abc.abstractmethod
    def reservation_by_order(self, order_id: int) -> Reservation | None: ...

    @abc.abstractmethod
    def reservations(self, *, sale_id: int | None = None, user_id: int | None = None) -> list[Reservation]: ...

    @abc.abstractmethod
    def transition(self, reservation_id: int, source: ReservationStatus, target: ReservationStatus, at: datetime,
                   *, held_at: datetime | None = None, expired_by: datetime | None = None) -> bool:
        """Move a reservation from ``source`` to ``target`` (stamping ``closed_at``),
        only if it is in ``source`` -- and, with ``held_at``, only if its hold
        has not run out by then; with ``expired_by``, only if it has. Whether it moved."""

    @abc.abstractmethod
    def set_order(self, reservation_id: int, order_id: int) -> None: ...

    @abc.abstractmethod
    def due(self, now: datetime, limit: int) -> list[Reservation]:
        """Up to ``limit`` reservations still held whose hold ended by ``now``, oldest first."""

    @abc.abstractmethod
    def lowest_unit_price(self, sku: str, since: datetime, until: datetime) -> int | None:
        """The lowest unit price ``sku`` sold at in orders paid in ``[since, until)``."""

    @abc.abstractmethod
    def move_user(self, reservation_ids: Sequence[int], user_id: int) -> None:
        """Give these reservations to ``user_id`` (user merges)."""

    @abc.abstractmethod
    def quotas_of(self, user_id: int) -> list[tuple[int, int, int]]:
        """The user's quota counts as ``(sale_id, day, held)`` (day 0: the whole sale)."""

    @abc.abstractmethod
    def shift_quotas(self, user_id: int, rows: Sequence[tuple[int, int, int]], sign: int) -> None:
        """Add (``sign=1``) or take off (``-1``) ``held`` units to the user's counts (user merges)."""


class BargainStore(abc.ABC):
    """砍价 activities, attempts, helps and the per-user counts they limit."""

    @abc.abstractmethod
    def add_bargain(self, bargain: Bargain) -> int:
        """Store a new activity (its ``id`` is ignored) and return its id."""

    @abc.abstractmethod
    def save_bargain(self, bargain: Bargain) -> None:
        """Store an edited activity's rules (not its ``stock`` / ``sold`` counters)."""

    @abc.abstractmethod
    def bargain(self, bargain_id: int) -> Bargain | None: ...

    @abc.abstractmethod
    def bargains(self) -> list[Bargain]: ...

    @abc.abstractmethod
    def take_unit(self, bargain_id: int) -> bool:
        """Move one unit from stock to sold, only if one is left; whether it did."""

    @abc.abstractmethod
    def count(self, bargain_id: int, user_id: int, kind: str, limit: int) -> bool:
        """Count one more ``kind`` ("start" or "help") for the user in the
        activity, only if the count stays within ``limit``; whether it did."""

    @abc.abstractmethod
    def counted(self, bargain_id: int, user_id: int, kind: str) -> int: ...

    @abc.abstractmethod
    def add_attempt(self, attempt: BargainAttempt) -> int: ...

    @abc.abstractmethod
    def attempt(self, attempt_id: int, *, lock: bool = False) -> BargainAttempt | None:
        """The attempt (with ``lock``, holding its row until the transaction ends)."""

    @abc.abstractmethod
    def attempts(self, *, bargain_id: int | None = None, user_id: int | None = None) -> list[BargainAttempt]: ...

    @abc.abstractmethod
    def add_help(self, help_: BargainHelp) -> bool:
        """Record a help; ``False`` if this helper already helped the attempt."""

    @abc.abstractmethod
    def helps(self, attempt_id: int) -> list[BargainHelp]: ...

    @abc.abstractmethod
    def add_cut(self, attempt_id: int, helps_before: int, cut_fen: int) -> bool:
        """Add the ``helps_before + 1``-th cut to an open attempt, only if it has
        exactly ``helps_before`` helps (compare-and-set); whether it did."""

    @abc.abstractmethod
    def close_attempt(self, attempt_id: int, source: Sequence[AttemptStatus], target: AttemptStatus, at: datetime,
                      *, order_id: int | None = None) -> bool:
        """Move an attempt to ``target`` only from one of ``source``; whether it moved."""

    @abc.abstractmethod
    def due_attempts(self, now: datetime, limit: int) -> list[BargainAttempt]:
        """Open or succeeded attempts whose deadline is at or before ``now``."""

    @abc.abstractmethod
    def move_attempts(self, attempt_ids: Sequence[int], user_id: int) -> None:
        """Give these attempts to ``user_id`` (user merges)."""


@attrs.frozen(kw_only=True)
class PlayerState:
    """One user's standing in a draw: draws made, consecutive misses (for 保底),
    and draws on their latest business ``day`` (yyyymmdd)."""

    draws: int = 0
    misses: int = 0
    day: int = 0
    day_count: int = 0


class DrawStore(abc.ABC):
    """抽奖 / 盲盒 draws: prize tables and stock, players, the draw records."""

    @abc.abstractmethod
    def add_draw(self, draw: Draw) -> int:
        """Store a new draw with its server seed (its ``id`` is ignored); return its id."""

    @abc.abstractmethod
    def save_draw(self, draw: Draw) -> None:
        """Store a draw's status, commitment, seed and (while a draft) its rules and prizes."""

    @abc.abstractmethod
    def draw(self, draw_id: int) -> Draw | None:
        """The draw, seed included (services decide when to show it)."""

    @abc.abstractmethod
    def draws(self) -> list[Draw]: ...

    @abc.abstractmethod
    def prizes_left(self, draw_id: int) -> dict[int, int | None]:
        """Units left per prize index (``None``: no cap)."""

    @abc.abstractmethod
    def take_prize(self, draw_id: int, index: int) -> bool:
        """Award one unit of a prize, only if it has no cap or one is left; whether it did."""

    @abc.abstractmethod
    def player(self, draw_id: int, user_id: int) -> PlayerState:
        """The user's state, created if new, and locked until the transaction ends
        (the same user's concurrent draws queue; other users' do not)."""

    @abc.abstractmethod
    def save_player(self, draw_id: int, user_id: int, state: PlayerState) -> None: ...

    @abc.abstractmethod
    def add_record(self, record: DrawRecord) -> int | None:
        """Store a draw record; ``None`` if its key, its (user, seq) or its order was used already."""

    @abc.abstractmethod
    def record_by_key(self, key: str) -> DrawRecord | None: ...

    @abc.abstractmethod
    def records(self, draw_id: int, *, user_id: int | None = None) -> list[DrawRecord]:
        """The draw's records in (user, seq) order."""
