"""Prices set on a product -- list, member, 拼团 -- go through one margin guard; price= and cost= by keyword."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import siyu
from siyu.errors import MarginViolation, NotFound, PriceBelowFloor, ValidationError
from siyu.testing import FakeClock

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ws(clock: FakeClock) -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=clock) as workspace:
        yield workspace


def _unchanged(ws: siyu.Workspace, sku: str) -> None:
    with pytest.raises(NotFound):
        ws.products.get(sku)


def test_price_and_cost_are_keywords(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError, match=r"price=\.\.\., cost=\.\.\."):
        ws.products.add("TEA", "Oolong", "100", "40", role="profit")  # type: ignore[misc]
    with pytest.raises(ValidationError, match="needs price"):
        ws.products.add("TEA", "Oolong", price="100")
    _unchanged(ws, "TEA")
    tea = ws.products.add("TEA", "Oolong", price="100", cost="40", role="profit")
    assert (tea.price, tea.cost) == (Decimal("100.00"), Decimal("40.00"))
    with pytest.raises(ValidationError, match="by keyword"):
        ws.products.update("TEA", "90")  # type: ignore[misc]


def test_a_profit_item_below_cost_is_refused_with_its_own_error(ws: siyu.Workspace) -> None:
    with pytest.raises(PriceBelowFloor, match=r"price 3\.00 is below its floor 5\.00.*not swapped") as refused:
        ws.products.add("TEA", "Oolong", price="3", cost="5", role="profit")
    assert (refused.value.sku, refused.value.price_fen, refused.value.floor_fen) == ("TEA", 300, 500)
    _unchanged(ws, "TEA")


def test_the_error_names_the_price_not_a_coupon_that_happens_to_exist(ws: siyu.Workspace) -> None:
    ws.coupons.create("满100减10", amount="10", threshold="100", valid_days=7)
    with pytest.raises(PriceBelowFloor) as refused:
        ws.products.add("TEA", "Oolong", price="3", cost="5", role="profit")
    assert "coupon" not in str(refused.value) and "price 3.00" in str(refused.value)
    _unchanged(ws, "TEA")


def test_the_margin_floor_and_member_prices_are_guarded_too(ws: siyu.Workspace) -> None:
    ws.promotions.configure(margin_floor="0.2")
    with pytest.raises(PriceBelowFloor, match=re.escape("floor 50.00")):  # 40 / (1 - 0.2)
        ws.products.add("TEA", "Oolong", price="49.99", cost="40", role="profit")
    ws.products.add("TEA", "Oolong", price="50", cost="40", role="profit", min_margin="0")
    with pytest.raises(PriceBelowFloor, match=re.escape("member price for 'gold' 39.00")):
        ws.products.add("POT", "Teapot", price="300", cost="40", role="profit", member_prices={"gold": "39"})
    _unchanged(ws, "POT")


def test_update_changes_given_fields_guarded_and_quotes_see_it(ws: siyu.Workspace) -> None:
    ws.products.add("TEA", "Oolong", price="100", cost="40", role="profit", category="tea")
    uid = ws.users.add().id
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}]).total == Decimal("100.00")
    updated = ws.products.update("TEA", price="120")
    assert (updated.price, updated.cost, updated.category) == (Decimal("120.00"), Decimal("40.00"), "tea")
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}]).total == Decimal("120.00")
    with pytest.raises(PriceBelowFloor):
        ws.products.update("TEA", cost="130")
    assert ws.products.get("TEA").cost == Decimal("40.00")
    with pytest.raises(NotFound):
        ws.products.update("NOPE", price="1")


def test_a_margin_floor_that_would_expose_a_list_price_is_refused(ws: siyu.Workspace) -> None:
    ws.products.add("TEA", "Oolong", price="100", cost="60", role="profit")
    with pytest.raises(PriceBelowFloor, match="TEA"):
        ws.promotions.configure(margin_floor="0.5")
    assert ws.promotions.rules().margin_floor == Decimal(0)


def test_traffic_and_activity_items_sell_at_a_loss_only_within_their_loss_budget(ws: siyu.Workspace) -> None:
    with pytest.raises(PriceBelowFloor, match="loss_budget"):
        ws.products.add("CUP", "Sample cup", price="1", cost="5", role="traffic")
    with pytest.raises(ValidationError, match="only traffic and activity"):
        ws.products.add("TEA", "Oolong", price="1", cost="5", role="profit", loss_budget="100")
    cup = ws.products.add("CUP", "Sample cup", price="1", cost="5", role="traffic", loss_budget="10")
    assert (cup.loss_budget, cup.loss_used_fen) == (Decimal("10.00"), 0)
    uid = ws.users.add().id
    quote = ws.promotions.quote(uid, [{"sku": "CUP", "qty": 2}])
    assert quote.total == Decimal("2.00") and "loss budget" in quote.explain()
    first = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}])  # 2 x (5.00 - 1.00) = 8.00 of 10.00
    assert first.total == Decimal("2.00") and first.lines[0].loss_fen == 800
    assert ws.products.get("CUP").loss_used_fen == 800
    second = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}])  # 2.00 left: 10.00 - 2.00 = 8.00 for two
    assert second.total == Decimal("8.00") and ws.products.get("CUP").loss_left_fen == 0
    assert ws.orders.record(uid, [{"sku": "CUP", "qty": 1}]).total == Decimal("5.00")  # spent: the floor
    ws.orders.refund(first.id, [{"sku": "CUP", "qty": 1}], key="one cup back")
    assert ws.products.get("CUP").loss_used_fen == 600
    # Re-adding the product keeps what orders used of its budget.
    assert ws.products.add("CUP", "Sample cup", price="1", cost="5", role="traffic", loss_budget="10").loss_used_fen \
        == 600


def test_a_batch_never_spends_more_loss_budget_than_there_is(ws: siyu.Workspace) -> None:
    ws.products.add("POT", "Teapot", price="50", cost="100", role="activity", loss_budget="120")
    users = ws.users.add_many([{}, {}, {}])
    ids = ws.orders.record_many([{"user_id": u, "lines": [{"sku": "POT", "qty": 1}]} for u in users])
    assert [ws.orders.get(i).total for i in ids] == [Decimal("50.00"), Decimal("50.00"), Decimal("80.00")]
    assert ws.products.get("POT").loss_used_fen == 12000


def test_a_batch_spends_a_loss_leaders_budget_as_orders_one_at_a_time_do(ws: siyu.Workspace) -> None:
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role="traffic")
    ws.promotions.activity("1元", {"CUP": "1"}, loss_leader=True, budget="10")
    users = ws.users.add_many([{}, {}, {}])
    ids = ws.orders.record_many([{"user_id": u, "lines": [{"sku": "CUP", "qty": 2}]} for u in users])
    # 2 x 4.00 below the floor, then the 2.00 left, then none: as three record() calls price them.
    assert [ws.orders.get(i).total for i in ids] == [Decimal("2.00"), Decimal("8.00"), Decimal("10.00")]
    assert [a.budget_used_fen for a in ws.promotions.activities()] == [1000]


def test_offers_leave_a_loss_priced_item_at_its_own_price(ws: siyu.Workspace) -> None:
    ws.products.add("CUP", "Sample cup", price="1", cost="5", role="traffic", loss_budget="10")
    ws.products.add("TEA", "Oolong", price="100", cost="40", role="profit")
    ws.coupons.create("5折", kind="percent_off", percent=50, valid_days=7)  # store-wide: not refused for CUP
    with pytest.raises(MarginViolation, match="TEA"):
        ws.coupons.create("3折", kind="percent_off", percent=70, valid_days=7)
    uid = ws.users.add().id
    ws.coupons.issue("5折", uid)
    quote = ws.promotions.quote(uid, [{"sku": "CUP", "qty": 1}, {"sku": "TEA", "qty": 1}])
    assert [line.paid for line in quote.lines] == [Decimal("1.00"), Decimal("50.00")]  # nothing off the cup
    ws.promotions.activity("0.5元", {"CUP": "0.5"}, loss_leader=True, budget="5")  # a loss leader may, on its budget
    assert ws.promotions.quote(uid, [{"sku": "CUP", "qty": 1}]).lines[0].paid == Decimal("0.50")


def test_a_group_buy_price_goes_through_the_guard(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.products.add("POT", "Teapot", price="300", cost="100", role="profit")
    leader = ws.users.add().id
    with pytest.raises(PriceBelowFloor, match=re.escape("拼团 price 50.00")):
        ws.referrals.group_buys.open(leader, sku="POT", size=3, price="50")
    with pytest.raises(NotFound):
        ws.referrals.group_buys.open(leader, sku="NOPE", size=3, price="50")
    assert ws.referrals.group_buys.of_user(leader) == []
    ws.products.add("POT", "Teapot", price="300", cost="100", role="activity", loss_budget="200")
    with pytest.raises(PriceBelowFloor, match=re.escape("loses 250.00 and 200.00 is left")):
        ws.referrals.group_buys.open(leader, sku="POT", size=5, price="50")
    group = ws.referrals.group_buys.open(leader, sku="POT", size=4, price="50", expires_in=timedelta(hours=1))
    assert ws.products.get("POT").loss_used_fen == 20000  # the whole group's loss, held while it is open
    clock.advance(hours=2)
    assert [g.id for g in ws.referrals.group_buys.expire_due()] == [group.id]
    assert ws.products.get("POT").loss_used_fen == 0  # it failed: nobody bought at that price


def test_the_guard_is_one_function_a_flash_sale_can_call(ws: siyu.Workspace) -> None:
    ws.products.add("POT", "Teapot", price="300", cost="100", role="activity", loss_budget="100")
    ws.products.add("TEA", "Oolong", price="100", cost="40", role="profit")
    assert ws.promotions.check_price("TEA", "40") == 0
    with pytest.raises(PriceBelowFloor, match=re.escape("flash sale price 39.99")):
        ws.promotions.check_price("TEA", "39.99", what="flash sale price")
    assert ws.promotions.check_price("POT", "80", units=5) == Decimal("100.00")
    with pytest.raises(PriceBelowFloor):
        ws.promotions.check_price("POT", "80", units=6)
    ws.promotions.configure(guard=False)
    assert ws.promotions.check_price("TEA", "1") == 0
