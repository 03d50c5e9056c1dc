"""Users, identities, consents and merges."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from ...models.users import Consent, Identity, MergeRecord, User


@attrs.frozen(kw_only=True)
class NewUser:
    created_at: datetime
    source: str | None = None
    source_campaign: str | None = None
    source_state: str | None = None
    attributes: dict[str, Any] = attrs.field(factory=dict)


#: The :meth:`~siyu.storage.base.Transaction.serialize` space of identities being claimed.
IDENTITY_SPACE = "identity"


def identity_key(kind: str, scope: str, value: str) -> str:
    """The serialization key of one identity (normalized value)."""
    return f"{kind}\x00{scope}\x00{value}"


class UserStore(abc.ABC):
    @abc.abstractmethod
    def create(self, users: Sequence[NewUser]) -> list[int]:
        """Insert users; return their new ids in order (dense, increasing)."""

    @abc.abstractmethod
    def get(self, user_id: int) -> User | None:
        """The user with identities, or ``None``."""

    @abc.abstractmethod
    def exists(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of ``user_ids`` that exist (any status)."""

    @abc.abstractmethod
    def statuses(self, user_ids: Iterable[int], *, lock: bool = False) -> dict[int, tuple[str, int | None]]:
        """``user_id -> (status, merged_into)`` for those that exist; with ``lock``
        also take their write locks (as :meth:`lock` does), in id order."""

    @abc.abstractmethod
    def lock(self, user_id: int) -> bool:
        """Serialize concurrent writes about this user until the transaction ends.

        Return whether the user exists.
        """

    @abc.abstractmethod
    def update(self, user_id: int, **fields: Any) -> None:
        """Set columns: ``attributes``, ``status``, ``merged_into``, ``source``,
        ``source_campaign``, ``source_state``, ``last_active_at``."""

    @abc.abstractmethod
    def count(self, status: str | None = "active") -> int:
        """How many users (of a status; ``None`` for all)."""

    @abc.abstractmethod
    def ids(self, status: str | None = "active") -> list[int]:
        """All user ids, ascending."""

    @abc.abstractmethod
    def find_identity(self, kind: str, scope: str, value: str) -> int | None:
        """The user holding an identity, or ``None``. Inside a write this also holds the
        identity (``tx.serialize(IDENTITY_SPACE, [identity_key(...)])``) until the transaction
        ends, so that "it is free, claim it" cannot race with another process doing the same."""

    @abc.abstractmethod
    def find_identities(self, kind: str, scope: str, values: Sequence[str]) -> dict[str, int]:
        """Owners of many identities of one kind at once: value -> user id (held like
        :meth:`find_identity` inside a write)."""

    @abc.abstractmethod
    def add_identities(self, rows: Sequence[tuple[int, Identity]]) -> None:
        """Attach identities ``(user_id, identity)``; the caller checked they are free."""

    @abc.abstractmethod
    def identities(self, user_id: int) -> list[Identity]:
        """The user's identities in the order they were linked."""

    @abc.abstractmethod
    def move_identity(self, identity: Identity, to_user_id: int) -> None:
        """Reassign an identity to another user."""

    @abc.abstractmethod
    def remove_identity(self, user_id: int, identity: Identity) -> None:
        """Detach an identity from a user."""

    @abc.abstractmethod
    def add_consent(self, user_id: int, consent: Consent) -> None:
        """Append a consent record."""

    @abc.abstractmethod
    def consents(self, user_id: int) -> list[Consent]:
        """Every consent record of the user, oldest first."""

    @abc.abstractmethod
    def add_merge(self, keep_id: int, drop_id: int, at: datetime, payload: str) -> int:
        """Record a merge with what it moved (opaque JSON); return its id."""

    @abc.abstractmethod
    def get_merge(self, merge_id: int) -> tuple[MergeRecord, str] | None:
        """A merge record and its payload."""

    @abc.abstractmethod
    def mark_unmerged(self, merge_id: int, at: datetime) -> None:
        """Record that a merge was undone."""
