"""砍价 bargains: the acceptance behaviours one process can show, and the cut sequence's properties.

Concurrent helpers (real processes on SQLite and PostgreSQL) are in test_activities_races.py.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import siyu
from siyu.activities.fairness import cut_sequence
from siyu.errors import (
    ActivityClosed,
    AlreadyHelped,
    BargainClosed,
    PolicyViolation,
    PriceBelowFloor,
    QuotaExceeded,
    SoldOut,
    ValidationError,
)
from siyu.models.activities import AttemptStatus
from siyu.testing import FakeClock


@pytest.fixture
def shop(ws: siyu.Workspace) -> siyu.Workspace:
    ws.products.add("POT", "Clay teapot", price="199", cost="60", role="activity")
    return ws


def _users(ws: siyu.Workspace, n: int) -> list[int]:
    return [ws.users.add(phone=f"1370013{i:04d}").id for i in range(n)]


def _bargain(ws: siyu.Workspace, clock: FakeClock, **options: object) -> int:
    args: dict[str, object] = {"sku": "POT", "floor": "99", "helpers": 3, "stock": 5, "starts_at": clock.now,
                               "ends_at": clock.now + timedelta(days=7)}
    args.update(options)
    return ws.bargains.create(**args).id  # type: ignore[arg-type]


@given(total=st.integers(1, 10**9), helps=st.integers(1, 200), seed=st.text(min_size=1, max_size=64))
def test_cut_sequence_sums_to_the_gap_with_every_cut_at_least_one_fen(total: int, helps: int, seed: str) -> None:
    if total < helps:
        with pytest.raises(ValueError, match="at least 1 fen"):
            cut_sequence(total, helps, seed)
        return
    cuts = cut_sequence(total, helps, seed)
    assert len(cuts) == helps and sum(cuts) == total and min(cuts) >= 1
    assert cut_sequence(total, helps, seed) == cuts  # the seed alone decides them


def test_cut_sequence_is_random_but_reproducible() -> None:
    a, b = cut_sequence(10_000, 5, "seed-a"), cut_sequence(10_000, 5, "seed-b")
    assert a != b
    assert a == cut_sequence(10_000, 5, "seed-a")
    # 1 fen plus 20-80 % of what is left above the reserves of the helpers still to come
    assert 1 + (10_000 - 5) * 20 // 100 <= a[0] <= 1 + (10_000 - 5) * 80 // 100


def test_exactly_n_helps_reach_the_floor_then_the_buyer_pays_it(shop: siyu.Workspace, clock: FakeClock) -> None:
    owner, *helpers = _users(shop, 5)
    bid = _bargain(shop, clock)
    attempt = shop.bargains.start(bid, owner)
    with pytest.raises(BargainClosed, match="not reached its floor"):
        shop.bargains.buy(attempt.id)
    cuts = [shop.bargains.help(attempt.id, h).cut_fen for h in helpers[:3]]
    done = shop.bargains.attempt(attempt.id)
    assert done.status is AttemptStatus.SUCCEEDED and done.current == Decimal("99.00")
    assert sum(cuts) == 10_000 and min(cuts) >= 1
    assert shop.bargains.check_sequence(done, shop.bargains.helps(attempt.id))
    with pytest.raises(BargainClosed, match="succeeded"):
        shop.bargains.help(attempt.id, helpers[3])
    order = shop.bargains.buy(attempt.id)
    assert order.total == Decimal("99.00") and shop.bargains.buy(attempt.id).id == order.id
    assert shop.bargains.attempt(attempt.id).status is AttemptStatus.BOUGHT
    assert shop.bargains.get(bid).sold == 1
    # New helpers joined the referral graph under the attempt's owner.
    assert shop.referrals.inviter_of(helpers[0]) == owner


def test_one_help_per_helper_and_a_per_activity_helper_limit(shop: siyu.Workspace, clock: FakeClock) -> None:
    a, b, helper = _users(shop, 3)
    bid = _bargain(shop, clock, helps_per_helper=1)
    first, second = shop.bargains.start(bid, a), shop.bargains.start(bid, b)
    shop.bargains.help(first.id, helper)
    with pytest.raises(AlreadyHelped):
        shop.bargains.help(first.id, helper)
    with pytest.raises(QuotaExceeded, match="already helped 1"):
        shop.bargains.help(second.id, helper)
    with pytest.raises(PolicyViolation, match="helpers are other people"):
        shop.bargains.help(first.id, a)
    assert [h.helper_id for h in shop.bargains.helps(first.id)] == [helper]
    assert shop.bargains.helps(second.id) == []


def test_attempt_deadline_and_activity_end_fail_the_attempt(shop: siyu.Workspace, clock: FakeClock) -> None:
    owner, other, *helpers = _users(shop, 5)
    bid = _bargain(shop, clock, helpers=2, attempt_ttl=timedelta(hours=24), ends_at=clock.now + timedelta(hours=30))
    slow = shop.bargains.start(bid, owner)
    clock.advance(timedelta(hours=24))
    with pytest.raises(BargainClosed, match="deadline"):
        shop.bargains.help(slow.id, helpers[0])
    late = shop.bargains.start(bid, other)  # started 6 h before the end: its deadline is the end
    assert late.deadline == shop.bargains.get(bid).ends_at
    shop.bargains.help(late.id, helpers[0])
    shop.bargains.help(late.id, helpers[1])
    clock.advance(timedelta(hours=6))
    with pytest.raises(BargainClosed, match="failed"):
        shop.bargains.buy(late.id)  # succeeded, but not bought in time
    assert shop.bargains.expire_due() == 2 and shop.bargains.expire_due() == 0
    assert {a.status for a in shop.bargains.attempts(bargain_id=bid)} == {AttemptStatus.FAILED}
    with pytest.raises(ActivityClosed):
        shop.bargains.start(bid, helpers[2])


def test_editing_the_activity_leaves_running_attempts_alone(shop: siyu.Workspace, clock: FakeClock) -> None:
    owner, newcomer, *helpers = _users(shop, 6)
    bid = _bargain(shop, clock, helpers=2, floor="99")
    running = shop.bargains.start(bid, owner)
    shop.bargains.update(bid, helpers=4, floor="150", attempt_ttl=timedelta(hours=2))
    shop.bargains.help(running.id, helpers[0])
    shop.bargains.help(running.id, helpers[1])
    assert shop.bargains.attempt(running.id).current == Decimal("99.00")  # its own rules
    later = shop.bargains.start(bid, newcomer)
    assert (later.helpers, later.floor_fen, later.deadline) == (4, 15_000, clock.now + timedelta(hours=2))
    text = shop.bargains.disclosure(bid)
    assert "邀请 4 位好友助力即可砍至 150.00 元" in text and "2 小时" in text


def test_external_link_helps_are_refused_or_flagged(shop: siyu.Workspace, clock: FakeClock) -> None:
    owner, h1, h2 = _users(shop, 3)
    strict = shop.bargains.start(_bargain(shop, clock), owner)
    with pytest.raises(PolicyViolation, match="external links"):
        shop.bargains.help(strict.id, h1, entry="wechat_link")
    assert shop.bargains.helps(strict.id) == []
    lenient = shop.bargains.start(_bargain(shop, clock, external_links="flag"), owner)
    assert shop.bargains.help(lenient.id, h2, entry="wechat_link").flagged


def test_limits_on_attempts_stock_and_the_floor(shop: siyu.Workspace, clock: FakeClock) -> None:
    owner, other, h = _users(shop, 3)
    bid = _bargain(shop, clock, helpers=1, stock=1)
    first = shop.bargains.start(bid, owner)
    with pytest.raises(QuotaExceeded, match="started 1 attempt"):
        shop.bargains.start(bid, owner)
    second = shop.bargains.start(bid, other)
    shop.bargains.help(first.id, h)
    shop.bargains.buy(first.id)
    shop.bargains.help(second.id, owner)
    with pytest.raises(SoldOut):
        shop.bargains.buy(second.id)
    assert shop.bargains.attempt(second.id).status is AttemptStatus.SUCCEEDED
    with pytest.raises(SoldOut):
        shop.bargains.start(bid, h)
    shop.products.add("CUP", "Cup", price="50", cost="40", role="profit")
    with pytest.raises(PriceBelowFloor):
        _bargain(shop, clock, sku="CUP", floor="30")
    with pytest.raises(ValidationError, match=r"cannot each cut at least 0\.01"):
        _bargain(shop, clock, floor="198.98", helpers=3)
    with pytest.raises(ValidationError, match="float"):
        _bargain(shop, clock, floor=99.0)
