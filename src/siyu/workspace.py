"""The Workspace: one shop's data, services, plugins and clock."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from functools import cached_property
from types import TracebackType
from typing import Any

from ._clock import Clock, checked_now, system_clock, zone
from ._plugins import Hooks, Registry, make_plugin_manager, plugin_infos
from ._url import StorageURL
from .activities import ActivityReports, Bargains, Draws, FlashSales
from .analytics import Analytics
from .campaigns import Campaigns, ContactPolicy
from .channels.base import SendObserver
from .channels.service import ChannelService
from .community import Groups
from .community.metrics import GROUP_METRICS, group_purpose_metric, in_group_metric, owned_by_metric
from .errors import StorageError, UnknownBackendError, UnknownChannelError, ValidationError
from .eventlog import EventLog, codec
from .eventlog.builtin import builtin_consumers
from .events import Event
from .recommendations import Recommendations
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
from .services.wecom_contacts import WeComContacts
from .staff import Staff, Tasks, Transfers
from .storage.base import Backend, Transaction
from .wallet import Birthdays, GiftCards, MemberDays, PointsMall, Presales, Reviews, Wallet

__all__ = ["Workspace", "connect"]

log = logging.getLogger("siyu")


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
        delivery: str | None = None,
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
        #: Exceptions raised by event consumers (``siyu_on_event`` observers and the
        #: built-in ones), newest last (bounded); ``ws.event_log.consumers()`` shows the rest.
        self.observer_errors: list[tuple[Event, BaseException]] = []
        #: What wraps each channel send (:class:`siyu.otel.Telemetry` sets it); ``None``: nothing.
        self.send_observer: SendObserver | None = None
        #: Called with the events of each committed write, in this process, right after the
        #: commit (:class:`siyu.otel.Telemetry` counts points with it); ``None``: nothing.
        self.commit_observer: Callable[[Sequence[Event]], None] | None = None
        self._local = threading.local()
        self._pid = os.getpid()
        try:
            # First: services write while they start (keys, settings), and every write appends.
            self.event_log = EventLog(self, horizon=self.backend.event_horizon, plugins=self.pm, hooks=self.hooks,
                                      host=self, errors=self.observer_errors,
                                      delivery=delivery or os.environ.get("SIYU_DELIVERY") or "inline")
            self._start_services(secret_key)
            self.hooks.workspace_opened(workspace=self)
            self.event_log._start(builtin_consumers(self))
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
        self.wallet = Wallet(self, points_rules=self.points_rules, points=self.points)
        self.orders = Orders(self, pricing=self.promotions, points=self.points, tiers=self.tiers, wallet=self.wallet,
                             points_rules=self.points_rules)
        self.referrals = Referrals(self, points=self.points, coupons=self.coupons, orders=self.orders)
        self.flash_sales = FlashSales(self, orders=self.orders)
        self.gift_cards = GiftCards(self, wallet=self.wallet)
        self.points_mall = PointsMall(self, points=self.points, coupons=self.coupons, tiers=self.tiers)
        self.birthdays = Birthdays(self, points=self.points, coupons=self.coupons, points_mall=self.points_mall,
                                   tiers=self.tiers)
        self.member_days = MemberDays(self, promotions=self.promotions)
        self.reviews = Reviews(self, points=self.points)
        self.presales = Presales(self, orders=self.orders, promotions=self.promotions)
        self.bargains = Bargains(self, orders=self.orders, referrals=self.referrals)
        self.draws = Draws(self, points=self.points, coupons=self.coupons, orders=self.orders)
        self.activities = ActivityReports(self)
        self.channels = ChannelService(self, self.channel_classes)
        # One contact policy for direct sends (through the channels) and campaigns alike.
        policy = ContactPolicy(self, channels=self.channels)
        self.channels.policy = policy
        self.analytics = Analytics(self, segments=self.segments, referrals=self.referrals,
                                   horizon=self.backend.event_horizon)
        self.recommendations = Recommendations(self, analytics=self.analytics, tiers=self.tiers,
                                               promotions=self.promotions)
        self.campaigns = Campaigns(self, channels=self.channels, policy=policy, holders=self.backend.holders,
                                   variables=[self.recommendations.variable_source()])
        self.channels.receipts = self.campaigns
        self.privacy = Privacy(self, backend=self.backend, personal_data=self._personal_data())
        self.staff = Staff(self, lifecycle=self.lifecycle)
        self.groups = Groups(self)
        self.staff.groups = self.groups
        self.tasks = Tasks(self)
        self.users = Users(self, privacy=self.privacy, merge_participants=self._merge_participants())
        self.staff.transfers = Transfers(self, staff=self.staff, users=self.users)
        self.wecom = WeComContacts(self, channels=self.channels, users=self.users, tags=self.tags, staff=self.staff,
                                   groups=self.groups)
        self._extend()

    def _merge_participants(self) -> list[MergeParticipant[Any]]:
        """Who moves per-user data when users merge, in order (unmerge runs in reverse)."""
        return [self.tags, self.points, self.referrals, self.lifecycle, self.events, self.tiers, self.coupons,
                self.orders, self.campaigns, self.staff, self.groups, self.wallet, self.flash_sales, self.bargains]

    def _personal_data(self) -> list[PersonalData]:
        """Each domain's part of a person's export and erasure (``ws.privacy``)."""
        return [
            PersonalData(name="tags", export=self.tags.history),
            PersonalData(name="points", export=lambda uid: {"balance": self.points.balance(uid),
                                                            "entries": self.points.history(uid)}),
            PersonalData(name="orders", export=self.orders.of),
            PersonalData(name="activities", export=lambda uid: {
                "flash_sale_reservations": self.flash_sales.reservations(user_id=uid),
                "bargain_attempts": self.bargains.attempts(user_id=uid),
                "draws": [r for d in self.draws.all() for r in self.draws.records(d.id, user_id=uid)]}),
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
            PersonalData(name="staff", export=lambda uid: {"owner": self.staff.owner(uid),
                                                           "relations": self.staff.relations(uid),
                                                           "groups": [g.chat_id for g in self.groups.of(uid)]}),
            PersonalData(name="wallet", export=self.wallet.export),
            PersonalData(name="birthdays", export=self.birthdays.export,
                         erase=lambda tx, ids: {"birthdays": tx.benefits.erase_birthdays(ids)}),
            PersonalData(name="events", export=lambda uid: self.events.of(uid, limit=10_000)),
            # Personal free text in logged events goes with the person.
            PersonalData(name="event_log", erase=lambda tx, ids: {"events": tx.event_log.redact(ids, codec.redact)}),
        ]

    def _extend(self) -> None:
        """The extension tables: segment metrics and tags other domains declare, points rules
        from plugins. The event consumers are declared in ``siyu.eventlog.builtin``."""
        self.segments.register_metrics(ORDER_METRICS)
        self.segments.register_metrics(self.analytics.segment_metrics())
        self.segments.register_metric_family("events", self.analytics.event_metric)
        self.segments.register_metrics(GROUP_METRICS)
        self.segments.register_metric_family("in_group", in_group_metric)
        self.segments.register_metric_family("group_purpose", group_purpose_metric)
        self.segments.register_metric_family("owned_by", owned_by_metric)
        self.segments.declare_tags(STAGE_TAGS)
        self.hooks.points_rules(register=self.points_rules.register)
        self.points_rules.add_boost(self.birthdays.boost)
        self.points_rules.add_boost(self.member_days.boost)

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
        """A write transaction; nested calls join the outer one.

        The events it emits are appended to the event log at its end, in the
        same transaction. After the outermost commit they are delivered to the
        consumers (inline mode), or left for ``siyu worker`` (worker mode)."""
        current: Transaction | None = getattr(self._local, "tx", None)
        if current is not None:
            if not current.write:
                raise RuntimeError("a write was attempted inside a read transaction")
            yield current
            return
        self._check_process()
        with self.backend.transaction(write=True) as tx:
            tx.correlation = getattr(self._local, "correlation", None) or uuid.uuid4().hex[:16]
            self._local.tx = tx
            try:
                yield tx
                appended = self.event_log._append(tx)
            finally:
                self._local.tx = None
        tx.run_after_commit()
        observer = self.commit_observer
        if observer is not None and tx.events:
            try:
                observer(tx.events)
            except Exception as exc:  # the write committed: an observer's failure is not the caller's
                log.error("commit observer failed: %r", exc)
        self.event_log._committed(appended)

    @contextmanager
    def correlate(self, correlation_id: str) -> Iterator[None]:
        """Tag the events of the writes in this block with ``correlation_id`` (a request id,
        say) instead of a fresh id per call; events that consumers emit in reaction carry
        the id of the event they handled."""
        if not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= 128:
            raise ValidationError("correlation_id must be a non-empty string of at most 128 characters")
        previous = getattr(self._local, "correlation", None)
        self._local.correlation = correlation_id
        try:
            yield
        finally:
            self._local.correlation = previous

    def in_transaction(self) -> bool:
        """Whether this thread is inside a ``read()`` or ``write()`` block already."""
        return getattr(self._local, "tx", None) is not None

    def emit(self, event: Event) -> None:
        """Attach ``event`` to the write transaction in progress (logged with it, delivered after it commits)."""
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
        self._check_process()
        with self.backend.transaction(write=False) as tx:
            self._local.tx = tx
            try:
                yield tx
            finally:
                self._local.tx = None

    def _check_process(self) -> None:
        """Refuse to run in a process forked after connect(): parent and child would share
        one database connection (and its locks and protocol state) and corrupt each other."""
        if os.getpid() != self._pid:
            raise StorageError(
                f"this workspace was opened by process {self._pid} and this process ({os.getpid()}) is a fork "
                "of it; a database connection cannot cross a fork. Call siyu.connect() in each process after "
                "it starts: with gunicorn --preload, in the post_fork hook or on the first request, not at import"
            )

    # -- plugins ----------------------------------------------------------------------------
    def plugins(self) -> list[dict[str, Any]]:
        """Registered plugins: name, distribution, version, hooks implemented."""
        return plugin_infos(self.pm)

    def subscribe(self, callback: Callable[[Event], None], *, name: str | None = None) -> object:
        """Register a plain function as an event observer (returns the plugin to
        pass to ``ws.pm.unregister``). Shorthand for a plugin with ``siyu_on_event``.

        Without ``name`` it sees the events committed from now on while this
        process runs; with a ``name`` it is a durable consumer that keeps its
        checkpoint in the database and catches up after a restart."""
        from .hookspecs import hookimpl

        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValidationError("name must be a non-empty string, or None for a subscriber of this process only")

        class _Subscriber:
            siyu_consumer = name or f"subscriber:{getattr(callback, '__qualname__', 'callback')}"
            siyu_durable = name is not None
            siyu_start = None if name is not None else self.backend.event_horizon()

            @hookimpl
            def siyu_on_event(self, event: Event) -> None:
                callback(event)

        plugin = _Subscriber()
        # Listed by `siyu plugins` under its consumer name, not pluggy's default id().
        label, n = _Subscriber.siyu_consumer, 2
        while self.pm.has_plugin(label):
            label, n = f"{_Subscriber.siyu_consumer}#{n}", n + 1
        self.pm.register(plugin, name=label)
        return plugin

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop relaying, close the storage backend. Idempotent.

        In a process forked after connect() it only forgets the workspace: closing
        would end the connections the parent process still uses."""
        if os.getpid() != self._pid:
            return
        event_log = getattr(self, "event_log", None)
        if event_log is not None:
            event_log.close()
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
    delivery: str | None = None,
) -> Workspace:
    """Open a workspace on the storage at ``url``.

    ``url`` is ``"memory://"``, ``"sqlite:///shop.db"`` or any scheme a
    plugin registers. ``plugins`` are extra plugin modules or objects (or
    importable module names). ``clock`` is a zero-argument callable returning
    an aware ``datetime`` (tests pass a fake one). ``tz`` is the business time
    zone used for day boundaries. ``secret_key`` (default: the environment
    variable ``SIYU_SECRET_KEY``) encrypts personal data at rest; see the
    privacy guide. ``delivery`` (default: the environment variable
    ``SIYU_DELIVERY``, else ``"inline"``) says who delivers logged events to
    their consumers: ``"inline"``, this process right after each write, or
    ``"worker"``, a separate ``siyu worker`` process (see "Run siyu in production").
    """
    return Workspace(url, plugins=plugins, clock=clock, tz=tz, secret_key=secret_key, delivery=delivery)
