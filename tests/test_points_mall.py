"""The points mall (积分商城): redemptions through the points ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import (
    CapExceeded,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    NotFound,
    PolicyViolation,
    ValidationError,
)
from siyu.events import RedemptionReversed, RewardRedeemed
from siyu.testing import FakeClock

START = datetime(2026, 5, 13, 4, 0, tzinfo=UTC)  # a Wednesday, noon in Shanghai
TEXTS = {"terms": "1 per order, points are not refunded in cash", "scope": "any order over 50 yuan",
         "validity": "30 days after redemption"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    workspace = siyu.connect("memory://", clock=clock)
    workspace.coupons.create("10-off", amount=10, threshold=50, per_user_limit=1)
    return workspace


def test_a_reward_needs_its_published_terms(ws: siyu.Workspace) -> None:
    for missing in TEXTS:
        texts = {**TEXTS, missing: "  "}
        with pytest.raises(ValidationError, match=missing):
            ws.points_mall.add_reward("mug", kind="gift", points=10, **texts)
    with pytest.raises(ValidationError, match="coupon_template"):
        ws.points_mall.add_reward("c", kind="coupon", points=10, **TEXTS)
    with pytest.raises(NotFound):
        ws.points_mall.add_reward("c", kind="coupon", points=10, coupon_template="nope", **TEXTS)
    with pytest.raises(ValidationError, match="kind"):
        ws.points_mall.add_reward("c", kind="cash", points=10, **TEXTS)
    assert ws.points_mall.add_reward("mug", kind="gift", points=10, stock=-1, per_member=-1, **TEXTS).stock is None


def test_a_coupon_reward_spends_and_issues_in_one_go(ws: siyu.Workspace) -> None:
    seen: list[object] = []
    ws.subscribe(lambda e: seen.append(e) if isinstance(e, RewardRedeemed | RedemptionReversed) else None)
    uid = ws.users.add().id
    ws.points.earn(uid, 100, reason="x", key="e")
    ws.points_mall.add_reward("coupon", kind="coupon", points=80, coupon_template="10-off", **TEXTS)
    done = ws.points_mall.redeem(uid, "coupon", key="k1")
    assert done.status == "issued" and len(done.coupon_codes) == 1
    assert [c.code for c in ws.coupons.of(uid)] == list(done.coupon_codes)
    assert ws.points.balance(uid) == 20
    assert ws.points_mall.redeem(uid, "coupon", key="k1") == done
    with pytest.raises(IdempotencyConflict):
        ws.points_mall.redeem(uid, "coupon", key="k1", qty=2)
    assert [type(e).__name__ for e in seen] == ["RewardRedeemed"]


def test_a_failed_issue_restores_the_points_and_leaves_no_coupon(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    ws.points.earn(uid, 200, reason="x", key="e", expires_at=clock.now + timedelta(days=30))
    ws.points_mall.add_reward("coupon", kind="coupon", points=80, coupon_template="10-off", stock=5, **TEXTS)
    ws.points_mall.redeem(uid, "coupon", key="k1")
    failed = ws.points_mall.redeem(uid, "coupon", key="k2")  # the template allows one coupon per user
    assert failed.status == "failed" and "per-user limit" in failed.note
    assert failed.refund_entry_id is not None
    assert ws.points.balance(uid) == 120
    assert len(ws.coupons.of(uid)) == 1
    assert ws.points_mall.reward("coupon").left == 4
    kinds = [e.kind for e in ws.points.history(uid)]
    assert kinds == ["earn", "spend", "spend", "reverse"]
    [lot] = ws.points.lots(uid)
    assert lot.expires_at == clock.now + timedelta(days=30)


def test_cancelling_returns_points_to_their_lots_once(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    soon = ws.points.earn(uid, 50, reason="a", key="soon", expires_at=clock.now + timedelta(days=5))
    late = ws.points.earn(uid, 100, reason="b", key="late", expires_at=clock.now + timedelta(days=300))
    ws.points_mall.add_reward("mug", kind="gift", points=60, stock=1, **TEXTS)
    pending = ws.points_mall.redeem(uid, "mug", key="k")
    assert pending.status == "pending"
    assert {lot.entry_id: lot.remaining for lot in ws.points.lots(uid)} == {late.id: 90}
    cancelled = ws.points_mall.cancel(pending.id)
    assert cancelled.status == "cancelled"
    lots = {lot.entry_id: (lot.remaining, lot.expires_at) for lot in ws.points.lots(uid)}
    assert lots == {soon.id: (50, clock.now + timedelta(days=5)), late.id: (100, clock.now + timedelta(days=300))}
    assert ws.points_mall.cancel(pending.id) == cancelled  # twice: nothing more
    assert ws.points.balance(uid) == 150 and ws.points_mall.reward("mug").left == 1


def test_shipped_and_issued_redemptions_cannot_be_cancelled(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.points.earn(uid, 500, reason="x", key="e")
    ws.points_mall.add_reward("mug", kind="gift", points=60, **TEXTS)
    ws.points_mall.add_reward("coupon", kind="coupon", points=60, coupon_template="10-off", **TEXTS)
    shipped = ws.points_mall.fulfil(ws.points_mall.redeem(uid, "mug", key="a").id)
    assert shipped.status == "fulfilled" and ws.points_mall.fulfil(shipped.id) == shipped
    issued = ws.points_mall.redeem(uid, "coupon", key="b")
    for done in (shipped, issued):
        with pytest.raises(InvalidTransition):
            ws.points_mall.cancel(done.id)
    assert ws.points.balance(uid) == 380


def test_pending_points_cannot_be_spent(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    ws.points.earn(uid, 100, reason="order", key="e", available_at=clock.now + timedelta(days=7))
    ws.points_mall.add_reward("mug", kind="gift", points=60, **TEXTS)
    with pytest.raises(InsufficientPoints):
        ws.points_mall.redeem(uid, "mug", key="k")
    assert ws.points_mall.redemptions(user_id=uid) == [] and ws.points_mall.reward("mug").redeemed == 0
    clock.advance(timedelta(days=7))
    assert ws.points_mall.redeem(uid, "mug", key="k").status == "pending"


def test_limits_per_order_member_and_period(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    ws.points.earn(uid, 10_000, reason="x", key="e")
    ws.points_mall.add_reward("mug", kind="gift", points=10, per_order=2, per_member=5, per_period=3, period="week",
                              **TEXTS)
    with pytest.raises(CapExceeded, match="per redemption"):
        ws.points_mall.redeem(uid, "mug", key="a", qty=3)
    ws.points_mall.redeem(uid, "mug", key="b", qty=2)
    ws.points_mall.redeem(uid, "mug", key="c")
    with pytest.raises(CapExceeded, match="this week"):
        ws.points_mall.redeem(uid, "mug", key="d")
    clock.advance(timedelta(days=5))  # Monday of the next week, in Shanghai
    ws.points_mall.redeem(uid, "mug", key="e", qty=2)
    with pytest.raises(CapExceeded, match="per member"):
        ws.points_mall.redeem(uid, "mug", key="f")
    cancel = ws.points_mall.redemptions(user_id=uid)[-1]
    ws.points_mall.cancel(cancel.id)  # a cancelled redemption no longer counts
    ws.points_mall.redeem(uid, "mug", key="g")


def test_tier_eligibility(ws: siyu.Workspace) -> None:
    ws.tiers.define("silver", 0)
    ws.tiers.define("gold", 1000)
    uid = ws.users.add().id
    ws.points.earn(uid, 500, reason="x", key="e")
    ws.points_mall.add_reward("vip", kind="gift", points=10, tiers=["gold"], **TEXTS)
    with pytest.raises(PolicyViolation, match="gold"):
        ws.points_mall.redeem(uid, "vip", key="k")
    ws.points_mall.retire("vip")
    with pytest.raises(PolicyViolation, match="retired"):
        ws.points_mall.redeem(uid, "vip", key="k")


def test_the_redemption_report(ws: siyu.Workspace) -> None:
    users = [ws.users.add().id for _ in range(3)]
    for u in users:
        ws.points.earn(u, 100, reason="x", key=f"e{u}")
    ws.points_mall.add_reward("mug", kind="gift", points=10, stock=4, **TEXTS)
    done = [ws.points_mall.redeem(u, "mug", key=f"r{u}") for u in users]
    ws.points_mall.cancel(done[0].id)
    [row] = ws.points_mall.report()
    assert row == {"reward": "mug", "kind": "gift", "redemptions": 3, "units": 2, "cancelled": 1, "failed": 0,
                   "points": 20, "stock_left": 2, "rate": 0.5}


@settings(deadline=None, max_examples=30)
@given(steps=st.lists(st.tuples(st.sampled_from(["redeem", "cancel", "fulfil"]), st.integers(0, 2),
                                st.integers(1, 3)), max_size=15))
def test_stock_and_points_always_add_up(steps: list[tuple[str, int, int]]) -> None:
    ws = siyu.connect("memory://", clock=FakeClock(START))
    users = [ws.users.add().id for _ in range(3)]
    for u in users:
        ws.points.earn(u, 120, reason="x", key=f"e{u}")
    ws.points_mall.add_reward("mug", kind="gift", points=25, stock=5, per_member=4, **TEXTS)
    for n, (op, who, qty) in enumerate(steps):
        try:
            if op == "redeem":
                ws.points_mall.redeem(users[who], "mug", key=f"k{n}", qty=qty)
            else:
                mine = ws.points_mall.redemptions(user_id=users[who])
                if mine:
                    target = mine[-1].id
                    ws.points_mall.cancel(target) if op == "cancel" else ws.points_mall.fulfil(target)
        except (CapExceeded, InsufficientPoints, InvalidTransition):
            pass
        live = [r for r in ws.points_mall.redemptions() if r.status in ("pending", "fulfilled")]
        reward = ws.points_mall.reward("mug")
        assert reward.redeemed == sum(r.qty for r in live) <= 5
        for u in users:
            spent = sum(r.points for r in live if r.user_id == u)
            assert ws.points.balance(u) == 120 - spent >= 0
    ws.close()


def test_the_points_liability(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    ws.points.earn(uid, 100, reason="a", key="a", expires_at=clock.now + timedelta(days=1))
    ws.points.earn(uid, 300, reason="b", key="b")
    ws.points.earn(uid, 50, reason="c", key="c", available_at=clock.now + timedelta(days=10))
    ws.points_mall.add_reward("mug", kind="gift", points=120, **TEXTS)
    mug = ws.points_mall.redeem(uid, "mug", key="m")  # takes the 100 expiring first, then 20
    ws.points_mall.cancel(mug.id)
    ws.points_mall.redeem(uid, "mug", key="n")
    clock.advance(timedelta(days=2))
    ws.points.expire_due()
    report = ws.points_mall.points_liability()
    assert report == {"issued": 450, "spent": 240, "expired": 0, "reversed": 120, "usable": 280, "pending": 50,
                      "outstanding": 330}
    assert report["issued"] - report["spent"] + report["reversed"] - report["expired"] == report["outstanding"]
