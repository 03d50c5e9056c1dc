"""Member benefits: daily sign-ins, reward budgets, and grants made once per period.

Each "once" is a unique key the store enforces (one sign per member and
business day; one grant per member, benefit and period), and each budget moves
by one conditional update, so concurrent writers never double-grant or overspend.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import date, datetime

import attrs

__all__ = ["BenefitStore", "Birthday", "Grant", "Sign"]


@attrs.frozen(kw_only=True)
class Birthday:
    """A member's birthday: ``year`` only if they gave it (it tells their age)."""

    user_id: int
    month: int
    day: int
    year: int | None
    set_at: datetime


@attrs.frozen(kw_only=True)
class Sign:
    """One sign-in: ``kind`` is ``sign`` (on the day) or ``makeup`` (补签, later)."""

    user_id: int
    day: date
    kind: str
    points: int
    at: datetime


@attrs.frozen(kw_only=True)
class Grant:
    """A benefit granted to a member for a period (a birthday year, a reviewed order line ...).

    ``status``: ``pending`` (waiting, e.g. for the return window), ``granted``, ``void``."""

    id: int
    user_id: int
    benefit: str
    period: str
    status: str
    amount: int
    at: datetime
    due_at: datetime | None = None
    ref: str = ""


class BenefitStore(abc.ABC):
    @abc.abstractmethod
    def add_sign(self, sign: Sign) -> bool:
        """Record a sign-in; ``False`` (nothing written) if the member signed that day already."""

    @abc.abstractmethod
    def signs(self, user_id: int, first: date, last: date) -> list[Sign]:
        """The member's sign-ins from ``first`` to ``last`` (inclusive), oldest first."""

    @abc.abstractmethod
    def use_budget(self, name: str, amount: int, cap: int) -> bool:
        """Add ``amount`` to the budget's spend if it stays within ``cap``; ``False`` otherwise."""

    @abc.abstractmethod
    def budget_used(self, name: str) -> int: ...

    @abc.abstractmethod
    def add_grant(self, grant: Grant) -> int | None:
        """Record a grant; ``None`` if one exists for the same member, benefit and period."""

    @abc.abstractmethod
    def grant(self, user_id: int, benefit: str, period: str) -> Grant | None: ...

    @abc.abstractmethod
    def grants(self, *, user_id: int | None = None, benefit: str | None = None, status: str | None = None,
               due_before: datetime | None = None, ref: str | None = None) -> list[Grant]: ...

    @abc.abstractmethod
    def move_grant(self, grant_id: int, *, from_status: Sequence[str], to_status: str, ref: str | None = None) -> bool:
        """Change a grant's status if it is one of ``from_status``."""

    @abc.abstractmethod
    def set_birthday(self, birthday: Birthday) -> None:
        """Store (or replace) a member's birthday."""

    @abc.abstractmethod
    def birthday(self, user_id: int) -> Birthday | None: ...

    @abc.abstractmethod
    def born_on(self, days: Sequence[tuple[int, int]]) -> list[Birthday]:
        """Members whose birthday is one of the ``(month, day)`` pairs."""

    @abc.abstractmethod
    def erase_birthdays(self, user_ids: Sequence[int]) -> int:
        """Delete the birthdays of ``user_ids``; return how many there were."""
