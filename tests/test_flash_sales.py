"""秒杀 flash sales: the acceptance behaviours that one process can show.

The races (many processes on SQLite and PostgreSQL) are in test_activities_races.py.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import siyu
from siyu.errors import (
    ActivityClosed,
    IdempotencyConflict,
    PriceBelowFloor,
    QuotaExceeded,
    ReservationClosed,
    SoldOut,
    ValidationError,
)
from siyu.events import FlashSalePaid, FlashSaleReleased, FlashSaleReserved
from siyu.models.activities import ReservationStatus
from siyu.testing import FakeClock


@pytest.fixture
def shop(ws: siyu.Workspace, clock: FakeClock) -> siyu.Workspace:
    ws.products.add("TEA", "Oolong", price="128", cost="52", role="activity")
    return ws


def _sale(ws: siyu.Workspace, clock: FakeClock, **options: object) -> int:
    args: dict[str, object] = {"sku": "TEA", "price": "69", "stock": 10, "starts_at": clock.now,
                               "ends_at": clock.now + timedelta(hours=2)}
    args.update(options)
    return ws.flash_sales.create(**args).id  # type: ignore[arg-type]


def _users(ws: siyu.Workspace, n: int) -> list[int]:
    return [ws.users.add(phone=f"1380013{i:04d}").id for i in range(n)]


def _balanced(ws: siyu.Workspace, sale_id: int, total: int) -> None:
    sale = ws.flash_sales.get(sale_id)
    assert min(sale.stock, sale.reserved, sale.sold) >= 0
    assert sale.stock + sale.reserved + sale.sold == total


def test_reserve_then_pay_records_the_order_at_the_sale_price(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(shop, 1)
    sid = _sale(shop, clock, per_user=2)
    seen: list[object] = []
    shop.subscribe(seen.append)
    res = shop.flash_sales.reserve(sid, uid, qty=2, key="checkout-1")
    assert res.status is ReservationStatus.RESERVED and res.expires_at == clock.now + timedelta(minutes=15)
    order = shop.flash_sales.pay(res.id)
    assert order.total == Decimal("138.00") and order.lines[0].qty == 2
    assert shop.flash_sales.pay(res.id).id == order.id  # a retried payment callback
    sale = shop.flash_sales.get(sid)
    assert (sale.stock, sale.reserved, sale.sold) == (8, 0, 2)
    assert shop.flash_sales.reservation(res.id).order_id == order.id
    assert [type(e) for e in seen if type(e).__name__.startswith("FlashSale")] == [FlashSaleReserved, FlashSalePaid]


def test_the_same_key_returns_the_same_reservation_and_order(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid, other] = _users(shop, 2)
    sid = _sale(shop, clock)
    first = shop.flash_sales.reserve(sid, uid, key="k")
    assert shop.flash_sales.reserve(sid, uid, key="k") == first
    assert shop.flash_sales.pay(first.id).id == shop.flash_sales.pay(first.id).id
    with pytest.raises(IdempotencyConflict):
        shop.flash_sales.reserve(sid, other, key="k")
    assert shop.flash_sales.get(sid).sold == 1


def test_window_is_half_open_in_the_business_time_zone(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(shop, 1)
    start = clock.now + timedelta(hours=1)
    sid = _sale(shop, clock, starts_at=start, ends_at=start + timedelta(hours=1), per_user=None)
    clock.now = start - timedelta(milliseconds=1)
    with pytest.raises(ActivityClosed, match=r"has not started.*\+08:00"):
        shop.flash_sales.reserve(sid, uid, key="early")
    clock.now = start
    shop.flash_sales.reserve(sid, uid, key="on-time")
    clock.now = start + timedelta(hours=1) - timedelta(microseconds=1)
    shop.flash_sales.reserve(sid, uid, key="last-moment")
    clock.now = start + timedelta(hours=1)
    with pytest.raises(ActivityClosed, match="is over"):
        shop.flash_sales.reserve(sid, uid, key="at-end")
    _balanced(shop, sid, 10)
    assert shop.flash_sales.get(sid).reserved == 2


def test_per_user_quota_and_per_day_quota(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid, other] = _users(shop, 2)
    sid = _sale(shop, clock, per_user=3, per_user_day=2, ends_at=clock.now + timedelta(days=3))
    shop.flash_sales.reserve(sid, uid, qty=2, key="a")
    with pytest.raises(QuotaExceeded, match="a day"):
        shop.flash_sales.reserve(sid, uid, key="b")
    shop.flash_sales.reserve(sid, other, qty=2, key="other")  # another user is unaffected
    clock.advance(timedelta(days=1))
    shop.flash_sales.reserve(sid, uid, key="c")
    with pytest.raises(QuotaExceeded, match="3 unit"):
        shop.flash_sales.reserve(sid, uid, key="d")
    assert shop.flash_sales.used(sid, uid) == 3
    _balanced(shop, sid, 10)


def test_sold_out_changes_nothing(shop: siyu.Workspace, clock: FakeClock) -> None:
    users = _users(shop, 4)
    sid = _sale(shop, clock, stock=3)
    for n, uid in enumerate(users[:3]):
        shop.flash_sales.reserve(sid, uid, key=f"r{n}")
    with pytest.raises(SoldOut, match="0 unit"):
        shop.flash_sales.reserve(sid, users[3], key="late")
    assert shop.flash_sales.used(sid, users[3]) == 0  # the refused call took no quota
    assert shop.flash_sales.reservations(user_id=users[3]) == []
    _balanced(shop, sid, 3)


def test_an_unpaid_hold_is_released_once_and_a_late_payment_is_refused(shop: siyu.Workspace,
                                                                       clock: FakeClock) -> None:
    [uid, other] = _users(shop, 2)
    sid = _sale(shop, clock, stock=1, hold=timedelta(minutes=10))
    res = shop.flash_sales.reserve(sid, uid, key="slow-payer")
    clock.advance(timedelta(minutes=10))
    with pytest.raises(ReservationClosed, match="hold ran out"):
        shop.flash_sales.pay(res.id)  # the hold ended even before the release job ran
    assert shop.flash_sales.release_due() == 1
    assert shop.flash_sales.release_due() == 0  # the job run twice releases once
    assert shop.flash_sales.reservation(res.id).status is ReservationStatus.RELEASED
    with pytest.raises(ReservationClosed, match="released"):
        shop.flash_sales.pay(res.id)
    assert shop.orders.of(uid) == []
    # The unit and the first buyer's quota came back.
    assert shop.flash_sales.used(sid, uid) == 0
    taken = shop.flash_sales.reserve(sid, other, key="next-buyer")
    shop.flash_sales.pay(taken.id)
    sale = shop.flash_sales.get(sid)
    assert (sale.stock, sale.reserved, sale.sold) == (0, 0, 1)


def test_cancel_and_refund_restore_stock_and_quota_once(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(shop, 1)
    sid = _sale(shop, clock)
    unpaid = shop.flash_sales.reserve(sid, uid, key="u")
    released: list[FlashSaleReleased] = []
    shop.subscribe(lambda e: released.append(e) if isinstance(e, FlashSaleReleased) else None)
    shop.flash_sales.cancel(unpaid.id)
    shop.flash_sales.cancel(unpaid.id)
    paid = shop.flash_sales.reserve(sid, uid, key="p")
    order = shop.flash_sales.pay(paid.id)
    shop.flash_sales.cancel(paid.id)
    shop.flash_sales.cancel(paid.id)
    assert shop.orders.get(order.id).refunded == order.total
    # A refund made straight through ws.orders gives the units back too (through the event log).
    again = shop.flash_sales.reserve(sid, uid, key="q")
    order2 = shop.flash_sales.pay(again.id)
    shop.orders.refund(order2.id, key="refund-q")
    assert [e.reason for e in released] == ["cancelled", "refunded", "refunded"]
    assert shop.flash_sales.used(sid, uid) == 0
    sale = shop.flash_sales.get(sid)
    assert (sale.stock, sale.reserved, sale.sold) == (10, 0, 0)


def test_price_below_the_floor_needs_a_loss_budget_or_a_clearance_reason(ws: siyu.Workspace,
                                                                         clock: FakeClock) -> None:
    ws.products.add("MUG", "Mug", price="60", cost="40", role="profit")
    ws.products.add("PEACH", "Peaches", price="30", cost="20", role="activity", loss_budget="50")
    with pytest.raises(PriceBelowFloor, match="clearance="):
        _sale(ws, clock, sku="MUG", price="35")
    assert ws.flash_sales.sales() == []
    cleared = ws.flash_sales.create(sku="MUG", price="35", stock=5, starts_at=clock.now,
                                    ends_at=clock.now + timedelta(hours=1), clearance="overstock")
    assert cleared.clearance == "overstock"
    with pytest.raises(ValidationError, match="clearance must be one of"):
        _sale(ws, clock, sku="MUG", price="35", clearance="because")
    # 10 units 5 yuan below cost lose 50: exactly the budget, which the sale then holds.
    held = ws.flash_sales.create(sku="PEACH", price="15", stock=10, starts_at=clock.now,
                                 ends_at=clock.now + timedelta(hours=1))
    assert held.loss_fen == 5000
    assert ws.products.get("PEACH").loss_left_fen == 0
    with pytest.raises(PriceBelowFloor):
        _sale(ws, clock, sku="PEACH", price="15", stock=1)


def test_the_crossed_out_price_must_be_a_real_recent_price(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(shop, 1)
    shop.orders.record(uid, [{"sku": "TEA", "qty": 1, "unit_price": "99"}], paid_at=clock.now - timedelta(days=3))
    with pytest.raises(ValidationError, match=r"lowest price it sold at in the 7 days.*99\.00"):
        _sale(shop, clock, base_price="128")
    assert _sale(shop, clock, base_price="99")
    labelled = shop.flash_sales.create(sku="TEA", price="69", stock=1, starts_at=clock.now,
                                       ends_at=clock.now + timedelta(hours=1), base_price="128",
                                       base_label="建议零售价")
    text = shop.flash_sales.disclosure(labelled.id)
    assert "划线价 128.00 元（建议零售价）" in text and "限量 1 件" in text and "每人限购 1 件" in text


def test_bad_input_is_refused_with_nothing_stored(shop: siyu.Workspace, clock: FakeClock) -> None:
    [uid] = _users(shop, 1)
    with pytest.raises(ValidationError, match="float"):
        _sale(shop, clock, price=69.0)
    with pytest.raises(ValidationError, match="ends_at must be after"):
        _sale(shop, clock, ends_at=clock.now)
    with pytest.raises(ValidationError, match="stock"):
        _sale(shop, clock, stock=0)
    assert shop.flash_sales.sales() == []
    sid = _sale(shop, clock)
    with pytest.raises(ValidationError):
        shop.flash_sales.reserve(sid, uid, qty=0, key="zero")
    with pytest.raises(siyu.errors.NotFound):
        shop.flash_sales.reserve(sid + 1, uid, key="nope")
    with pytest.raises(siyu.errors.NotFound):
        shop.flash_sales.reserve(sid, uid + 100, key="who")


@given(st.lists(st.tuples(st.sampled_from(["reserve", "pay", "cancel", "tick", "release"]),
                          st.integers(0, 3), st.integers(1, 3)), max_size=40))
def test_units_are_conserved_under_any_sequence(ops: list[tuple[str, int, int]]) -> None:
    """Whatever buyers, payers, cancellations and the release job do: stock + reserved + sold
    stays the total, none is negative, sold equals the units of paid reservations, and no
    user holds more than their quota."""
    from datetime import UTC, datetime

    clock = FakeClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        ws.products.add("TEA", "Oolong", price="128", cost="52", role="activity")
        users = _users(ws, 4)
        sid = _sale(ws, clock, stock=5, per_user=2, hold=timedelta(minutes=1))
        held: list[int] = []
        for n, (op, who, qty) in enumerate(ops):
            try:
                if op == "reserve":
                    held.append(ws.flash_sales.reserve(sid, users[who], qty, key=f"k{n}").id)
                elif op == "pay" and held:
                    ws.flash_sales.pay(held[who % len(held)])
                elif op == "cancel" and held:
                    ws.flash_sales.cancel(held[who % len(held)])
                elif op == "tick":
                    clock.advance(timedelta(seconds=30 * qty))
                elif op == "release":
                    ws.flash_sales.release_due()
            except (SoldOut, QuotaExceeded, ReservationClosed, ActivityClosed):
                pass
            _balanced(ws, sid, 5)
        reservations = ws.flash_sales.reservations(sale_id=sid)
        sale = ws.flash_sales.get(sid)
        assert sale.sold == sum(r.qty for r in reservations if r.status is ReservationStatus.PAID)
        assert sale.reserved == sum(r.qty for r in reservations if r.status is ReservationStatus.RESERVED)
        for uid in users:
            live = sum(r.qty for r in reservations if r.user_id == uid and r.status in (
                ReservationStatus.PAID, ReservationStatus.RESERVED))
            assert live == ws.flash_sales.used(sid, uid) <= 2


def test_merging_users_moves_reservations_attempts_and_quota_and_unmerge_moves_them_back(
        shop: siyu.Workspace, clock: FakeClock) -> None:
    keep, drop, helper = _users(shop, 3)
    sid = _sale(shop, clock, per_user=2)
    shop.flash_sales.reserve(sid, keep, key="k")
    res = shop.flash_sales.reserve(sid, drop, key="d")
    shop.products.add("POT", "Teapot", price="199", cost="60", role="activity")
    bargain = shop.bargains.create(sku="POT", floor="99", helpers=1, stock=1, starts_at=clock.now,
                                   ends_at=clock.now + timedelta(days=1))
    attempt = shop.bargains.start(bargain.id, drop)
    record = shop.users.merge(keep=keep, drop=drop)
    assert shop.flash_sales.reservation(res.id).user_id == keep
    assert shop.flash_sales.used(sid, keep) == 2
    with pytest.raises(QuotaExceeded):  # one person: the two units now count together
        shop.flash_sales.reserve(sid, keep, key="k2")
    assert shop.bargains.attempt(attempt.id).user_id == keep
    shop.users.unmerge(record.id)
    assert shop.flash_sales.reservation(res.id).user_id == drop
    assert (shop.flash_sales.used(sid, keep), shop.flash_sales.used(sid, drop)) == (1, 1)
    assert shop.bargains.attempt(attempt.id).user_id == drop
    shop.bargains.help(attempt.id, helper)
    assert shop.bargains.buy(attempt.id).user_id == drop
