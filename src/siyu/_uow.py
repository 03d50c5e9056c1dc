"""The unit of work a service depends on, instead of the whole workspace.

A service is built with a :class:`UnitOfWork` and its collaborators named
in its constructor (``Orders(uow, pricing=..., points=..., tiers=...)``); the
workspace (:mod:`siyu.workspace`) is the one place that builds them. The unit
of work is all a service may ask of the floor below it: a clock, the business
time zone, read and write transactions (a write nested in another joins it),
and a way to emit an event with the change being written (delivered only if
it commits).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .events import Event
    from .storage.base import Transaction

__all__ = ["UnitOfWork"]


class UnitOfWork(Protocol):
    """What a service needs from the workspace. :class:`~siyu.Workspace` is one."""

    @property
    def tz(self) -> tzinfo:
        """The business time zone: day boundaries, per-day limits, windows shown to people."""

    def now(self) -> datetime:
        """The current instant by the workspace clock (timezone-aware)."""

    def today(self) -> date:
        """Today's date in the business time zone."""

    def read(self) -> AbstractContextManager[Transaction]:
        """A consistent read; inside a write it reads that write's state."""

    def write(self) -> AbstractContextManager[Transaction]:
        """A write transaction; a nested call joins the outer one."""

    def in_transaction(self) -> bool:
        """Whether this thread is inside a read or write already (a caller's block)."""

    def emit(self, event: Event) -> None:
        """Attach ``event`` to the write transaction in progress (dispatched after commit)."""
