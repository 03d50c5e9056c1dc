"""Consumers: who reads the log, declared rather than registered by side effect.

A :class:`Consumer` names a handler and the event classes it wants. The
built-in ones are declared in one table (:func:`siyu.eventlog.builtin.builtin_consumers`);
every plugin function implementing ``siyu_on_event`` or ``siyu_on_events`` is
turned into one here, named after its plugin, so its checkpoint survives
restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..events import Event

if TYPE_CHECKING:
    import pluggy

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Consumer", "plugin_consumers"]

#: Failures on one event after which a consumer is parked (left for a person to retry or skip).
DEFAULT_MAX_ATTEMPTS = 5

Handler = Callable[[Sequence[Event]], None]


@attrs.frozen(kw_only=True)
class Consumer:
    """A named reader of the event log.

    ``handle(events)`` runs inside a write transaction that also moves the
    consumer's checkpoint, so what it writes through the workspace commits
    exactly when the checkpoint does. ``types`` limits the event classes it
    sees (``None``: all). ``per_event`` calls it with one event at a time (each
    in its own savepoint), otherwise with every new event of its types at once.
    A ``durable`` consumer keeps its checkpoint in the database; a non-durable
    one (``ws.subscribe`` without a name) only in this process, from the
    position ``start`` on.
    """

    name: str
    handle: Handler
    types: tuple[type[Event], ...] | None = None
    per_event: bool = False
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    durable: bool = True
    start: int | None = None

    def wants(self, event: Event) -> bool:
        return self.types is None or isinstance(event, self.types)


def _plugin_name(pm: pluggy.PluginManager, plugin: object, taken: set[str]) -> str:
    explicit = getattr(plugin, "siyu_consumer", None)
    if isinstance(explicit, str) and explicit:
        name = explicit
    else:
        name = pm.get_name(plugin) or ""
        if not name or name.isdigit() or name.startswith("<"):
            # pluggy names unnamed objects by id(), which changes every run: a checkpoint
            # must find its consumer again after a restart, so use the class instead.
            cls = type(plugin)
            name = f"{cls.__module__}.{cls.__qualname__}".replace(".<locals>", "")
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}#{n}"
    taken.add(unique)
    return unique


def _call(function: Callable[..., Any], argnames: Iterable[str], workspace: object, batch: bool) -> Handler:
    names = set(argnames)
    key = "events" if batch else "event"

    def handle(events: Sequence[Event]) -> None:
        kwargs: dict[str, Any] = {}
        if "workspace" in names:
            kwargs["workspace"] = workspace
        if batch:
            if key in names:
                kwargs[key] = list(events)
            function(**kwargs)
            return
        for event in events:
            if key in names:
                kwargs[key] = event
            function(**kwargs)

    return handle


def plugin_consumers(pm: pluggy.PluginManager, workspace: object, taken: Iterable[str]) -> list[Consumer]:
    """One consumer per plugin function implementing ``siyu_on_events`` (first) or ``siyu_on_event``,
    in the order pluggy calls them."""
    used = set(taken)
    found: list[Consumer] = []
    for hook, batch in ((pm.hook.siyu_on_events, True), (pm.hook.siyu_on_event, False)):
        for impl in reversed(hook.get_hookimpls()):
            plugin = impl.plugin
            name = _plugin_name(pm, plugin, used)
            wanted = getattr(impl.function, "siyu_observes", None)
            found.append(Consumer(
                name=name,
                handle=_call(impl.function, impl.argnames, workspace, batch),
                types=tuple(wanted) if wanted else None,
                per_event=not batch,
                durable=bool(getattr(plugin, "siyu_durable", True)),
                start=getattr(plugin, "siyu_start", None),
                max_attempts=int(getattr(plugin, "siyu_max_attempts", DEFAULT_MAX_ATTEMPTS)),
            ))
    return found
