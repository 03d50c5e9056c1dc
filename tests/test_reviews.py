"""Review and share rewards: the act is rewarded, never the rating; shares only when they convert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import siyu
from siyu.errors import NotFound, PolicyViolation, ValidationError
from siyu.models.commerce import ProductRole
from siyu.testing import FakeClock

START = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    workspace = siyu.connect("memory://", clock=clock)
    workspace.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT)
    workspace.products.add("CUP", "Cup", price="20", cost="8", role=ProductRole.PROFIT)
    workspace.points_rules.configure("purchase", points_per_yuan=0)  # only review points in the balances
    return workspace


def _order(ws: siyu.Workspace, uid: int) -> int:
    return ws.orders.record(uid, [{"sku": "TEA", "qty": 1}, {"sku": "CUP", "qty": 2}]).id


@pytest.mark.parametrize("option", [{"stars": 5}, {"min_rating": 4}, {"sentiment_bonus": 10}, {"good_review": 1}])
def test_a_rule_that_names_the_rating_is_refused(ws: siyu.Workspace, option: dict[str, int]) -> None:
    with pytest.raises(PolicyViolation, match="好评返现"):
        ws.reviews.configure(**option)
    with pytest.raises(ValidationError):
        ws.reviews.configure(bonus_for_nothing=1)


def test_one_star_earns_what_five_do_and_one_reward_per_line(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.reviews.configure(points=10, photo_points=5, long_points=3, long_chars=10)
    happy, angry = ws.users.add().id, ws.users.add().id
    a, b = _order(ws, happy), _order(ws, angry)
    praise = ws.reviews.review(happy, a, 0, stars=5, text="wonderful tea, thank you", photos=2)
    complaint = ws.reviews.review(angry, b, 0, stars=1, text="stale and overpriced!!", photos=2)
    assert praise is not None and complaint is not None
    assert praise.amount == complaint.amount == 18 and praise.status == "pending"
    assert ws.reviews.review(happy, a, 0, stars=3) == praise  # the same line again: the same reward
    with pytest.raises(NotFound):
        ws.reviews.review(happy, b, 1, stars=5)  # not their order
    with pytest.raises(ValidationError):
        ws.reviews.review(happy, a, 2, stars=5)  # no such line


def test_rewards_wait_for_the_return_window_and_refunds_void_them(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    oid = _order(ws, uid)
    ws.reviews.review(uid, oid, 0, stars=4)
    ws.reviews.review(uid, oid, 1, stars=2)
    assert ws.reviews.settle_due() == [] and ws.points.balance(uid) == 0
    ws.orders.refund(oid, [{"sku": "CUP", "qty": 1}], key="r1")
    clock.advance(days=7)
    settled = ws.reviews.settle_due()
    assert sorted((g.period, g.status) for g in settled) == [(f"{oid}:0", "granted"), (f"{oid}:1", "void")]
    assert ws.points.balance(uid) == 10
    assert ws.reviews.settle_due() == []


def test_the_daily_cap(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.reviews.configure(daily_cap=2)
    uid = ws.users.add().id
    orders = [_order(ws, uid) for _ in range(2)]
    given = [ws.reviews.review(uid, o, n, stars=5) for o in orders for n in (0, 1)]
    assert [g is not None for g in given] == [True, True, False, False]
    clock.advance(days=1)
    assert ws.reviews.review(uid, orders[1], 0, stars=5) is not None


def test_shares_pay_only_for_attributable_actions(ws: siyu.Workspace) -> None:
    ws.reviews.configure(share_points=20, share_buy_points=30, share_daily_cap=5)
    sharer, stranger = ws.users.add().id, ws.users.add().id
    friend = ws.users.add().id
    ws.referrals.bind(friend, inviter_id=sharer)
    with pytest.raises(ValidationError, match="share alone"):
        ws.reviews.share_converted(sharer, friend, action="shared", entry="wecom")
    with pytest.raises(PolicyViolation, match="external link"):
        ws.reviews.share_converted(sharer, friend, action="registered", entry="wechat_link")
    with pytest.raises(PolicyViolation, match="attributable"):
        ws.reviews.share_converted(stranger, friend, action="registered", entry="wecom")
    joined = ws.reviews.share_converted(sharer, friend, action="registered", entry="miniprogram")
    assert joined is not None and joined.amount == 20
    assert ws.reviews.share_converted(sharer, friend, action="registered", entry="wecom") == joined
    with pytest.raises(ValidationError):
        ws.reviews.share_converted(sharer, friend, action="bought", entry="wecom")  # which order?
    bought = ws.reviews.share_converted(sharer, friend, action="bought", entry="wecom", order_id=_order(ws, friend))
    assert bought is not None and ws.points.balance(sharer) == 50
    assert [g.benefit for g in ws.reviews.rewards(sharer)] == ["share", "share"]


def test_the_share_daily_cap(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.reviews.configure(share_points=20, share_daily_cap=1)
    sharer = ws.users.add().id
    friends = [ws.users.add().id for _ in range(2)]
    for f in friends:
        ws.referrals.bind(f, inviter_id=sharer)
    assert ws.reviews.share_converted(sharer, friends[0], action="registered", entry="wecom") is not None
    assert ws.reviews.share_converted(sharer, friends[1], action="registered", entry="wecom") is None
    clock.advance(timedelta(days=1))
    assert ws.reviews.share_converted(sharer, friends[1], action="registered", entry="wecom") is not None
