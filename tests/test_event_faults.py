"""kill -9 at random points of write -> consumers -> relay, on SQLite and PostgreSQL; several
workers and writers on one PostgreSQL database.

A shop script (orders through a referral chain, refunds, tracked events, a tag that triggers
a welcome message, a rule-based tag) runs in a child process that is killed with SIGKILL
at random moments, restarted each time (every call is idempotent, so a rerun picks up where
the dead one stopped), then run to the end. Afterwards every derived effect must equal one
clean run's, and the NATS stream must hold every logged event exactly once.

``SIYU_FAULT_KILLS`` sets the number of kills (default 12; run 50+ by hand:
``SIYU_FAULT_KILLS=60 pytest tests/test_event_faults.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import siyu
from siyu.campaigns import Trigger
from siyu.eventlog.relay import LEASE_SECONDS
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
KILLS = int(os.environ.get("SIYU_FAULT_KILLS", "12"))
USERS = 12
OPS = 36
NATS_URL = "nats://127.0.0.1:4222"


def _nats_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
        return True
    except OSError:
        return False


def _fresh(request: pytest.FixtureRequest, backend: str, tmp_path: Path, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'{name}.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test")
    from siyu.testing.postgres import drop_schema, with_schema

    url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    yield url
    drop_schema(url)


def setup_shop(url: str) -> None:
    """The same starting point for both runs: products, a referral chain, a welcome campaign, a rule."""
    with siyu.connect(url) as ws:
        ws.products.add("TEA", "tea", price="100", cost="30", role="profit")
        ids = ws.users.add_many([{"phone": f"1380013{n:04d}"} for n in range(USERS)])
        for inviter, invitee in itertools.pairwise(ids):
            ws.referrals.bind(invitee, inviter_id=inviter)
        ws.campaigns.create("welcome", channel="outbox", template="欢迎", purpose="transactional",
                            trigger=Trigger(event="TagApplied", where={"tag": "default/joined"}))
        ws.tags.define("value/buyer")
        ws.tags.rules.add("value/buyer", "orders >= 2")


def _relay_to(stream: str | None) -> list[object]:
    if stream is None:
        return []
    from siyu.eventlog.sinks.nats import NatsSink

    sink = NatsSink(NATS_URL, stream=stream, subject_prefix=stream.lower())

    class Relay:
        @siyu.hookimpl
        def siyu_register_event_sinks(self, register: Any) -> None:
            register(sink)

    return [Relay()]


def shop_script(url: str, stream: str | None) -> None:
    """What the shop does; every call is idempotent, so running it again after a crash is safe."""
    with siyu.connect(url, plugins=_relay_to(stream)) as ws:
        ids = sorted(ws.users.ids())
        for i in range(OPS):
            uid = ids[(i * 5) % USERS]
            ws.tags.apply(uid, "joined")  # the first time: a welcome message
            order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1 + i % 2}], key=f"o{i}")
            if i % 4 == 3:
                ws.orders.refund(order.id, key=f"r{i}")
            ws.events.track(uid, "page_view" if i % 3 else "added_to_cart", key=f"e{i}")
        ws.event_log.relay()


def finish(url: str, stream: str | None) -> None:
    """After the last crash: what a worker or `siyu run-due` would do."""
    shop_script(url, stream)
    with siyu.connect(url) as ws:
        ws.campaigns.run_due()  # triggered sends queued by a transaction that committed just before a kill
        ws.event_log.deliver()
    if stream is not None:
        # A relay killed mid-pass keeps its sink until its lease runs out; a worker would wait
        # for that, the test moves its clock past it.
        later = FakeClock(datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS + 1))
        with siyu.connect(url, plugins=_relay_to(stream), delivery="worker", clock=later) as ws:
            ws.event_log.relay()
            assert {c.name: c.lag for c in ws.event_log.consumers()}["nats"] == 0


def effects(url: str) -> dict[str, Any]:
    """Everything the consumers derive, independent of ids that sequences hand out."""
    with siyu.connect(url, delivery="worker") as ws:
        users = sorted(ws.users.ids())
        status = ws.event_log.consumers()
        return {
            "lag": {c.name: c.lag for c in status if c.kind == "handler"},
            "errors": [c.error for c in status if c.error],
            "commissions": sorted(Counter(
                (e.distributor_id, e.level, str(e.amount), e.status)
                for uid in users for e in ws.referrals.commissions.ledger(uid)
            ).items()),
            "stages": [ws.lifecycle.stage(uid) for uid in users],
            "histories": [[(c.from_stage, c.to_stage) for c in ws.lifecycle.history(uid)] for uid in users],
            "tags": [sorted(ws.tags.of(uid)) for uid in users],
            "welcome": sorted((d.user_id, d.status) for d in ws.campaigns.deliveries("welcome")),
            "outbox": ws.channels.get("outbox").count(),
            "points": [ws.points.balance(uid) for uid in users],
        }


async def _stream_ids(stream: str) -> list[str]:
    import json

    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{stream.lower()}.>", stream=stream)
        ids: list[str] = []
        while True:
            try:
                batch = await sub.fetch(1000, timeout=1)
            except Exception:
                break
            for m in batch:
                ids.append(json.loads(m.data)["id"])
                await m.ack()
        await js.delete_stream(stream)
        return ids
    finally:
        await nc.close()


def _logged_ids(url: str, after: int) -> list[str]:
    with siyu.connect(url, delivery="worker") as ws:
        source = ws.event_log._relay.source_id()
        return [f"{source}-{e.position}" for e in ws.event_log.read(after=after, limit=100_000)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_anywhere_leaves_the_effects_of_one_clean_run(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if not _nats_up() and not os.environ.get("CI"):
        pytest.skip("needs NATS with JetStream on 127.0.0.1:4222 (CI machines run it)")
    killed_gen, clean_gen = _fresh(request, backend, tmp_path, "killed"), _fresh(request, backend, tmp_path, "clean")
    killed, clean = next(killed_gen), next(clean_gen)
    try:
        tag = uuid.uuid4().hex[:8].upper()
        stream = f"FAULT{tag}"
        context = multiprocessing.get_context("spawn")
        setup_shop(clean)
        # Kill moments spread over one clean run's length, measured here: machines differ several-fold.
        started = time.monotonic()
        clean_run = context.Process(target=shop_script, args=(clean, None))
        clean_run.start()
        clean_run.join()
        span = time.monotonic() - started
        assert clean_run.exitcode == 0
        finish(clean, None)
        setup_shop(killed)
        with siyu.connect(killed) as ws:
            relayed_from = ws.event_log.head()  # the relay joins with the first script run
        rng = random.Random(tag)
        kills = 0
        for _ in range(KILLS * 6):
            child = context.Process(target=shop_script, args=(killed, stream))
            child.start()
            time.sleep(rng.uniform(0.1, 1.0) * span)
            if child.exitcode is None:
                os.kill(child.pid, signal.SIGKILL)
                kills += 1
            child.join()
            if kills >= KILLS:
                break
        assert kills >= KILLS, f"only {kills} kills landed: the script finished too quickly"
        finish(killed, stream)
        expected, got = effects(clean), effects(killed)
        assert got == expected
        assert set(got["lag"].values()) == {0} and got["errors"] == []
        assert expected["welcome"] == [(uid, "sent") for uid in range(1, USERS + 1)]  # everyone welcomed, once
        in_stream = asyncio.run(_stream_ids(stream))
        assert sorted(in_stream) == sorted(_logged_ids(killed, relayed_from))  # every event, exactly once
        assert len(in_stream) == len(set(in_stream))
    finally:
        for gen in (killed_gen, clean_gen):
            for _ in gen:
                pass


# -- two workers and three web processes on one PostgreSQL database ------------------------------------------
SEEN_PLUGIN = '''
import os
import siyu


@siyu.hookimpl
def siyu_on_events(events, workspace):
    """Writes one row per event it handles, in the delivery's transaction: a second effect
    of one event would show as a second row."""
    with workspace.write() as tx:
        tx.executemany("INSERT INTO seen_events (event_key, pid) VALUES (?, ?)",
                       [(repr(e), os.getpid()) for e in events])
'''


def _writer(url: str, index: int, orders: int) -> None:
    with siyu.connect(url, delivery="worker") as ws:
        ids = sorted(ws.users.ids())
        for n in range(orders):
            uid = ids[(index * 7 + n) % len(ids)]
            ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key=f"w{index}:{n}")


@pytest.mark.slow
def test_two_workers_and_three_writers_handle_every_event_once(tmp_path: Path) -> None:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test")
    from siyu.testing.postgres import drop_schema, with_schema

    url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    (tmp_path / "seen_plugin.py").write_text(textwrap.dedent(SEEN_PLUGIN))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
           "SIYU_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        setup_shop(url)
        with siyu.connect(url, delivery="worker") as ws:
            with ws.write() as tx:
                tx.execute("CREATE TABLE seen_events (id BIGSERIAL PRIMARY KEY, event_key TEXT, pid BIGINT)")
            start = ws.event_log.head()  # the plugin's consumer starts here: the setup was delivered inline
        workers = [
            subprocess.Popen([sys.executable, "-c", "from siyu.cli import main; main()", "--db", url,
                              "--plugin", "seen_plugin", "worker", "--poll", "0.05", "--idle-exit", "4", "--no-jobs"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        context = multiprocessing.get_context("spawn")
        writers = [context.Process(target=_writer, args=(url, i, 25)) for i in range(3)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(300)
            assert w.exitcode == 0
        for p in workers:
            _out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
        with siyu.connect(url, delivery="worker") as ws:
            status = {c.name: c for c in ws.event_log.consumers()}
            assert all(c.lag == 0 and c.error is None for c in status.values()), status
            logged = ws.event_log.read(after=start, limit=100_000)
            with ws.read() as tx:
                rows = tx.execute("SELECT event_key, pid FROM seen_events").fetchall()
            orders = [e for e in logged if e.type == "OrderRecorded"]
            assert len(orders) == 75
            # Every event handled by the plugin exactly once: none twice, none skipped.
            assert Counter(r[0] for r in rows) == Counter(repr(e.event()) for e in logged)
            assert len({r[1] for r in rows}) >= 1
            # Commissions: one per order and level, for buyers with an inviter (two levels).
            users = sorted(ws.users.ids())
            entries = [e for uid in users for e in ws.referrals.commissions.ledger(uid)]
            assert len({(e.order_id, e.level) for e in entries}) == len(entries)
            assert len(entries) == sum(min(users.index(o.data["user_id"]), 2) for o in orders)
    finally:
        drop_schema(url)
