"""Delivering the log to handler consumers: one write transaction per round.

A round claims the consumers' checkpoint rows (waiting for them inline,
skipping rows another worker holds in a worker), reads the events between the
lowest checkpoint and the horizon once, and runs each consumer on its share
inside a savepoint. Each consumer's checkpoint moves in the same transaction
as its handler's writes, so a crash anywhere leaves both or neither: the
handler sees the events again (at least once) but its effects are there once.
Events the handlers emit are appended to the log by that transaction and
delivered in the next round.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import attrs

from ..events import Event
from ..storage.contracts.event_log import ConsumerRow, LogRow
from . import codec
from .consumers import Consumer

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..events import Event
    from ..storage.base import Transaction

__all__ = ["Item", "Round"]

log = logging.getLogger("siyu.events")

#: Errors kept in ``ws.observer_errors`` (newest last).
_KEEP_ERRORS = 100


class Item(NamedTuple):
    """An event with its place in the log (``event`` is ``None`` for a class this siyu does not know)."""

    position: int
    type: str
    event: Event | None
    correlation_id: str


def items_from_rows(rows: Sequence[LogRow]) -> list[Item]:
    out: list[Item] = []
    for row in rows:
        out.append(Item(row.position, row.type, codec.decode(row.type, row.occurred_at, row.payload),
                        row.correlation_id))
    return out


def _covering(known: Sequence[Item] | None, start: int, horizon: int) -> list[Item] | None:
    """``known`` (events this process just wrote) when they are exactly the events in
    ``(start, horizon]``, so the round need not read them back."""
    if not known:
        return None
    first, last = known[0].position, known[-1].position
    if last - first + 1 != len(known) or first > start + 1 or last < horizon:
        return None  # not contiguous (another writer drew positions in between) or not covering
    return [k for k in known if start < k.position <= horizon]


class Round:
    """One delivery round (see the module docstring)."""

    def __init__(self, uow: UnitOfWork, memory: dict[str, int], *, errors: list[tuple[Event, BaseException]],
                 batch: int, trace: bool = False) -> None:
        self.ws = uow
        self.errors = errors
        self.trace = trace
        self.memory = memory
        self.batch = batch
        self.failed: list[str] = []
        self.delivered = 0
        #: True when events remain below the horizon (the batch limit cut the round short).
        self.more = False
        #: True when this round held at least one durable consumer (others may have skipped it).
        self.claimed = False

    def run(self, consumers: Sequence[Consumer], horizon: int, known: Sequence[Item] | None,
            skip_locked: bool) -> None:
        ws = self.ws
        now = ws.now()
        with ws.write() as tx:
            durable = [c.name for c in consumers if c.durable]
            rows = {r.name: r for r in tx.event_log.claim(durable, skip_locked=skip_locked)}
            self.claimed = bool(rows)
            positions: dict[str, int] = {}
            for c in consumers:
                if c.durable:
                    row = rows.get(c.name)
                    if row is not None and not row.parked:
                        positions[c.name] = row.position
                else:
                    positions[c.name] = self.memory.setdefault(c.name, horizon if c.start is None else c.start)
            active = {name: p for name, p in positions.items() if p < horizon}
            if not active:
                return
            start = min(active.values())
            items = _covering(known, start, horizon)
            if items is None:
                items = items_from_rows(tx.event_log.read(start, horizon, None, self.batch))
            else:
                items = items[: self.batch]
            end = items[-1].position if len(items) >= self.batch else horizon
            self.more = end < horizon
            changed: list[ConsumerRow] = []
            moved: dict[str, int] = {}
            for c in consumers:
                if c.name not in active:
                    continue
                position = active[c.name]
                todo = [i for i in items if position < i.position <= end and i.event is not None and c.wants(i.event)]
                failure = self._handle(tx, c, todo)
                row = rows.get(c.name)
                if failure is None:
                    self.delivered += len(todo)
                    if row is not None:
                        changed.append(attrs.evolve(row, position=end, attempts=0, error=None, failed_position=None))
                    else:
                        moved[c.name] = end
                    continue
                item, exc = failure
                done = max(position, item.position - 1)
                self.delivered += sum(1 for i in todo if i.position < item.position)
                failed = self._failed(c, row, item, exc)
                if row is not None:
                    changed.append(attrs.evolve(failed, position=done))
                else:
                    moved[c.name] = done
            tx.event_log.save_consumers(changed, now)
            if moved:
                tx.after_commit(lambda: self.memory.update(moved))

    def _handle(self, tx: Transaction, consumer: Consumer, todo: list[Item]) -> tuple[Item, Exception] | None:
        """Run the consumer on ``todo``; the first event it fails on, with the error, or ``None``."""
        if not todo:
            return None
        if self.trace:  # SIYU_TRACE_PLUGINS: delivery bypasses pluggy's caller, so its tracing too
            for item in todo:
                sys.stderr.write(f"[siyu]   deliver #{item.position} to {consumer.name}\n      event: {item.event!r}\n")
        if consumer.per_event or len(todo) == 1:
            for item in todo:
                assert item.event is not None
                try:
                    with tx.savepoint():
                        tx.correlation = item.correlation_id
                        consumer.handle([item.event])
                except Exception as exc:
                    return item, exc
            return None
        try:
            with tx.savepoint():
                tx.correlation = todo[0].correlation_id
                consumer.handle([i.event for i in todo if i.event is not None])
        except Exception:
            # The batch was undone as a whole; one event at a time finds the one it fails on
            # and keeps the work before it.
            return self._handle(tx, attrs.evolve(consumer, per_event=True), todo)
        return None

    def _failed(self, consumer: Consumer, row: ConsumerRow | None, item: Item, exc: Exception) -> ConsumerRow:
        """Report the failure; the consumer's row with it recorded (and parked after too many)."""
        self.failed.append(consumer.name)
        errors = self.errors
        if item.event is not None:
            errors.append((item.event, exc))
            del errors[:-_KEEP_ERRORS]
        attempts = (row.attempts + 1) if row is not None and row.failed_position == item.position else 1
        parked = attempts >= consumer.max_attempts
        log.error("event consumer %s failed on %s at position %d (attempt %d%s): %r", consumer.name, item.type,
                  item.position, attempts, ", parked" if parked else "", exc)
        base = row or ConsumerRow(name=consumer.name, kind="handler", position=0)
        return attrs.evolve(base, attempts=attempts, error=f"{type(exc).__name__}: {exc}"[:2000],
                            failed_position=item.position, parked=parked)
