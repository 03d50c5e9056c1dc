"""Commerce beyond the contract suite: stacking, guard details, points rules, tiers, metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import siyu
from siyu.errors import CapExceeded, MarginViolation, NotFound, PluginError, PolicyViolation, ValidationError
from siyu.events import CouponRedeemed, Event, TierChanged
from siyu.models.commerce import ProductRole
from siyu.services.points_rules import Expiry
from siyu.testing import FakeClock

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    ws = siyu.connect("memory://", clock=clock)
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, category="tea")
    ws.products.add("CUP", "Sample cup", price="9.90", cost="5", role=ProductRole.TRAFFIC, category="ware")
    ws.products.add("POT", "Teapot", price="300", cost="100", role=ProductRole.ACTIVITY, category="ware")
    return ws


def test_role_is_validated(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError, match="product role"):
        ws.products.add("X", "x", price="1", cost="1", role="cheap")
    assert [p.sku for p in ws.products.by_role("traffic")] == ["CUP"]


def test_percent_cap_and_best_choice(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.coupons.create("9折", kind="percent_off", percent=10, cap="25")
    ws.coupons.create("满300减40", amount="40", threshold="300", skus=["POT", "TEA"])
    ws.coupons.issue("9折", uid)
    ws.coupons.issue("满300减40", uid)
    quote = ws.promotions.quote(uid, [{"sku": "POT", "qty": 1}, {"sku": "TEA", "qty": 1}])
    # one coupon group: the better of 25 (capped 10 %) and 40 off wins
    assert quote.discount == Decimal("40.00")
    assert "满300减40" in quote.explain() and "cannot stack" in quote.explain()


def test_activity_stacks_with_coupon_unless_exclusive(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.promotions.activity("双11", {"POT": "250"})
    ws.coupons.create("20off", amount="20", threshold="200")
    [c] = ws.coupons.issue("20off", uid)
    quote = ws.promotions.quote(uid, [{"sku": "POT", "qty": 1}])
    assert quote.total == Decimal("230.00")
    ws.promotions.configure(combinable=[])
    quote = ws.promotions.quote(uid, [{"sku": "POT", "qty": 1}])
    assert quote.total == Decimal("250.00") and quote.coupon_codes == ()
    # forcing the coupon drops the activity under exclusive rules
    order = ws.orders.record(uid, [{"sku": "POT", "qty": 1}], coupon=c.code)
    assert order.total == Decimal("280.00")


def test_original_base_computes_on_list_price(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.promotions.activity("sale", {"POT": "200"})
    ws.coupons.create("10pct", kind="percent_off", percent=10)
    ws.coupons.issue("10pct", uid)
    assert ws.promotions.quote(uid, [{"sku": "POT", "qty": 1}]).total == Decimal("180.00")
    ws.promotions.configure(base="original")
    assert ws.promotions.quote(uid, [{"sku": "POT", "qty": 1}]).total == Decimal("170.00")


def test_margin_guard_names_product_and_combination(ws: siyu.Workspace) -> None:
    ws.promotions.activity("sale", {"POT": "150"})
    with pytest.raises(MarginViolation) as info:
        ws.coupons.create("60off", amount="60", threshold="100", categories=["ware"])
    text = str(info.value)
    assert "POT" in text and "activity 'sale'" in text and "60off" in text and "floor" in text
    ws.promotions.configure(margin_floor="0.2")
    with pytest.raises(MarginViolation):
        ws.promotions.activity("deep", {"TEA": "49"})  # 40 / (1 - 0.2) = 50 is the floor
    ws.promotions.activity("ok", {"TEA": "50"})
    with pytest.raises(MarginViolation):  # tightening the floor under live offers is refused too
        ws.promotions.configure(margin_floor="0.5")
    assert ws.promotions.rules().margin_floor == Decimal("0.2")


def test_product_price_cut_is_guarded(ws: siyu.Workspace) -> None:
    ws.promotions.activity("sale", {"POT": "150"})
    with pytest.raises(MarginViolation):
        ws.products.add("POT", "Teapot", price="300", cost="160", role="activity")
    assert ws.products.get("POT").cost == Decimal("100.00")


def test_loss_leader_needs_a_traffic_or_activity_item_and_budget(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError, match="budget"):
        ws.promotions.activity("1元秒杀", {"CUP": "1"}, loss_leader=True)
    with pytest.raises(MarginViolation, match="traffic and activity"):
        ws.promotions.activity("1元 tea", {"TEA": "1"}, loss_leader=True, budget="100")
    ws.promotions.activity("1元 teapot", {"POT": "1"}, loss_leader=True, budget="100")  # 活动品 may, like 引流品
    ws.promotions.activity("1元秒杀", {"CUP": "1"}, loss_leader=True, budget="10")
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}])
    assert order.total == Decimal("2.00")  # 2 x (5.00 - 1.00) = 8 of the 10 budget
    order = ws.orders.record(uid, [{"sku": "CUP", "qty": 2}])
    assert order.total == Decimal("8.00")  # 2 left below the floor: 10.00 floor - 2 = 8
    last = ws.orders.record(uid, [{"sku": "CUP", "qty": 1}])
    assert last.total == Decimal("5.00")  # budget spent: never below cost again
    ws.orders.refund(order.id, key="back")  # a full refund gives its 2.00 of budget back
    assert ws.promotions.quote(uid, [{"sku": "CUP", "qty": 1}]).total == Decimal("3.00")


def test_flash_sale_window(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    ws.promotions.flash_sale("秒杀", {"TEA": "60"}, starts_at=clock.now + timedelta(hours=1),
                             ends_at=clock.now + timedelta(hours=2))
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}]).total == Decimal("100.00")
    clock.advance(hours=1)
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}]).total == Decimal("60.00")
    clock.advance(hours=1)
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}]).total == Decimal("100.00")


def test_new_customer_and_free_item(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.coupons.create("新客", amount="5", threshold="50", new_customers_only=True, per_user_limit=2)
    ws.coupons.create("买三送一", kind="free_item", free_sku="TEA", min_qty=3)
    [first] = ws.coupons.issue("新客", [uid, uid])  # a repeated id gets one coupon
    ws.coupons.issue("新客", uid)
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}]).total == Decimal("95.00")
    ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], coupon=first.code)
    quote = ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1}])
    assert quote.total == Decimal("100.00") and any("new customers only" in s for s in quote.skipped)
    [gift] = ws.coupons.issue("买三送一", uid)
    assert ws.promotions.quote(uid, [{"sku": "TEA", "qty": 3}], coupons=[gift.code]).total == Decimal("200.00")


def test_issue_limits_and_segment_snapshots(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{} for _ in range(4)])
    ws.coupons.create("limited", amount="5", threshold="50", total_limit=5)

    class Snapshot:
        user_ids = ids[:3]

    assert len(ws.coupons.issue("limited", Snapshot(), key="batch-1")) == 3
    assert len(ws.coupons.issue("limited", Snapshot(), key="batch-1")) == 3  # retried: nothing new
    assert ws.coupons.issue("limited", ids[:3]) == []  # everyone at the per-user limit: skipped
    with pytest.raises(CapExceeded):
        ws.coupons.issue("limited", ids[0])
    with pytest.raises(NotFound):
        ws.coupons.issue("limited", [9999])
    assert len(ws.coupons.issue("limited", ids[3])) == 1
    assert ws.coupons.template("limited").issued == 4


def test_months_end_validity(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    ws.coupons.create("month", amount="5", threshold="50", valid_months_end=0)
    [c] = ws.coupons.issue("month", uid)
    assert c.valid_until == datetime(2026, 12, 1, tzinfo=SHANGHAI)


def test_redeem_event_and_batch(ws: siyu.Workspace) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    ids = ws.users.add_many([{} for _ in range(3)])
    ws.coupons.create("5off", amount="5", threshold="50")
    [c] = ws.coupons.issue("5off", ids[0])
    rows = [{"user_id": u, "lines": [{"sku": "TEA", "qty": 1}], "key": f"b{u}"} for u in ids]
    rows[0]["coupon"] = c.code
    order_ids = ws.orders.record_many(rows)
    assert ws.orders.record_many(rows) == order_ids
    assert [ws.orders.get(i).total for i in order_ids] == [Decimal("95.00"), Decimal("100.00"), Decimal("100.00")]
    [redeemed] = [e for e in seen if isinstance(e, CouponRedeemed)]
    assert redeemed.saved_fen == 500 and redeemed.order_id == order_ids[0]
    bad = [{"user_id": ids[1], "lines": [{"sku": "TEA", "qty": 1}]}, {"user_id": ids[2], "lines": []}]
    with pytest.raises(ValidationError, match="row 1"):
        ws.orders.record_many(bad)
    assert len(ws.orders.of(ids[1])) == 1


def test_refund_when_points_were_spent(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}])
    ws.points.spend(uid, 80, reason="gift", key="s")
    refund = ws.orders.refund(order.id, key="r")
    assert (refund.points_reversed, refund.points_shortfall) == (20, 80)
    assert ws.points.balance(uid) == 0


def test_member_price_and_exclusive(ws: siyu.Workspace) -> None:
    ws.tiers.define("gold", 150, benefits={"points_multiplier": "2", "birthday_bonus": 50})
    ws.products.add("VIP", "Reserve", price="500", cost="200", role=ProductRole.EXCLUSIVE, tiers=["gold"],
                    member_prices={"gold": "450"})
    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT, member_prices={"gold": "90"})
    uid = ws.users.add().id
    with pytest.raises(PolicyViolation, match="exclusive"):
        ws.orders.record(uid, [{"sku": "VIP", "qty": 1}])
    ws.orders.record(uid, [{"sku": "TEA", "qty": 2}])
    assert ws.tiers.of(uid).name == "gold"  # type: ignore[union-attr]
    order = ws.orders.record(uid, [{"sku": "VIP", "qty": 1}, {"sku": "TEA", "qty": 1}])
    assert order.total == Decimal("540.00") and order.points == 1080  # member prices, 2x points


def test_tier_downgrade_on_reevaluation(ws: siyu.Workspace, clock: FakeClock) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    ws.tiers.define("silver", 100)
    ws.tiers.define("gold", 500)
    uid = ws.users.add().id
    ws.orders.record(uid, [{"sku": "POT", "qty": 2}])
    assert ws.tiers.of(uid).name == "gold"  # type: ignore[union-attr]
    clock.advance(days=200)
    ws.tiers.add_growth(uid, 150, reason="review", key="rev-1")
    assert ws.tiers.reevaluate() == []
    clock.advance(days=200)  # the orders left the 12-month window
    [change] = ws.tiers.reevaluate()
    assert (change.old, change.new, change.growth) == ("gold", "silver", 150)
    assert [(c.old, c.new) for c in ws.tiers.history(uid)] == [(None, "gold"), ("gold", "silver")]
    assert [e.new for e in seen if isinstance(e, TierChanged)] == ["gold", "silver"]


def test_signin_streaks_use_business_days(clock: FakeClock) -> None:
    ws = siyu.connect("memory://", clock=clock)
    uid = ws.users.add().id
    clock.set(datetime(2026, 11, 22, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    assert ws.points_rules.sign_in(uid)[0] == 1
    assert ws.points_rules.sign_in(uid)[1] is not None  # same day: the same entry again
    clock.advance(hours=1)  # 00:30 the next day in Shanghai
    assert ws.points_rules.sign_in(uid)[0] == 2
    clock.advance(days=1)
    streak, entry = ws.points_rules.sign_in(uid)
    assert streak == 3 and entry is not None and entry.amount == 10  # base 5 + 3-day bonus 5
    assert ws.points.balance(uid) == 20
    clock.advance(days=2)
    assert ws.points_rules.sign_in(uid)[0] == 1


def test_invite_recharge_birthday(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add(attributes={"birthday": "1990-11-22"}).id
    first = ws.points_rules.award("invite", uid, key="invitee:7")
    assert first is not None and ws.points_rules.award("invite", uid, key="invitee:7") == first
    with pytest.raises(ValidationError, match="key"):
        ws.points_rules.award("invite", uid)
    ws.points_rules.award("recharge", uid, key="topup-1", amount="88.50")
    birthday = ws.points_rules.award("birthday", uid)
    assert birthday is not None and birthday.amount == 100
    assert ws.points.balance(uid) == 50 + 88 + 100
    clock.advance(days=1)
    other = ws.users.add(attributes={"birthday": "03-01"}).id
    assert ws.points_rules.award("birthday", other) is None
    with pytest.raises(NotFound):
        ws.points_rules.award("nope", uid, key="x")


def test_expiry_policies(clock: FakeClock) -> None:
    earned = datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert Expiry.never().expires_at(earned, SHANGHAI) is None
    assert Expiry.days(30).expires_at(earned, SHANGHAI) == earned + timedelta(days=30)
    assert Expiry.month_end(0).expires_at(earned, SHANGHAI) == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert Expiry.month_end(1).expires_at(earned, SHANGHAI) == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert Expiry.year_end(1).expires_at(earned, SHANGHAI) == datetime(2028, 1, 1, tzinfo=SHANGHAI)
    with pytest.raises(ValidationError):
        Expiry.days(0)


class DoublePurchase:
    """A third-party rule replacing the built-in purchase rule."""

    name = "purchase"

    def points(self, ctx: Any) -> int:
        return 2 * sum(line.paid_fen for line in ctx.context["lines"]) // 100


class Broken:
    name = "broken"

    def points(self, ctx: Any) -> int:
        return -1


class RulesPlugin:
    @siyu.hookimpl
    def siyu_points_rules(self, register: Any) -> None:
        register(DoublePurchase())
        register(Broken())


def test_plugin_rules_replace_builtins(clock: FakeClock) -> None:
    ws = siyu.connect("memory://", clock=clock, plugins=[RulesPlugin()])
    ws.products.add("CUP", "cup", price="10", cost="5", role="traffic")
    uid = ws.users.add().id
    assert ws.orders.record(uid, [{"sku": "CUP", "qty": 1}]).points == 20  # the plugin counts traffic too
    with pytest.raises(PluginError):
        ws.points_rules.award("broken", uid, key="b")
    assert "signin" in ws.points_rules.names()


def test_configure_rule(ws: siyu.Workspace) -> None:
    ws.points_rules.configure("purchase", points_per_yuan=Decimal(2), role_rates={"traffic": Decimal(1)})
    uid = ws.users.add().id
    assert ws.orders.record(uid, [{"sku": "CUP", "qty": 1}, {"sku": "TEA", "qty": 1}]).points == 209
    with pytest.raises(ValidationError):
        ws.points_rules.configure("purchase", nonsense=1)


def test_segment_metrics(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b, c = (ws.users.add().id for _ in range(3))
    order = ws.orders.record(a, [{"sku": "TEA", "qty": 3}])
    ws.orders.record(b, [{"sku": "TEA", "qty": 1}], paid_at=clock.now - timedelta(days=60))
    ws.orders.refund(order.id, "50", key="r")
    assert ws.segments.users("orders >= 1") == [a, b]
    assert ws.segments.users("orders = 0") == [c]
    assert ws.segments.users("spend > 200") == [a]
    assert ws.segments.users("spend_30d > 0") == [a]
    assert ws.segments.users("days_since(last_order) > 30") == [b]


def test_quote_is_read_only_and_explains(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    quote = ws.promotions.quote(uid, [{"sku": "TEA", "qty": 1, "unit_price": "80"}])
    assert quote.total == Decimal("80.00") and ws.orders.of(uid) == []
    assert "TEA x1: 80.00 -> 80.00" in quote.explain()
    assert date(2026, 1, 1) < ws.today()


def test_issue_to_a_real_segment_snapshot(ws: siyu.Workspace) -> None:
    buyer, idle = ws.users.add().id, ws.users.add().id
    ws.orders.record(buyer, [{"sku": "TEA", "qty": 1}])
    snapshot = ws.segments.snapshot("buyers", expression="orders >= 1")
    ws.coupons.create("thanks", amount="5", threshold="50")
    issued = ws.coupons.issue("thanks", snapshot)
    assert [c.user_id for c in issued] == [buyer] and ws.coupons.of(idle) == []


def test_quote_needs_a_known_user(ws: siyu.Workspace) -> None:
    with pytest.raises(NotFound):
        ws.promotions.quote(999, [{"sku": "TEA", "qty": 1}])
    with pytest.raises(ValidationError):
        ws.promotions.quote(ws.users.add().id, [])
