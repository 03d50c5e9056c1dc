"""The event log: what it costs writes, how fast relays publish, how fast a consumer catches up.

(a) batched ``points.earn_many`` and ``orders.record_many`` with the event log
    against the same writes with the log's append switched off (both with
    delivery left to a worker, so only the log is measured). Goal: the log
    costs at most 15% of throughput.
(b) relaying logged events to NATS JetStream and Redis Streams against the raw
    client publishing the same CloudEvents bytes (same batching, same
    acknowledgements) in the same run. Goal: at least 50% of raw.
(c) a new consumer catching up over 1,000,000 logged events (at ``--scale 1``)
    against a raw read of the same rows with ``json.loads``.
(d) with ``--order`` (and a PostgreSQL URL in ``--pg`` or
    ``SIYU_TEST_POSTGRES_URL``): parallel writers appending events with no
    ordering, a counter row held to commit, and siyu's commit fence.

    .venv/bin/python bench/events.py [--db URL] [--scale 0.1] [--sections abc] [--order]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu.eventlog.sinks import Sink, encode_cloud_event, event_id
from siyu.storage.contracts.event_log import NewLogEntry
from siyu.testing import FakeClock

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=2000, help="rows per earn_many / record_many call")
    parser.add_argument("--order", action="store_true", help="also run (d), the PostgreSQL ordering comparison")
    parser.add_argument("--pg", default=os.environ.get("SIYU_TEST_POSTGRES_URL"), help="PostgreSQL URL for (d)")
    parser.add_argument("--sections", default="abc", help="which of (a) (b) (c) to run, e.g. 'c' (default: abc)")


def goal(met: bool, text: str) -> str:
    return f"goal {'met' if met else 'MISSED'}: {text}"


# -- (a) the cost of the log on writes ---------------------------------------------------------------------
def _writes(url: str, log_on: bool, users: int, earns: int, orders: int, batch: int) -> tuple[Timing, Timing, Any]:
    with siyu.connect(url, clock=FakeClock(START), delivery="worker") as ws:
        if not log_on:
            ws.event_log._append = lambda tx: []  # type: ignore[method-assign]  # the same writes, no log
        ws.products.add("TEA", "tea", price="39.90", cost="12", role="profit")
        ids = ws.users.add_many([{} for _ in range(users)])
        rows = [{"user_id": ids[i % users], "amount": 1 + i % 7, "reason": "bench", "key": f"e{i}"}
                for i in range(earns)]
        with timed(earns) as earn_time:
            for start in range(0, earns, batch):
                ws.points.earn_many(rows[start:start + batch])
        order_rows = [{"user_id": ids[i % users], "lines": [{"sku": "TEA", "qty": 1 + i % 3}],
                       "paid_at": START - timedelta(minutes=i)} for i in range(orders)]
        with timed(orders) as order_time:
            for start in range(0, orders, batch):
                ws.orders.record_many(order_rows[start:start + batch])
        state = sum(ws.points.balance(u) for u in ids[:200])
        return earn_time, order_time, state


def _fresh_writes(args: argparse.Namespace, tmp: Path, name: str, log_on: bool, users: int, earns: int, orders: int,
                  batch: int) -> tuple[Timing, Timing, Any]:
    """Each run on an empty database: a fresh schema of ``--db`` on PostgreSQL, else a new SQLite file."""
    if args.db and args.db.startswith(("postgresql:", "postgres:")):
        from siyu.testing.postgres import drop_schema, with_schema

        url = with_schema(args.db, f"bench_{uuid.uuid4().hex[:12]}")
        try:
            return _writes(url, log_on, users, earns, orders, batch)
        finally:
            drop_schema(url)
    return _writes(workspace_url(argparse.Namespace(db=None), tmp, f"{name}.db"), log_on, users, earns, orders, batch)


def bench_writes(args: argparse.Namespace, tmp: Path) -> None:
    users, earns = scaled(2_000, args.scale, 20), scaled(100_000, args.scale, 200)
    orders = scaled(20_000, args.scale, 50)
    batch = max(1, args.batch)
    print(f"(a) {earns:,} earns and {orders:,} orders in batches of {batch:,}, {users:,} users; best of 3 runs")
    best: dict[bool, list[Timing]] = {}
    states = {}
    for run in range(3):
        for log_on in (True, False):
            earn_t, order_t, state = _fresh_writes(args, tmp, f"writes_{run}_{int(log_on)}", log_on, users, earns,
                                                   orders, batch)
            states[log_on] = state
            kept = best.setdefault(log_on, [earn_t, order_t])
            best[log_on] = [min(kept[0], earn_t, key=lambda t: t.seconds),
                            min(kept[1], order_t, key=lambda t: t.seconds)]
    check_equal("balances with and without the log", states[True], states[False])
    for index, name in enumerate(("earn_many", "record_many")):
        on, off = best[True][index], best[False][index]
        print(ratio_line(f"{name} with the log", on, off, "baseline: the same writes without it"))
        cost = 1 - on.rate / off.rate
        print(goal(cost <= 0.15, f"{name}: the log costs {cost:.0%} of throughput (at most 15%)"))


# -- (b) relays against their raw clients -------------------------------------------------------------------
def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _filled(url: str, count: int) -> siyu.Workspace:
    ws = siyu.connect(url, clock=FakeClock(START), delivery="worker")
    ids = ws.users.add_many([{} for _ in range(min(count, 1000))])
    rows = [{"user_id": ids[i % len(ids)], "amount": 5, "reason": "bench", "key": f"r{i}"} for i in range(count)]
    for start in range(0, len(rows), 5000):
        ws.points.earn_many(rows[start:start + 5000])
    return ws


def _raw_nats(payloads: list[tuple[str, bytes, str]], stream: str, window: int) -> int:
    import nats

    async def main() -> int:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        try:
            await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
            for start in range(0, len(payloads), window):
                futures = [await js.publish_async(subject, body, stream=stream, headers={"Nats-Msg-Id": msg_id})
                           for subject, body, msg_id in payloads[start:start + window]]
                await asyncio.gather(*futures)
            info = await js.stream_info(stream)
            return int(info.state.messages)
        finally:
            await js.delete_stream(stream)
            await nc.close()

    return asyncio.run(main())


def _nats_count(stream: str) -> int:
    import nats

    async def main() -> int:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        try:
            return int((await js.stream_info(stream)).state.messages)
        finally:
            await js.delete_stream(stream)
            await nc.close()

    return asyncio.run(main())


def bench_relays(args: argparse.Namespace, tmp: Path) -> None:
    count = scaled(50_000, args.scale, 200)
    print(f"(b) relaying {count:,} points events (and their users'); raw: the same client, messages and batches")
    ws = _filled(f"sqlite:///{tmp / 'relay.db'}", count)
    try:
        events = ws.event_log.read(limit=100_000)
        count = len(events)
        source = ws.event_log._relay.source_id()
        if _listening(4222):
            from siyu.eventlog.sinks.nats import NatsSink

            tag = uuid.uuid4().hex[:8].upper()
            sink = NatsSink(stream=f"BENCH{tag}", subject_prefix=f"bench{tag.lower()}", name=f"nats{tag}")
            _relay_vs_raw(ws, sink, count, lambda: _nats_count(f"BENCH{tag}"), lambda: _raw_nats(
                [(f"raw{tag.lower()}.{e.cloud_type.removeprefix('siyu.')}", encode_cloud_event(e, source),
                  event_id(source, e)) for e in events], f"RAW{tag}", sink.batch), "NATS JetStream")
            sink.close()
        else:
            print("NATS JetStream: skipped (nothing listens on 127.0.0.1:4222)")
        if _listening(6379):
            import redis

            from siyu.eventlog.sinks.redis import RedisStreamSink

            key = f"bench:{uuid.uuid4().hex}"
            client = redis.Redis()
            sink = RedisStreamSink(stream=key, name=f"redis{key[-6:]}")
            entries = [(f"{e.position}-0", {"id": event_id(source, e), "type": e.cloud_type,
                                            "event": encode_cloud_event(e, source)}) for e in events]

            def raw() -> int:
                raw_key = key + ":raw"
                for start in range(0, len(entries), sink.batch):
                    pipe = client.pipeline(transaction=False)
                    for entry_id, fields in entries[start:start + sink.batch]:
                        pipe.xadd(raw_key, fields, id=entry_id)
                    pipe.execute()
                length = int(client.xlen(raw_key))
                client.delete(raw_key)
                return length

            def relayed() -> int:
                length = int(client.xlen(key))
                client.delete(key)
                return length

            _relay_vs_raw(ws, sink, count, relayed, raw, "Redis Streams")
            client.close()
        else:
            print("Redis Streams: skipped (nothing listens on 127.0.0.1:6379)")
    finally:
        ws.close()


def _relay_vs_raw(ws: siyu.Workspace, sink: Sink, count: int, relayed_count: Callable[[], int],
                  raw: Callable[[], int], what: str) -> None:
    ws.event_log.add_sink(sink)
    with timed(count) as relay_time:
        sent = ws.event_log.relay()
    in_broker = relayed_count()
    with timed(count) as raw_time:
        raw_count = raw()
    check_equal(f"{what}: messages relayed", (sent, in_broker), (count, raw_count))
    print(ratio_line(f"relay to {what}", relay_time, raw_time, "baseline: the raw client publishing the same bytes"))
    print(goal(relay_time.rate >= 0.5 * raw_time.rate, f"relay to {what} at {relay_time.rate / raw_time.rate:.0%} "
                                                          "of the raw client (at least 50%)"))


# -- (c) catch-up ------------------------------------------------------------------------------------------------
class _Summer:
    siyu_consumer = "bench.catch_up"

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    @siyu.hookimpl
    @siyu.observes(siyu.events.PointsEarned)
    def siyu_on_events(self, events: Sequence[Any]) -> None:
        self.count += len(events)
        self.total += sum(e.amount for e in events)


def bench_catch_up(args: argparse.Namespace, tmp: Path) -> None:
    count = scaled(1_000_000, args.scale, 1000)
    path = tmp / "catch_up.db"
    url = f"sqlite:///{path}"
    with siyu.connect(url, clock=FakeClock(START), delivery="worker") as ws:
        for start in range(0, count, 20_000):
            n = min(20_000, count - start)
            entries = [NewLogEntry(type="PointsEarned", schema_version=1, occurred_at=START,
                                   user_id=1 + (start + i) % 997,
                                   correlation_id="bench", payload=json.dumps({
                                       "user_id": 1 + (start + i) % 997, "entry_id": start + i + 1,
                                       "amount": 1 + (start + i) % 5, "reason": "bench", "key": f"k{start + i}"}))
                       for i in range(n)]
            with ws.write() as tx:
                tx.event_log.append(entries, START)
        head = ws.event_log.head()
        for consumer in ws.event_log.consumers():  # only the new consumer below has work to do
            ws.event_log.replay(consumer.name, head + 1)
        summer = _Summer()
        ws.pm.register(summer)
        ws.event_log._ensure(["bench.catch_up"])
        ws.event_log.replay("bench.catch_up", 1)
        ws.event_log.batch = 10_000
        print(f"(c) a new consumer catching up over {count:,} logged events")
        with timed(count) as siyu_time:
            while ws.event_log.deliver():
                pass
    conn = sqlite3.connect(path)
    with timed(count) as raw_time:
        total = 0
        # A row holds a run of events of one write, their payloads one per line.
        for (payload,) in conn.execute("SELECT payload FROM events ORDER BY position"):
            for line in payload.split("\n"):
                total += json.loads(line)["amount"]
    conn.close()
    check_equal("catch-up: events and amounts", (summer.count, summer.total), (count, total))
    print(ratio_line("catch-up", siyu_time, raw_time, "baseline: reading the rows with json.loads"))


# -- (d) ordering on PostgreSQL --------------------------------------------------------------------------------
def _order_writer(url: str, schema: str, mode: str, index: int, seconds: float, out: Any) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True, options=f"-csearch_path={schema}")
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        with conn.transaction():
            conn.execute("INSERT INTO ledger (user_id, amount) VALUES (%s, 1)", (index,))
            if mode == "counter":
                p = conn.execute("UPDATE head SET position = position + 1 RETURNING position").fetchone()[0]
                conn.execute("INSERT INTO events (position, payload) VALUES (%s, '{}')", (p,))
            else:
                if mode == "fence":
                    conn.execute("SELECT pg_advisory_xact_lock_shared(42)")
                conn.execute("INSERT INTO events (payload) VALUES ('{}')")
        n += 1
    out.put(n)


def _order_reader(url: str, schema: str, seconds: float, out: Any) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True, options=f"-csearch_path={schema}")
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(42)")
            conn.execute("SELECT max(position) FROM events").fetchone()
        n += 1
        time.sleep(0.001)
    out.put(-n)


def bench_order(args: argparse.Namespace) -> None:
    import psycopg

    from siyu._url import StorageURL

    parsed = StorageURL.parse(args.pg)
    host = f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}"
    url = f"postgresql://{parsed.username or 'postgres'}@{host}/{parsed.path}"
    schema = f"bench_order_{uuid.uuid4().hex[:8]}"
    seconds = max(0.5, 3 * args.scale)
    counts = (1, 2, 4, 8) if args.scale >= 0.1 else (1, 4)
    print(f"(d) PostgreSQL: parallel writers, one row plus one event per transaction, {seconds:.1f} s per run")
    context = multiprocessing.get_context("spawn")
    try:
        for writers in counts:
            rates: dict[str, Timing] = {}
            for mode in ("plain", "counter", "fence"):
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    conn.execute(f"CREATE SCHEMA {schema}")
                    conn.execute(f"CREATE TABLE {schema}.ledger (id BIGSERIAL PRIMARY KEY, user_id BIGINT, "
                                 "amount BIGINT)")
                    conn.execute(f"CREATE TABLE {schema}.events (position BIGINT GENERATED BY DEFAULT AS IDENTITY "
                                 "PRIMARY KEY, payload TEXT)")
                    conn.execute(f"CREATE TABLE {schema}.head (position BIGINT)")
                    conn.execute(f"INSERT INTO {schema}.head VALUES (0)")
                queue = context.Queue()
                procs = [context.Process(target=_order_writer, args=(url, schema, mode, i, seconds, queue))
                         for i in range(writers)]
                if mode == "fence":
                    procs.append(context.Process(target=_order_reader, args=(url, schema, seconds, queue)))
                for p in procs:
                    p.start()
                results = [queue.get() for _ in procs]
                for p in procs:
                    p.join()
                rates[mode] = Timing(sum(r for r in results if r > 0), seconds)
            print(ratio_line(f"{writers} writers, commit fence", rates["fence"], rates["plain"],
                             "baseline: no ordering at all (unsafe)"))
            print(ratio_line(f"{writers} writers, counter row", rates["counter"], rates["plain"],
                             "baseline: no ordering at all (unsafe)"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv, extra_args)
    with temp_dir() as tmp:
        for section, run in (("a", bench_writes), ("b", bench_relays), ("c", bench_catch_up)):
            if section in args.sections:
                run(args, tmp)
    if args.order:
        if args.pg:
            bench_order(args)
        else:
            print("(d) skipped: give a PostgreSQL URL with --pg or SIYU_TEST_POSTGRES_URL")


if __name__ == "__main__":
    main()
