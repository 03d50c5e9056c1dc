"""User merges and the fission tools: commissions, 任务宝 grants, 拼团 slots and
fraud holds follow ``drop`` to ``keep``, and ``unmerge`` puts them back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from fission_fixtures import START, guards_off
from siyu.events import OrderLineInfo, OrderRecorded, OrderRefunded
from siyu.models.referrals import Reward
from siyu.testing import FakeClock


@pytest.fixture
def ws() -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=FakeClock(START)) as workspace:
        yield guards_off(workspace)


def order(ws: siyu.Workspace, order_id: int, user_id: int, fen: int) -> OrderRecorded:
    event = OrderRecorded(at=ws.now(), order_id=order_id, user_id=user_id, total_fen=fen,
                          lines=(OrderLineInfo(sku="s", qty=1, paid_fen=fen, role="profit"),), channel=None,
                          paid_at=ws.now())
    ws.referrals.siyu_on_event(event)
    return event


def refund(ws: siyu.Workspace, event: OrderRecorded, refund_id: int, fen: int) -> None:
    ws.referrals.siyu_on_event(OrderRefunded(
        at=ws.now(), order_id=event.order_id, refund_id=refund_id, user_id=event.user_id, amount_fen=fen,
        order_total_fen=event.total_fen, lines=(), full=fen >= event.total_fen))


def test_commissions_follow_the_distributor_and_the_buyer(ws: siyu.Workspace) -> None:
    root, keep, drop, buyer = ws.users.add_many([{}, {}, {}, {}])
    ws.referrals.bind(drop, inviter_id=root)
    ws.referrals.bind(buyer, inviter_id=drop)
    order(ws, 1, buyer, 10_000)  # drop earns level 1, root level 2
    order(ws, 2, drop, 5_000)  # root earns level 1 on drop's own order
    record = ws.users.merge(keep=keep, drop=drop)
    assert [(e.order_id, e.level) for e in ws.referrals.commissions.ledger(keep)] == [(1, 1)]
    assert ws.referrals.commissions.ledger(drop) == []
    assert ws.referrals.commissions.balance(keep)["pending"] == Decimal("10.00")
    assert [e.buyer_id for e in ws.referrals.commissions.of_order(2)] == [keep]
    ws.users.unmerge(record.id)
    assert [(e.order_id, e.level) for e in ws.referrals.commissions.ledger(drop)] == [(1, 1)]
    assert ws.referrals.commissions.ledger(keep) == []
    assert [e.buyer_id for e in ws.referrals.commissions.of_order(2)] == [drop]


def test_task_grants_follow_without_paying_a_stage_twice(ws: siyu.Workspace) -> None:
    keep, drop = ws.users.add_many([{}, {}])
    task = ws.referrals.tasks.create("t", campaign="c", deadline=START + timedelta(days=7),
                                     stages=[(1, Reward.of_points(10)), (2, Reward.of_points(20)),
                                             (4, Reward.of_points(40))])
    for inviter, n in ((keep, 1), (drop, 2)):
        code = ws.referrals.invite_code(inviter, campaign="c")
        for uid in ws.users.add_many([{} for _ in range(n)]):
            ws.referrals.bind(uid, code)
    assert [g.stage for g in ws.referrals.tasks.grants(task.id, user_id=drop)] == [1, 2]
    record = ws.users.merge(keep=keep, drop=drop)
    # keep already had stage 1: drop's stage 1 stays on the merged-away record, stage 2 moves
    assert sorted(g.stage for g in ws.referrals.tasks.grants(task.id, user_id=keep)) == [1, 2]
    assert [g.stage for g in ws.referrals.tasks.grants(task.id, user_id=drop)] == [1]
    progress = ws.referrals.tasks.progress(task.id, keep)
    assert (progress.valid, progress.reached, progress.granted) == (3, (1, 2), (1, 2))
    assert ws.referrals.tasks.evaluate(task.id) == []  # nothing is paid twice
    ws.users.unmerge(record.id)
    assert [g.stage for g in ws.referrals.tasks.grants(task.id, user_id=keep)] == [1]
    assert [g.stage for g in ws.referrals.tasks.grants(task.id, user_id=drop)] == [1, 2]
    assert ws.referrals.tasks.progress(task.id, drop).granted == (1, 2)


def test_group_slots_follow_unless_keep_holds_one_in_the_same_group(ws: siyu.Workspace) -> None:
    keep, drop, other = ws.users.add_many([{}, {}, {}])
    ws.products.add("TEA", "Oolong", price="9.90", cost="5", role="activity")
    led = ws.referrals.group_buys.open(drop, sku="TEA", size=3, price="9.90")
    shared = ws.referrals.group_buys.open(other, sku="TEA", size=4, price="9.90")
    ws.referrals.group_buys.join(shared.id, keep)
    ws.referrals.group_buys.join(shared.id, drop)
    record = ws.users.merge(keep=keep, drop=drop)
    moved = ws.referrals.group_buys.get(led.id)
    assert moved.leader_id == keep and [m.user_id for m in moved.members] == [keep]
    assert [g.id for g in ws.referrals.group_buys.of_user(keep)] == [led.id, shared.id]
    assert sorted(m.user_id for m in ws.referrals.group_buys.get(shared.id).members) == sorted([other, keep, drop])
    ws.referrals.group_buys.join(led.id, other)  # the group keeps working under keep
    ws.users.unmerge(record.id)
    back = ws.referrals.group_buys.get(led.id)
    assert back.leader_id == drop and [m.user_id for m in back.members] == [drop, other]
    assert [g.id for g in ws.referrals.group_buys.of_user(keep)] == [shared.id]


def test_a_held_binding_taken_over_by_keep_can_still_be_released(ws: siyu.Workspace) -> None:
    ws.referrals.fraud.configure(shared_device=2)
    root, keep, drop, first = ws.users.add_many([{}, {}, {}, {}])
    ws.referrals.bind(first, inviter_id=root, device="dev-1")
    ws.referrals.bind(drop, inviter_id=root, device="dev-1")
    [hold] = ws.referrals.fraud.held("binding")
    assert hold.subject_id == drop
    record = ws.users.merge(keep=keep, drop=drop)
    assert ws.referrals.binding(keep).status == "held"  # type: ignore[union-attr]
    assert ws.referrals.fraud.held("binding")[0].subject_id == keep
    ws.users.unmerge(record.id)
    assert ws.referrals.fraud.held("binding")[0].subject_id == drop
    record = ws.users.merge(keep=keep, drop=drop)
    ws.referrals.fraud.release(hold.id)
    assert ws.referrals.binding(keep).status == "active"  # type: ignore[union-attr]
    ws.users.unmerge(record.id)
    assert ws.referrals.binding(drop).status == "active"  # type: ignore[union-attr]  # the review stands
    ws.referrals.bind(first, inviter_id=root)
    ws.referrals.unbind(drop, reason="t")
    ws.referrals.bind(drop, inviter_id=root, device="dev-1")
    [hold] = ws.referrals.fraud.held("binding")
    record = ws.users.merge(keep=keep, drop=drop)
    ws.referrals.fraud.reject(hold.id)
    ws.users.unmerge(record.id)
    assert ws.referrals.binding(drop) is None and ws.referrals.binding(keep) is None


def test_a_buy_by_the_merged_away_account_counts_for_purchase_tasks(ws: siyu.Workspace) -> None:
    from siyu.models.referrals import ValidInvite

    inviter, keep, drop = ws.users.add_many([{}, {}, {}])
    task = ws.referrals.tasks.create("t", campaign="c", deadline=START + timedelta(days=7),
                                     stages=[(1, Reward.of_points(10))], valid=ValidInvite(purchase=True))
    ws.referrals.bind(keep, ws.referrals.invite_code(inviter, campaign="c"))
    order(ws, 1, drop, 3_000)  # the same person, logged in on another account, bought
    assert ws.referrals.tasks.progress(task.id, inviter).valid == 0
    record = ws.users.merge(keep=keep, drop=drop)
    assert ws.referrals.tasks.progress(task.id, inviter).valid == 1
    ws.users.unmerge(record.id)
    assert ws.referrals.tasks.progress(task.id, inviter).valid == 0


# -- property: merge then unmerge changes no fission answer --------------------------------------------------

N = 6


def _snapshot(ws: siyu.Workspace, task_id: int, orders: list[int], groups: list[int]) -> dict[str, Any]:
    r = ws.referrals
    users = range(1, N + 1)
    return {
        "ledger": [r.commissions.ledger(u) for u in users],
        "balance": [r.commissions.balance(u) for u in users],
        "of_order": [r.commissions.of_order(o) for o in orders],
        "progress": [r.tasks.progress(task_id, u) for u in users],
        "grants": r.tasks.grants(task_id),
        "task_board": r.tasks.leaderboard(task_id),
        "groups": [r.group_buys.get(g) for g in groups],
        "of_user": [r.group_buys.of_user(u) for u in users],
        "bindings": [r.binding(u) for u in users],
        "holds": r.fraud.holds(),
        "stats": r.stats(),
        "board": r.leaderboard(),
    }


_step = st.one_of(
    st.tuples(st.just("bind"), st.integers(1, N), st.integers(1, N)),
    st.tuples(st.just("order"), st.integers(1, N), st.integers(100, 50_000)),
    st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 50_000)),
    st.tuples(st.just("open"), st.integers(1, N), st.integers(2, 4)),
    st.tuples(st.just("join"), st.integers(0, 4), st.integers(1, N)),
    st.tuples(st.just("evaluate"), st.just(0), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(inviters=st.lists(st.integers(0, N), min_size=N, max_size=N), steps=st.lists(_step, max_size=30),
       keep=st.integers(1, N), drop=st.integers(1, N), device=st.booleans())
def test_merge_then_unmerge_restores_every_fission_answer(inviters: list[int], steps: list[tuple[str, int, int]],
                                                          keep: int, drop: int, device: bool) -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        ws.referrals.fraud.configure(burst=(2, timedelta(hours=1)), phone_prefix=None,
                                     shared_device=2 if device else None, leave_after_reward=None)
        ws.users.add_many([{} for _ in range(N)])
        ws.products.add("TEA", "Oolong", price="9.90", cost="0.50", role="activity")  # 拼团 at 1.00 passes the guard
        task = ws.referrals.tasks.create("t", campaign="c", deadline=START + timedelta(days=7),
                                         stages=[(1, Reward.of_points(10)), (2, Reward.of_points(20))])
        orders: list[OrderRecorded] = []
        groups: list[int] = []
        refund_id = 0
        # a random forest first (user u invited by an earlier user, or by nobody), so there is much to move
        binds = [("bind", u, inviters[u - 1] % u) for u in range(2, N + 1) if inviters[u - 1] % u]
        for op, x, y in [*binds, *steps]:
            try:
                if op == "bind":
                    ws.referrals.bind(x, ws.referrals.invite_code(y, campaign="c"), device="d")
                elif op == "order":
                    orders.append(order(ws, len(orders) + 1, x, y))
                elif op == "refund" and orders:
                    event = orders[x % len(orders)]
                    refund_id += 1
                    refund(ws, event, refund_id, min(y, event.total_fen))
                elif op == "open":
                    groups.append(ws.referrals.group_buys.open(x, sku="TEA", size=y, price="1").id)
                elif op == "join" and groups:
                    ws.referrals.group_buys.join(groups[x % len(groups)], y)
                elif op == "evaluate":
                    ws.referrals.tasks.evaluate()
            except siyu.errors.SiyuError:
                pass
        order_ids = [o.order_id for o in orders]
        before = _snapshot(ws, task.id, order_ids, groups)
        if keep == drop:
            return
        record = ws.users.merge(keep=keep, drop=drop)
        assert ws.referrals.commissions.ledger(drop) == []
        assert ws.referrals.group_buys.of_user(drop) == [
            g for g in before["of_user"][drop - 1] if any(m.user_id == keep for m in g.members)]
        keep_stages = {(g.task_id, g.stage) for g in ws.referrals.tasks.grants(user_id=keep)}
        assert len(keep_stages) == len(ws.referrals.tasks.grants(user_id=keep))  # one grant per stage
        ws.users.unmerge(record.id)
        assert _snapshot(ws, task.id, order_ids, groups) == before


def test_an_invitee_binding_released_while_its_inviter_was_merged_stays_released_after_unmerge() -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as shop:
        shop.referrals.fraud.configure(burst=None, phone_prefix=None, leave_after_reward=None, shared_device=2)
        keep, drop, first, second = shop.users.add_many([{}, {}, {}, {}])
        shop.referrals.bind(first, inviter_id=drop, device="dev-1")
        shop.referrals.bind(second, inviter_id=drop, device="dev-1")  # the same device again: held
        [hold] = shop.referrals.fraud.held("binding")
        merge = shop.users.merge(keep=keep, drop=drop)
        shop.referrals.fraud.release(hold.id)
        shop.users.unmerge(merge.id)
        binding = shop.referrals.binding(second)
        assert binding is not None and (binding.inviter_id, binding.status) == (drop, "active")
        assert shop.referrals.fraud.held("binding") == []
