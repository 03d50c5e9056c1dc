"""Privacy: audit log, legal holds, tombstones, and the raw personal-data operations
(erasure, re-encryption) that only the storage layer can do."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ...models.privacy import AuditEntry, LegalHoldRecord, Tombstone

if TYPE_CHECKING:
    from ...privacy.keys import FieldCipher


@attrs.frozen(kw_only=True)
class NewAuditEntry:
    at: datetime
    actor: str
    action: str
    user_id: int | None = None
    details: dict[str, Any] = attrs.field(factory=dict)
    before: Any = None
    after: Any = None


class PrivacyStore(abc.ABC):
    # -- audit log (append-only: there is no update and no delete of single entries) --------
    @abc.abstractmethod
    def append_audit(self, entries: Sequence[NewAuditEntry]) -> list[int]:
        """Append entries; return their ids (increasing)."""

    @abc.abstractmethod
    def audit(
        self,
        *,
        user_id: int | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, oldest first (``until`` exclusive)."""

    @abc.abstractmethod
    def purge_audit(self, before: datetime) -> int:
        """Delete entries older than ``before`` (retention); return how many."""

    # -- legal holds ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_hold(self, user_id: int, reason: str, at: datetime, by: str) -> int: ...

    @abc.abstractmethod
    def release_hold(self, hold_id: int, at: datetime, by: str) -> LegalHoldRecord | None:
        """Mark a hold released; the updated record, or ``None`` if there is no such hold."""

    @abc.abstractmethod
    def holds(self, user_id: int) -> list[LegalHoldRecord]:
        """Every hold of the user (active and released), oldest first."""

    @abc.abstractmethod
    def held(self, user_ids: Iterable[int] | None = None) -> set[int]:
        """Which of ``user_ids`` (``None``: all users) are under an active hold."""

    # -- erasure ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_tombstone(self, tombstone: Tombstone) -> None: ...

    @abc.abstractmethod
    def tombstone(self, user_id: int) -> Tombstone | None: ...

    @abc.abstractmethod
    def messages(self, user_id: int) -> list[dict[str, Any]]:
        """Messages sent or queued to the user (source, channel, recipient, content, purpose, at)."""

    @abc.abstractmethod
    def merged_into(self, user_id: int) -> list[int]:
        """Ids of the users merged into ``user_id`` (one level)."""

    @abc.abstractmethod
    def erase_person(self, user_ids: Iterable[int]) -> dict[str, int]:
        """Remove the users' identities and attributes, shred their merge records and
        mark them ``erased``; replace the free-form text the built-in components keep
        about them (event properties, reasons, notes, receipt details, message
        recipients and texts, audit details) with ``[erased]``; keep the user rows so
        ledgers stay consistent. Return counts of what was removed, by kind."""

    # -- keys ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def reseal(
        self, old: FieldCipher | None, new: FieldCipher, personal: frozenset[str], batch: int = 2000
    ) -> dict[str, int]:
        """Re-encrypt every sealed value from ``old`` (``None``: stored in clear) to
        ``new``, recompute blind indexes, and seal attributes named in ``personal``."""
