"""Property tests: quotes never go negative or below the floor; refunds undo orders."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import MarginViolation, ValidationError
from siyu.models.commerce import ProductRole
from siyu.services.pricing import LOSS_ROLES, floor_fen
from siyu.testing import FakeClock

ROLES = [ProductRole.PROFIT, ProductRole.TRAFFIC, ProductRole.ACTIVITY, ProductRole.RELATIONSHIP]

products = st.lists(
    st.tuples(st.integers(100, 50_000), st.integers(0, 100), st.sampled_from(ROLES), st.sampled_from(["a", "b"])),
    min_size=1, max_size=6,
)
coupon = st.one_of(
    st.tuples(st.just("amount_off"), st.integers(100, 20_000), st.integers(0, 60_000)),
    st.tuples(st.just("percent_off"), st.integers(1, 90), st.integers(0, 60_000)),
    st.tuples(st.just("free_item"), st.integers(1, 4), st.integers(0, 0)),
)
cart = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4)), min_size=1, max_size=8)


def _workspace(catalog: list[tuple[int, int, ProductRole, str]], floor: str) -> siyu.Workspace:
    ws = siyu.connect("memory://", clock=FakeClock(datetime(2026, 11, 22, tzinfo=UTC)))
    ws.promotions.configure(margin_floor=floor)
    for n, (price, cost_pct, role, category) in enumerate(catalog):
        cost = price * cost_pct // 100
        unit_floor = math.ceil(Fraction(cost) / (1 - Fraction(floor)))
        below = price < unit_floor
        if below and role not in LOSS_ROLES:
            cost = int(price * (1 - Fraction(floor)))  # only traffic and activity items may be priced below the floor
        # A budget for two units and a bit: larger carts reach its edge, where the price rises to fit it.
        budget = Decimal((unit_floor - price) * 2 + 37) / 100 if below and role in LOSS_ROLES else None
        ws.products.add(f"P{n}", f"product {n}", price=Decimal(price) / 100, cost=Decimal(cost) / 100, role=role,
                        category=category, loss_budget=budget)
    return ws


def _coupons(ws: siyu.Workspace, specs: list[tuple[str, int, int]], n_products: int,
             groups: list[str]) -> list[str]:
    made = []
    for index, (kind, value, threshold) in enumerate(specs):
        options: dict[str, object] = {"group": groups[index % len(groups)], "per_user_limit": None}
        if kind == "amount_off":
            options.update(amount=Decimal(value) / 100, threshold=Decimal(threshold) / 100)
        elif kind == "percent_off":
            options.update(percent=value, threshold=Decimal(threshold) / 100, cap=Decimal(value * 100) / 100)
        else:
            options.update(free_sku=f"P{index % n_products}", min_qty=value + 1)
        try:
            ws.coupons.create(f"c{index}", kind=kind, **options)  # type: ignore[arg-type]
        except MarginViolation:
            continue
        made.append(f"c{index}")
    return made


@settings(max_examples=40, deadline=None)
@given(products, st.lists(coupon, max_size=6), cart, st.sampled_from(["0", "0.1", "0.3"]),
       st.sampled_from(["discounted", "original"]), st.booleans())
def test_quote_never_negative_nor_below_floor(catalog, specs, lines, floor, base, multi) -> None:  # type: ignore[no-untyped-def]
    ws = _workspace(catalog, floor)
    ws.promotions.configure(base=base, multi=["activity", "coupon"] if multi else ["activity"])
    made = _coupons(ws, specs, len(catalog), ["coupon", "coupon", "extra"])
    user = ws.users.add().id
    for name in made:
        ws.coupons.issue(name, user)
    items = [{"sku": f"P{i % len(catalog)}", "qty": q} for i, q in lines]
    quote = ws.promotions.quote(user, items)
    assert quote.total_fen >= 0
    rules = ws.promotions.rules()
    for line in quote.lines:
        product = ws.products.get(line.sku)
        assert 0 <= line.paid_fen <= line.amount_fen
        assert line.paid_fen >= min(line.amount_fen, floor_fen(product, line.qty, rules)), quote.explain()
    # the order charges exactly what the quote said
    order = ws.orders.record(user, items, coupon=list(quote.coupon_codes))
    assert order.total_fen == quote.total_fen


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["0", "0.5"]), st.lists(coupon, max_size=4), cart)
def test_guard_off_quotes_are_still_never_negative(floor, specs, lines) -> None:  # type: ignore[no-untyped-def]
    ws = _workspace([(990, 50, ProductRole.TRAFFIC, "a"), (100, 90, ProductRole.PROFIT, "b")], floor)
    ws.promotions.configure(guard=False, multi=["activity", "coupon"])
    made = _coupons(ws, specs, 2, ["coupon"])
    assert len(made) == len(specs)  # nothing refused with the guard off
    user = ws.users.add().id
    for name in made:
        ws.coupons.issue(name, user)
    quote = ws.promotions.quote(user, [{"sku": f"P{i % 2}", "qty": q} for i, q in lines])
    assert quote.total_fen >= 0 and all(line.paid_fen >= 0 for line in quote.lines)


refund_steps = st.lists(st.one_of(st.integers(1, 5000), st.tuples(st.integers(0, 5), st.integers(1, 3))),
                        max_size=5)


@settings(max_examples=40, deadline=None)
@given(cart, refund_steps, st.booleans())
def test_refunds_add_up_and_undo_everything(lines, steps, with_coupon) -> None:  # type: ignore[no-untyped-def]
    ws = _workspace([(12_900, 40, ProductRole.PROFIT, "a"), (990, 50, ProductRole.TRAFFIC, "b"),
                     (5_000, 30, ProductRole.ACTIVITY, "a")], "0")
    ws.tiers.define("silver", 50)
    ws.tiers.define("gold", 300, benefits={"points_multiplier": "1.5"})
    ws.coupons.create("10off", amount="10", threshold="100", valid_days=30)
    user = ws.users.add().id
    ws.points.earn(user, 7, reason="gift", key="gift")
    [c] = ws.coupons.issue("10off", user)
    before = (ws.points.balance(user), ws.tiers.growth(user), ws.tiers.of(user))
    items = [{"sku": f"P{i % 3}", "qty": q} for i, q in lines]
    try:
        order = ws.orders.record(user, items, coupon=c.code if with_coupon else None, key="o")
    except ValidationError:  # the cart does not reach the coupon's threshold
        order = ws.orders.record(user, items, key="o")
    refunded = 0
    for n, step in enumerate(steps):
        what: object = Decimal(step) / 100 if isinstance(step, int) else [
            {"sku": f"P{step[0] % 3}", "qty": step[1]}]
        try:
            refund = ws.orders.refund(order.id, what, key=f"r{n}")
        except ValidationError:
            continue  # more than is left, or a SKU not in the order: refused, nothing changed
        refunded += refund.amount_fen
        current = ws.orders.get(order.id)
        assert current.refunded_fen == refunded == sum(r.amount_fen for r in ws.orders.refunds(order.id))
        assert sum(ln.refunded_fen for ln in current.lines) == refunded
        assert all(ln.refunded_fen <= ln.paid_fen for ln in current.lines)
    if refunded < order.total_fen or order.total_fen == 0:
        ws.orders.refund(order.id, key="final")
    assert ws.orders.get(order.id).refunded_fen == order.total_fen
    after = (ws.points.balance(user), ws.tiers.growth(user), ws.tiers.of(user))
    assert after == before
    assert ws.coupons.get(c.code).status == "issued"


@pytest.mark.parametrize("budget_fen", range(1280, 1300))
def test_a_loss_leader_at_its_budget_edge_sells_at_the_quoted_price(budget_fen: int) -> None:
    # cost 10.00 at a 0.3 margin floor: 14.2857... a unit, 42.86 for three (not 3 x 14.29).
    ws = siyu.connect("memory://", clock=FakeClock(datetime(2026, 11, 22, tzinfo=UTC)))
    ws.promotions.configure(margin_floor="0.3")
    ws.products.add("LEAD", "loss leader", price="10", cost="10", role=ProductRole.TRAFFIC,
                    loss_budget=Decimal(budget_fen) / 100)
    user = ws.users.add().id
    quote = ws.promotions.quote(user, [{"sku": "LEAD", "qty": 3}])
    order = ws.orders.record(user, [{"sku": "LEAD", "qty": 3}])
    assert order.total_fen == quote.total_fen
    assert order.total_fen >= 3 * 1000 and 4286 - order.total_fen <= budget_fen
    ws.close()
