"""Lifecycle history, tracked behaviour events and tag rules."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from ...models.lifecycle import StageChange, TagRule, TrackedEvent


class LifecycleStore(abc.ABC):
    """Stage history. The current stage itself is the user's tag in the
    (exclusive) lifecycle tag group, so segments see it."""

    @abc.abstractmethod
    def record(self, changes: Sequence[StageChange]) -> None:
        """Append stage changes to the history."""

    @abc.abstractmethod
    def history(self, user_id: int) -> list[StageChange]:
        """The user's stage changes, oldest first."""

    @abc.abstractmethod
    def last_changes(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        """When each user (that has a history) last changed stage."""

    @abc.abstractmethod
    def stages(self, group: str, user_ids: Sequence[int]) -> dict[int, str]:
        """The current stage (tag name in ``group``) of each user that has one."""

    @abc.abstractmethod
    def counts(self, group: str) -> dict[str, int]:
        """Active users per stage in ``group``."""

    @abc.abstractmethod
    def without_stage(self, group: str) -> list[int]:
        """Active users holding no tag of ``group``, ascending."""

    @abc.abstractmethod
    def inactive_since(self, group: str, stages: Sequence[str], cutoff: datetime) -> list[int]:
        """Active users in one of ``stages`` whose last activity (or, never
        active, their creation) is before ``cutoff``."""

    @abc.abstractmethod
    def add_order(self, order_id: int, user_id: int, at: datetime) -> bool:
        """Remember an order for the stage machine; ``False`` if it was already seen."""

    @abc.abstractmethod
    def order_count(self, user_id: int) -> int:
        """Distinct orders seen for the user that still count (not refunded in full)."""

    def add_orders(self, rows: Sequence[tuple[int, int, datetime]]) -> set[int]:
        """:meth:`add_order` for many ``(order_id, user_id, at)``; return the order ids not seen before."""
        return {order for order, uid, at in rows if self.add_order(order, uid, at)}

    def order_counts(self, user_ids: Sequence[int]) -> dict[int, int]:
        """:meth:`order_count` for many users (users without orders may be left out)."""
        return {uid: self.order_count(uid) for uid in user_ids}

    @abc.abstractmethod
    def order_owners(self, order_ids: Sequence[int]) -> dict[int, tuple[int, bool]]:
        """For each order seen: ``(user_id, still counts)`` (``False`` once refunded in full)."""

    @abc.abstractmethod
    def refund_orders(self, rows: Sequence[tuple[int, int, datetime]]) -> None:
        """Mark ``(order_id, user_id, at)`` orders refunded in full, so they no longer count. An order
        not seen yet is remembered as refunded for ``user_id``: when it comes, it is not counted."""

    @abc.abstractmethod
    def move_user(self, drop: int, keep: int) -> list[int]:
        """Move the dropped user's history and orders to ``keep`` (a merge); return the moved ids
        as ``[history ids..., -order ids...]`` so :meth:`restore_user` can move them back."""

    @abc.abstractmethod
    def restore_user(self, moved: Sequence[int], drop: int) -> None:
        """Undo :meth:`move_user`."""


class ActivityStore(abc.ABC):
    """Behaviour events (``ws.events``) and users' last activity."""

    @abc.abstractmethod
    def known_keys(self, keys: Sequence[str]) -> set[str]:
        """Which idempotency keys are already recorded."""

    @abc.abstractmethod
    def add(self, rows: Sequence[tuple[int, str, datetime, str | None, str]]) -> list[int]:
        """Record ``(user_id, kind, at, key, properties_json)``; return ids in order."""

    @abc.abstractmethod
    def for_user(self, user_id: int, limit: int) -> list[TrackedEvent]:
        """The user's most recent events, newest first."""

    @abc.abstractmethod
    def touch(self, last_active: dict[int, datetime]) -> None:
        """Raise ``users.last_active_at`` to the given instants (never lower it)."""

    @abc.abstractmethod
    def move_user(self, drop: int, keep: int) -> list[int]:
        """Reassign the dropped user's events to ``keep``; return their ids."""

    @abc.abstractmethod
    def restore_user(self, event_ids: Sequence[int], drop: int) -> None:
        """Give moved events back to ``drop``."""


class TagRuleStore(abc.ABC):
    @abc.abstractmethod
    def save(self, rule: TagRule) -> None:
        """Create or replace the rule for ``rule.tag``."""

    @abc.abstractmethod
    def get(self, tag: str) -> TagRule | None: ...

    @abc.abstractmethod
    def all(self) -> list[TagRule]:
        """Every rule, in the order they were created."""

    @abc.abstractmethod
    def delete(self, tag: str) -> bool: ...
