"""Presales (预售 / 定金): the deposit cap, windows, expiry, refunds, ship-by dates, exclusivity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import siyu
from siyu.errors import CapExceeded, InvalidTransition, PolicyViolation, PriceBelowFloor
from siyu.events import PresaleChanged
from siyu.models.commerce import ProductRole
from siyu.testing import FakeClock

START = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    workspace = siyu.connect("memory://", clock=clock)
    workspace.products.add("MOONCAKE", "Mooncake box", price="300", cost="120", role=ProductRole.PROFIT)
    return workspace


def _presale(ws: siyu.Workspace, **options: object) -> int:
    settings: dict[str, object] = {
        "sku": "MOONCAKE", "price": 300, "deposit": 60, "stock": 10, "starts_at": START, "ends_at": START + 5 * DAY,
        "balance_from": START + 5 * DAY, "balance_until": START + 8 * DAY, "deliver_days": 3}
    settings.update(options)
    return ws.presales.create("mid-autumn", **settings).id  # type: ignore[arg-type]


def test_a_deposit_above_20_percent_is_refused_unless_it_is_a_prepayment(ws: siyu.Workspace) -> None:
    with pytest.raises(PolicyViolation, match="20 %"):
        _presale(ws, deposit=Decimal("60.01"))
    _presale(ws, deposit=100, deposit_kind="prepayment")
    with pytest.raises(PriceBelowFloor):  # an expansion that sells below cost
        _presale(ws, deposit=50, expansion=250, sku="MOONCAKE", starts_at=START + 20 * DAY,
                 ends_at=START + 21 * DAY, balance_from=START + 21 * DAY, balance_until=START + 22 * DAY)


def test_the_balance_is_paid_in_its_window_with_the_expanded_deposit(ws: siyu.Workspace, clock: FakeClock) -> None:
    pid = _presale(ws, expansion=100)
    uid = ws.users.add().id
    held = ws.presales.reserve(pid, uid, qty=2, key="d1")
    assert held.status == "deposit_paid" and held.deposit_fen == 12_000
    with pytest.raises(PolicyViolation, match="balance"):
        ws.presales.pay_balance(held.id)  # too early
    clock.advance(5 * DAY)
    paid = ws.presales.pay_balance(held.id)
    order = ws.orders.get(paid.order_id or 0)
    assert order.total == Decimal("520.00")  # 2 x (300 - 100 the deposit is worth + 60 deposit paid)
    assert paid.ship_by == clock.now + 3 * DAY
    assert ws.presales.pay_balance(held.id) == paid


def test_an_unpaid_balance_expires_once_and_the_deposit_follows_its_kind(ws: siyu.Workspace,
                                                                         clock: FakeClock) -> None:
    seen: list[PresaleChanged] = []
    ws.subscribe(lambda e: seen.append(e) if isinstance(e, PresaleChanged) else None)
    deposit = _presale(ws)
    uid = ws.users.add().id
    kept = ws.presales.reserve(deposit, uid, qty=3, key="a")
    assert ws.presales.get(deposit).held == 3
    clock.advance(8 * DAY)
    with pytest.raises(PolicyViolation):
        ws.presales.pay_balance(kept.id)  # the window has closed
    [expired] = ws.presales.expire_due()
    assert (expired.status, expired.refund_fen) == ("expired", 0)  # a 定金 is kept
    assert ws.presales.expire_due() == []
    assert ws.presales.get(deposit).held == 0
    with pytest.raises(InvalidTransition):
        ws.presales.pay_balance(kept.id)
    assert [e.status for e in seen] == ["deposit_paid", "expired"]


def test_a_prepayment_is_refunded_on_expiry(ws: siyu.Workspace, clock: FakeClock) -> None:
    pid = _presale(ws, deposit=100, deposit_kind="prepayment")
    held = ws.presales.reserve(pid, ws.users.add().id, key="a")
    clock.advance(8 * DAY)
    [expired] = ws.presales.expire_due()
    assert expired.refund_fen == held.deposit_fen == 10_000


def test_the_shop_cancelling_refunds_everyone_double_for_a_deposit(ws: siyu.Workspace, clock: FakeClock) -> None:
    pid = _presale(ws)
    waiting = ws.presales.reserve(pid, ws.users.add().id, key="a")
    buyer = ws.users.add().id
    paid = ws.presales.reserve(pid, buyer, key="b")
    clock.advance(5 * DAY)
    paid = ws.presales.pay_balance(paid.id)
    refunds = {o.id: o for o in ws.presales.cancel(pid, reason="the supplier failed")}
    assert refunds[waiting.id].refund_fen == 12_000  # the 定金 twice over
    assert refunds[paid.id].refund_fen == 30_000 + 6_000  # the order in full, plus the 定金 again
    assert ws.orders.get(paid.order_id or 0).refunded == Decimal("300.00")
    assert ws.presales.get(pid).held == 0


def test_a_missed_ship_date_alerts_and_refunds(ws: siyu.Workspace, clock: FakeClock) -> None:
    pid = _presale(ws, double_refund=False)
    shipped = ws.presales.reserve(pid, ws.users.add().id, key="a")
    late = ws.presales.reserve(pid, ws.users.add().id, key="b")
    clock.advance(5 * DAY)
    shipped, late = ws.presales.pay_balance(shipped.id), ws.presales.pay_balance(late.id)
    ws.presales.ship(shipped.id)
    clock.advance(2 * DAY)
    assert ws.presales.overdue() == []
    clock.advance(DAY)
    assert [o.id for o in ws.presales.overdue(refund=False)] == [late.id]  # the alert
    [refunded] = ws.presales.overdue()
    assert (refunded.id, refunded.status, refunded.refund_fen) == (late.id, "refunded", 30_000)
    assert ws.presales.overdue() == []


def test_limits_and_windows(ws: siyu.Workspace, clock: FakeClock) -> None:
    pid = _presale(ws, stock=3, per_user=2)
    uid = ws.users.add().id
    ws.presales.reserve(pid, uid, qty=2, key="a")
    with pytest.raises(CapExceeded, match="limit"):
        ws.presales.reserve(pid, uid, key="b")
    ws.presales.reserve(pid, ws.users.add().id, key="c")
    with pytest.raises(CapExceeded, match="sold out"):
        ws.presales.reserve(pid, ws.users.add().id, key="d")
    clock.advance(5 * DAY)
    with pytest.raises(PolicyViolation, match="deposits"):
        ws.presales.reserve(pid, ws.users.add().id, key="e")


def test_no_product_in_two_overlapping_activities(ws: siyu.Workspace) -> None:
    _presale(ws)
    with pytest.raises(PolicyViolation, match="two activities"):
        _presale(ws, starts_at=START + 7 * DAY, ends_at=START + 9 * DAY, balance_from=START + 9 * DAY,
                 balance_until=START + 10 * DAY)
    _presale(ws, starts_at=START + 8 * DAY, ends_at=START + 9 * DAY, balance_from=START + 9 * DAY,
             balance_until=START + 10 * DAY)  # after the first ends: fine
    ws.products.add("TEA", "Tea", price="100", cost="40", role=ProductRole.PROFIT)
    ws.flash_sales.create(sku="TEA", price="90", stock=5, starts_at=START + DAY, ends_at=START + 2 * DAY)
    with pytest.raises(PolicyViolation, match="flash sale"):
        _presale(ws, sku="TEA", price=100, deposit=20)
