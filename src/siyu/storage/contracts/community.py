"""Customer groups, their members and member log, join ways."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime

from ...community.models import Group, GroupDelivery, GroupMember, GroupSend, JoinWay


class GroupStore(abc.ABC):
    @abc.abstractmethod
    def save_groups(self, groups: Sequence[Group]) -> None:
        """Create or replace groups (keyed by ``chat_id``)."""

    @abc.abstractmethod
    def groups(self, chat_ids: Iterable[str] | None = None) -> list[Group]:
        """These groups (every group when ``None``), by ``chat_id``."""

    @abc.abstractmethod
    def save_members(self, members: Sequence[GroupMember]) -> None:
        """Create or replace members (keyed by ``(chat_id, member_id)``)."""

    @abc.abstractmethod
    def members(self, chat_id: str) -> list[GroupMember]:
        """Every member a group ever had (left ones too), by join time then id."""

    @abc.abstractmethod
    def memberships(self, user_id: int) -> list[GroupMember]:
        """The user's rows in every group (left ones too)."""

    @abc.abstractmethod
    def active_memberships(self) -> list[tuple[int, str]]:
        """``(user_id, chat_id)`` of every known customer in a group now."""

    @abc.abstractmethod
    def member_counts(self) -> dict[str, int]:
        """``chat_id -> active members``."""

    @abc.abstractmethod
    def move_memberships(self, drop: int, keep: int) -> list[str]:
        """Merging users: ``drop``'s rows become ``keep``'s; return their chat ids."""

    @abc.abstractmethod
    def log_members(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        """Append ``(chat_id, member_id, "join" | "quit", at)`` rows."""

    @abc.abstractmethod
    def member_log(self, chat_id: str | None, since: datetime, until: datetime) -> list[tuple[str, str, str, datetime]]:
        """Log rows with ``since <= at < until`` (of one group, or all), oldest first."""

    @abc.abstractmethod
    def save_join_way(self, way: JoinWay) -> None: ...

    @abc.abstractmethod
    def join_ways(self) -> list[JoinWay]: ...

    @abc.abstractmethod
    def delete_join_way(self, config_id: str) -> None: ...

    @abc.abstractmethod
    def group_send(self, key: str) -> GroupSend | None: ...

    @abc.abstractmethod
    def add_group_send(self, send: GroupSend) -> GroupSend:
        """Record a send (its ``id`` is assigned)."""

    @abc.abstractmethod
    def save_deliveries(self, rows: Sequence[GroupDelivery]) -> None:
        """Create or replace deliveries (keyed by ``(send_id, chat_id)``)."""

    @abc.abstractmethod
    def remove_deliveries(self, send_id: int, chat_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def deliveries(self, send_id: int) -> list[GroupDelivery]: ...

    @abc.abstractmethod
    def deliveries_since(self, chat_id: str, since: datetime) -> int:
        """Deliveries to the group since ``since`` that count towards WeCom's frequency rule
        (pending, sent or unknown)."""

    @abc.abstractmethod
    def reminders(self, msgid: str, since: datetime) -> int: ...

    @abc.abstractmethod
    def add_reminder(self, msgid: str, at: datetime) -> None: ...
