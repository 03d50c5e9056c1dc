"""Staff members, (staff, customer) relations, ownership and transfers."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime

from ...staff.models import OwnerChange, Relation, StaffMember, Task, TaskStatus, Transfer, TransferStatus


class StaffStore(abc.ABC):
    @abc.abstractmethod
    def save_member(self, member: StaffMember) -> None:
        """Create or replace a staff member (keyed by ``userid``)."""

    @abc.abstractmethod
    def members(self, userids: Iterable[str] | None = None) -> list[StaffMember]:
        """The members with these userids (every member when ``None``), by userid."""

    @abc.abstractmethod
    def save_relations(self, relations: Sequence[Relation]) -> None:
        """Create or replace relations (keyed by ``(user_id, staff)``)."""

    @abc.abstractmethod
    def relations(self, user_ids: Iterable[int]) -> list[Relation]:
        """Every relation of these customers, by customer then ``since``."""

    @abc.abstractmethod
    def relation(self, user_id: int, staff: str) -> Relation | None: ...

    @abc.abstractmethod
    def customers_of(self, staff: str, *, active: bool = True) -> list[int]:
        """Customers this member has a relation with (only active ones by default), ascending."""

    @abc.abstractmethod
    def relation_counts(self, *, active: bool = True) -> dict[str, int]:
        """``staff -> number of relations`` (active only by default)."""

    @abc.abstractmethod
    def owners(self, user_ids: Iterable[int]) -> dict[int, str]:
        """``user_id -> owner`` for the customers that have one."""

    @abc.abstractmethod
    def set_owners(self, changes: Sequence[OwnerChange]) -> None:
        """For each change in order: make ``change.staff`` the owner of ``change.user_id``
        (``None``: no owner) and log the change."""

    @abc.abstractmethod
    def owned_by(self, staff: str) -> list[int]:
        """Customers ``staff`` owns now, ascending."""

    @abc.abstractmethod
    def owner_history(self, user_id: int) -> list[OwnerChange]:
        """Owner changes of one customer, oldest first."""

    @abc.abstractmethod
    def move_customer(self, drop: int, keep: int) -> tuple[list[str], bool]:
        """Merging users: move ``drop``'s relations that ``keep`` lacks, and its
        ownership if ``keep`` has none. Returns the staff whose relation moved and
        whether the ownership moved."""

    @abc.abstractmethod
    def move_back(self, keep: int, drop: int, staff: Sequence[str], owner: bool) -> None:
        """Undo :meth:`move_customer`."""

    @abc.abstractmethod
    def add_transfer(self, transfer: Transfer) -> int:
        """Record a transfer (``transfer.id`` is ignored); return its id."""

    @abc.abstractmethod
    def remove_transfers(self, ids: Sequence[int]) -> None:
        """Forget transfers whose start was refused as a whole (nothing happened)."""

    @abc.abstractmethod
    def update_transfer(self, transfer: Transfer) -> None:
        """Store a transfer's new status, takeover time, finish time, codes."""

    @abc.abstractmethod
    def transfers(
        self,
        *,
        user_ids: Iterable[int] | None = None,
        status: Sequence[TransferStatus] | None = None,
        since: datetime | None = None,
    ) -> list[Transfer]:
        """Transfers filtered by customer, status and start time (``>= since``), by id."""

    @abc.abstractmethod
    def add_tasks(self, tasks: Sequence[tuple[Task, str]]) -> list[int]:
        """Create ``(task, key)`` pairs whose key is new (others are skipped); return the new ids."""

    @abc.abstractmethod
    def tasks(self, *, ids: Iterable[int] | None = None, staff: str | None = None,
              status: TaskStatus | None = None, user_id: int | None = None,
              due_before: datetime | None = None) -> list[Task]:
        """Tasks filtered by id, staff member, status, customer and due time (``< due_before``), by due time."""

    @abc.abstractmethod
    def set_task_status(self, task_id: int, status: TaskStatus, at: datetime | None) -> None: ...
