"""Every hook a siyu plugin can implement.

A plugin is any module or object with functions decorated by
:data:`siyu.hookimpl` whose names match the specs below. Hooks are called
with keyword arguments; an implementation may accept any subset of them.

Built-in backends and channels are registered through these same hooks, so a
third-party plugin has exactly the powers a built-in one has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

if TYPE_CHECKING:
    from .events import Event
    from .workspace import Workspace

hookspec = pluggy.HookspecMarker("siyu")
#: Decorator marking a plugin function as a siyu hook implementation.
hookimpl = pluggy.HookimplMarker("siyu")

_F = TypeVar("_F", bound=Callable[..., Any])


def observes(*event_types: type[Event]) -> Callable[[_F], _F]:
    """Declare the event classes a ``siyu_on_event`` (or ``siyu_on_events``) implementation handles.

    Optional: without it an observer sees every event. With it, other events
    never reach the function, which matters after bulk writes (an
    ``earn_many`` of 100,000 rows delivers 100,000 events)::

        @siyu.hookimpl
        @siyu.observes(siyu.events.OrderRecorded, siyu.events.OrderRefunded)
        def siyu_on_event(event, workspace): ...
    """
    if not event_types or not all(isinstance(t, type) for t in event_types):
        raise TypeError("observes() takes one or more event classes from siyu.events")

    def mark(function: _F) -> _F:
        function.siyu_observes = tuple(event_types)  # type: ignore[attr-defined]
        return function

    return mark


@hookspec
def siyu_register_storage_backends(register: Callable[[type[Any]], None]) -> None:
    """Register storage backend classes.

    Called once when a workspace is created. Call ``register(BackendClass)``
    for each class; the class's ``scheme`` attribute (e.g. ``"sqlite"``) is the
    URL scheme it serves and its ``aliases`` attribute lists extra schemes.
    Registering a scheme that is already taken raises
    :class:`siyu.errors.PluginError` naming both classes.
    """


@hookspec
def siyu_register_channels(register: Callable[[type[Any]], None]) -> None:
    """Register channel classes.

    Called once when a workspace is created. Call ``register(ChannelClass)``
    for each class; the class's ``name`` attribute (e.g. ``"wecom"``) is the
    name ``ws.channels.get(name)`` finds it by. A duplicate name raises
    :class:`siyu.errors.PluginError` naming both classes.
    """


@hookspec
def siyu_workspace_opened(workspace: Workspace) -> None:
    """Set up something for a workspace whose services are built.

    Called once per workspace, inside :func:`siyu.connect`, after every
    service exists and before the first event is delivered: the place to
    wrap or observe the services (:class:`siyu.otel.Telemetry` instruments
    them here) or to read settings. An exception raised here fails
    ``connect()``, and the workspace is closed again.
    """


@hookspec
def siyu_on_event(event: Event, workspace: Workspace) -> None:
    """Observe a domain event after the change it describes was committed.

    ``event`` is a frozen instance of a class from :mod:`siyu.events`
    (``UserCreated``, ``TagApplied``, ``PointsEarned``, ...); dispatch on
    ``isinstance``. The change is already durable: an exception raised here
    is logged and reported through ``workspace.observer_errors`` but never
    undoes it, and the remaining observers still run.
    """


@hookspec
def siyu_on_events(events: Sequence[Event], workspace: Workspace) -> None:
    """Observe the events of one committed write together, oldest first.

    The batch form of :func:`siyu_on_event`, for observers that do better
    with many events at once: a bulk write (``ws.orders.record_many``,
    ``ws.events.track_many`` ...) reaches the observer in one call instead
    of one call per row. Combine with :func:`siyu.observes` to receive only
    some event classes; an observer whose classes are absent from a write is
    not called. The observer's own writes join the delivery's transaction
    in one savepoint: if it raises, all its writes for this batch are undone
    (the committed change stays), the error is reported through
    ``workspace.observer_errors`` against the batch's first event, and the
    other observers still run. Batch observers run before the
    ``siyu_on_event`` ones of the same delivery.
    """


@hookspec
def siyu_register_event_sinks(register: Callable[[Any], None], workspace: Workspace) -> None:
    """Register relays that publish the event log to a broker.

    Called once, when the workspace first relays. Call ``register(sink)`` for
    each instance of a :class:`siyu.eventlog.sinks.Sink` subclass (built in:
    ``NatsSink``, ``RedisStreamSink``, ``RabbitMQSink``, ``KafkaSink``). A sink is
    a consumer of the log with its own checkpoint, named by its ``name``: it
    publishes every event at least once, in log order, as CloudEvents 1.0 JSON,
    from a background thread (inline delivery) or ``siyu worker``, never inside
    a write, so a broker that is down or slow never fails or slows one.
    """


@hookspec
def siyu_points_rules(register: Callable[[Any], None]) -> None:
    """Register points earn rules.

    Called once when a workspace is created. Call ``register(rule)`` for each
    rule: an object with a ``name`` (``"purchase"``, ``"signin"``, ...) and a
    method ``points(ctx) -> int`` (see :class:`siyu.services.points_rules.PointsRule`);
    optional ``expiry``, ``tier_multiplier``, ``reason`` and ``default_key(ctx)``.
    The built-in rules register first; a plugin registering a rule under a
    name already taken replaces it. ``ws.points_rules.award(name, user_id,
    key=..., **context)`` runs a rule and credits its points.
    """
