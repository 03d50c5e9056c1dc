"""What the event log hands out: logged events and consumer status."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from typing import Any

import attrs

from ..events import Event
from . import codec

__all__ = ["ConsumerStatus", "LoggedEvent"]


@attrs.frozen(kw_only=True)
class LoggedEvent:
    """One event as the log holds it.

    ``position`` orders the log (see the event-log explanation for what it
    guarantees); ``type`` is the event class name (``"OrderRecorded"``);
    ``data`` its fields except ``occurred_at`` (personal free text replaced
    once the person was erased, then ``redacted`` is true), parsed on first
    use from ``payload``, the JSON text the log stores (relays send it as is).
    """

    position: int
    type: str
    schema_version: int
    occurred_at: datetime
    payload: str = attrs.field(repr=False)
    correlation_id: str
    user_id: int | None = None
    redacted: bool = False

    @cached_property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.payload)
        return value

    @property
    def cloud_type(self) -> str:
        """The CloudEvents ``type``: ``siyu.order.recorded`` for ``OrderRecorded``."""
        return codec.cloud_type(self.type)

    def event(self) -> Event | None:
        """The event as an instance of its class, or ``None`` if this siyu does not know the class."""
        return codec.decode(self.type, self.occurred_at, self.data)



@attrs.frozen(kw_only=True)
class ConsumerStatus:
    """Where one consumer stands.

    ``position`` is the last event it finished; ``lag`` how many logged events
    wait for it; ``error`` the last failure (with ``failed_position``, the event
    it failed on, and ``attempts``); ``parked`` is true once it stopped
    retrying by itself (``ws.event_log.retry`` or ``skip`` moves it on).
    ``kind`` is ``"handler"`` (writes to the workspace) or ``"sink"`` (a relay
    to a broker); ``declared`` whether this process knows the consumer.
    """

    name: str
    position: int
    lag: int
    parked: bool
    error: str | None
    failed_position: int | None
    attempts: int
    updated_at: datetime | None
    kind: str = "handler"
    declared: bool = True
