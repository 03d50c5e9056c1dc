"""The Workspace: one shop's data, services, plugins and clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from functools import cached_property
from types import TracebackType
from typing import Any

from ._clock import Clock, checked_now, system_clock, zone
from ._plugins import Hooks, Registry, make_plugin_manager, plugin_infos
from ._url import StorageURL
from .analytics import Analytics
from .campaigns import Campaigns
from .channels.service import ChannelService
from .errors import UnknownBackendError, UnknownChannelError, ValidationError
from .events import Event
from .segments import Segments
from .services.commerce import Coupons, Orders, PointsRules, Products, Promotions, Tiers
from .services.events_tracking import EventTracking
from .services.lifecycle import STAGE_TAGS, Lifecycle
from .services.order_metrics import ORDER_METRICS
from .services.points import Points
from .services.privacy import PersonalData, Privacy, open_key
from .services.referrals import Referrals
from .services.tags import Tags
from .services.users import MergeParticipant, Users
from .storage.base import Backend, Transaction

__all__ = ["Workspace", "connect"]

log = logging.getLogger("siyu")

#: How many rounds of observer-emitted events one change may cause (a guard
#: against two observers answering each other forever).
_MAX_EVENT_ROUNDS = 10


class Workspace:
    """A connected shop. Create it with :func:`siyu.connect`.

    Services hang off it as attributes (``ws.users``, ``ws.tags``,
    ``ws.points`` ...). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        *,
        plugins: Iterable[object] = (),
        clock: Clock | None = None,
        tz: str | tzinfo = "Asia/Shanghai",
        secret_key: str | bytes | None = None,
    ) -> None:
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a zero-argument callable returning an aware datetime")
        self.clock: Clock = clock or system_clock
        self.tz: tzinfo = zone(tz)
        self.pm = make_plugin_manager(plugins)
        self.hooks = Hooks(self.pm)
        self.backends: Registry[Backend] = Registry("storage backend", "scheme", UnknownBackendError)
        self.hooks.register_storage_backends(register=self.backends.register)
        self.channel_classes: Registry[Any] = Registry("channel", "name", UnknownChannelError)
        self.hooks.register_channels(register=self.channel_classes.register)
        self.url = StorageURL.parse(url)
        self.backend: Backend = self.backends.get(self.url.scheme)(self.url)
        #: Exceptions raised by ``siyu_on_event`` observers, newest last (bounded).
        self.observer_errors: list[tuple[Event, BaseException]] = []
        self._local = threading.local()
        try:
            self._start_services(secret_key)
        except BaseException:
            self.backend.close()  # e.g. a wrong secret key: do not leak the connection
            raise

    def _start_services(self, secret_key: str | bytes | None) -> None:
        """The composition root: every service built with the collaborators its
        constructor names, in the order those names require; then the tables
        the domains extend each other through, declared here rather than
        registered by the services themselves."""
        # The key is checked (and stored data sealed on first use) before any service reads.
        self.backend.cipher = open_key(self, secret_key)
        self.segments = Segments(self)
        self.tags = Tags(self, segments=self.segments)
        self.points = Points(self)
        self.tiers = Tiers(self)
        self.points_rules = PointsRules(self, tiers=self.tiers, points=self.points)
        self.promotions = Promotions(self, tiers=self.tiers)
        self.products = Products(self, pricing=self.promotions)
        self.coupons = Coupons(self, pricing=self.promotions)
        self.lifecycle = Lifecycle(self, tags=self.tags)
        self.events = EventTracking(self, lifecycle=self.lifecycle)
        self.orders = Orders(self, pricing=self.promotions, points=self.points, tiers=self.tiers,
                             points_rules=self.points_rules)
        self.referrals = Referrals(self, points=self.points, coupons=self.coupons, orders=self.orders)
        self.channels = ChannelService(self, self.channel_classes)
        self.campaigns = Campaigns(self, channels=self.channels, holders=self.backend.holders)
        self.analytics = Analytics(self, segments=self.segments, referrals=self.referrals)
        self.privacy = Privacy(self, backend=self.backend, personal_data=self._personal_data())
        self.users = Users(self, privacy=self.privacy, merge_participants=self._merge_participants())
        self._extend()

    def _merge_participants(self) -> list[MergeParticipant[Any]]:
        """Who moves per-user data when users merge, in order (unmerge runs in reverse)."""
        return [self.tags, self.points, self.referrals, self.lifecycle, self.events, self.tiers, self.coupons,
                self.orders, self.campaigns]

    def _personal_data(self) -> list[PersonalData]:
        """Each domain's part of a person's export and erasure (``ws.privacy``)."""
        return [
            PersonalData(name="tags", export=self.tags.history),
            PersonalData(name="points", export=lambda uid: {"balance": self.points.balance(uid),
                                                            "entries": self.points.history(uid)}),
            PersonalData(name="orders", export=self.orders.of),
            PersonalData(name="coupons", export=self.coupons.of),
            PersonalData(name="tiers", export=lambda uid: {"current": self.tiers.of(uid),
                                                           "history": self.tiers.history(uid)}),
            PersonalData(
                name="referrals",
                export=lambda uid: {"binding": self.referrals.binding(uid), "invitees": self.referrals.invitees(uid),
                                    "history": self.referrals.history(uid),
                                    "group_buys": self.referrals.group_buys.of_user(uid)},
                erase=lambda tx, ids: {"devices": tx.referrals.erase_devices(ids)},
            ),
            PersonalData(name="lifecycle", export=self.lifecycle.history),
            PersonalData(name="events", export=lambda uid: self.events.of(uid, limit=10_000)),
        ]

    def _extend(self) -> None:
        """The extension tables: segment metrics and tags other domains declare, points rules
        from plugins, and the event observers (in the order they are delivered to)."""
        self.segments.register_metrics(ORDER_METRICS)
        self.segments.register_metrics(self.analytics.segment_metrics())
        self.segments.declare_tags(STAGE_TAGS)
        self.hooks.points_rules(register=self.points_rules.register)
        self.pm.register(self.privacy.auditor, name="siyu.privacy.auditor")
        self.pm.register(self.tags.rules.observer, name=f"siyu.tag_rules.{id(self)}")
        self.pm.register(self.referrals, name="siyu.referrals")  # orders arrive as events, as for any plugin
        self.pm.register(self.lifecycle.observer, name=f"siyu.lifecycle.{id(self)}")
        self.pm.register(self.campaigns.observer, name="siyu.campaigns")

    # -- time -------------------------------------------------------------------------
    def now(self) -> datetime:
        """The current instant by the workspace clock (timezone-aware)."""
        return checked_now(self.clock)

    def today(self) -> date:
        """Today's date in the business time zone."""
        return self.now().astimezone(self.tz).date()

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction; nested calls join the outer one. Events are
        dispatched to ``siyu_on_event`` after the outermost commit."""
        current: Transaction | None = getattr(self._local, "tx", None)
        if current is not None:
            if not current.write:
                raise RuntimeError("a write was attempted inside a read transaction")
            yield current
            return
        with self.backend.transaction(write=True) as tx:
            self._local.tx = tx
            try:
                yield tx
            finally:
                self._local.tx = None
        tx.run_after_commit()
        self._dispatch(tx.events)

    def in_transaction(self) -> bool:
        """Whether this thread is inside a ``read()`` or ``write()`` block already."""
        return getattr(self._local, "tx", None) is not None

    def emit(self, event: Event) -> None:
        """Attach ``event`` to the write transaction in progress (dispatched after it commits)."""
        current: Transaction | None = getattr(self._local, "tx", None)
        if current is None or not current.write:
            raise RuntimeError("emit() needs a write transaction in progress (inside ws.write())")
        current.emit(event)

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """A consistent read; inside a write it reads that write's state."""
        current: Transaction | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self.backend.transaction(write=False) as tx:
            self._local.tx = tx
            try:
                yield tx
            finally:
                self._local.tx = None

    def _dispatch(self, events: list[Event]) -> None:
        """Deliver committed events to the observers.

        All observers of one delivery share one write transaction, each call in
        its own savepoint: what an observer writes (a lifecycle move, a
        commission) commits once for the whole batch instead of once per event,
        while a failing observer's writes are undone alone and never touch the
        change that was already committed. Events the observers emit are
        delivered in the next round, after this one commits.
        """
        rounds = 0
        while events and (self.pm.hook.siyu_on_event.get_hookimpls() or self.pm.hook.siyu_on_events.get_hookimpls()):
            rounds += 1
            if rounds > _MAX_EVENT_ROUNDS:
                log.error("observers kept emitting events for %d rounds; %d events dropped", rounds - 1, len(events))
                return
            with self.backend.transaction(write=True) as tx:
                self._local.tx = tx
                try:
                    failures = self.hooks.on_events(events=events, workspace=self, guard=tx.savepoint)
                finally:
                    self._local.tx = None
            tx.run_after_commit()
            for event, error in failures:
                log.error("event observer failed on %s: %r", type(event).__name__, error)
                self.observer_errors.append((event, error))
                del self.observer_errors[:-100]
            events = tx.events

    # -- plugins ----------------------------------------------------------------------------
    def plugins(self) -> list[dict[str, Any]]:
        """Registered plugins: name, distribution, version, hooks implemented."""
        return plugin_infos(self.pm)

    def subscribe(self, callback: Callable[[Event], None]) -> object:
        """Register a plain function as an event observer (returns the plugin to
        pass to ``ws.pm.unregister``). Shorthand for a plugin with ``siyu_on_event``."""
        from .hookspecs import hookimpl

        class _Subscriber:
            @hookimpl
            def siyu_on_event(self, event: Event) -> None:
                callback(event)

        plugin = _Subscriber()
        self.pm.register(plugin)
        return plugin

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the storage backend. Idempotent."""
        self.backend.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workspace {self.url.masked()} tz={self.tz}>"

    @cached_property
    def schema_versions(self) -> dict[str, int]:
        return self.backend.schema_versions()


def connect(
    url: str,
    *,
    plugins: Iterable[object] = (),
    clock: Clock | None = None,
    tz: str | tzinfo = "Asia/Shanghai",
    secret_key: str | bytes | None = None,
) -> Workspace:
    """Open a workspace on the storage at ``url``.

    ``url`` is ``"memory://"``, ``"sqlite:///shop.db"`` or any scheme a
    plugin registers. ``plugins`` are extra plugin modules or objects (or
    importable module names). ``clock`` is a zero-argument callable returning
    an aware ``datetime`` (tests pass a fake one). ``tz`` is the business time
    zone used for day boundaries. ``secret_key`` (default: the environment
    variable ``SIYU_SECRET_KEY``) encrypts personal data at rest; see the
    privacy guide.
    """
    return Workspace(url, plugins=plugins, clock=clock, tz=tz, secret_key=secret_key)
