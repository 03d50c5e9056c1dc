"""Relaying the log to brokers: sinks read outside any write and move their checkpoints after.

A sink publishes a batch with no transaction open (a slow broker must never
hold SQLite's write lock or a PostgreSQL connection), then moves its
checkpoint with a compare-and-set; a lease in its checkpoint row keeps a
second relay off the same sink. A crash between the publish and the
checkpoint sends the batch again: at least once, with the event id for the
broker or receiver to drop the repeat.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .models import LoggedEvent

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.contracts.event_log import LogRow
    from .sinks import Sink

__all__ = ["Relay"]

log = logging.getLogger("siyu.events")

#: How long a relay owns a sink without renewing. A relay that stops cleanly gives its leases
#: back; one killed mid-pass keeps the sink until the lease runs out on the workspace clock.
LEASE_SECONDS = 30.0
_SOURCE = "event_log.source_id"


def logged(row: LogRow) -> LoggedEvent:
    return LoggedEvent(
        position=row.position, type=row.type, schema_version=row.schema_version, occurred_at=row.occurred_at,
        payload=row.payload, correlation_id=row.correlation_id, user_id=row.user_id, redacted=row.redacted,
    )


class Relay:
    """Publishes the log to every sink; in inline mode also from a background thread."""

    def __init__(self, uow: UnitOfWork, *, horizon: Callable[[], int]) -> None:
        self.ws = uow
        self._horizon = horizon
        self.owner = uuid.uuid4().hex
        self._source: str | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._leased: set[str] = set()

    def source_id(self) -> str:
        """This workspace's id in event ids and CloudEvents ``source`` (made once, stored)."""
        if self._source is None:
            with self.ws.write() as tx:
                stored = tx.meta.get(_SOURCE)
                if stored is None:
                    stored = uuid.uuid4().hex[:16]
                    tx.meta.set(_SOURCE, stored)
            self._source = stored
        return self._source

    def _now_us(self) -> int:
        # The workspace clock, not time.time(): leases are compared across processes, which all
        # read the system clock in production, and a test can move past a dead relay's lease.
        return int(self.ws.now().timestamp() * 1_000_000)

    def run(self, sinks: list[Sink]) -> int:
        """Publish what each sink has not yet published; return how many events went out."""
        if not sinks:
            return 0
        with self._lock:  # one relay pass per process at a time (the thread and a direct call)
            horizon = self._horizon()
            source = self.source_id()
            return sum(self._one(sink, horizon, source) for sink in sinks)

    def _one(self, sink: Sink, horizon: int, source: str) -> int:
        ws, store_name = self.ws, sink.name
        now = self._now_us()
        with ws.write() as tx:
            if not tx.event_log.lease(store_name, self.owner, now + int(LEASE_SECONDS * 1e6), now):
                return 0  # another relay (another worker) holds this sink
            self._leased.add(store_name)
            rows = tx.event_log.claim([store_name], skip_locked=False)
        if not rows or rows[0].parked:
            return 0
        position, sent = rows[0].position, 0
        types = list(sink.types) if sink.types else None
        while position < horizon:
            with ws.read() as tx:
                batch = tx.event_log.read(position, horizon, types, sink.batch)
            target = batch[-1].position if len(batch) >= sink.batch else horizon
            if batch:
                try:
                    sink.publish([logged(r) for r in batch], source)
                except Exception as exc:
                    log.warning("relay %s could not publish (lag grows, retried next turn): %r", store_name, exc)
                    with ws.write() as tx:
                        tx.event_log.note_failure(store_name, f"{type(exc).__name__}: {exc}"[:2000],
                                                  batch[0].position, ws.now())
                    return sent
            with ws.write() as tx:
                if not tx.event_log.advance(store_name, target, expected=position, at=ws.now()):
                    return sent  # moved by someone else (a replay): start over next turn
                now = self._now_us()
                tx.event_log.lease(store_name, self.owner, now + int(LEASE_SECONDS * 1e6), now)
            sent += len(batch)
            position = target
        return sent

    # -- the background thread of inline mode ------------------------------------------------------------
    def poke(self, sinks: list[Sink], poll: float = 1.0) -> None:
        """Wake the relay thread (started on first use) to publish new events."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, args=(sinks, poll), name="siyu-relay", daemon=True)
            self._thread.start()
        self._wake.set()

    def _loop(self, sinks: list[Sink], poll: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(poll)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run(sinks)
            except Exception as exc:
                log.warning("relay pass failed, retried in %.1fs: %r", poll, exc)

    def stop(self, sinks: list[Sink] | None = None) -> None:
        """Stop the thread and give back this relay's leases, so another process takes over at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        held = [sink for sink in sinks or [] if sink.name in self._leased]
        if held:
            try:
                with self._lock, self.ws.write() as tx:
                    for sink in held:
                        # An expired lease in our name: free for anyone (and a no-op if another holds it).
                        tx.event_log.lease(sink.name, self.owner, 0, self._now_us())
                self._leased.clear()
            except Exception as exc:  # closing must not fail because the database went first
                log.warning("could not give back relay leases: %r", exc)
