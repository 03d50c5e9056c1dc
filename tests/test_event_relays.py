"""Relays from the event log to real brokers on this machine: NATS JetStream, Redis Streams,
RabbitMQ; Kafka's messages (no broker here). CloudEvents 1.0 JSON everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import siyu
from siyu.eventlog import LoggedEvent
from siyu.eventlog.sinks import Sink, cloud_event, encode_cloud_event, from_url
from siyu.eventlog.sinks.kafka import kafka_message
from siyu.events import OrderRecorded, UserCreated

NATS = ("127.0.0.1", 4222)
REDIS = ("127.0.0.1", 6379)
RABBITMQ = ("127.0.0.1", 5672)


def _listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def needs(address: tuple[str, int], what: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not _listening(address) and not os.environ.get("CI"),
        reason=f"{what} is not listening on {address[0]}:{address[1]} (CI machines run it; start it to run this)",
    )


def _event(position: int = 7, user_id: int | None = 42) -> LoggedEvent:
    return LoggedEvent(position=position, type="OrderRecorded", schema_version=1,
                       occurred_at=datetime(2026, 11, 22, 8, 0, tzinfo=UTC), payload='{"order_id":3,"total_fen":100}',
                       correlation_id="req-1", user_id=user_id)


def test_cloud_events_envelope() -> None:
    envelope = cloud_event(_event(), "shop1")
    assert envelope == {
        "specversion": "1.0", "id": "shop1-7", "source": "urn:siyu:shop1", "type": "siyu.order.recorded",
        "time": "2026-11-22T08:00:00Z", "datacontenttype": "application/json", "subject": "42",
        "data": {"order_id": 3, "total_fen": 100}, "siyuposition": 7, "siyuversion": 1, "correlationid": "req-1",
    }
    assert "subject" not in cloud_event(_event(user_id=None), "shop1")
    assert json.loads(encode_cloud_event(_event(), "shop1")) == envelope
    assert siyu.eventlog.cloud_type("GroupBuyCompleted") == "siyu.group_buy.completed"
    assert siyu.eventlog.cloud_type("UsersMerged") == "siyu.users.merged"


def test_kafka_messages_are_keyed_by_user_and_carry_the_event_id() -> None:
    message = kafka_message(_event(), "shop1", "siyu.events")
    assert message["topic"] == "siyu.events" and message["key"] == b"42"
    assert json.loads(message["value"])["id"] == "shop1-7"
    assert dict(message["headers"]) == {"content-type": b"application/cloudevents+json", "ce_id": b"shop1-7",
                                        "ce_type": b"siyu.order.recorded"}
    assert kafka_message(_event(user_id=None), "shop1", "t")["key"] is None


def test_sink_urls() -> None:
    with pytest.raises(siyu.errors.ValidationError, match="no event sink"):
        from_url("ftp://x")
    sink = from_url("kafka://127.0.0.1:9092?topic=shop&name=kafka-main")
    assert (sink.name, getattr(sink, "topic", None)) == ("kafka-main", "shop")


class _Hub:
    """A workspace relaying to one sink, with a few events written."""

    @staticmethod
    def write(ws: siyu.Workspace) -> list[int]:
        ws.products.add("TEA", "tea", price="10", cost="3", role="profit")
        ids = ws.users.add_many([{}, {}, {}])
        for uid in ids:
            ws.orders.record(uid, [{"sku": "TEA", "qty": 1}])
        return ids


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[siyu.Workspace]:
    with siyu.connect(f"sqlite:///{tmp_path / 'shop.db'}", delivery="worker") as workspace:
        yield workspace


def _ids(ws: siyu.Workspace) -> list[str]:
    source = ws.event_log._relay.source_id()
    return [f"{source}-{e.position}" for e in ws.event_log.read(limit=10_000)]


# -- NATS JetStream --------------------------------------------------------------------------------------
async def _stream_messages(stream: str, subject: str) -> list[Any]:
    import nats

    nc = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=stream)
        out: list[Any] = []
        while True:
            try:
                batch = await sub.fetch(500, timeout=1)
            except Exception:  # nats.errors.TimeoutError: nothing more
                return out
            for m in batch:
                out.append(m)
                await m.ack()
    finally:
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()


@needs(NATS, "NATS (JetStream)")
def test_nats_holds_each_event_once_even_when_a_batch_is_sent_twice(ws: siyu.Workspace) -> None:
    from siyu.eventlog.sinks.nats import NatsSink

    tag = uuid.uuid4().hex[:8]
    sink = NatsSink(f"nats://{NATS[0]}:{NATS[1]}", stream=f"T{tag}", subject_prefix=f"t{tag}")
    ws.event_log.add_sink(sink)
    _Hub.write(ws)
    assert ws.event_log.relay() == len(ws.event_log.read())
    # A relay that died after publishing and before saving its checkpoint sends the batch again.
    sink.publish(ws.event_log.read(), ws.event_log._relay.source_id())
    messages = asyncio.run(_stream_messages(f"T{tag}", f"t{tag}.>"))
    bodies = [json.loads(m.data) for m in messages]
    assert [b["id"] for b in bodies] == _ids(ws)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == _ids(ws)
    assert {m.subject for m in messages} >= {f"t{tag}.order.recorded", f"t{tag}.user.created"}
    assert {c.name: c.lag for c in ws.event_log.consumers()}["nats"] == 0


# -- Redis Streams ----------------------------------------------------------------------------------------
@needs(REDIS, "Redis")
def test_redis_stream_holds_each_event_once(ws: siyu.Workspace) -> None:
    import redis

    key = f"test:{uuid.uuid4().hex}"
    ws.event_log.add_sink(from_url(f"redis://{REDIS[0]}:{REDIS[1]}/0?stream={key}"))
    _Hub.write(ws)
    client = redis.Redis(host=REDIS[0], port=REDIS[1])
    try:
        ws.event_log.relay()
        ws.event_log.sinks()[0].publish(ws.event_log.read(), ws.event_log._relay.source_id())  # a repeat
        entries = client.xrange(key)
        assert [json.loads(fields[b"event"])["id"] for _, fields in entries] == _ids(ws)
        assert [entry_id.decode() for entry_id, _ in entries] == [f"{e.position}-0" for e in ws.event_log.read()]
    finally:
        client.delete(key)
        client.close()


# -- RabbitMQ ---------------------------------------------------------------------------------------------
@needs(RABBITMQ, "RabbitMQ")
def test_rabbitmq_receives_confirmed_persistent_messages(ws: siyu.Workspace) -> None:
    import pika

    exchange = f"test.{uuid.uuid4().hex[:8]}"
    ws.event_log.add_sink(from_url(f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/%2F?exchange={exchange}"))
    connection = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/%2F"))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange, routing_key="siyu.order.*")
        _Hub.write(ws)
        ws.event_log.relay()
        got = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            got.append((properties.message_id, properties.delivery_mode, json.loads(body)["type"]))
        orders = [e for e in ws.event_log.read() if e.type == "OrderRecorded"]
        source = ws.event_log._relay.source_id()
        assert got == [(f"{source}-{e.position}", 2, "siyu.order.recorded") for e in orders]
        channel.exchange_delete(exchange)
    finally:
        connection.close()


# -- a broker that is down or slow ------------------------------------------------------------------------
class _Gate(Sink):
    """A broker stand-in that can be down (raises) or slow (blocks until let through)."""

    name = "gate"

    def __init__(self) -> None:
        self.down = False
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        self.got: list[int] = []

    def publish(self, events: Sequence[LoggedEvent], source_id: str) -> None:
        self.entered.set()
        if self.down:
            raise ConnectionRefusedError("broker down")
        assert self.open.wait(30)
        self.got.extend(e.position for e in events)


def test_a_broker_that_is_down_never_fails_a_write_and_the_relay_catches_up(tmp_path: Path) -> None:
    gate = _Gate()
    gate.down = True
    with siyu.connect(f"sqlite:///{tmp_path / 'shop.db'}", delivery="worker") as ws:
        ws.event_log.add_sink(gate)
        ws.users.add_many([{}, {}])
        assert ws.event_log.relay() == 0
        status = {c.name: c for c in ws.event_log.consumers()}["gate"]
        assert (status.lag, status.kind, status.parked) == (2, "sink", False)
        assert status.error == "ConnectionRefusedError: broker down" and status.failed_position == 1
        ws.users.add()
        ws.event_log.relay()
        assert {c.name: c for c in ws.event_log.consumers()}["gate"].attempts == 2  # never parked: it waits
        gate.down = False
        assert ws.event_log.relay() == 3 and gate.got == [1, 2, 3]
        after = {c.name: c for c in ws.event_log.consumers()}["gate"]
        assert (after.lag, after.error, after.attempts) == (0, None, 0)


def test_a_slow_broker_does_not_hold_up_writes(tmp_path: Path) -> None:
    """Inline: the relay publishes from a background thread; a write goes through while it is stuck."""
    gate = _Gate()

    class Plugin:
        @siyu.hookimpl
        def siyu_register_event_sinks(self, register: Any) -> None:
            register(gate)

    with siyu.connect(f"sqlite:///{tmp_path / 'shop.db'}", plugins=[Plugin()]) as ws:
        gate.open.clear()
        ws.users.add()
        assert gate.entered.wait(30)  # the relay thread is inside publish, blocked
        u = ws.users.add()  # ...and writes, with their inline consumers, still go through
        ws.tags.apply(u.id, "vip")
        assert ws.tags.of(u.id) == {"default/vip"}
        assert {c.name: c.lag for c in ws.event_log.consumers()}["gate"] >= 2
        gate.open.set()
        ws.event_log._relay.stop()  # waits for the thread's current pass
        ws.event_log.relay()
        assert gate.got == [e.position for e in ws.event_log.read()]


def test_sinks_need_unique_names(ws: siyu.Workspace) -> None:
    ws.event_log.add_sink(_Gate())
    with pytest.raises(siyu.errors.ValidationError, match="taken"):
        ws.event_log.add_sink(_Gate())
    with pytest.raises(siyu.errors.ValidationError, match="Sink"):
        ws.event_log.add_sink(object())  # type: ignore[arg-type]


def test_type_filters_reach_the_sink(ws: siyu.Workspace) -> None:
    class Orders(_Gate):
        name = "orders-only"
        types = ("OrderRecorded",)

    sink = Orders()
    ws.event_log.add_sink(sink)
    _Hub.write(ws)
    ws.event_log.relay()
    assert sink.got == [e.position for e in ws.event_log.read(types=[OrderRecorded])]
    assert {c.name: c.lag for c in ws.event_log.consumers()}["orders-only"] == 0
    assert not [e for e in ws.event_log.read(types=[UserCreated]) if e.position in sink.got]


def test_a_closed_relay_hands_its_sink_over_at_once_a_dead_one_when_its_lease_runs_out(tmp_path: Path) -> None:
    from siyu.eventlog.relay import LEASE_SECONDS
    from siyu.testing import FakeClock

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    clock = FakeClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    first, second = _Gate(), _Gate()
    with siyu.connect(url, delivery="worker", clock=clock) as ws:
        ws.event_log.add_sink(first)
        _Hub.write(ws)
        assert ws.event_log.relay() == len(ws.event_log.read())
    with siyu.connect(url, delivery="worker", clock=clock) as ws:  # the lease was given back on close
        ws.event_log.add_sink(second)
        ws.users.add()
        assert ws.event_log.relay() == 1
        ws.users.add()
        ws.event_log._relay._leased.clear()  # as after kill -9: the lease stays in the database
    with siyu.connect(url, delivery="worker", clock=clock) as ws:
        fresh = _Gate()
        ws.event_log.add_sink(fresh)
        assert ws.event_log.relay() == 0, "the dead relay's lease still runs"
        clock.advance(seconds=LEASE_SECONDS + 1)
        assert ws.event_log.relay() == 1 and fresh.got == [ws.event_log.head()]
