"""Refund edge cases: loss-leader budget on partial refunds, refunds after a full refund, refund keys."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import siyu
from siyu.errors import IdempotencyConflict, ValidationError
from siyu.models.commerce import ProductRole
from siyu.testing import FakeClock


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    ws = siyu.connect("memory://", clock=clock)
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role=ProductRole.TRAFFIC, category="ware")
    return ws


def _used(ws: siyu.Workspace) -> int:
    [activity] = ws.promotions.activities()
    return activity.budget_used_fen


def test_partial_refund_of_units_returns_their_budget(ws: siyu.Workspace) -> None:
    ws.promotions.activity("1元尝鲜", {"CUP": "1"}, loss_leader=True, budget="100")
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}, {"sku": "TEA", "qty": 1}])
    assert order.budget == (("activity", 1, 800),) and _used(ws) == 800  # 2 x (5.00 floor - 1.00)
    ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="one cup")
    assert _used(ws) == 400
    ws.orders.refund(order.id, [{"sku": "TEA", "qty": 1}], key="the tea")
    assert _used(ws) == 400  # the tea used no budget: the cup still sold below its floor
    ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="other cup")
    assert _used(ws) == 0


def test_partial_refund_of_money_returns_budget_in_proportion(ws: siyu.Workspace) -> None:
    ws.promotions.activity("1元尝鲜", {"CUP": "1"}, loss_leader=True, budget="100")
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "CUP", "qty": 3}])
    assert _used(ws) == 1200 and order.total == Decimal("3.00")
    ws.orders.refund(order.id, "1.00", key="a")
    assert _used(ws) == 800
    ws.orders.refund(order.id, "0.50", key="b")
    assert _used(ws) == 600
    ws.orders.refund(order.id, "1.50", key="c")
    assert _used(ws) == 0


def test_free_loss_leader_order_gets_its_budget_back(ws: siyu.Workspace) -> None:
    ws.promotions.activity("0元领", {"CUP": "0"}, loss_leader=True, budget="100")
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}])
    assert order.total_fen == 0 and _used(ws) == 1000
    ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="one")  # nothing paid, but a unit came back
    assert _used(ws) == 500
    ws.orders.refund(order.id, key="rest")
    assert _used(ws) == 0


def test_no_refund_after_a_full_refund(ws: siyu.Workspace) -> None:
    ws.promotions.activity("1元尝鲜", {"CUP": "1"}, loss_leader=True, budget="100")
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}, {"sku": "TEA", "qty": 1}])
    assert ws.orders.refund(order.id, order.total, key="all the money").full
    assert _used(ws) == 0
    for what in (None, [{"sku": "CUP", "qty": 1}]):
        with pytest.raises(ValidationError, match="fully refunded"):
            ws.orders.refund(order.id, what, key=f"again {what}")
    assert _used(ws) == 0  # the budget was not given back twice
    assert len(ws.orders.refunds(order.id)) == 1


def test_order_without_per_line_budget_returns_it_over_traffic_lines(ws: siyu.Workspace) -> None:
    ws.promotions.activity("1元尝鲜", {"CUP": "1"}, loss_leader=True, budget="100")
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}, {"sku": "CUP", "qty": 4}])
    with ws.write() as tx:  # an order stored before budgets were kept per line
        tx.execute("UPDATE orders SET budget = ? WHERE id = ?", ('[["activity", 1, 1600]]', order.id))
    assert ws.orders.get(order.id).budget == (("activity", 1, 1600),)
    ws.orders.refund(order.id, [{"sku": "TEA", "qty": 1}], key="tea")
    assert _used(ws) == 1600
    ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="cup")
    assert _used(ws) == 1200
    ws.orders.refund(order.id, key="rest")
    assert _used(ws) == 0


refund_steps = st.lists(
    st.one_of(st.integers(1, 400).map(lambda fen: ("fen", fen)),
              st.tuples(st.just("line"), st.sampled_from(["CUP", "TEA"]))),
    max_size=6,
)


@given(st.integers(1, 4), st.integers(0, 2), refund_steps)
def test_budget_returned_never_exceeds_what_was_used(cups: int, teas: int, steps: list[tuple[str, object]]) -> None:
    from datetime import UTC, datetime

    ws = siyu.connect("memory://", clock=FakeClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)))
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role=ProductRole.TRAFFIC, category="ware")
    ws.promotions.activity("1元尝鲜", {"CUP": "1"}, loss_leader=True, budget="100")
    uid = ws.users.add().id
    lines = [{"sku": "CUP", "qty": cups}] + ([{"sku": "TEA", "qty": teas}] if teas else [])
    order = ws.orders.record(uid, lines)
    used = _used(ws)
    assert used == cups * 400
    for n, (kind, value) in enumerate(steps):
        what: object = Decimal(value) / 100 if kind == "fen" else [{"sku": value, "qty": 1}]  # type: ignore[operator]
        try:
            ws.orders.refund(order.id, what, key=f"s{n}")
        except ValidationError:
            continue
        now = _used(ws)
        assert 0 <= now <= used  # only ever given back, never more than was used
        used = now
    ws.orders.refund(order.id, key="rest") if ws.orders.get(order.id).status != "refunded" else None
    assert _used(ws) == 0


def test_refund_key_repeat_with_the_same_amount_written_differently(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}])
    first = ws.orders.refund(order.id, Decimal("10"), key="r")
    for same in (Decimal("10.00"), "10.0", 10, " 10 "):
        assert ws.orders.refund(order.id, same, key="r") == first
    with pytest.raises(IdempotencyConflict):
        ws.orders.refund(order.id, "10.01", key="r")
    assert ws.orders.get(order.id).refunded_fen == 1000


def test_refund_of_an_empty_list_says_so(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}])
    with pytest.raises(ValidationError, match="empty"):
        ws.orders.refund(order.id, [], key="r")


def test_unmerge_takes_back_the_growth_a_refund_after_the_merge_reversed(ws: siyu.Workspace) -> None:
    kept, dropped = ws.users.add().id, ws.users.add().id
    order = ws.orders.record(dropped, [{"sku": "TEA", "qty": 1}])
    ws.orders.record(kept, [{"sku": "TEA", "qty": 2}])
    merge = ws.users.merge(keep=kept, drop=dropped)
    assert ws.tiers.growth(kept) == 300
    ws.orders.refund(order.id, "40", key="part")  # the refund of dropped's order is booked on kept
    assert ws.tiers.growth(kept) == 260
    ws.users.unmerge(merge.id)
    assert (ws.tiers.growth(dropped), ws.tiers.growth(kept)) == (60, 200)
