"""Refunds move the lifecycle stage back: repeat -> customer -> intent as counted orders drop."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import NotFound
from siyu.events import Event, LifecycleChanged, OrderLineInfo, OrderRecorded, OrderRefunded
from siyu.models.commerce import ProductRole
from siyu.services.lifecycle import next_stage
from siyu.testing import FakeClock, log_events

START = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def ws(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[siyu.Workspace]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'life.db'}"
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL (eval \"$(bash .ci/postgres.sh)\")")
        from siyu.testing.postgres import drop_schema, with_schema

        url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
        request.addfinalizer(lambda: drop_schema(url))
    with siyu.connect(url, clock=clock) as workspace:
        workspace.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
        yield workspace


def _recorded(order_id: int, user_id: int, at: datetime, total_fen: int = 9900) -> OrderRecorded:
    return OrderRecorded(at=at, order_id=order_id, user_id=user_id, total_fen=total_fen,
                         lines=(OrderLineInfo(sku="A", qty=1, paid_fen=total_fen, role="profit"),),
                         channel=None, paid_at=at)


def _refunded(order_id: int, user_id: int, at: datetime, *, full: bool, total_fen: int = 9900,
              refund_id: int = 1) -> OrderRefunded:
    amount = total_fen if full else total_fen // 2
    return OrderRefunded(at=at, order_id=order_id, refund_id=refund_id, user_id=user_id, amount_fen=amount,
                         order_total_fen=total_fen, full=full,
                         lines=(OrderLineInfo(sku="A", qty=1, paid_fen=amount, role="profit"),))


def _moves(ws: siyu.Workspace, uid: int) -> list[tuple[str | None, str, str]]:
    return [(c.from_stage, c.to_stage, c.reason) for c in ws.lifecycle.history(uid)]


def _buy(ws: siyu.Workspace, uid: int) -> int:
    return ws.orders.record(uid, [{"sku": "TEA", "qty": 1}]).id


def test_full_refunds_step_back_partial_refunds_do_not(ws: siyu.Workspace) -> None:
    seen: list[LifecycleChanged] = []
    ws.subscribe(lambda e: seen.append(e) if isinstance(e, LifecycleChanged) else None)
    u = ws.users.add().id
    first, second = _buy(ws, u), _buy(ws, u)
    assert ws.lifecycle.stage(u) == "repeat"
    ws.orders.refund(second, "30", key="part")
    assert ws.lifecycle.stage(u) == "repeat"  # a partial refund leaves the order counted
    ws.orders.refund(second, key="rest")  # the rest: now fully refunded
    assert ws.lifecycle.stage(u) == "customer"
    ws.orders.refund(first, key="all")
    assert ws.lifecycle.stage(u) == "intent"
    assert _moves(ws, u)[-2:] == [("repeat", "customer", f"refund:{second}"),
                                  ("customer", "intent", f"refund:{first}")]
    assert [(e.from_stage, e.to_stage, e.reason) for e in seen][-2:] == _moves(ws, u)[-2:]
    assert ws.tags.of(u) == {"lifecycle/intent"}
    assert ws.observer_errors == []
    # buying again counts from what is left: one counted order
    _buy(ws, u)
    assert ws.lifecycle.stage(u) == "customer"


def test_same_refund_delivered_twice_moves_once(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    log_events(ws, [_recorded(1, u, clock.now), _recorded(2, u, clock.now)])
    refund = _refunded(2, u, clock.now, full=True)
    log_events(ws, [refund])
    log_events(ws, [refund])
    log_events(ws, [refund, refund])
    assert ws.lifecycle.stage(u) == "customer"
    assert [m[2] for m in _moves(ws, u)] == ["order:1", "order:2", "refund:2"]
    log_events(ws, [_recorded(2, u, clock.now)])  # a late redelivery of the refunded order's record
    assert ws.lifecycle.stage(u) == "customer"
    assert ws.observer_errors == []


def test_record_and_refund_in_one_delivery(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b, c = ws.users.add_many([{}, {}, {}])
    log_events(ws, [
        _recorded(1, a, clock.now), _refunded(1, a, clock.now, full=True),
        _recorded(2, b, clock.now), _recorded(3, b, clock.now), _refunded(2, b, clock.now, full=True),
        _recorded(4, c, clock.now), _refunded(4, c, clock.now, full=False), _recorded(5, c, clock.now),
    ])
    assert [ws.lifecycle.stage(u) for u in (a, b, c)] == ["intent", "customer", "repeat"]
    assert _moves(ws, a) == [(None, "customer", "order:1"), ("customer", "intent", "refund:1")]
    assert _moves(ws, b) == [(None, "customer", "order:2"), ("customer", "repeat", "order:3"),
                             ("repeat", "customer", "refund:2")]


def test_orders_and_refunds_in_one_transaction(ws: siyu.Workspace) -> None:
    u = ws.users.add().id
    with ws.write():
        first, second = _buy(ws, u), _buy(ws, u)
        ws.orders.refund(first, key="r1")
    assert ws.lifecycle.stage(u) == "customer"
    assert [m[2] for m in _moves(ws, u)] == [f"order:{first}", f"order:{second}", f"refund:{first}"]


def test_away_stages_are_left_alone(ws: siyu.Workspace, clock: FakeClock) -> None:
    dormant, lost, recalled = ws.users.add_many([{}, {}, {}])
    orders = {u: _buy(ws, u) for u in (dormant, lost, recalled)}
    clock.advance(days=31)
    assert ws.lifecycle.sweep() == {"dormant": 3}
    ws.lifecycle.mark_lost(lost, "del_follow_user")
    ws.events.track(recalled, "page_view")
    for order in orders.values():
        ws.orders.refund(order, key=f"r{order}")
    assert [ws.lifecycle.stage(u) for u in (dormant, lost, recalled)] == ["dormant", "lost", "recalled"]
    assert not any(m[2].startswith("refund:") for u in orders for m in _moves(ws, u))
    # the refund still counted: the next order makes them a first-time customer again
    _buy(ws, recalled)
    assert ws.lifecycle.stage(recalled) == "customer"


def test_free_orders_stay_counted(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    log_events(ws, [_recorded(1, u, clock.now, total_fen=0)])
    log_events(ws, [_refunded(1, u, clock.now, full=True, total_fen=0)])
    assert ws.lifecycle.stage(u) == "customer"  # as in analytics and segments: a 0-yuan order stays counted


def test_record_refund_by_hand(ws: siyu.Workspace) -> None:
    u = ws.users.add().id
    ws.lifecycle.record_order(u, 500)
    ws.lifecycle.record_order(u, 501)
    assert ws.lifecycle.record_refund(u, 501) == "customer"
    assert ws.lifecycle.record_refund(u, 501) is None
    assert ws.lifecycle.record_refund(u, 500) == "intent"
    # a refund heard of before its order: the order, when it comes, is not counted
    assert ws.lifecycle.record_refund(u, 502) is None
    assert ws.lifecycle.record_order(u, 502) is None
    assert ws.lifecycle.stage(u) == "intent"
    with pytest.raises(NotFound):
        ws.lifecycle.record_refund(999, 1)


def test_refund_after_merge_counts_for_the_kept_user(ws: siyu.Workspace) -> None:
    keep, drop = ws.users.add_many([{}, {}])
    k1, d1 = _buy(ws, keep), _buy(ws, drop)
    merge = ws.users.merge(keep=keep, drop=drop)
    assert ws.lifecycle.stage(keep) == "customer"  # the kept user's stage stays on a merge
    ws.orders.refund(d1, key="d1")
    assert ws.lifecycle.stage(keep) == "customer"  # k1 still counts
    ws.orders.refund(k1, key="k1")
    assert ws.lifecycle.stage(keep) == "intent"
    assert _moves(ws, keep)[-1] == ("customer", "intent", f"refund:{k1}")
    ws.users.unmerge(merge.id)
    # the dropped user gets d1 back, refunded: no counted order backs their `customer` any more
    assert ws.lifecycle.stage(drop) == "intent"
    assert _moves(ws, drop)[-1] == ("customer", "intent", f"unmerge:{merge.id}")
    assert ws.lifecycle.stage(keep) == "intent"
    assert ws.observer_errors == []


def test_unmerge_takes_back_orders_that_held_up_repeat(ws: siyu.Workspace) -> None:
    keep, drop = ws.users.add_many([{}, {}])
    k1, _k2 = _buy(ws, keep), _buy(ws, keep)
    _buy(ws, drop)
    merge = ws.users.merge(keep=keep, drop=drop)
    ws.orders.refund(k1, key="k1")
    assert ws.lifecycle.stage(keep) == "repeat"  # k2 and the dropped user's order still count
    ws.users.unmerge(merge.id)
    assert ws.lifecycle.stage(keep) == "customer"  # only k2 is left
    assert ws.lifecycle.stage(drop) == "customer"
    ws.orders.refund(_k2, key="k2")
    assert ws.lifecycle.stage(keep) == "intent"


def test_upgrade_marks_orders_refunded_before_it(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "old.db"
    with siyu.connect(f"sqlite:///{path}", clock=clock) as ws:
        ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
        u = ws.users.add().id
        first, second = _buy(ws, u), _buy(ws, u)
        ws.orders.refund(second, key="r")
    with sqlite3.connect(path) as db:  # what a database of lifecycle schema v1 held
        db.execute("ALTER TABLE lifecycle_orders DROP COLUMN refunded_at")
        db.execute("UPDATE siyu_schema SET version = 1 WHERE component = 'lifecycle'")
    with siyu.connect(f"sqlite:///{path}", clock=clock) as ws:
        ws.orders.refund(first, key="r1")
        assert ws.lifecycle.stage(u) == "intent"  # second was refunded already: no order is left


def test_next_stage_refund_signals() -> None:
    assert next_stage("repeat", "refund") == "customer"
    assert next_stage("customer", "refund") is None
    assert next_stage("repeat", "last_refund") == "intent"
    assert next_stage("customer", "last_refund") == "intent"
    for stage in ("new", "interacted", "intent", "dormant", "lost", "recalled", None):
        assert next_stage(stage, "refund") is None and next_stage(stage, "last_refund") is None


# -- property: batching changes nothing, and the stage follows the counted orders -------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(0, 1), st.sampled_from([9900, 0])),
        st.tuples(st.just("refund"), st.integers(0, 9), st.booleans()),
        st.tuples(st.just("again"), st.integers(0, 30), st.just(0)),
    ),
    max_size=25,
)


def _events(ops: list[tuple[str, int, int]], users: list[int]) -> list[Event]:
    events: list[Event] = []
    orders: list[tuple[int, int, int]] = []  # (order id, user, total)
    done: set[int] = set()
    at = START
    for kind, a, b in ops:
        at += timedelta(minutes=1)
        if kind == "order":
            orders.append((len(orders) + 1, users[a], b))
            events.append(_recorded(len(orders), users[a], at, total_fen=b))
        elif kind == "refund" and orders:
            order, user, total = orders[a % len(orders)]
            if order in done:
                continue  # siyu takes no refund after a full one
            if b:
                done.add(order)
            events.append(_refunded(order, user, at, full=b, total_fen=total, refund_id=len(events)))
        elif kind == "again" and events:
            events.append(events[a % len(events)])  # a redelivery
    return events


def _expected(events: list[Event], user: int) -> str | None:
    counted: dict[int, bool] = {}
    for e in events:
        if isinstance(e, OrderRecorded) and e.user_id == user:
            counted.setdefault(e.order_id, True)
        elif isinstance(e, OrderRefunded) and e.user_id == user and e.full and e.order_total_fen > 0:
            counted[e.order_id] = False
    if not counted:
        return None
    n = sum(counted.values())
    return "repeat" if n >= 2 else "customer" if n == 1 else "intent"


@settings(max_examples=40, deadline=None)
@given(ops=_OPS, cuts=st.lists(st.integers(1, 6), min_size=1, max_size=10))
def test_batches_and_one_by_one_agree(ops: list[tuple[str, int, int]], cuts: list[int]) -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as one, \
            siyu.connect("memory://", clock=FakeClock(START)) as many:
        users = one.users.add_many([{}, {}])
        assert many.users.add_many([{}, {}]) == users
        events = _events(ops, users)
        for event in events:
            log_events(one, [event])
        rest, n = list(events), 0
        while rest:
            size = cuts[n % len(cuts)]
            log_events(many, rest[:size])
            rest, n = rest[size:], n + 1
        for u in users:
            assert one.lifecycle.stage(u) == many.lifecycle.stage(u) == _expected(events, u)
            assert one.lifecycle.history(u) == many.lifecycle.history(u)
        assert one.observer_errors == many.observer_errors == []


_SHOP_OPS = st.lists(
    st.one_of(st.tuples(st.just("order"), st.integers(0, 1)), st.tuples(st.sampled_from(["full", "half"]),
                                                                         st.integers(0, 9))),
    max_size=14,
)


def _run_shop(ws: siyu.Workspace, users: list[int], ops: list[tuple[str, int]], cuts: list[int]) -> None:
    """Orders through ``ws.orders``: consecutive orders go in one ``record_many``, and each
    group of ``cuts`` ops shares one transaction, so its events arrive as one delivery."""
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
    orders: list[int] = []
    rest, n = list(ops), 0
    while rest:
        size = cuts[n % len(cuts)]
        group, rest, n = rest[:size], rest[size:], n + 1
        with ws.write():
            pending: list[int] = []
            for i, (kind, arg) in enumerate(group):
                if kind == "order":
                    pending.append(users[arg])
                    if i + 1 < len(group) and group[i + 1][0] == "order":
                        continue
                    orders.extend(ws.orders.record_many([{"user_id": u, "lines": [{"sku": "TEA", "qty": 1}]}
                                                         for u in pending]))
                    pending = []
                elif orders:
                    oid = orders[arg % len(orders)]
                    order = ws.orders.get(oid)
                    if order.refunded_fen < order.total_fen:
                        ws.orders.refund(oid, None if kind == "full" else "50", key=f"{n}:{i}")


@settings(max_examples=25, deadline=None)
@given(ops=_SHOP_OPS, cuts=st.lists(st.integers(2, 6), min_size=1, max_size=5))
def test_shop_orders_one_by_one_or_batched(ops: list[tuple[str, int]], cuts: list[int]) -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as one, \
            siyu.connect("memory://", clock=FakeClock(START)) as many:
        users = one.users.add_many([{}, {}])
        assert many.users.add_many([{}, {}]) == users
        _run_shop(one, users, ops, [1])
        _run_shop(many, users, ops, cuts)
        for u in users:
            orders = one.orders.of(u)
            counted = sum(o.refunded_fen < o.total_fen for o in orders)
            expected = None if not orders else "repeat" if counted >= 2 else "customer" if counted else "intent"
            assert one.lifecycle.stage(u) == many.lifecycle.stage(u) == expected
            assert one.lifecycle.history(u) == many.lifecycle.history(u)
        assert one.observer_errors == many.observer_errors == []
