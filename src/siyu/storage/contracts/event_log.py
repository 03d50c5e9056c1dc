"""The event log: appended events, consumer checkpoints and due jobs."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

import attrs

__all__ = ["PRUNED_KEY", "ConsumerRow", "EventLogStore", "LogRow", "NewLogEntry"]

#: ``siyu_settings`` entry: the highest position a prune may have deleted. A reader that keeps its
#: own checkpoint outside ``event_consumers`` (the reports' in-memory facts) compares it with that
#: checkpoint: above it, events it never read are gone and it must start again from the raw rows.
PRUNED_KEY = "event_log.pruned_upto"


class NewLogEntry(NamedTuple):
    """An event about to be appended (its payload already serialized). A tuple: a bulk
    write appends tens of thousands."""

    type: str
    schema_version: int
    occurred_at: datetime
    user_id: int | None
    correlation_id: str
    payload: str


@attrs.frozen(kw_only=True)
class LogRow:
    position: int
    type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    user_id: int | None
    correlation_id: str
    payload: str
    redacted: bool


@attrs.frozen(kw_only=True)
class ConsumerRow:
    name: str
    kind: str
    position: int
    attempts: int = 0
    error: str | None = None
    failed_position: int | None = None
    parked: bool = False
    lease_owner: str | None = None
    lease_until: int | None = None
    updated_at: datetime | None = None


class EventLogStore(abc.ABC):
    """The log and its consumers' checkpoints.

    ``append`` runs at the end of a write transaction, so the events commit
    with the change. Positions increase in the order transactions commit
    their events (on PostgreSQL a commit fence makes that so; see the
    backend); readers never read past :meth:`siyu.storage.base.Backend.event_horizon`.
    """

    @abc.abstractmethod
    def append(self, entries: Sequence[NewLogEntry], recorded_at: datetime) -> list[int]:
        """Append events in order; return their positions."""

    @abc.abstractmethod
    def head(self) -> int:
        """The highest position appended so far (0 for an empty log)."""

    @abc.abstractmethod
    def read(self, after: int, upto: int | None, types: Sequence[str] | None, limit: int) -> list[LogRow]:
        """Events with ``after < position <= upto``, of ``types`` if given, oldest first."""

    @abc.abstractmethod
    def count(self, after: int, upto: int | None) -> int:
        """How many events lie in ``(after, upto]``."""

    @abc.abstractmethod
    def consumers(self) -> list[ConsumerRow]:
        """Every consumer with a stored checkpoint, by name."""

    @abc.abstractmethod
    def ensure_consumers(self, consumers: Sequence[tuple[str, str]], position: int, at: datetime) -> None:
        """Create checkpoints at ``position`` for ``(name, kind)`` pairs that have none."""

    @abc.abstractmethod
    def claim(self, names: Sequence[str], *, skip_locked: bool) -> list[ConsumerRow]:
        """Lock the named consumers' rows until the transaction ends and return them;
        with ``skip_locked`` rows another transaction holds are left out instead of waited for."""

    @abc.abstractmethod
    def save_consumers(self, rows: Sequence[ConsumerRow], at: datetime) -> None:
        """Store the checkpoints, failures and parking of consumers (rows exist)."""

    @abc.abstractmethod
    def advance(self, name: str, position: int, *, expected: int, at: datetime) -> bool:
        """Move a consumer from ``expected`` to ``position``; ``False`` if it was not at ``expected``."""

    @abc.abstractmethod
    def note_failure(self, name: str, error: str, failed_position: int, at: datetime) -> None:
        """Record a failure that does not count toward parking (a broker that is down): the
        error, the position and one more attempt (or the first, at another position)."""

    @abc.abstractmethod
    def lease(self, name: str, owner: str, until_us: int, now_us: int) -> bool:
        """Take or renew the consumer's lease (``False`` while another owner's lease runs)."""

    @abc.abstractmethod
    def delete_consumer(self, name: str) -> bool:
        """Forget a consumer's checkpoint."""

    @abc.abstractmethod
    def redact(self, user_ids: Sequence[int], redactor: Callable[[str], str]) -> int:
        """Rewrite the payloads of events about these people with ``redactor(payload) -> payload``."""

    @abc.abstractmethod
    def prune(self, upto: int, recorded_before: datetime) -> int:
        """Delete events at or before ``upto`` recorded before ``recorded_before``; return how many."""

    @abc.abstractmethod
    def claim_job(self, name: str, now: datetime, next_due: datetime) -> bool:
        """Take a due job: if ``name`` is due at ``now`` (or new), set its next due time and return ``True``."""

    @abc.abstractmethod
    def finish_job(self, name: str, at: datetime, result: str) -> None:
        """Record when a job last ran and what it did."""

    @abc.abstractmethod
    def jobs(self) -> list[tuple[str, datetime, datetime | None, str | None]]:
        """``(name, next_due, last_run_at, last_result)`` of every job seen."""
