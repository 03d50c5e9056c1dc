"""What channels keep in the workspace: the outbox, processed callback ids,
one-time subscription credits and small per-channel state (contact-way
configurations, tag-id mappings)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

import attrs

__all__ = ["ChannelStore", "OutboxRow"]


@attrs.frozen
class OutboxRow:
    """A message stored by the ``outbox`` channel."""

    id: int
    channel: str
    recipient: str
    user_id: int | None
    text: str
    template: str | None
    variables: str
    purpose: str
    key: str | None
    created_at: datetime


class ChannelStore(abc.ABC):
    """Per-workspace storage of the channels."""

    @abc.abstractmethod
    def outbox_add(
        self, rows: Sequence[tuple[str, str, int | None, str, str | None, str, str, str | None]], at: datetime
    ) -> list[tuple[int, bool]]:
        """Store ``(channel, recipient, user_id, text, template, variables_json,
        purpose, key)`` rows; return ``(id, created)`` per row. A row whose
        ``key`` is already stored (or repeats an earlier row) is not stored
        again: it gets the existing id and ``created=False``."""

    @abc.abstractmethod
    def outbox_find_keys(self, channel: str, keys: Sequence[str]) -> dict[str, int]:
        """``{key: id}`` of the stored messages of ``channel`` with these keys."""

    @abc.abstractmethod
    def outbox_list(self, *, channel: str | None = None, after_id: int = 0, limit: int = 1000) -> list[OutboxRow]:
        """Stored messages with ``id > after_id``, oldest first."""

    @abc.abstractmethod
    def outbox_count(self, *, channel: str | None = None) -> int: ...

    @abc.abstractmethod
    def outbox_clear(self, *, channel: str | None = None) -> int:
        """Delete stored messages; return how many."""

    @abc.abstractmethod
    def claim_callback(self, source: str, callback_id: str, at: datetime) -> bool:
        """Record that a callback was processed; ``False`` if it already was."""

    @abc.abstractmethod
    def claim_callbacks(self, source: str, callback_ids: Sequence[str], at: datetime) -> list[bool]:
        """:meth:`claim_callback` for many ids at once, in order: ``True`` for each one claimed
        now (an id repeated in the list is claimed by its first occurrence)."""

    @abc.abstractmethod
    def credits(self, channel: str, recipient: str, template: str) -> int: ...

    @abc.abstractmethod
    def add_credits(self, channel: str, recipient: str, template: str, delta: int, at: datetime) -> int:
        """Add ``delta`` (may be negative; the result never drops below 0); return the new count."""

    @abc.abstractmethod
    def take_credit(self, channel: str, recipient: str, template: str, at: datetime) -> bool:
        """Atomically use one credit; ``False`` (and no change) when none is left,
        even with concurrent callers in other processes."""

    @abc.abstractmethod
    def set_credits(self, channel: str, recipient: str, template: str, value: int, at: datetime) -> None: ...

    @abc.abstractmethod
    def state_get(self, channel: str, key: str) -> str | None: ...

    @abc.abstractmethod
    def state_put(self, channel: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def state_items(self, channel: str, prefix: str = "") -> list[tuple[str, str]]:
        """``(key, value)`` pairs whose key starts with ``prefix``, by key."""
