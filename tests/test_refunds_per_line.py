"""Refunds take back what the refunded lines earned: points, growth value and commissions per line."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.models.commerce import Refund
from siyu.testing import FakeClock

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _shop(ws: siyu.Workspace) -> tuple[int, int, int]:
    """TEA (profit), CUP (traffic: no points, no commission), POT (activity); a -> b -> buyer."""
    ws.products.add("TEA", "Oolong", price="100", cost="40", role="profit")
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role="traffic")
    ws.products.add("POT", "Teapot", price="300", cost="100", role="activity")
    a, b, buyer = ws.users.add_many([{}, {}, {}])
    ws.referrals.bind(b, inviter_id=a)
    ws.referrals.bind(buyer, inviter_id=b)
    return a, b, buyer


@pytest.fixture
def ws() -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=FakeClock(START)) as workspace:
        yield workspace


def _commissions(ws: siyu.Workspace, order_id: int) -> list[int]:
    return [int(e.amount * 100) for e in ws.referrals.commissions.of_order(order_id)]


def test_refunding_a_traffic_item_takes_back_none_of_the_profit_items_points(ws: siyu.Workspace) -> None:
    _, _, buyer = _shop(ws)
    order = ws.orders.record(buyer, [{"sku": "TEA", "qty": 1}, {"sku": "CUP", "qty": 2}])
    assert ws.points.balance(buyer) == 100  # the cups earned nothing
    refund = ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="one cup")
    assert (refund.points_reversed, refund.points_shortfall) == (0, 0)
    assert ws.points.balance(buyer) == 100


def test_a_fixture_shop_whose_reversals_are_computed_by_hand(ws: siyu.Workspace) -> None:
    a, b, buyer = _shop(ws)
    order = ws.orders.record(buyer, [{"sku": "TEA", "qty": 2}, {"sku": "CUP", "qty": 2}, {"sku": "POT", "qty": 1}])
    assert order.total_fen == 51980
    # Points, 1 a yuan, none on traffic: TEA 200, CUP 0, POT 300.
    assert [ln.points for ln in order.lines] == [200, 0, 300] and order.points == 500
    # Growth, 1 a yuan of the order: 519, split by money: 199.69 / 19.77 / 299.54 -> 199, 19, 299,
    # and the 2 left over to the largest remainders (CUP .77, TEA .69).
    assert [ln.growth for ln in order.lines] == [200, 20, 299] and order.growth == 519
    # Commissions, 10 % to b and 5 % to a of TEA + POT (traffic excluded): 5000 = 2000 + 3000; 2500 = 1000 + 1500.
    [to_b, to_a] = ws.referrals.commissions.of_order(order.id)
    assert (to_b.distributor_id, to_a.distributor_id) == (b, a)
    assert [(x.line_no, x.earned) for x in to_b.lines] == [(0, Decimal("20.00")), (2, Decimal("30.00"))]
    assert [(x.line_no, x.earned) for x in to_a.lines] == [(0, Decimal("10.00")), (2, Decimal("15.00"))]

    def check(refund: Refund, points: int, growth: int, effects: tuple[tuple[int, int, int], ...],
              commissions: list[int]) -> None:
        assert (refund.points_reversed, refund.growth_reversed, refund.line_effects) == (points, growth, effects)
        assert _commissions(ws, order.id) == commissions

    # 1. One cup of two: it earned 0 points and 20 growth; half comes back. No commission on it.
    check(ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="r1"), 0, 10, ((1, 0, 10),), [5000, 2500])
    # 2. One tea of two: half of its 200 points and 200 growth; what is left of its commission is
    #    the rate times the 100.00 kept: 10.00 (of 20.00) and 5.00 (of 10.00).
    check(ws.orders.refund(order.id, [{"sku": "TEA", "qty": 1}], key="r2"), 100, 100, ((0, 100, 100),),
          [4000, 2000])
    # 3. 30.00 spread over what is left (100.00 / 9.90 / 300.00): 7.32, 0.72, 21.96.
    #    TEA: 107.32 of 200.00 back -> floor(200 x .5366) = 107 points and growth, 7 more.
    #    CUP: 10.62 of 19.80 (.5364) is more than its one unit of two -> floor(20 x .5364) = 10 growth, 0 more.
    #    POT: 21.96 of 300.00 (.0732) -> floor(300 x .0732) = 21 points, floor(299 x .0732) = 21 growth.
    #    Commissions left: TEA 92.68 kept -> 9.26 and 4.63; POT 278.04 kept -> 27.80 and 13.90.
    check(ws.orders.refund(order.id, "30.00", key="r3"), 28, 28, ((0, 7, 7), (2, 21, 21)),
          [926 + 2780, 463 + 1390])
    # 4. The rest: everything still held comes back, to the point.
    check(ws.orders.refund(order.id, key="r4"), 500 - 128, 519 - 138, ((0, 93, 93), (1, 0, 10), (2, 279, 278)),
          [0, 0])
    assert ws.points.balance(buyer) == 0 and ws.tiers.growth(buyer) == 0
    assert [r.line_effects for r in ws.orders.refunds(order.id)][1] == ((0, 100, 100),)  # as stored


def test_a_fully_refunded_line_takes_back_only_its_own_commission(ws: siyu.Workspace) -> None:
    # Two lines of 0.15 at 10 %: 0.03 split 0.02 / 0.01. Refunding the second line takes back
    # its 0.01, not the whole entry's floor(0.15 x 10 %) = 0.01 kept -> 0.02 back.
    ws.products.add("A", "a", price="0.15", cost="0.05", role="profit")
    ws.products.add("B", "b", price="0.15", cost="0.05", role="profit")
    inviter, buyer = ws.users.add_many([{}, {}])
    ws.referrals.bind(buyer, inviter_id=inviter)
    ws.referrals.commissions.configure(rates=["0.10"])
    order = ws.orders.record(buyer, [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 1}])
    assert _commissions(ws, order.id) == [3]
    ws.orders.refund(order.id, [{"sku": "B", "qty": 1}], key="b")
    assert _commissions(ws, order.id) == [2]


def test_orders_from_before_the_upgrade_keep_the_proportional_reversal(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with siyu.connect(f"sqlite:///{path}", clock=FakeClock(START)) as ws:
        _, _, buyer = _shop(ws)
        order = ws.orders.record(buyer, [{"sku": "TEA", "qty": 1}, {"sku": "CUP", "qty": 2}])
    db = sqlite3.connect(path)  # as a siyu from before commerce migration 3 and fission migration 3 left it
    for table, column in (("order_lines", "points"), ("order_lines", "growth"), ("order_refunds", "effects"),
                          ("commission_entries", "lines"), ("products", "loss_budget"), ("products", "loss_used"),
                          ("order_lines", "loss"), ("group_buys", "loss_fen")):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute("UPDATE siyu_schema SET version = 2 WHERE component IN ('commerce', 'fission')")
    db.commit()
    db.close()
    with siyu.connect(f"sqlite:///{path}", clock=FakeClock(START)) as ws:
        old = ws.orders.get(order.id)
        assert all(ln.points is None and ln.growth is None for ln in old.lines)
        assert all(e.lines == () for e in ws.referrals.commissions.of_order(order.id))
        # As before: 100 points and 119 growth taken back in proportion to 9.90 of 119.80.
        refund = ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="cup")
        assert (refund.points_reversed, refund.growth_reversed, refund.line_effects) == (8, 9, ())
        assert ws.orders.refund(order.id, key="rest").points_reversed == 92
        assert ws.points.balance(buyer) == 0
        # A new order on the upgraded database keeps its lines' own.
        new = ws.orders.record(buyer, [{"sku": "TEA", "qty": 1}, {"sku": "CUP", "qty": 2}])
        assert ws.orders.refund(new.id, [{"sku": "CUP", "qty": 1}], key="new cup").points_reversed == 0


# -- properties -----------------------------------------------------------------------------------
_SKUS = ("TEA", "CUP", "POT")
_refund = st.one_of(
    st.tuples(st.just("units"), st.sampled_from(_SKUS), st.integers(1, 3)),
    st.tuples(st.just("money"), st.integers(1, 40_000)),
)


@settings(max_examples=40, deadline=None)
@given(
    qty=st.fixed_dictionaries({sku: st.integers(0, 3) for sku in _SKUS}),
    excluded=st.sets(st.sampled_from(["traffic", "profit", "activity"])),
    multiplier=st.sampled_from(["1", "1.5", "0.7"]),
    steps=st.lists(_refund, max_size=6),
)
def test_reversals_never_exceed_what_a_line_earned_and_a_full_refund_leaves_zero(
    qty: dict[str, int], excluded: set[str], multiplier: str, steps: list[tuple[object, ...]]
) -> None:
    if not any(qty.values()):
        qty["CUP"] = 1
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        _, _, buyer = _shop(ws)
        ws.tiers.define("gold", 1, benefits={"points_multiplier": multiplier})
        ws.tiers.add_growth(buyer, 1, reason="welcome", key="welcome")  # gold before the order: its multiplier
        ws.referrals.commissions.configure(excluded_roles=sorted(excluded))
        order = ws.orders.record(buyer, [{"sku": s, "qty": n} for s, n in qty.items() if n])
        assert sum(ln.points or 0 for ln in order.lines) == order.points
        assert sum(ln.growth or 0 for ln in order.lines) == order.growth
        entries = ws.referrals.commissions.of_order(order.id)
        assert all(sum(x.earned for x in e.lines) == e.original for e in entries)
        back_points = [0] * len(order.lines)
        back_growth = [0] * len(order.lines)
        for n, step in enumerate(steps):
            now = ws.orders.get(order.id)
            if now.status == "refunded":
                break
            if step[0] == "units":
                line = next((ln for ln in now.lines if ln.sku == step[1]), None)
                if line is None or line.refunded_qty == line.qty:
                    continue
                what: object = [{"sku": line.sku, "qty": min(int(step[2]), line.qty - line.refunded_qty)}]  # type: ignore[call-overload]
            else:
                left = now.total_fen - now.refunded_fen
                if left <= 0:
                    continue
                what = Decimal(min(int(step[1]), left)) / 100  # type: ignore[call-overload]
            refund = ws.orders.refund(order.id, what, key=f"k{n}")
            assert refund.points_reversed + refund.points_shortfall == sum(p for _, p, _ in refund.line_effects)
            assert refund.growth_reversed == sum(g for _, _, g in refund.line_effects)
            for line_no, points, growth in refund.line_effects:
                back_points[line_no] += points
                back_growth[line_no] += growth
            for line, p, g in zip(order.lines, back_points, back_growth, strict=True):
                assert 0 <= p <= (line.points or 0) and 0 <= g <= (line.growth or 0)
            for e in ws.referrals.commissions.of_order(order.id):
                assert all(Decimal(0) <= x.amount <= x.earned for x in e.lines)
                assert e.amount == sum(x.amount for x in e.lines)
        if ws.orders.get(order.id).status != "refunded":
            last = ws.orders.refund(order.id, key="rest")
            for line_no, points, growth in last.line_effects:
                back_points[line_no] += points
                back_growth[line_no] += growth
        # Refunds adding up to the whole order took back exactly what each line earned.
        assert back_points == [ln.points for ln in order.lines]
        assert back_growth == [ln.growth for ln in order.lines]
        assert ws.points.balance(buyer) == 0 and ws.tiers.growth(buyer) == 1
        assert all(e.amount == 0 and e.status == "voided" for e in ws.referrals.commissions.of_order(order.id))
        assert ws.observer_errors == []
