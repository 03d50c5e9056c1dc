"""Relay to RabbitMQ with publisher confirms (the ``siyu[rabbitmq]`` extra: pika).

Events go to a durable topic exchange with the CloudEvents type as routing
key (bind a queue to ``siyu.order.*``, say), as persistent messages whose
``message_id`` is the event id. RabbitMQ does not de-duplicate: a message the
relay sends again after a crash arrives twice, so a receiver drops ids it has
seen (keep the last few thousand, or a unique key in its own database).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import StorageError
from ..models import LoggedEvent
from .base import Sink, encode_cloud_event, event_id

__all__ = ["RabbitMQSink"]


class RabbitMQSink(Sink):
    """``RabbitMQSink("amqp://guest:guest@127.0.0.1:5672/%2F", exchange="siyu.events")``."""

    def __init__(self, url: str = "amqp://guest:guest@127.0.0.1:5672/%2F", *, exchange: str = "siyu.events",
                 name: str = "rabbitmq", timeout: float = 5.0, batch: int = 500) -> None:
        try:
            import pika
        except ImportError as exc:
            raise StorageError(f"the RabbitMQ relay needs pika: pip install 'siyu[rabbitmq]' ({exc})") from None
        self.exchange, self.name, self.batch = exchange, name, batch
        self._params = pika.URLParameters(url)
        self._params.socket_timeout = timeout
        self._params.blocked_connection_timeout = timeout
        self._connection: Any = None
        self._channel: Any = None

    def _open(self) -> Any:
        import pika

        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(self._params)
            channel = self._connection.channel()
            channel.confirm_delivery()  # basic_publish now returns once the broker confirmed
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            self._channel = channel
        return self._channel

    def publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        import pika

        try:
            channel = self._open()
            for e in events:
                channel.basic_publish(
                    self.exchange, e.cloud_type, encode_cloud_event(e, source_id),
                    pika.BasicProperties(message_id=event_id(source_id, e), type=e.cloud_type, delivery_mode=2,
                                         content_type="application/cloudevents+json"),
                )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                pass
