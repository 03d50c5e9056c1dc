"""Recording orders: idempotency keys on retries, amounts too large to store."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

import siyu
from siyu.errors import IdempotencyConflict, InvalidMoney
from siyu.models.commerce import ProductRole
from siyu.testing import FakeClock


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    ws = siyu.connect("memory://", clock=clock)
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role=ProductRole.TRAFFIC, category="ware")
    return ws


def test_a_keyed_retry_later_returns_the_first_order(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    first = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key="k")
    clock.advance(seconds=30)  # the client timed out and retries
    assert ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key="k") == first
    assert ws.orders.record_many([{"user_id": uid, "lines": [{"sku": "TEA"}], "key": "k"}]) == [first.id]
    assert len(ws.orders.of(uid)) == 1 and ws.points.balance(uid) == 100


def test_a_keyed_retry_may_name_the_same_instant_in_another_zone(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    paid = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    first = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], paid_at=paid, key="k")
    again = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], paid_at=paid.astimezone(ZoneInfo("Asia/Shanghai")),
                             key="k")
    assert again == first
    with pytest.raises(IdempotencyConflict):  # another instant is another order
        ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], paid_at=datetime(2026, 11, 20, 5, tzinfo=UTC), key="k")


def test_a_keyed_retry_may_list_the_coupons_in_another_order(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.promotions.configure(combinable=[("activity", "coupon"), ("coupon", "platform")])
    ws.coupons.create("10off", amount="10", threshold="100")
    ws.coupons.create("5off", amount="5", threshold="50", group="platform")
    [a] = ws.coupons.issue("10off", uid)
    [b] = ws.coupons.issue("5off", uid)
    first = ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], coupon=[a.code, b.code], key="k")
    assert first.total_fen == 18500
    assert ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], coupon=[b.code, a.code], key="k") == first


@pytest.mark.parametrize("lines", [
    [{"sku": "TEA", "qty": 2, "unit_price": "90000000000000000"}],
    [{"sku": "TEA", "qty": 100_000, "unit_price": "900000000000000"}],
    [{"sku": "TEA", "qty": 1, "unit_price": "50000000000000000"},
     {"sku": "CUP", "qty": 1, "unit_price": "50000000000000000"}],
])
def test_an_order_too_large_to_store_is_refused(ws: siyu.Workspace, lines: list[dict[str, object]]) -> None:
    uid = ws.users.add().id
    with pytest.raises(InvalidMoney, match="more than siyu can store"):
        ws.orders.record(uid, lines)
    with pytest.raises(InvalidMoney, match="more than siyu can store"):
        ws.promotions.quote(uid, lines)
    assert ws.orders.of(uid) == []


def test_a_catalogue_price_too_large_for_the_quantity_is_refused(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.products.add("BIG", "Everything", price="90000000000000000", cost="1", role="traffic")  # traffic: no points
    assert ws.orders.record(uid, [{"sku": "BIG", "qty": 1}]).total_fen == 9 * 10**18
    with pytest.raises(InvalidMoney, match="line 0"):
        ws.orders.record(uid, [{"sku": "BIG", "qty": 2}])
    assert len(ws.orders.of(uid)) == 1


def test_keys_stored_before_paid_at_was_compared_as_an_instant_still_match(ws: siyu.Workspace) -> None:
    from siyu.services._common import fingerprint

    uid = ws.users.add().id
    paid = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    first = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], paid_at=paid, key="k")
    old = fingerprint(uid, [{"sku": "TEA", "qty": 1}], paid.isoformat(), None, ())
    with ws.write() as tx:
        tx.execute("UPDATE orders SET fingerprint = ? WHERE id = ?", (old, first.id))
    assert ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], paid_at=paid, key="k") == first


def test_a_batch_gives_new_customer_coupons_to_first_orders_only(ws: siyu.Workspace) -> None:
    from siyu.errors import ValidationError

    uid = ws.users.add().id
    ws.coupons.create("新客1", amount="10", threshold="50", new_customers_only=True)
    ws.coupons.create("新客2", amount="10", threshold="50", new_customers_only=True)
    [a] = ws.coupons.issue("新客1", uid)
    [b] = ws.coupons.issue("新客2", uid)
    rows = [{"user_id": uid, "lines": [{"sku": "TEA"}], "coupon": a.code},
            {"user_id": uid, "lines": [{"sku": "TEA"}], "coupon": b.code}]
    with pytest.raises(ValidationError, match="new customers only"):
        ws.orders.record_many(rows)  # one call after the other refuses the second coupon too
    assert ws.orders.of(uid) == []
    [first] = ws.orders.record_many(rows[:1])
    assert ws.orders.get(first).total_fen == 9000


def test_a_coupon_outside_its_window_names_the_order_time() -> None:
    from datetime import UTC, datetime, timedelta

    import siyu
    from siyu.testing import FakeClock

    start = datetime(2026, 5, 1, tzinfo=UTC)
    with siyu.connect("memory://", clock=FakeClock(start)) as ws:
        ws.products.add("TEA", "Tea", price="100", cost="20", role="profit")
        ws.coupons.create("ten_off", amount="10", valid_days=7)
        uid = ws.users.add().id
        [coupon] = ws.coupons.issue("ten_off", uid)
        late = start + timedelta(days=30)
        window = r"not valid at 2026-05-31T00:00:00\+00:00 \(the order's paid_at\)"
        with pytest.raises(siyu.errors.ValidationError, match=window):
            ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], coupon=coupon.code, paid_at=late)
