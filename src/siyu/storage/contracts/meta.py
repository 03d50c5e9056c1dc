"""Workspace-wide facts: change counters, settings, idempotency records."""

from __future__ import annotations

import abc


class MetaStore(abc.ABC):
    """Counters other processes can poll to see that something changed."""

    @abc.abstractmethod
    def bump(self, counter: str) -> None:
        """Increment ``counter`` (created at 0): :meth:`version` reads higher once this commits.

        Called by most writes, so it must not make them wait for each other: a backend
        with parallel writers keeps a counter in shards (see the SQL backend)."""

    @abc.abstractmethod
    def version(self, counter: str) -> int:
        """The current value of ``counter`` (0 if never bumped)."""

    @abc.abstractmethod
    def get(self, key: str) -> str | None:
        """A workspace setting, or ``None``."""

    @abc.abstractmethod
    def set(self, key: str, value: str) -> None:
        """Store a workspace setting."""


class IdempotencyStore(abc.ABC):
    """Results of keyed writes, so a retried call returns the first result."""

    @abc.abstractmethod
    def get(self, scope: str, key: str) -> tuple[str, str] | None:
        """``(fingerprint, result)`` stored for ``(scope, key)``, or ``None``."""

    @abc.abstractmethod
    def put(self, scope: str, key: str, fingerprint: str, result: str) -> None:
        """Record a result. The caller has checked the key is new."""
