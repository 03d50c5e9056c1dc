"""One workspace shared by many threads, the way a web server's worker threads share it.

32 threads start together on a barrier and run a mix of writes (new users,
idempotent earns, a contested spend, a capped coupon, orders with a repeated
key, a transaction that fails half-way) and reads (balances, users, the
correlation of their own events). The final state is then checked exactly:
nothing lost, nothing doubled, nothing half-written, no thread's correlation
id leaking into another's events. On a SQLite file and on PostgreSQL.

And a forked child (gunicorn ``--preload``) refuses to use its parent's
workspace with a :class:`~siyu.errors.StorageError` that says what to do.
"""

from __future__ import annotations

import os
import threading
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import siyu
from siyu.errors import CapExceeded, InsufficientPoints, SiyuError, StorageError
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
THREADS = 32
EARNS = 5  # per thread, each also retried once with the same key
COUPON_CAP = 20  # fewer coupons than threads: 12 must be refused
SPENDABLE = 100  # the contested user's balance: ten spends of 10 succeed

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test")
    from siyu.testing.postgres import drop_schema, with_schema

    schema_url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    yield schema_url
    drop_schema(schema_url)


class Boom(Exception):
    """Raised inside a write block on purpose: everything in the block must roll back."""


def _setup(ws: siyu.Workspace) -> tuple[int, int]:
    ws.products.add("TEA-1", "Oolong tea", price="39.90", cost="12")
    ws.coupons.create("满30减5", amount="5", threshold="30", valid_days=30, total_limit=COUPON_CAP)
    spender = ws.users.add(phone="13900000001").id
    earner = ws.users.add(phone="13900000002").id
    ws.points.earn(spender, SPENDABLE, reason="seed", key="seed")
    return spender, earner


def _thread(ws: siyu.Workspace, index: int, spender: int, earner: int, barrier: threading.Barrier,
            outcomes: dict[int, dict[str, Any]]) -> None:
    mine: dict[str, Any] = {"spent": 0, "refused_spends": 0, "coupon": None, "reads": 0}
    try:
        barrier.wait(timeout=60)
        with ws.correlate(f"thread-{index}"):
            user = ws.users.add(phone=f"1380000{index:04d}", source="thread").id
            mine["user"] = user
            for k in range(EARNS):
                ws.points.earn(earner, 1, reason="visit", key=f"visit:{index}:{k}")
                ws.points.earn(earner, 1, reason="visit", key=f"visit:{index}:{k}")  # a retry: no second credit
                balance = ws.points.balance(spender)
                assert 0 <= balance <= SPENDABLE, balance
                assert ws.users.get(user).source == "thread"
                mine["reads"] += 2
            try:
                ws.points.spend(spender, 10, reason="redeem", key=f"spend:{index}")
                mine["spent"] += 10
            except InsufficientPoints:
                mine["refused_spends"] += 1
            try:
                [coupon] = ws.coupons.issue("满30减5", user)
                mine["coupon"] = coupon.code
            except CapExceeded:
                pass
            cart = [{"sku": "TEA-1", "qty": 1}]
            first = ws.orders.record(user, cart, coupon=mine["coupon"], key=f"order:{index}")
            again = ws.orders.record(user, cart, coupon=mine["coupon"], key=f"order:{index}")
            assert first.id == again.id
            mine["order"] = first.id
            with pytest.raises(Boom), ws.write():
                ws.points.earn(user, 7, reason="doomed", key=f"doomed:{index}")
                ws.tags.apply(user, "doomed")
                raise Boom
            assert not ws.in_transaction()
    except BaseException:
        mine["crash"] = traceback.format_exc()
        barrier.abort()
    outcomes[index] = mine


def _race(ws: siyu.Workspace) -> tuple[int, int, dict[int, dict[str, Any]]]:
    spender, earner = _setup(ws)
    barrier = threading.Barrier(THREADS)
    outcomes: dict[int, dict[str, Any]] = {}
    threads = [threading.Thread(target=_thread, args=(ws, i, spender, earner, barrier, outcomes))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    crashes = [o["crash"] for o in outcomes.values() if "crash" in o]
    assert not crashes, crashes[0]
    assert len(outcomes) == THREADS
    return spender, earner, outcomes


def test_32_threads_share_one_workspace(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        spender, earner, outcomes = _race(ws)
        results = list(outcomes.values())

        assert ws.users.count() == 2 + THREADS
        assert ws.points.balance(earner) == THREADS * EARNS
        assert len(ws.points.history(earner)) == THREADS * EARNS

        assert sum(r["spent"] for r in results) == SPENDABLE
        assert sum(r["refused_spends"] for r in results) == THREADS - SPENDABLE // 10
        assert ws.points.balance(spender) == 0

        coupons = [r["coupon"] for r in results if r["coupon"]]
        assert len(coupons) == COUPON_CAP == len(set(coupons))
        assert ws.coupons.template("满30减5").issued == COUPON_CAP

        for r in results:
            [order] = ws.orders.of(r["user"])
            assert order.id == r["order"]
            expected = Decimal("34.90") if r["coupon"] else Decimal("39.90")
            assert order.total == expected, (order, r)
            # The failed block left nothing: no points, no tag.
            assert ws.points.balance(r["user"]) == 0
            assert "doomed" not in ws.tags.of(r["user"])

        # The events each thread's own writes logged carry that thread's correlation id.
        owner = {r["user"]: index for index, r in outcomes.items()}
        direct = ws.event_log.read(types=["UserCreated", "CouponIssued", "OrderRecorded"], limit=100_000)
        assert len(direct) == 2 + THREADS + COUPON_CAP + THREADS
        for e in direct:
            if e.user_id in owner:
                assert e.correlation_id == f"thread-{owner[e.user_id]}", e


def test_a_forked_child_refuses_the_parents_workspace(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        user = ws.users.add(phone="13900000003").id
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what it saw through the pipe, never return into pytest
            code = 1
            try:
                try:
                    ws.points.balance(user)
                    message = "no error"
                except SiyuError as exc:
                    message = f"{type(exc).__name__}: {exc}"
                ws.close()  # must not close the parent's connections
                os.write(write, message.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        message = os.read(read, 4096).decode()
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0, message
        assert message.startswith(f"{StorageError.__name__}: "), message
        assert "fork" in message and "siyu.connect()" in message and "post_fork" in message
        # The parent's workspace still works after the child closed its copy.
        ws.points.earn(user, 5, reason="after fork", key="after-fork")
        assert ws.points.balance(user) == 5
