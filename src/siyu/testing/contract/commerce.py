"""Contract: products, orders and refunds, coupons, tiers (what every backend must keep)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

import siyu
from siyu.errors import CapExceeded, IdempotencyConflict, InvalidMoney, MarginViolation, NotFound, ValidationError
from siyu.events import Event, OrderRecorded, OrderRefunded
from siyu.models.commerce import ProductRole

from .base import ContractBase, found


def _shop(ws: siyu.Workspace) -> int:
    ws.products.add("TEA", "Oolong 250g", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role=ProductRole.TRAFFIC, category="ware")
    return ws.users.add().id


class CommerceContract(ContractBase):
    def test_record_prices_and_emits(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        seen: list[Event] = []
        ws.subscribe(seen.append)
        order = ws.orders.record(uid, [{"sku": "TEA", "qty": 2}, {"sku": "CUP", "qty": 1}], channel="wecom",
                                 key="o1")
        assert order.total == Decimal("209.90") and order.status == "paid"
        [event] = [e for e in seen if isinstance(e, OrderRecorded)]
        assert event.total_fen == 20990 and event.channel == "wecom"
        assert [(ln.sku, ln.qty, ln.paid_fen, ln.role) for ln in event.lines] == [
            ("TEA", 2, 20000, "profit"), ("CUP", 1, 990, "traffic")]
        # traffic items earn no points by default
        assert order.points == 200 and ws.points.balance(uid) == 200

    def test_record_is_idempotent(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        first = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key="k")
        again = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key="k")
        assert first == again and len(ws.orders.of(uid)) == 1 and ws.points.balance(uid) == 100
        with pytest.raises(IdempotencyConflict):
            ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], key="k")

    def test_bad_input_changes_nothing(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        for call, error in (
            (lambda: ws.orders.record(uid, [{"sku": "NOPE", "qty": 1}]), NotFound),
            (lambda: ws.orders.record(uid, [{"sku": "TEA", "qty": 0}]), ValidationError),
            (lambda: ws.orders.record(uid, [{"sku": "TEA", "qty": 1, "unit_price": 9.9}]), InvalidMoney),
            (lambda: ws.orders.record(uid, [{"sku": "TEA", "qty": 1, "unit_price": "-1"}]), InvalidMoney),
            (lambda: ws.orders.record(999, [{"sku": "TEA", "qty": 1}]), NotFound),
            (lambda: ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], coupon="NOPE"), NotFound),
            (lambda: ws.products.add("X", "x", price=1.5, cost="1"), InvalidMoney),  # type: ignore[arg-type]
        ):
            with pytest.raises(error):
                call()
        assert ws.orders.of(uid) == [] and ws.points.history(uid) == []

    def test_refunds_add_up_and_reverse(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        order = ws.orders.record(uid, [{"sku": "TEA", "qty": 3}], key="o")
        ws.orders.refund(order.id, "100", key="r1")
        assert ws.points.balance(uid) == 200
        ws.orders.refund(order.id, [{"sku": "TEA", "qty": 1}], key="r2")
        with pytest.raises(ValidationError):
            ws.orders.refund(order.id, "100.01", key="r3")
        last = ws.orders.refund(order.id, key="r4")
        assert last.full and last.amount == Decimal("100.00")
        assert ws.orders.get(order.id).status == "refunded"
        assert ws.points.balance(uid) == 0
        assert ws.orders.refund(order.id, key="r4") == last
        with pytest.raises(ValidationError):
            ws.orders.refund(order.id, key="r5")

    def test_lines_keep_what_they_earned_and_refunds_what_they_took(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}, {"sku": "CUP", "qty": 2}], key="o")
        stored = ws.orders.get(order.id)
        assert [(ln.points, ln.growth) for ln in stored.lines] == [(100, 99), (0, 20)] == [
            (ln.points, ln.growth) for ln in order.lines]
        refund = ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="r")
        assert (refund.points_reversed, refund.growth_reversed, refund.line_effects) == (0, 10, ((1, 0, 10),))
        assert ws.orders.refunds(order.id) == [refund] and ws.points.balance(uid) == 100

    def test_loss_leader_budget_follows_partial_refunds(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        ws.promotions.activity("1元尝鲜", {"CUP": "1"}, loss_leader=True, budget="100")
        order = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}, {"sku": "TEA", "qty": 1}], key="o")
        assert ws.orders.get(order.id).budget_lines == (("activity", 1, 0, 800),)
        ws.orders.refund(order.id, [{"sku": "CUP", "qty": 1}], key="r1")
        assert [a.budget_used_fen for a in ws.promotions.activities()] == [400]
        ws.orders.refund(order.id, key="r2")
        assert [a.budget_used_fen for a in ws.promotions.activities()] == [0]

    def test_a_products_own_loss_budget_is_kept_used_and_given_back(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        ws.products.add("MUG", "Mug", price="3", cost="5", role=ProductRole.ACTIVITY, loss_budget="10")
        order = ws.orders.record(uid, [{"sku": "MUG", "qty": 2}], key="o")
        assert ws.orders.get(order.id).lines[0].loss_fen == 400
        # Replacing the product keeps what orders used of its budget.
        mug = ws.products.add("MUG", "Mug", price="3", cost="5", role=ProductRole.ACTIVITY, loss_budget="10")
        assert (mug.loss_budget_fen, mug.loss_used_fen) == (1000, 400)
        ws.orders.refund(order.id, [{"sku": "MUG", "qty": 1}], key="r")
        assert ws.products.get("MUG").loss_used_fen == 200
        group = ws.referrals.group_buys.open(uid, sku="MUG", size=4, price="3")
        assert ws.products.get("MUG").loss_used_fen == 1000 and group.status == "open"

    def test_refund_event(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        seen: list[Event] = []
        ws.subscribe(seen.append)
        order = ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], key="o")
        ws.orders.refund(order.id, [{"sku": "TEA", "qty": 1}], key="r")
        [event] = [e for e in seen if isinstance(e, OrderRefunded)]
        assert (event.amount_fen, event.order_total_fen, event.full) == (10000, 20000, False)
        assert [(ln.sku, ln.qty, ln.paid_fen, ln.role) for ln in event.lines] == [("TEA", 1, 10000, "profit")]

    def test_coupon_redeem_and_return(self, ws: siyu.Workspace, clock: Any) -> None:
        uid = _shop(ws)
        ws.coupons.create("199-30", amount="30", threshold="199", valid_days=7)
        [coupon] = ws.coupons.issue("199-30", uid)
        with pytest.raises(CapExceeded):
            ws.coupons.issue("199-30", uid)
        with pytest.raises(ValidationError):  # threshold not met
            ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], coupon=coupon.code)
        order = ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], coupon=coupon.code, key="o")
        assert order.total == Decimal("170.00") and order.coupon_codes == (coupon.code,)
        assert ws.coupons.get(coupon.code).status == "redeemed"
        with pytest.raises(ValidationError):
            ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], coupon=coupon.code)
        ws.orders.refund(order.id, key="r")
        assert ws.coupons.get(coupon.code).status == "issued"
        clock.advance(days=8)
        with pytest.raises(ValidationError):
            ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], coupon=coupon.code)
        assert ws.coupons.expire_due() == 1

    def test_coupon_of_another_user(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        other = ws.users.add().id
        ws.coupons.create("10off", amount="10", threshold="100")
        [coupon] = ws.coupons.issue("10off", other)
        with pytest.raises(ValidationError):
            ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], coupon=coupon.code)
        assert ws.orders.of(uid) == []

    def test_margin_guard(self, ws: siyu.Workspace) -> None:
        _shop(ws)
        with pytest.raises(MarginViolation) as info:
            ws.coupons.create("half", kind="percent_off", percent=70)
        assert "TEA" in str(info.value)
        assert ws.coupons.templates() == []
        ws.coupons.create("tea-only", kind="percent_off", percent=20, categories=["tea"])

    def test_tier_growth_follows_orders(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        ws.tiers.define("silver", 100)
        ws.tiers.define("gold", 300, benefits={"points_multiplier": "2"})
        order = ws.orders.record(uid, [{"sku": "TEA", "qty": 3}], key="o")
        assert found(ws.tiers.of(uid)).name == "gold"
        ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key="o2")
        assert ws.points.balance(uid) == 300 + 200
        ws.orders.refund(order.id, key="r")
        assert ws.tiers.growth(uid) == 100
        assert found(ws.tiers.of(uid)).name == "silver"

    def test_orders_follow_merges(self, ws: siyu.Workspace) -> None:
        uid = _shop(ws)
        other = ws.users.add().id
        order = ws.orders.record(other, [{"sku": "TEA", "qty": 1}], key="o")
        record = ws.users.merge(keep=uid, drop=other)
        assert [o.id for o in ws.orders.of(uid)] == [order.id]
        with pytest.raises(NotFound, match="merged"):
            ws.orders.record(other, [{"sku": "TEA", "qty": 1}])
        ws.orders.refund(order.id, "30", key="r")
        ws.users.unmerge(record.id)
        assert [o.id for o in ws.orders.of(other)] == [order.id] and ws.orders.of(uid) == []
        assert (ws.tiers.growth(other), ws.tiers.growth(uid)) == (70, 0)

    def test_points_expiry_policy(self, ws: siyu.Workspace, clock: Any) -> None:
        from siyu.services.points_rules import Expiry

        uid = _shop(ws)
        ws.points_rules.configure("purchase", expiry=Expiry.days(30))
        ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], key="o")
        assert [lot.remaining for lot in ws.points.expiring(within=timedelta(days=31))] == [100]
