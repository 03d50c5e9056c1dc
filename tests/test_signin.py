"""Daily sign-in (签到): streaks, reset modes, cumulative rewards, make-up signs, budgets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

import siyu
from siyu.errors import CapExceeded, InsufficientPoints, ValidationError
from siyu.testing import FakeClock

MONDAY = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # Monday 1 June 2026, 10:00 in Shanghai


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY)


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    return siyu.connect("memory://", clock=clock)


def _sign_on(ws: siyu.Workspace, clock: FakeClock, uid: int, days: list[int]) -> list[int]:
    """Sign on each day offset from MONDAY; the streaks returned."""
    out = []
    for offset in days:
        clock.set(MONDAY + timedelta(days=offset))
        out.append(ws.points_rules.sign_in(uid)[0])
    return out


def test_a_gap_restarts_the_streak_and_a_cycle_wraps(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    assert _sign_on(ws, clock, uid, [0, 1, 3]) == [1, 2, 1]
    other = ws.users.add().id
    _sign_on(ws, clock, other, list(range(8)))
    amounts = [e.amount for e in ws.points.history(other)]
    assert amounts == [5, 5, 10, 5, 5, 5, 25, 5]  # day 3 +5, day 7 +20, day 8 is day 1 again


def test_the_day_boundary_is_the_business_time_zone(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    clock.set(datetime(2026, 6, 1, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    ws.points_rules.sign_in(uid)
    clock.set(datetime(2026, 6, 1, 16, 0, 0, tzinfo=UTC))  # 00:00:00 the next day
    assert ws.points_rules.sign_in(uid)[0] == 2
    assert [s.day for s in ws.points_rules.signs(uid)] == [date(2026, 6, 1), date(2026, 6, 2)]


def test_weekly_mode_resets_on_monday(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.points_rules.configure("signin", mode="week", cycle=None, streak_bonus={})
    uid = ws.users.add().id
    assert _sign_on(ws, clock, uid, [4, 5, 6, 7, 8]) == [1, 2, 3, 1, 2]  # Fri..Sun, then Mon resets


def test_monthly_mode_resets_on_the_first(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.points_rules.configure("signin", mode="month", cycle=None, streak_bonus={})
    uid = ws.users.add().id
    assert _sign_on(ws, clock, uid, [28, 29, 30, 31]) == [1, 2, 1, 2]  # 29-30 June, then 1-2 July


def test_a_cumulative_reward_comes_on_the_nth_sign_once(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.points_rules.configure("signin", mode="month", cycle=None, streak_bonus={}, cumulative={3: 50})
    uid = ws.users.add().id
    _sign_on(ws, clock, uid, [0, 2, 4])  # three signs, never two days in a row
    entries = ws.points.history(uid)
    assert [e.amount for e in entries] == [5, 5, 5, 50]  # granted on the 3rd sign, not one late
    _sign_on(ws, clock, uid, [4, 6])  # a repeat of the 3rd day and a 4th sign grant nothing more
    assert [e.amount for e in ws.points.history(uid)] == [5, 5, 5, 50, 5]


def test_make_up_signs_are_limited_cost_points_and_earn_only_base(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.points_rules.configure("signin", mode="month", cycle=None, streak_bonus={3: 30}, makeup_limit=1,
                              makeup_cost=3, cumulative={3: 40})
    uid = ws.users.add().id
    with pytest.raises(InsufficientPoints):  # the make-up costs 3 points the member does not have yet
        clock.set(MONDAY + timedelta(days=2))
        ws.points_rules.make_up_sign(uid, date(2026, 6, 2))
    _sign_on(ws, clock, uid, [0, 2])
    entry = ws.points_rules.make_up_sign(uid, date(2026, 6, 2))
    assert entry is not None and entry.amount == 5  # base only: no streak bonus for the mended day 3
    with pytest.raises(CapExceeded):
        ws.points_rules.make_up_sign(uid, date(2026, 6, 1))
    with pytest.raises(ValidationError):
        ws.points_rules.make_up_sign(uid, date(2026, 6, 3))  # today
    clock.set(MONDAY + timedelta(days=3))
    streak, today = ws.points_rules.sign_in(uid)
    assert streak == 4 and today is not None and today.amount == 5  # a 4-day streak: no bonus twice
    kinds = [(e.kind, e.amount, e.reason) for e in ws.points.history(uid)]
    # 1 June, 3 June, the make-up's cost and points, and the cumulative reward of the 3rd sign, once.
    assert kinds == [("earn", 5, "signin"), ("earn", 5, "signin"), ("spend", -3, "signin:makeup"),
                     ("earn", 5, "signin"), ("earn", 40, "signin:cumulative"), ("earn", 5, "signin")]


def test_make_up_signs_are_off_by_default(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    clock.advance(days=2)
    with pytest.raises(ValidationError, match="off"):
        ws.points_rules.make_up_sign(uid, date(2026, 6, 1))


def test_a_budget_stops_grants_when_spent(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.points_rules.configure("signin", base=10, streak_bonus={}, budget=25)
    users = [ws.users.add().id for _ in range(4)]
    results = [ws.points_rules.sign_in(u)[1] for u in users]
    assert [e.amount if e else 0 for e in results] == [10, 10, 0, 0]
    assert [len(ws.points_rules.signs(u)) for u in users] == [1, 1, 1, 1]  # the signs are recorded
    with ws.read() as tx:
        assert tx.benefits.budget_used("rule:signin") == 20


def test_bad_configuration_is_refused(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError):
        ws.points_rules.configure("signin", mode="fortnight")
    with pytest.raises(ValidationError):
        ws.points_rules.configure("signin", makeup_limit=-1)
