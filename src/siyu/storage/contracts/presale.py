"""Presales (预售): deposit orders that hold units until the balance is paid or the window ends."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from ...models.presale import Presale, PresaleOrder

__all__ = ["PresaleStore"]


class PresaleStore(abc.ABC):
    @abc.abstractmethod
    def add_presale(self, presale: Presale) -> int: ...

    @abc.abstractmethod
    def presale(self, presale_id: int) -> Presale | None: ...

    @abc.abstractmethod
    def presales(self) -> list[Presale]: ...

    @abc.abstractmethod
    def set_status(self, presale_id: int, status: str) -> None: ...

    @abc.abstractmethod
    def take_units(self, presale_id: int, qty: int) -> bool:
        """Hold ``qty`` more units if that many are left; one conditional update."""

    @abc.abstractmethod
    def give_units(self, presale_id: int, qty: int) -> None: ...

    @abc.abstractmethod
    def add_order(self, order: PresaleOrder) -> int | None:
        """Insert a deposit order; ``None`` if its key exists."""

    @abc.abstractmethod
    def order(self, order_id: int) -> PresaleOrder | None: ...

    @abc.abstractmethod
    def order_by_key(self, key: str) -> PresaleOrder | None: ...

    @abc.abstractmethod
    def orders(self, *, presale_id: int | None = None, user_id: int | None = None,
               status: str | None = None) -> list[PresaleOrder]: ...

    @abc.abstractmethod
    def move_order(self, order_id: int, *, from_status: Sequence[str], to_status: str, at: datetime,
                   refund_fen: int | None = None, order_ref: int | None = None,
                   ship_by: datetime | None = None) -> bool:
        """Change a deposit order's status if it is one of ``from_status`` (so a job run
        twice, or a late payment racing the expiry, moves it once)."""
