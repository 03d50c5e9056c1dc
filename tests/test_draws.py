"""抽奖 / 盲盒 draws: odds, stock, limits, pity, idempotency, legal checks, commit-reveal.

1,000 concurrent draws against a stock-5 prize (real processes) are in test_activities_races.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import siyu
from siyu.activities.draws import verify_records
from siyu.activities.fairness import commitment, pick
from siyu.errors import (
    ActivityClosed,
    ConsentRequired,
    IdempotencyConflict,
    InsufficientPoints,
    PolicyViolation,
    QuotaExceeded,
    ValidationError,
)
from siyu.models.activities import DrawStatus
from siyu.testing import FakeClock

RULES = {"organizer": "Leaf & Cup Tea Co.", "contact": "400-000-0000", "participation": "members, once a day",
         "claim": "credited at once; goods claimed within 30 days", "delivery": "points and coupons to the account",
         "forfeit": "goods not claimed in 30 days", "terms": "points never expire; coupons valid 30 days"}
PRIZES: list[dict[str, Any]] = [
    {"name": "未中奖", "kind": "miss", "weight": 60},
    {"name": "10 points", "kind": "points", "weight": 30, "points": 10, "value": "0.10"},
    {"name": "100 points", "kind": "points", "weight": 9, "points": 100, "value": "1", "stock": 50},
    {"name": "Teapot", "kind": "product", "weight": 1, "sku": "POT", "value": "199", "stock": 1},
]


def _users(ws: siyu.Workspace, n: int) -> list[int]:
    return [ws.users.add(phone=f"1350013{i:04d}").id for i in range(n)]


def _draw(ws: siyu.Workspace, clock: FakeClock, *, publish: bool = True, **options: Any) -> int:
    ws.products.add("POT", "Clay teapot", price="199", cost="60", role="activity")
    args: dict[str, Any] = {"prizes": PRIZES, "starts_at": clock.now, "ends_at": clock.now + timedelta(days=3),
                            "rules": RULES}
    args.update(options)
    draw = ws.draws.create("Spring draw", **args)
    if publish:
        ws.draws.publish(draw.id)
    return draw.id


def test_a_million_seeded_draws_follow_the_stated_odds() -> None:
    """χ² goodness of fit of 10⁶ draws from one seed against weights 60/30/9/1: below the
    0.1 % critical value for 3 degrees of freedom (16.27). The seed is fixed: no flakes."""
    weights = [60, 30, 9, 1]
    n = 1_000_000
    counts = Counter(pick("chi-square-seed", f"draw:1:user:{i % 1000}:seq:{i // 1000}", weights)
                     for i in range(n))
    total = sum(weights)
    chi2 = sum((counts[k] - n * w / total) ** 2 / (n * w / total) for k, w in enumerate(weights))
    assert chi2 < 16.27, (chi2, counts)


@given(st.lists(st.integers(0, 50), min_size=1, max_size=12).filter(lambda w: sum(w) > 0), st.text(max_size=20))
def test_pick_always_lands_in_a_bucket_with_weight(weights: list[int], message: str) -> None:
    index = pick("seed", message, weights)
    assert 0 <= index < len(weights) and weights[index] > 0
    assert pick("seed", message, weights) == index


def test_draws_are_idempotent_limited_per_day_and_charge_once(ws: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(ws, 1)
    ws.points.earn(uid, 100, reason="gift", key="g")
    did = _draw(ws, clock, cost_points=10, per_user_day=3)
    first = ws.draws.draw(did, uid, key="tap-1")
    assert ws.draws.draw(did, uid, key="tap-1") == first
    ws.draws.draw(did, uid, key="tap-2")
    ws.draws.draw(did, uid, key="tap-3")
    with pytest.raises(QuotaExceeded, match="00:00"):
        ws.draws.draw(did, uid, key="tap-4")
    records = ws.draws.records(did, user_id=uid)
    assert [r.seq for r in records] == [1, 2, 3]
    spent = 30
    won = sum(PRIZES[r.prize].get("points", 0) for r in records)
    assert ws.points.balance(uid) == 100 - spent + won
    # The day starts again at 00:00 Shanghai (16:00 UTC).
    clock.now = clock.now.replace(hour=15, minute=59)
    with pytest.raises(QuotaExceeded):
        ws.draws.draw(did, uid, key="tap-5")
    clock.now = clock.now.replace(hour=16, minute=0)
    ws.draws.draw(did, uid, key="tap-6")
    with pytest.raises(IdempotencyConflict):
        ws.draws.draw(_draw(ws, clock), uid, key="tap-6")  # the key of another activity


def test_points_cost_is_all_or_nothing(ws: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(ws, 1)
    did = _draw(ws, clock, cost_points=10)
    with pytest.raises(InsufficientPoints):
        ws.draws.draw(did, uid, key="broke")
    assert ws.draws.records(did) == []


def test_pity_means_no_user_misses_n_times_in_a_row(ws: siyu.Workspace, clock: FakeClock) -> None:
    users = _users(ws, 20)
    did = _draw(ws, clock, pity=3, prizes=[{"name": "未中奖", "kind": "miss", "weight": 95},
                                          {"name": "5 points", "kind": "points", "weight": 5, "points": 5,
                                           "value": "0.05"}])
    for uid in users:
        run = 0
        for n in range(12):
            rec = ws.draws.draw(did, uid, key=f"{uid}-{n}")
            run = run + 1 if rec.prize == 0 else 0
            assert run < 3
    assert any(r.reason == "pity" for r in ws.draws.records(did))


def test_a_capped_prize_falls_back_to_the_disclosed_mode(ws: siyu.Workspace, clock: FakeClock) -> None:
    users = _users(ws, 30)
    prizes = [{"name": "未中奖", "kind": "miss", "weight": 1},
              {"name": "Coupon", "kind": "coupon", "weight": 99, "coupon": "draw-5off", "value": "5", "stock": 5}]
    ws.coupons.create("draw-5off", amount="5", threshold="50", per_user_limit=None)
    miss_mode = _draw(ws, clock, prizes=prizes)
    outcomes = [ws.draws.draw(miss_mode, uid, key=f"m{uid}") for uid in users]
    assert sum(1 for r in outcomes if r.prize == 1) == 5
    assert ws.draws.prizes_left(miss_mode)["Coupon"] == 0
    assert {r.reason for r in outcomes if r.prize == 0 and r.rolled == 1} == {"exhausted"}
    assert sum(len(ws.coupons.of(uid)) for uid in users) == 5  # delivered through ws.coupons
    text = ws.draws.disclosure(miss_mode)
    assert "抽中该奖品视为未中奖" in text and "共 5 份" in text and "99.0000%" in text


def test_blind_box_redraws_among_what_is_left_and_checks_age(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.products.add("FIG-A", "Figure A", price="59", cost="20", role="activity")
    ws.products.add("FIG-B", "Figure B", price="59", cost="20", role="activity")
    users = _users(ws, 6)
    did = _draw(ws, clock, blind_box=True, exhausted="redraw", prizes=[
        {"name": "Figure A", "kind": "product", "sku": "FIG-A", "weight": 1, "stock": 2, "value": "59"},
        {"name": "Figure B", "kind": "product", "sku": "FIG-B", "weight": 1, "stock": 2, "value": "59"}])
    with pytest.raises(PolicyViolation, match="under 8"):
        ws.draws.draw(did, users[0], key="kid", age=7)
    with pytest.raises(ConsentRequired):
        ws.draws.draw(did, users[0], key="teen", age=15)
    won = [ws.draws.draw(did, uid, key=f"b{uid}", age=15, guardian_consent=True).prize for uid in users[:4]]
    assert sorted(won) == [0, 0, 1, 1]  # exactly the pool's composition
    with pytest.raises(siyu.errors.SoldOut):
        ws.draws.draw(did, users[4], key="none-left", age=30)
    assert ws.draws.get(did).odds() == [("Figure A", pytest.approx(0.5)), ("Figure B", pytest.approx(0.5))]


def test_publishing_checks_the_cap_and_the_required_disclosures(ws: siyu.Workspace, clock: FakeClock) -> None:
    car = {"name": "Car", "kind": "product", "sku": "POT", "weight": 1, "value": "50000.01", "stock": 1}
    too_big = _draw(ws, clock, publish=False, prizes=[PRIZES[0], car])
    with pytest.raises(PolicyViolation, match=r"50000\.00 yuan cap"):
        ws.draws.publish(too_big)
    assert ws.draws.get(too_big).status is DrawStatus.DRAFT
    silent = _draw(ws, clock, publish=False, rules={k: v for k, v in RULES.items() if k != "forfeit"})
    with pytest.raises(PolicyViolation, match="弃奖条件"):
        ws.draws.publish(silent)
    with pytest.raises(ActivityClosed, match="only a published draw"):
        ws.draws.draw(silent, _users(ws, 1)[0], key="early")
    published = ws.draws.publish(_draw(ws, clock, publish=False))
    assert published.commitment is not None and published.seed is None
    with pytest.raises(PolicyViolation, match="cannot change"):
        ws.draws.publish(published.id)
    with pytest.raises(ValidationError, match="float"):
        _draw(ws, clock, prizes=[{"name": "x", "kind": "points", "weight": 1, "points": 1, "value": 1.5}])


def test_commit_reveal_lets_anyone_recompute_every_draw(ws: siyu.Workspace, clock: FakeClock) -> None:
    users = _users(ws, 5)
    did = _draw(ws, clock, pity=2)
    commitment_before = ws.draws.get(did).commitment
    for uid in users:
        for n in range(4):
            ws.draws.draw(did, uid, key=f"{uid}:{n}")
    with pytest.raises(ActivityClosed, match="after it ended"):
        ws.draws.reveal(did)
    clock.advance(timedelta(days=3))
    revealed = ws.draws.reveal(did)
    assert revealed.seed is not None and commitment(revealed.seed) == commitment_before
    report = ws.draws.verify(did)
    assert report.ok and report.checked == 20, report.problems
    # A record altered after the fact (a prize steered to someone) is caught.
    records = ws.draws.records(did)
    import attrs

    forged = [attrs.evolve(records[0], prize=3, reason="roll"), *records[1:]]
    assert not verify_records(revealed, revealed.seed, forged).ok
    assert not verify_records(revealed, "another seed", records).ok


def test_each_paid_order_is_worth_one_draw(ws: siyu.Workspace, clock: FakeClock) -> None:
    [uid, other] = _users(ws, 2)
    did = _draw(ws, clock, per_order=True)
    order = ws.orders.record(uid, [{"sku": "POT", "qty": 1}])
    with pytest.raises(ValidationError, match="order_id"):
        ws.draws.draw(did, uid, key="no-order")
    with pytest.raises(PolicyViolation, match="belongs to user"):
        ws.draws.draw(did, other, key="not-mine", order_id=order.id)
    ws.draws.draw(did, uid, key="first", order_id=order.id)
    left = ws.draws.prizes_left(did)
    with pytest.raises(IdempotencyConflict, match="already used"):
        ws.draws.draw(did, uid, key="second", order_id=order.id)
    assert ws.draws.prizes_left(did) == left and len(ws.draws.records(did)) == 1
