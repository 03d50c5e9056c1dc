"""Relay to Kafka (the ``siyu[kafka]`` extra: confluent-kafka).

One topic; the message key is the event's user id, so one person's events
land in one partition, in order. The value is the CloudEvents JSON
(structured mode, header ``content-type: application/cloudevents+json``), and
the header ``ce_id`` repeats the event id for receivers that de-duplicate
without parsing. The producer is idempotent (``enable.idempotence``), which
stops duplicates from the producer's own retries; a relay restarted after a
crash may still send a batch twice, so receivers drop ids they have seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import StorageError
from ..models import LoggedEvent
from .base import Sink, encode_cloud_event, event_id

__all__ = ["KafkaSink", "kafka_message"]


def kafka_message(event: LoggedEvent, source_id: str, topic: str) -> dict[str, Any]:
    """The ``Producer.produce`` arguments for one event."""
    return {
        "topic": topic,
        "key": None if event.user_id is None else str(event.user_id).encode(),
        "value": encode_cloud_event(event, source_id),
        "headers": [("content-type", b"application/cloudevents+json"),
                    ("ce_id", event_id(source_id, event).encode()),
                    ("ce_type", event.cloud_type.encode())],
    }


class KafkaSink(Sink):
    """``KafkaSink("127.0.0.1:9092", topic="siyu.events", config={...})``: ``config`` goes to the producer."""

    def __init__(self, bootstrap_servers: str = "127.0.0.1:9092", *, topic: str = "siyu.events", name: str = "kafka",
                 timeout: float = 10.0, batch: int = 1000, config: dict[str, Any] | None = None) -> None:
        try:
            from confluent_kafka import Producer
        except ImportError as exc:
            raise StorageError(f"the Kafka relay needs confluent-kafka: pip install 'siyu[kafka]' ({exc})") from None
        self.topic, self.name, self.timeout, self.batch = topic, name, timeout, batch
        self._producer: Any = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True,
                                        "acks": "all", **(config or {})})

    def publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        failures: list[Any] = []

        def delivered(error: Any, message: Any) -> None:
            if error is not None:
                failures.append(error)

        for e in events:
            self._producer.produce(**kafka_message(e, source_id, self.topic), on_delivery=delivered)
        left = self._producer.flush(self.timeout)
        if left or failures:
            raise StorageError(f"Kafka did not acknowledge {left + len(failures)} of {len(events)} events: "
                               f"{failures[:1] or 'timed out'}")
