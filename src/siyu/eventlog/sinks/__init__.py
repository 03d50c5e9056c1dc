"""Relays from the event log to brokers, as CloudEvents 1.0 JSON.

Built in: :class:`~.nats.NatsSink` (JetStream), :class:`~.redis.RedisStreamSink`,
:class:`~.rabbitmq.RabbitMQSink` and :class:`~.kafka.KafkaSink`, each behind
an optional extra and imported only when used. A plugin adds its own with the
``siyu_register_event_sinks`` hook; ``siyu worker --sink URL`` builds one from
a URL (:func:`from_url`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ...errors import ValidationError
from .base import Sink, cloud_event, encode_cloud_event, event_id

if TYPE_CHECKING:
    from ..._plugins import Hooks

__all__ = ["Sink", "cloud_event", "collect_sinks", "encode_cloud_event", "event_id", "from_url"]


def from_url(url: str) -> Sink:
    """A sink from a URL: ``nats://host:4222?stream=SIYU``, ``redis://host:6379/0?stream=siyu:events``,
    ``amqp://guest:guest@host:5672/%2F?exchange=siyu.events``, ``kafka://host:9092?topic=siyu.events``;
    ``name=`` sets the consumer name in every form."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    name = query.pop("name", None)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    try:
        if parts.scheme == "nats":
            from .nats import NatsSink

            return NatsSink(base, stream=query.pop("stream", "SIYU"), name=name or "nats")
        if parts.scheme in ("redis", "rediss"):
            from .redis import RedisStreamSink

            maxlen = query.pop("maxlen", None)
            return RedisStreamSink(base, stream=query.pop("stream", "siyu:events"),
                                   maxlen=None if maxlen is None else int(maxlen), name=name or "redis")
        if parts.scheme in ("amqp", "amqps"):
            from .rabbitmq import RabbitMQSink

            return RabbitMQSink(base, exchange=query.pop("exchange", "siyu.events"), name=name or "rabbitmq")
        if parts.scheme == "kafka":
            from .kafka import KafkaSink

            return KafkaSink(parts.netloc, topic=query.pop("topic", "siyu.events"), name=name or "kafka")
    except ValueError as exc:
        raise ValidationError(f"bad sink URL {url!r}: {exc}") from None
    raise ValidationError(f"no event sink for {parts.scheme!r} URLs; use nats://, redis://, amqp:// or kafka://")


def collect_sinks(hooks: Hooks, host: object) -> list[Sink]:
    """The sinks plugins register through ``siyu_register_event_sinks`` (called with
    ``workspace=host``), checked for unique names."""
    found: list[Sink] = []

    def register(sink: Sink) -> None:
        if not isinstance(sink, Sink):
            raise ValidationError(f"{sink!r} is not a siyu.eventlog.sinks.Sink")
        found.append(sink)

    hooks.call("siyu_register_event_sinks", register=register, workspace=host)
    return found
