"""Another service reading siyu's events from NATS JetStream.

The shop writes orders; its event log is relayed to JetStream as CloudEvents
(``NatsSink``). A warehouse service, which knows nothing of siyu, reads the
``order`` events with a durable pull consumer, de-duplicates on the
CloudEvents ``id`` and acknowledges each message once it has handled it.

Needs NATS with JetStream on 127.0.0.1:4222 (``nats-server -js``) and
``pip install 'siyu[nats]'``.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import nats

import siyu
from siyu.eventlog.sinks.nats import NatsSink

NATS_URL = "nats://127.0.0.1:4222"
# A stream and subject prefix of its own, so this demo never meets a real shop's stream.
RUN = uuid.uuid4().hex[:8]
STREAM, PREFIX = f"DEMO_{RUN}", f"demo{RUN}"


def shop() -> None:
    """The siyu side: record orders; the relay publishes the log to NATS."""
    with siyu.connect("sqlite:///shop.db") as ws:
        ws.event_log.add_sink(NatsSink(NATS_URL, stream=STREAM, subject_prefix=PREFIX))
        ws.products.add("TEA-1", "明前龙井 250g", price="128.00", cost="60.00", role="profit")
        alice, bob = ws.users.add_many([{"phone": "13800138001"}, {"phone": "13800138002"}])
        ws.orders.record(alice, [{"sku": "TEA-1", "qty": 2}])
        ws.orders.record(bob, [{"sku": "TEA-1", "qty": 1}])
        ws.event_log.relay()  # the background relay would too; make sure before the process exits


# --8<-- [start:warehouse]
async def warehouse() -> list[dict[str, object]]:
    """The other service: only NATS and JSON."""
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    seen: set[str] = set()
    picked: list[dict[str, object]] = []
    try:
        sub = await js.pull_subscribe(f"{PREFIX}.order.>", durable="warehouse", stream=STREAM)
        while True:
            try:
                messages = await sub.fetch(100, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):  # nothing more to fetch
                break
            for message in messages:
                event = json.loads(message.data)
                if event["id"] not in seen:  # at least once: a repeat is possible, handle it once
                    seen.add(event["id"])
                    picked.append({"type": event["type"], "order": event["data"]["order_id"],
                                   "user": event["subject"], "paid_fen": event["data"]["total_fen"]})
                await message.ack()
    finally:
        await js.delete_stream(STREAM)  # demo cleanup; a real stream lives on
        await nc.close()
    return picked
# --8<-- [end:warehouse]


if __name__ == "__main__":
    shop()
    picked = asyncio.run(warehouse())
    for item in picked:
        print(item)
    assert [p["order"] for p in picked] == [1, 2], picked
    assert all(p["type"] == "siyu.order.recorded" for p in picked)
