"""``ws.event_log``: the durable log of domain events, its consumers and their checkpoints."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._validation import check_text
from ..errors import NotFound, ValidationError
from ..storage.contracts.event_log import PRUNED_KEY, ConsumerRow, NewLogEntry
from . import codec
from .consumers import Consumer, plugin_consumers
from .delivery import Item, Round
from .models import ConsumerStatus, LoggedEvent
from .relay import Relay
from .relay import logged as _logged
from .sinks import Sink, collect_sinks

if TYPE_CHECKING:
    import pluggy

    from .._plugins import Hooks
    from .._uow import UnitOfWork
    from ..events import Event
    from ..storage.base import Transaction

__all__ = ["DELIVERY_MODES", "EventLog"]

log = logging.getLogger("siyu.events")

#: ``"inline"``: the writing process delivers right after each commit (the embedded default);
#: ``"worker"``: it only appends, and ``siyu worker`` delivers for every process.
DELIVERY_MODES = ("inline", "worker")
_SETTINGS = "event_log.settings"
#: ``NewLogEntry(...)`` without the named-tuple constructor's argument parsing (half the cost).
_new_entry = tuple.__new__
#: Rounds one call delivers at most (handlers emitting events for each other's events).
_MAX_ROUNDS = 10


class EventLog:
    """``ws.event_log``: read the log, see and steer its consumers, prune it.

    Every event a write emits is appended to the log in the same transaction
    as the change. Consumers (the built-in reactions such as commissions and
    lifecycle moves, every ``siyu_on_event(s)`` plugin, and relays to brokers)
    read it from their own checkpoints, at least once and in log order.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        horizon: Callable[[], int],
        plugins: pluggy.PluginManager,
        hooks: Hooks,
        host: object,
        errors: list[tuple[Event, BaseException]],
        delivery: str = "inline",
    ) -> None:
        """``horizon`` gives the newest position readers may read (the storage backend's);
        ``plugins`` holds the ``siyu_on_event(s)`` observers and ``hooks`` calls the sink
        registration, both handing them ``host`` as ``workspace=``; failures of consumers
        are appended to ``errors`` (``ws.observer_errors``)."""
        if delivery not in DELIVERY_MODES:
            raise ValidationError(f"delivery={delivery!r}; use one of {', '.join(DELIVERY_MODES)}")
        self._uow = uow
        self._horizon = horizon
        self._pm = plugins
        self._hooks = hooks
        self._host = host
        self._errors = errors
        #: ``"inline"`` or ``"worker"`` (see :data:`DELIVERY_MODES`).
        self.delivery = delivery
        self._declared: list[Consumer] = []
        self._plugin_key: tuple[int, ...] | None = None
        self._plugins: list[Consumer] = []
        self._ensured: set[str] = set()
        self._memory: dict[str, int] = {}
        self._local = threading.local()
        self._sinks: list[Sink] | None = None
        #: ``(name, schema version, subject field)`` per event class, worked out once.
        self._kinds: dict[type, tuple[str, int, str | None]] = {}
        self._relay = Relay(uow, horizon=horizon)
        self._trace = os.environ.get("SIYU_TRACE_PLUGINS", "").strip().lower() not in {"", "0", "false", "no", "off"}
        #: Events one delivery round reads at most.
        self.batch = 1000

    def _start(self, consumers: Sequence[Consumer]) -> None:
        """At connect, once the services exist: declare the built-in consumers and give them
        checkpoints; inline, catch up on what a crashed process left undelivered."""
        self._declared = list(consumers)
        self._plugin_key = None
        self._ensure([c.name for c in self.handlers() if c.durable])
        if self.delivery == "inline":
            try:
                self._deliver(None, skip_locked=False)
            except Exception as exc:
                log.error("catching up on undelivered events at connect failed; the next write retries: %r", exc)

    # -- appending: the tail of every write transaction ---------------------------------------------
    def _append(self, tx: Transaction) -> list[Item]:
        events = tx.events
        if not events:
            return []
        entries = []
        kinds = self._kinds
        last: type | None = None
        name, version, subject = "", 0, None
        encoder: Callable[[Event], str] = codec.encode
        # A bulk write appends thousands of events of one class: look its facts up once per run.
        for event, correlation in zip(events, tx.event_correlations, strict=True):
            cls = event.__class__
            if cls is not last:
                kind = kinds.get(cls)
                if kind is None:
                    kind = kinds[cls] = (cls.__name__, codec.schema_version(cls), codec.subject_field(cls))
                name, version, subject = kind
                encoder = codec.encoder(cls)
                last = cls
            entries.append(_new_entry(NewLogEntry, (name, version, event.at,
                                                    None if subject is None else getattr(event, subject),
                                                    correlation, encoder(event))))
        positions = tx.event_log.append(entries, self._uow.now())
        if self.delivery != "inline" and not getattr(self._local, "delivering", False):
            return []  # nobody in this process delivers them: ``_committed`` would drop the items
        return [Item(p, e[0], ev, e[4]) for p, e, ev in zip(positions, entries, events, strict=True)]

    def _committed(self, items: list[Item]) -> None:
        """After a write committed: deliver inline (the change is durable whatever happens here)."""
        if getattr(self._local, "delivering", False):
            self._local.appended.extend(items)
            return
        if self.delivery != "inline" or not items:
            return
        if self.sinks():
            self._relay.poke(self.sinks())
        if not any(c.wants(i.event) for i in items if i.event is not None for c in self.handlers()):
            # Nobody handles these (a points earn, mostly): no round, no transaction. The
            # consumers' checkpoints move past them with their next delivery.
            return
        try:
            # Consumers another process is delivering to right now are skipped, not waited for
            # (their checkpoint rows would make every writer queue); that process settles:
            # it looks for events that arrived meanwhile before it lets go (see _deliver).
            self._deliver(items, skip_locked=True, settle=True)
        except Exception as exc:  # the write committed: report, never fail the caller's call
            log.error("delivering events after a commit failed; the next write or `siyu worker` retries: %r", exc)

    # -- consumers -------------------------------------------------------------------------------------
    def handlers(self) -> list[Consumer]:
        """The handler consumers this process delivers to: built-in ones, then plugins'."""
        pm = self._pm
        impls = (*pm.hook.siyu_on_events.get_hookimpls(), *pm.hook.siyu_on_event.get_hookimpls())
        key = tuple(id(i.function) for i in impls)
        if key != self._plugin_key:
            self._plugins = plugin_consumers(pm, self._host, [c.name for c in self._declared])
            self._plugin_key = key
        return [*self._declared, *self._plugins]

    def _ensure(self, names: Sequence[str], kind: str = "handler") -> None:
        """Give new durable consumers a checkpoint: where the pending work of the others begins
        (so a plugin registered now sees the next writes), or the horizon on a log nobody reads."""
        new = [name for name in names if name not in self._ensured]
        if not new:
            return
        horizon = self._horizon()
        with self._uow.write() as tx:
            rows = tx.event_log.consumers()
            pending = [r.position for r in rows if not r.parked and r.kind == "handler"]
            start = min([horizon, *pending])
            tx.event_log.ensure_consumers([(name, kind) for name in new], start, self._uow.now())
        self._ensured.update(new)

    # -- delivering ------------------------------------------------------------------------------------
    def deliver(self, *, skip_locked: bool = False) -> int:
        """Deliver every pending event to this process's handler consumers now; return how many
        (event, consumer) deliveries were made. ``siyu worker`` calls this in a loop with
        ``skip_locked=True``, so that several workers never handle one consumer at once."""
        return self._deliver(None, skip_locked=skip_locked)

    def _deliver(self, known: list[Item] | None, *, skip_locked: bool, settle: bool = False) -> int:
        """Delivery rounds until nothing is left below the horizon. With ``settle``, a round
        that emptied its work checks the horizon again and goes on if it moved: a writer that
        committed meanwhile skipped the consumers this process held, and its events are
        above the horizon this round read (its commit came before our check, so the check
        sees them)."""
        if getattr(self._local, "delivering", False):
            return 0
        self._local.delivering = True
        total = 0
        try:
            consumers = self.handlers()
            self._ensure([c.name for c in consumers if c.durable])
            failed: set[str] = set()
            for _ in range(_MAX_ROUNDS):
                todo = [c for c in consumers if c.name not in failed]
                if not todo:
                    break
                horizon = self._horizon()
                self._local.appended = []
                step = Round(self._uow, self._memory, errors=self._errors, batch=self.batch, trace=self._trace)
                step.run(todo, horizon, known, skip_locked)
                total += step.delivered
                failed.update(step.failed)
                known = self._local.appended or None
                if not step.more and known is None and not (settle and step.claimed and self._horizon() > horizon):
                    break
            else:
                if known:  # not a long backlog (that just continues) but consumers answering each other
                    log.warning("event consumers kept emitting events for %d rounds; the rest waits for the next "
                                "delivery", _MAX_ROUNDS)
        finally:
            self._local.delivering = False
            self._local.appended = []
        return total

    # -- reading ---------------------------------------------------------------------------------------------
    def head(self) -> int:
        """The position of the newest event readers may read (see :meth:`read`)."""
        return self._horizon()

    def read(self, after: int = 0, types: Iterable[object] | None = None, limit: int = 1000) -> list[LoggedEvent]:
        """Logged events with a position above ``after``, oldest first, at most ``limit``.

        ``types`` limits them to some event classes (classes from :mod:`siyu.events`
        or their names). Only events no in-flight write can undercut are
        returned, so the last position read is a safe place to continue from."""
        start = _position(after, "after")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise ValidationError(f"limit must be an integer from 1 to 100000, got {limit!r}")
        try:
            names = codec.type_names(types)
        except TypeError as exc:
            raise ValidationError(str(exc)) from None
        horizon = self.head()
        with self._uow.read() as tx:
            rows = tx.event_log.read(start, horizon, names, limit)
        return [_logged(r) for r in rows]

    def consumers(self) -> list[ConsumerStatus]:
        """Every consumer with a checkpoint: position, lag, failures, whether it is parked."""
        declared = {c.name for c in self.handlers()} | {s.name for s in self.sinks()}
        horizon = self.head()
        with self._uow.read() as tx:
            rows = tx.event_log.consumers()
            lags = {r.name: tx.event_log.count(r.position, horizon) for r in rows}
        out = [
            ConsumerStatus(name=r.name, position=r.position, lag=lags[r.name], parked=r.parked, error=r.error,
                           failed_position=r.failed_position, attempts=r.attempts, updated_at=r.updated_at,
                           kind=r.kind, declared=r.name in declared)
            for r in rows
        ]
        for name, position in sorted(self._memory.items()):
            with self._uow.read() as tx:
                lag = tx.event_log.count(position, horizon)
            out.append(ConsumerStatus(name=name, position=position, lag=lag, parked=False, error=None,
                                      failed_position=None, attempts=0, updated_at=None, kind="handler"))
        return out

    # -- steering consumers ---------------------------------------------------------------------------------
    def _steer(self, consumer: str, change: Any) -> ConsumerStatus:
        if not isinstance(consumer, str) or not consumer:
            raise ValidationError(f"consumer must be a consumer's name, got {consumer!r}")
        with self._uow.write() as tx:
            rows = {r.name: r for r in tx.event_log.claim([consumer], skip_locked=False)}
            row = rows.get(consumer)
            if row is None:
                known = ", ".join(r.name for r in tx.event_log.consumers()) or "(none)"
                raise NotFound(f"no event consumer named {consumer!r}; known: {known}")
            tx.event_log.save_consumers([change(row)], self._uow.now())
        return next(s for s in self.consumers() if s.name == consumer)

    def replay(self, consumer: str, from_position: int) -> ConsumerStatus:
        """Rewind (or fast-forward) a consumer: it receives the events from ``from_position`` on
        again. Its failure record is cleared and it is unparked."""
        start = _position(from_position, "from_position")

        def change(row: ConsumerRow) -> ConsumerRow:
            return ConsumerRow(name=row.name, kind=row.kind, position=max(start - 1, 0))

        return self._steer(consumer, change)

    def retry(self, consumer: str) -> ConsumerStatus:
        """Unpark a consumer: the next delivery tries the event it failed on again."""

        def change(row: ConsumerRow) -> ConsumerRow:
            return ConsumerRow(name=row.name, kind=row.kind, position=row.position, error=row.error,
                               failed_position=row.failed_position)

        return self._steer(consumer, change)

    def skip(self, consumer: str) -> ConsumerStatus:
        """Move a consumer past the event it keeps failing on (that event is never handled by it)."""

        def change(row: ConsumerRow) -> ConsumerRow:
            if row.failed_position is None:
                raise ValidationError(f"consumer {row.name!r} has no failed event to skip")
            log.warning("event consumer %s skips position %d by request (%s)", row.name, row.failed_position,
                        row.error)
            return ConsumerRow(name=row.name, kind=row.kind, position=max(row.position, row.failed_position))

        return self._steer(consumer, change)

    def remove(self, consumer: str) -> bool:
        """Forget a consumer nobody runs any more (its checkpoint stops holding back :meth:`prune`)."""
        check_text(consumer, "consumer")
        with self._uow.write() as tx:
            removed = tx.event_log.delete_consumer(consumer)
        self._ensured.discard(consumer)
        return removed

    # -- retention ---------------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """``{"retention_days": int | None}``: how long delivered events are kept (``None``: forever)."""
        with self._uow.read() as tx:
            raw = tx.meta.get(_SETTINGS)
        data = json.loads(raw) if raw else {}
        return {"retention_days": data.get("retention_days")}

    def configure(self, *, retention: timedelta | object | None = ...) -> dict[str, Any]:
        """Set how long delivered events stay in the log (``None``: forever). ``siyu worker``
        and ``siyu run-due`` prune by it; :meth:`prune` does it now."""
        data = self.settings()
        if retention is not ...:
            if retention is not None and (not isinstance(retention, timedelta) or retention < timedelta(days=1)):
                raise ValidationError(f"retention must be a timedelta of at least one day, or None; got {retention!r}")
            data["retention_days"] = None if retention is None else retention.days
        with self._uow.write() as tx:
            tx.meta.set(_SETTINGS, json.dumps(data))
        return data

    def prune(self, *, older_than: timedelta | None = None, archive: str | Path | None = None) -> int:
        """Delete events every consumer has finished that were recorded more than ``older_than`` ago
        (default: the configured retention; nothing when there is none). With ``archive``,
        they are first appended to that file as JSON lines. Returns how many were deleted."""
        if older_than is None:
            days = self.settings()["retention_days"]
            if days is None:
                return 0
            older_than = timedelta(days=days)
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError(f"older_than must be a timedelta >= 0, got {older_than!r}")
        cutoff = self._uow.now() - older_than
        horizon = self.head()
        with self._uow.write() as tx:
            rows = tx.event_log.consumers()
            upto = min([horizon, *(r.position for r in rows)])
            if archive is not None:
                _archive(tx, Path(archive), upto, cutoff)
            removed = tx.event_log.prune(upto, cutoff)
            before = tx.meta.get(PRUNED_KEY)
            if removed and (before is None or int(before) < upto):
                tx.meta.set(PRUNED_KEY, str(upto))
            return removed


    # -- relays ----------------------------------------------------------------------------------------------
    def sinks(self) -> list[Sink]:
        """The relays to brokers: those plugins register through ``siyu_register_event_sinks``
        and those added with :meth:`add_sink`."""
        if self._sinks is None:
            found = collect_sinks(self._hooks, self._host)
            self._sinks = []
            for sink in found:
                self.add_sink(sink)
        return list(self._sinks)

    def add_sink(self, sink: Sink) -> None:
        """Relay the log to ``sink`` too (a consumer named ``sink.name``)."""
        current = self.sinks() if self._sinks is not None else []
        if not isinstance(sink, Sink):
            raise ValidationError(f"{sink!r} is not a siyu.eventlog.sinks.Sink")
        taken = {s.name for s in current} | {c.name for c in self.handlers()}
        if not isinstance(sink.name, str) or not sink.name or sink.name in taken:
            raise ValidationError(f"sink name {sink.name!r} is empty or taken; give each sink a unique name=")
        self._ensure([sink.name], kind="sink")
        self._sinks = [*current, sink]

    def relay(self) -> int:
        """Publish every event the sinks have not published yet; return how many went out.
        ``siyu worker`` calls it in its loop; inline, a background thread does after writes."""
        return self._relay.run(self.sinks())

    def close(self) -> None:
        """Stop the relay thread and close the sinks' connections (``ws.close()`` calls this)."""
        self._relay.stop(self._sinks)
        for sink in self._sinks or []:
            try:
                sink.close()
            except Exception as exc:
                log.warning("closing sink %s failed: %r", sink.name, exc)


def _position(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a log position (an integer >= 0), got {value!r}")
    return value


def _archive(tx: Transaction, path: Path, upto: int, cutoff: datetime) -> None:
    if not path.parent.exists():
        raise ValidationError(f"directory {str(path.parent)!r} for the archive does not exist")
    after = 0
    with path.open("a", encoding="utf-8") as out:
        while True:
            rows = [r for r in tx.event_log.read(after, upto, None, 10_000)]
            if not rows:
                return
            for r in rows:
                if r.recorded_at < cutoff:
                    out.write(json.dumps({
                        "position": r.position, "type": r.type, "schema_version": r.schema_version,
                        "occurred_at": r.occurred_at.isoformat(), "correlation_id": r.correlation_id,
                        "user_id": r.user_id, "data": json.loads(r.payload),
                    }, ensure_ascii=False) + "\n")
            after = rows[-1].position
