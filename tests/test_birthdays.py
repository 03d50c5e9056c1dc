"""Birthdays and member days: benefits once a year, consent, 29 February, member-day boosts and prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import siyu
from siyu.errors import CapExceeded, ConsentRequired, MarginViolation, ValidationError
from siyu.models.commerce import ProductRole
from siyu.testing import FakeClock

# 2027 is a common year. 10:00 in Shanghai on Monday 1 March 2027.
MARCH_1 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MARCH_1)


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    workspace = siyu.connect("memory://", clock=clock)
    workspace.coupons.create("birthday 20", amount=20, threshold=100, valid_days=60, per_user_limit=None)
    return workspace


def _member(ws: siyu.Workspace, month: int, day: int, year: int | None = 1990, consent: bool = True) -> int:
    uid = ws.users.add().id
    ws.birthdays.set(uid, month, day, year=year)
    if consent:
        ws.users.consent(uid, purpose="birthday", channel="*", granted=True)
    return uid


def test_the_job_grants_once_however_often_it_runs(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.birthdays.configure(points=100)
    uid = _member(ws, 3, 1)
    other = _member(ws, 3, 2)
    assert [g.user_id for g in ws.birthdays.grant_due()] == [uid]
    assert ws.birthdays.grant_due() == []
    assert ws.points.balance(uid) == 100 and ws.points.balance(other) == 0
    clock.advance(days=1)
    assert [g.user_id for g in ws.birthdays.grant_due()] == [other]


def test_a_birthday_edit_does_not_grant_again_and_edits_are_limited(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.birthdays.configure(points=100)
    uid = _member(ws, 3, 1)
    ws.birthdays.grant_due()
    ws.birthdays.set(uid, 3, 2, year=1990)  # the first change this year
    with pytest.raises(CapExceeded, match="once a year"):
        ws.birthdays.set(uid, 3, 3, year=1990)
    clock.advance(days=1)
    assert ws.birthdays.grant_due() == []  # granted this year already
    assert ws.points.balance(uid) == 100
    assert ws.birthdays.set(uid, 3, 2, year=1990).day == 2  # the same date again is no change
    with pytest.raises(ValidationError):
        ws.birthdays.set(uid, 2, 30)


def test_29_february_falls_back_in_common_years(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.birthdays.configure(points=10)
    leap = _member(ws, 2, 29, year=2000)
    clock.set(datetime(2027, 2, 28, 2, 0, tzinfo=UTC))
    assert ws.birthdays.grant_due() == []
    clock.set(MARCH_1)
    assert [g.user_id for g in ws.birthdays.grant_due()] == [leap]
    ws.birthdays.configure(points=10, feb29="feb28")
    clock.set(datetime(2028, 2, 28, 2, 0, tzinfo=UTC))  # 2028 is a leap year: the real day
    assert ws.birthdays.grant_due() == []
    clock.set(datetime(2028, 2, 29, 2, 0, tzinfo=UTC))
    assert [g.period for g in ws.birthdays.grant_due()] == ["2028"]


def test_consent_and_guardians(ws: siyu.Workspace) -> None:
    ws.birthdays.configure(points=10)
    no_consent = _member(ws, 3, 1, consent=False)
    child = _member(ws, 3, 1, year=2016)  # 11 years old
    adult = _member(ws, 3, 1, year=None)  # no year: no age to check
    assert [g.user_id for g in ws.birthdays.grant_due()] == [adult]
    with pytest.raises(ConsentRequired):
        ws.birthdays.require_consent(child)
    ws.users.consent(child, purpose="guardian", channel="*", granted=True)
    assert [g.user_id for g in ws.birthdays.grant_due()] == [child]
    assert ws.points.balance(no_consent) == 0


def test_tiers_at_grant_time_and_a_coupon_valid_for_the_window(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.tiers.define("member", 0)
    ws.tiers.define("gold", 1000)
    ws.birthdays.configure(coupon="birthday 20", window="week", tiers=["gold"])
    uid = _member(ws, 3, 3)  # Wednesday: the week is 1-7 March
    assert ws.birthdays.grant_due() == []  # not gold yet
    ws.tiers.add_growth(uid, 1000, reason="orders", key="g")
    [grant] = ws.birthdays.grant_due()
    [coupon] = ws.coupons.of(uid)
    assert coupon.valid_until == datetime(2027, 3, 8, tzinfo=ws.tz)  # the end of the birthday week, not 60 days
    assert grant.due_at == coupon.valid_until


def test_a_points_mall_gift(ws: siyu.Workspace) -> None:
    ws.points_mall.add_reward("cake", kind="gift", points=500, stock=1, terms="t", scope="s", validity="v")
    ws.birthdays.configure(reward="cake")
    first, second = _member(ws, 3, 1), _member(ws, 3, 1)
    granted = ws.birthdays.grant_due()  # the second member finds the cake out of stock: retried on the next run
    assert [g.user_id for g in granted] == [first]
    [gift] = ws.points_mall.redemptions(user_id=first)
    assert gift.points == 0 and gift.status == "pending"
    assert ws.points_mall.redemptions(user_id=second) == []


def test_double_points_in_the_birthday_window(ws: siyu.Workspace) -> None:
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT)
    ws.birthdays.configure(points_multiplier=2)
    uid = _member(ws, 3, 1)
    before = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}])
    ws.birthdays.grant_due()
    during = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}])
    assert (before.points, during.points) == (100, 200)


def test_member_days_boost_points_for_their_tiers(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT)
    ws.tiers.define("member", 0)
    ws.tiers.define("gold", 1000)
    ws.member_days.add("Wednesday", weekday=2, points_multiplier=3, tiers=["gold"])
    gold, plain = ws.users.add().id, ws.users.add().id
    ws.tiers.add_growth(gold, 1000, reason="x", key="g")
    monday = ws.orders.record(gold, [{"sku": "TEA", "qty": 1}])
    clock.advance(days=2)
    assert [d.name for d in ws.member_days.today()] == ["Wednesday"]
    wednesday = ws.orders.record(gold, [{"sku": "TEA", "qty": 1}])
    others = ws.orders.record(plain, [{"sku": "TEA", "qty": 1}])
    assert (monday.points, wednesday.points, others.points) == (100, 300, 100)


def test_member_day_prices_pass_the_margin_guard(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT)
    ws.products.add("CUP", "Cup", price="10", cost="5", role=ProductRole.PROFIT)
    ws.member_days.add("Wednesday", weekday=2, price_percent=88, skus=["TEA"])
    created = ws.member_days.schedule("Wednesday", weeks=2)
    assert [a.name for a in created] == ["Wednesday 2027-03-03", "Wednesday 2027-03-10"]
    assert created[0].prices_fen == {"TEA": 8800}
    assert ws.member_days.schedule("Wednesday", weeks=2) == []  # scheduled once
    ws.member_days.add("Cups", monthday=8, price_percent=40, skus=["CUP"])
    with pytest.raises(MarginViolation):
        ws.member_days.schedule("Cups")
    assert not [a for a in ws.promotions.activities() if a.name.startswith("Cups")]
    buyer = ws.users.add().id
    assert ws.promotions.quote(buyer, [{"sku": "TEA", "qty": 1}]).total == Decimal("100.00")
    clock.advance(days=2)
    assert ws.promotions.quote(buyer, [{"sku": "TEA", "qty": 1}]).total == Decimal("88.00")
