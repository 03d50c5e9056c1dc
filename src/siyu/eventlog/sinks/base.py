"""What a relay to a broker is, and the CloudEvents 1.0 form its messages take."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring as _str
from typing import Any, ClassVar

from ..models import LoggedEvent

__all__ = ["Sink", "cloud_event", "event_id"]


def event_id(source_id: str, event: LoggedEvent) -> str:
    """The event's id: unique per workspace and stable across retries (brokers de-duplicate on it)."""
    return f"{source_id}-{event.position}"


def cloud_event(event: LoggedEvent, source_id: str, *, with_data: bool = True) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode envelope: ``id``, ``source``, ``type`` such as
    ``siyu.order.recorded``, ``time``, ``subject`` (the user id, when the event has one),
    ``data``, and the extensions ``siyuposition``, ``siyuversion`` (payload schema version)
    and ``correlationid``."""
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id(source_id, event),
        "source": f"urn:siyu:{source_id}",
        "type": event.cloud_type,
        "time": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "siyuposition": event.position,
        "siyuversion": event.schema_version,
        "correlationid": event.correlation_id,
    }
    if event.user_id is not None:
        envelope["subject"] = str(event.user_id)
    if with_data:
        envelope["data"] = event.data
    return envelope


def encode_cloud_event(event: LoggedEvent, source_id: str) -> bytes:
    """:func:`cloud_event` as compact JSON bytes, formatted directly: ``data`` is the stored
    payload text, spliced in without parsing it (relays send thousands of events a second)."""
    subject = "" if event.user_id is None else f',"subject":"{event.user_id}"'
    time = _cloud_time(event.occurred_at)
    return (
        f'{{"specversion":"1.0","id":{_str(event_id(source_id, event))},"source":{_str("urn:siyu:" + source_id)},'
        f'"type":{_str(event.cloud_type)},"time":"{time}","datacontenttype":"application/json",'
        f'"siyuposition":{event.position},"siyuversion":{event.schema_version},'
        f'"correlationid":{_str(event.correlation_id)}{subject},"data":{event.payload}}}'
    ).encode()


@lru_cache(maxsize=256)
def _cloud_time(at: datetime) -> str:
    # The events of one bulk write share their instant: format it once.
    return at.isoformat().replace("+00:00", "Z")


class Sink(abc.ABC):
    """A relay from the log to a broker: a consumer like any other, with a checkpoint.

    Subclasses set ``name`` (the consumer's name, unique per workspace) and
    implement :meth:`publish`. ``publish`` must return only once the broker
    holds every message (acknowledged or confirmed), and raise otherwise: the
    relay then keeps its checkpoint and sends the batch again later, so a
    broker sees a message at least once. Messages carry the event id, which
    lets the broker (NATS JetStream's ``Nats-Msg-Id``, explicit Redis stream ids)
    or the receiving service drop repeats.
    """

    name: str
    #: Event class names to relay (``None``: every event).
    types: ClassVar[tuple[str, ...] | None] = None
    #: Events handed to one :meth:`publish` call at most.
    batch: int = 500

    @abc.abstractmethod
    def publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        """Deliver ``events`` (oldest first) to the broker, or raise."""

    def close(self) -> None:  # noqa: B027 (optional for sinks without connections)
        """Release connections (called when the workspace closes)."""
