"""任务宝 invite tasks: stages, validity, deductions, exactly-once rewards, fraud holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from fission_fixtures import *  # noqa: F403 (the clock and ws fixtures)
from fission_fixtures import START, guards_off
from siyu.errors import Conflict, NotFound, ValidationError
from siyu.events import Event, InviteRewardIssued, ReferralHeld
from siyu.models.referrals import Reward, Stage, ValidInvite
from siyu.testing import FakeClock


@pytest.fixture
def ws(clock: FakeClock) -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=clock) as workspace:
        yield guards_off(workspace)


def invite(ws: siyu.Workspace, code: str, n: int, **fields: object) -> list[int]:
    ids = ws.users.add_many([dict(fields) for _ in range(n)])
    for uid in ids:
        ws.referrals.bind(uid, code)
    return ids


def test_create_validates(ws: siyu.Workspace, clock: FakeClock) -> None:
    deadline = START + timedelta(days=7)
    with pytest.raises(ValidationError, match="rising"):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, Reward.of_points(1)), (3, Reward.of_points(2))],
                                  deadline=deadline)
    with pytest.raises(ValidationError, match="at least one stage"):
        ws.referrals.tasks.create("t", campaign="c", stages=[], deadline=deadline)
    with pytest.raises(ValidationError, match="Reward"):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, 100)], deadline=deadline)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="deadline"):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, Reward.of_points(1))], deadline=START)
    with pytest.raises(ValidationError, match="identity"):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, Reward.of_points(1))], deadline=deadline,
                                  valid=ValidInvite(identity="qq"))
    with pytest.raises(NotFound):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, Reward.of_product("nope"))], deadline=deadline)
    ws.products.add("MUG", "mug", price="39", cost="10", role="profit")
    with pytest.raises(ValidationError, match="fission"):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, Reward.of_product("MUG"))], deadline=deadline)
    ws.referrals.tasks.create("t", campaign="c", stages=[Stage(invites=3, reward=Reward.of_points(1))],
                              deadline=deadline)
    with pytest.raises(Conflict):
        ws.referrals.tasks.create("t", campaign="c", stages=[(3, Reward.of_points(1))], deadline=deadline)
    with pytest.raises(NotFound):
        ws.referrals.tasks.get("missing")
    assert [t.name for t in ws.referrals.tasks.all()] == ["t"]


def test_stages_pay_once_each_as_invites_arrive(ws: siyu.Workspace, clock: FakeClock) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    ws.products.add("GIFT", "gift box", price="0", cost="0", role="fission")
    alice = ws.users.add().id
    task = ws.referrals.tasks.create(
        "spring-task", campaign="spring", deadline=START + timedelta(days=7),
        stages=[(3, Reward.of_points(100)), (5, Reward.of_product("GIFT"))])
    code = ws.referrals.invite_code(alice, campaign="spring", channel_state="poster_a")
    invite(ws, code, 2)
    assert ws.points.balance(alice) == 0
    invite(ws, code, 1)
    assert ws.points.balance(alice) == 100
    progress = ws.referrals.tasks.progress(task.id, alice)
    assert (progress.valid, progress.reached, progress.granted, progress.next_stage_needs) == (3, (1,), (1,), 2)
    invite(ws, code, 4)
    assert ws.points.balance(alice) == 100
    assert [(g.stage, g.status, g.reward.kind) for g in ws.referrals.tasks.grants("spring-task")] == [
        (1, "issued", "points"), (2, "issued", "product")]
    # the same progress event twice, and a full re-run: nothing more
    ws.referrals.tasks.evaluate()
    ws.referrals.tasks.evaluate(task.id, user_id=alice)
    assert ws.points.balance(alice) == 100
    issued = [e for e in seen if isinstance(e, InviteRewardIssued)]
    assert [(e.stage, e.kind, e.sku) for e in issued] == [(1, "points", None), (2, "product", "GIFT")]
    assert ws.referrals.tasks.leaderboard(task.id) == [(alice, 7)]


def test_only_campaign_invites_inside_the_window_count(ws: siyu.Workspace, clock: FakeClock) -> None:
    alice = ws.users.add().id
    task = ws.referrals.tasks.create("t", campaign="spring", stages=[(2, Reward.of_points(10))],
                                     starts_at=START + timedelta(days=1), deadline=START + timedelta(days=3))
    spring = ws.referrals.invite_code(alice, campaign="spring")
    other = ws.referrals.invite_code(alice, campaign="other")
    invite(ws, spring, 1)  # before the start
    clock.advance(days=1)
    invite(ws, other, 3)  # wrong campaign
    invite(ws, spring, 1)
    assert ws.referrals.tasks.progress(task.id, alice).valid == 1
    clock.advance(days=3)
    invite(ws, spring, 2)  # after the deadline
    assert ws.referrals.tasks.progress(task.id, alice).valid == 1
    assert ws.points.balance(alice) == 0


def test_stay_window_action_and_deduction(ws: siyu.Workspace, clock: FakeClock) -> None:
    alice = ws.users.add().id
    task = ws.referrals.tasks.create(
        "t", campaign="spring", stages=[(2, Reward.of_points(10))], deadline=START + timedelta(days=7),
        valid=ValidInvite(stay_days=3, action="wecom_added"))
    code = ws.referrals.invite_code(alice, campaign="spring")
    a, b, c = invite(ws, code, 3)
    for uid in (a, b, c):
        ws.referrals.record_action(uid, "wecom_added")
    assert not ws.referrals.record_action(a, "wecom_added")
    clock.advance(days=1)
    ws.referrals.record_leave(c)  # left within the stay window: deducted
    progress = ws.referrals.tasks.progress(task.id, alice)
    assert (progress.valid, progress.pending, progress.deducted) == (0, 2, 1)
    clock.advance(days=2)
    assert ws.referrals.tasks.progress(task.id, alice).valid == 2
    assert ws.points.balance(alice) == 0  # nothing triggered evaluation yet
    assert [g.stage for g in ws.referrals.tasks.evaluate()] == [1]
    assert ws.points.balance(alice) == 10
    clock.advance(days=1)
    ws.referrals.record_leave(a)  # left after the window: still counts
    assert ws.referrals.tasks.progress(task.id, alice).valid == 2


def test_identity_rule(ws: siyu.Workspace) -> None:
    alice = ws.users.add().id
    task = ws.referrals.tasks.create("t", campaign="c", stages=[(1, Reward.of_points(5))],
                                     deadline=START + timedelta(days=7),
                                     valid=ValidInvite(identity="wecom_external_userid"))
    (bob,) = invite(ws, ws.referrals.invite_code(alice, campaign="c"), 1)
    assert ws.referrals.tasks.progress(task.id, alice).pending == 1
    ws.users.link(bob, "wecom_external_userid", "wmABCDEF")
    ws.referrals.tasks.evaluate(task.id)
    assert ws.points.balance(alice) == 5


def test_coupon_reward_uses_the_coupon_engine(ws: siyu.Workspace) -> None:
    ws.coupons.create("invite10", amount="10", threshold="50", valid_days=30)
    alice = ws.users.add().id
    ws.referrals.tasks.create("t", campaign="c", stages=[(1, Reward.of_coupon("invite10"))],
                              deadline=START + timedelta(days=7))
    invite(ws, ws.referrals.invite_code(alice, campaign="c"), 1)
    assert len(ws.coupons.of(alice)) == 1
    ws.referrals.tasks.evaluate()
    assert len(ws.coupons.of(alice)) == 1


def test_inactive_invitees_hold_the_reward_until_released(ws: siyu.Workspace) -> None:
    ws.referrals.fraud.configure(inactive_share=0.5)
    alice = ws.users.add().id
    task = ws.referrals.tasks.create("t", campaign="c", stages=[(2, Reward.of_points(10))],
                                     deadline=START + timedelta(days=7))
    invite(ws, ws.referrals.invite_code(alice, campaign="c"), 2)
    [grant] = ws.referrals.tasks.grants(task.id)
    assert grant.status == "held" and ws.points.balance(alice) == 0
    [hold] = ws.referrals.fraud.held("reward")
    assert hold.subject_id == grant.id and "inactive" in hold.reasons[0]
    ws.referrals.fraud.release(hold.id, by="operator:li")
    assert ws.points.balance(alice) == 10
    assert ws.referrals.tasks.grants(task.id)[0].status == "issued"
    with pytest.raises(Conflict):
        ws.referrals.fraud.release(hold.id)
    ws.referrals.tasks.evaluate()
    assert ws.points.balance(alice) == 10


def test_leaving_right_after_the_reward_holds_it_and_reject_revokes(ws: siyu.Workspace, clock: FakeClock) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    ws.referrals.fraud.configure(leave_after_reward=timedelta(hours=48))
    alice = ws.users.add().id
    task = ws.referrals.tasks.create("t", campaign="c", stages=[(2, Reward.of_points(10))],
                                     deadline=START + timedelta(days=7))
    a, _ = invite(ws, ws.referrals.invite_code(alice, campaign="c"), 2)
    assert ws.points.balance(alice) == 10
    clock.advance(hours=2)
    ws.referrals.record_leave(a)
    [hold] = ws.referrals.fraud.held()
    assert hold.kind == "reward" and any(isinstance(e, ReferralHeld) for e in seen)
    ws.referrals.fraud.reject(hold.id, by="operator:li")
    assert ws.points.balance(alice) == 0
    assert ws.referrals.tasks.grants(task.id)[0].status == "revoked"
    assert ws.referrals.fraud.holds("rejected")[0].decided_by == "operator:li"
    ws.referrals.tasks.evaluate()
    assert ws.points.balance(alice) == 0  # a revoked stage is never granted again


@settings(max_examples=30, deadline=None)
@given(events=st.lists(st.sampled_from(["bind", "evaluate", "action", "advance"]), max_size=25))
def test_rewards_never_issued_twice(events: list[str]) -> None:
    clock = FakeClock(START)
    with siyu.connect("memory://", clock=clock) as ws:
        ws.referrals.fraud.configure(burst=None, phone_prefix=None)
        alice = ws.users.add().id
        task = ws.referrals.tasks.create(
            "t", campaign="c", deadline=START + timedelta(days=5),
            stages=[(1, Reward.of_points(1)), (2, Reward.of_points(10)), (4, Reward.of_points(100))],
            valid=ValidInvite(stay_days=1))
        code = ws.referrals.invite_code(alice, campaign="c")
        invited: list[int] = []
        for event in events:
            if event == "bind":
                invited.extend(invite(ws, code, 1))
            elif event == "evaluate":
                ws.referrals.tasks.evaluate()
            elif event == "action" and invited:
                ws.referrals.record_action(invited[-1], "x")
            else:
                clock.advance(hours=13)
        ws.referrals.tasks.evaluate()
        grants = ws.referrals.tasks.grants(task.id)
        stages = [g.stage for g in grants]
        assert len(stages) == len(set(stages))
        expected = {1: 1, 2: 10, 3: 100}
        assert ws.points.balance(alice) == sum(expected[s] for s in stages)
        valid = ws.referrals.tasks.progress(task.id, alice).valid
        reached = {n for n, need in ((1, 1), (2, 2), (3, 4)) if valid >= need}
        if clock.now <= task.deadline + timedelta(days=1):
            assert set(stages) == reached
        else:  # evaluation closed: nothing granted beyond what was reached
            assert set(stages) <= reached


def _buy(ws: siyu.Workspace, order_id: int, user_id: int, fen: int = 5_000) -> None:
    from siyu.events import OrderLineInfo, OrderRecorded

    ws.referrals.siyu_on_event(OrderRecorded(
        at=ws.now(), order_id=order_id, user_id=user_id, total_fen=fen,
        lines=(OrderLineInfo(sku="TEA", qty=1, paid_fen=fen, role="profit"),), channel=None, paid_at=ws.now()))


def _refund(ws: siyu.Workspace, order_id: int, refund_id: int, user_id: int, fen: int, total: int = 5_000) -> None:
    from siyu.events import OrderRefunded

    ws.referrals.siyu_on_event(OrderRefunded(
        at=ws.now(), order_id=order_id, refund_id=refund_id, user_id=user_id, amount_fen=fen,
        order_total_fen=total, lines=(), full=fen == total))


def test_purchase_tasks_are_reversed_by_refunds(ws: siyu.Workspace, clock: FakeClock) -> None:
    alice = ws.users.add().id
    task = ws.referrals.tasks.create("buy2", campaign="c", stages=[(2, Reward.of_points(30))],
                                     deadline=START + timedelta(days=7), valid=ValidInvite(purchase=True))
    a, b = invite(ws, ws.referrals.invite_code(alice, campaign="c"), 2)
    assert ws.referrals.tasks.progress(task.id, alice).pending == 2  # bound, not bought yet
    _buy(ws, 1, a)
    _buy(ws, 2, b)
    _buy(ws, 2, b)  # the same event twice
    assert ws.points.balance(alice) == 30
    _refund(ws, 2, 20, b, 2_000)  # partial: b still kept something
    assert ws.points.balance(alice) == 30
    _refund(ws, 2, 21, b, 3_000)
    _refund(ws, 2, 21, b, 3_000)  # redelivered
    assert ws.points.balance(alice) == 0
    assert [g.status for g in ws.referrals.tasks.grants(task.id)] == ["reversed"]
    _buy(ws, 3, b)  # buying again does not re-earn a reversed stage
    assert ws.points.balance(alice) == 0


def test_refund_after_points_were_spent_holds_for_review(ws: siyu.Workspace) -> None:
    alice = ws.users.add().id
    task = ws.referrals.tasks.create("buy1", campaign="c", stages=[(1, Reward.of_points(30))],
                                     deadline=START + timedelta(days=7), valid=ValidInvite(purchase=True))
    (a,) = invite(ws, ws.referrals.invite_code(alice, campaign="c"), 1)
    _buy(ws, 1, a)
    ws.points.spend(alice, 30, reason="redeem", key="spend-1")
    _refund(ws, 1, 10, a, 5_000)
    assert ws.referrals.tasks.grants(task.id)[0].status == "issued"
    [hold] = ws.referrals.fraud.held("reward")
    assert "refunds undid stage 1" in hold.reasons[0]


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["bind", "buy", "refund", "repeat"]), st.integers(0, 5)),
                      max_size=30))
def test_purchase_rewards_never_twice_and_fully_reversed(steps: list[tuple[str, int]]) -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        ws.referrals.fraud.configure(burst=None, phone_prefix=None, leave_after_reward=None)
        alice = ws.users.add().id
        task = ws.referrals.tasks.create(
            "t", campaign="c", deadline=START + timedelta(days=5), valid=ValidInvite(purchase=True),
            stages=[(1, Reward.of_points(1)), (2, Reward.of_points(10)), (3, Reward.of_points(100))])
        code = ws.referrals.invite_code(alice, campaign="c")
        invited: list[int] = []
        orders: dict[int, int] = {}  # order id -> user
        refunded: set[int] = set()
        last: tuple[str, int] | None = None
        for op, pick in steps:
            if op == "repeat" and last is not None:
                op, pick = last
            if op == "bind":
                invited.extend(invite(ws, code, 1))
            elif op == "buy" and invited:
                order_id = len(orders) + 1
                orders[order_id] = invited[pick % len(invited)]
                _buy(ws, order_id, orders[order_id])
            elif op == "refund" and orders:
                order_id = sorted(orders)[pick % len(orders)]
                _refund(ws, order_id, order_id, orders[order_id], 5_000)  # refund id = order id: a repeat is a no-op
                refunded.add(order_id)
            last = (op, pick)
        grants = ws.referrals.tasks.grants(task.id)
        assert len({g.stage for g in grants}) == len(grants)
        live = {g.stage for g in grants if g.status == "issued"}
        assert ws.points.balance(alice) == sum({1: 1, 2: 10, 3: 100}[s] for s in live)
        for order_id in sorted(set(orders) - refunded):  # refund everything: nothing may stay paid
            _refund(ws, order_id, order_id, orders[order_id], 5_000)
        assert ws.points.balance(alice) == 0
        assert all(g.status == "reversed" for g in ws.referrals.tasks.grants(task.id))


def test_tracked_events_and_linked_identities_count_without_a_manual_evaluate(ws: siyu.Workspace) -> None:
    alice = ws.users.add().id
    by_event = ws.referrals.tasks.create("ev", campaign="c", stages=[(1, Reward.of_points(7))],
                                         deadline=START + timedelta(days=7), valid=ValidInvite(action="page_view"))
    by_identity = ws.referrals.tasks.create("id", campaign="c", stages=[(1, Reward.of_points(11))],
                                            deadline=START + timedelta(days=7),
                                            valid=ValidInvite(identity="wecom_external_userid"))
    (bob,) = invite(ws, ws.referrals.invite_code(alice, campaign="c"), 1)
    assert ws.points.balance(alice) == 0
    ws.events.track(bob, "page_view")
    assert [g.task_id for g in ws.referrals.tasks.grants()] == [by_event.id]
    ws.users.link(bob, "wecom_external_userid", "wmBOB0001")
    assert ws.points.balance(alice) == 18 and by_identity.id in {g.task_id for g in ws.referrals.tasks.grants()}
