"""拼团 group buys: joins, leaves, completion, expiry with refunds, concurrency."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import siyu
from fission_fixtures import *  # noqa: F403 (the clock and ws fixtures)
from fission_fixtures import START
from siyu.errors import AlreadyJoined, GroupBuyClosed, GroupBuyFull, NotFound, SiyuError, ValidationError
from siyu.events import Event, GroupBuyCompleted, GroupBuyFailed
from siyu.testing import FakeClock


@pytest.fixture
def ws(clock: FakeClock) -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=clock) as workspace:
        workspace.products.add("TEA", "tea", price="39.90", cost="0.50", role="activity")
        yield workspace


def test_open_join_complete(ws: siyu.Workspace) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    leader, b, c, d = ws.users.add_many([{}, {}, {}, {}])
    group = ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="19.90")
    assert (group.slots_left, group.price, group.status) == (2, Decimal("19.90"), "open")
    ws.referrals.group_buys.join(group.id, b)
    with pytest.raises(AlreadyJoined):
        ws.referrals.group_buys.join(group.id, b)
    done = ws.referrals.group_buys.join(group.id, c)
    assert done.status == "completed" and [m.user_id for m in done.members] == [leader, b, c]
    with pytest.raises(GroupBuyFull):
        ws.referrals.group_buys.join(group.id, d)
    assert ws.referrals.group_buys.get(group.id).members == done.members
    [completed] = [e for e in seen if isinstance(e, GroupBuyCompleted)]
    assert completed.member_ids == (leader, b, c)
    assert [g.id for g in ws.referrals.group_buys.of_user(b, status="completed")] == [group.id]


def test_bad_input(ws: siyu.Workspace) -> None:
    (leader,) = ws.users.add_many([{}])
    with pytest.raises(ValidationError):
        ws.referrals.group_buys.open(leader, sku="TEA", size=1, price="1")
    with pytest.raises(ValidationError):
        ws.referrals.group_buys.open(leader, sku="TEA", size=3, price=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="1", expires_in=timedelta(0))
    with pytest.raises(NotFound):
        ws.referrals.group_buys.join(99, leader)
    group = ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="1")
    with pytest.raises(ValidationError, match="leads"):
        ws.referrals.group_buys.leave(group.id, leader)
    with pytest.raises(NotFound):
        ws.referrals.group_buys.leave(group.id, 5)


def test_leave_frees_the_slot(ws: siyu.Workspace) -> None:
    leader, b, c = ws.users.add_many([{}, {}, {}])
    group = ws.referrals.group_buys.open(leader, sku="TEA", size=2, price="5")
    ws.referrals.group_buys.join(group.id, b, order_id=None)
    assert ws.referrals.group_buys.get(group.id).status == "completed"
    group2 = ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="5")
    ws.referrals.group_buys.join(group2.id, b)
    ws.referrals.group_buys.leave(group2.id, b)
    ws.referrals.group_buys.join(group2.id, c)
    ws.referrals.group_buys.join(group2.id, b)
    assert ws.referrals.group_buys.get(group2.id).status == "completed"


def test_expiry_fails_the_group_and_refunds_real_orders(ws: siyu.Workspace, clock: FakeClock) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    ws.products.add("TEA", "tea", price="39.90", cost="10", role="activity")
    leader, b, c = ws.users.add_many([{}, {}, {}])
    lead_order = ws.orders.record(leader, [{"sku": "TEA", "qty": 1, "unit_price": "19.90"}])
    b_order = ws.orders.record(b, [{"sku": "TEA", "qty": 1, "unit_price": "19.90"}])
    group = ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="19.90", expires_in=timedelta(hours=24),
                                         order_id=lead_order.id)
    ws.referrals.group_buys.join(group.id, b, order_id=b_order.id)
    assert ws.referrals.group_buys.expire_due() == []
    clock.advance(hours=24)
    with pytest.raises(GroupBuyClosed, match="expired"):
        ws.referrals.group_buys.join(group.id, c)
    [failed] = ws.referrals.group_buys.expire_due()
    assert failed.status == "failed" and ws.referrals.group_buys.expire_due() == []
    [event] = [e for e in seen if isinstance(e, GroupBuyFailed)]
    assert [(r.user_id, r.order_id, r.amount_fen) for r in event.refunds] == [
        (leader, lead_order.id, 1990), (b, b_order.id, 1990)]
    assert len(ws.orders.refunds(lead_order.id)) == 1 and len(ws.orders.refunds(b_order.id)) == 1
    with pytest.raises(GroupBuyClosed):
        ws.referrals.group_buys.join(group.id, c)


def _join_worker(url: str, group_id: int, user_id: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        try:
            ws.referrals.group_buys.join(group_id, user_id)
            queue.put("joined")
        except GroupBuyFull:
            queue.put("full")
        except SiyuError as exc:
            queue.put(repr(exc))


def test_concurrent_joins_from_processes_never_overfill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.products.add("TEA", "tea", price="39.90", cost="0.50", role="activity")
        leader, *joiners = ws.users.add_many([{} for _ in range(6)])
        group = ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="9.90")
    # fork is much faster to start than spawn; the parent holds no open connection at this point.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_join_worker, args=(url, group.id, uid, queue)) for uid in joiners]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(queue.get(timeout=5) for _ in procs)
    assert outcomes == ["full"] * 3 + ["joined"] * 2
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        final = ws.referrals.group_buys.get(group.id)
        assert len(final.members) == 3 and final.status == "completed"


def test_joining_through_the_leaders_share_binds_new_users(ws: siyu.Workspace) -> None:
    leader, fresh, customer = ws.users.add_many([{}, {}, {}])
    ws.tags.apply(customer, "lifecycle/customer")
    group = ws.referrals.group_buys.open(leader, sku="TEA", size=3, price="5")
    ws.referrals.group_buys.join(group.id, fresh, bind_to_leader=True)
    done = ws.referrals.group_buys.join(group.id, customer, bind_to_leader=True)
    assert done.status == "completed"
    binding = ws.referrals.binding(fresh)
    assert binding is not None and (binding.inviter_id, binding.campaign, binding.channel_state) == (
        leader, "group_buy", f"group:{group.id}")
    assert ws.referrals.binding(customer) is None  # an existing customer joins, but is not bound
