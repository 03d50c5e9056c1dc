"""Tag groups, tags, applications and their history."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from ...models.tags import TagApplication, TagGroup


class TagStore(abc.ABC):
    @abc.abstractmethod
    def get_group(self, name: str) -> TagGroup | None: ...

    @abc.abstractmethod
    def save_group(self, group: TagGroup, at: datetime) -> None:
        """Create or update a group."""

    @abc.abstractmethod
    def groups(self) -> list[TagGroup]: ...

    @abc.abstractmethod
    def tag_id(self, group: str, name: str) -> int | None: ...

    @abc.abstractmethod
    def create_tag(self, group: str, name: str, at: datetime) -> int: ...

    @abc.abstractmethod
    def tags(self) -> list[tuple[int, str, str]]:
        """Every tag as ``(tag_id, group, name)``."""

    @abc.abstractmethod
    def applied(self, user_id: int) -> list[tuple[int, str, str]]:
        """Tags the user holds now, as ``(tag_id, group, name)``."""

    @abc.abstractmethod
    def apply(self, rows: Sequence[tuple[int, int]], at: datetime, by: str) -> None:
        """Add ``(user_id, tag_id)`` applications (none of them held yet) and log them."""

    @abc.abstractmethod
    def remove(self, rows: Sequence[tuple[int, int]], at: datetime, by: str) -> None:
        """Remove held ``(user_id, tag_id)`` applications and log it."""

    @abc.abstractmethod
    def holders(self, tag_id: int) -> list[int]:
        """Users holding a tag, ascending."""

    @abc.abstractmethod
    def held(self, rows: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of the ``(user_id, tag_id)`` pairs are currently held."""

    @abc.abstractmethod
    def history(self, user_id: int) -> list[TagApplication]:
        """The user's applications and removals, oldest first."""
