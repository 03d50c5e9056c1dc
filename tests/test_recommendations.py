"""ws.recommendations: a hand-computed shop, the business rules, erasure, catch-up, and properties."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import siyu
from siyu.errors import NotFound, ValidationError
from siyu.recommendations import Reason, ReasonKind, Recommendations
from siyu.testing import FakeClock

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SKUS = ("A", "B", "C", "D", "E", "F")


@pytest.fixture(params=["memory", "sqlite"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[siyu.Workspace]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(url, clock=FakeClock(T0)) as ws:
        for sku in SKUS:
            ws.products.add(sku, f"Item {sku}", price="10", cost="2", role="profit",
                            category="tea" if sku in "AB" else "cups")
        yield ws


def buy(ws: siyu.Workspace, uid: int, skus: str, at: datetime = T0) -> int:
    return ws.orders.record(uid, [{"sku": s, "qty": 1} for s in skus], paid_at=at).id


def users(ws: siyu.Workspace, n: int) -> list[int]:
    return [ws.users.add().id for _ in range(n)]


def scores(recs: list[siyu.recommendations.Recommendation]) -> dict[str, float]:
    return {r.sku: r.score for r in recs}


def test_similar_hand_computed(shop: siyu.Workspace) -> None:
    u1, u2, u3, u4 = users(shop, 4)
    buy(shop, u1, "AB")
    buy(shop, u2, "AB")
    buy(shop, u3, "AC")
    buy(shop, u4, "C")
    # pop: A 3, B 2, C 2; co(A,B) = 2, co(A,C) = 1; sim = co / sqrt(pop_A * pop_j).
    found = shop.recommendations.similar("A")
    assert [r.sku for r in found] == ["B", "C"]
    assert found[0].score == pytest.approx(2 / math.sqrt(6), abs=1e-12)
    assert found[1].score == pytest.approx(1 / math.sqrt(6), abs=1e-12)
    assert found[0].reasons == (Reason(kind=ReasonKind.CO_BOUGHT, sku="A", users=2),)
    assert found[0].reasons[0].text == "bought together with A by 2 customers"
    assert scores(shop.recommendations.similar("C")) == pytest.approx({"A": 1 / math.sqrt(6)})
    assert shop.recommendations.similar("D") == []


def test_decay_halves_weight_after_half_life(shop: siyu.Workspace) -> None:
    u1, u2 = users(shop, 2)
    buy(shop, u1, "AB", T0 - timedelta(days=90))
    buy(shop, u2, "AC", T0)
    # r(u1, .) = 0.5, r(u2, .) = 1: pop A 1.5, B 0.5, C 1.
    got = scores(shop.recommendations.similar("A"))
    assert got["B"] == pytest.approx(0.25 / math.sqrt(1.5 * 0.5))
    assert got["C"] == pytest.approx(1 / math.sqrt(1.5))


def test_views_count_and_explain_as_viewed(shop: siyu.Workspace) -> None:
    u1, u2 = users(shop, 2)
    shop.events.track(u1, "product_view", properties={"sku": "A"})
    shop.events.track(u1, "added_to_cart", properties={"sku": "D"})
    shop.events.track(u2, "product_view", properties={"sku": "nope"})  # not a product: ignored
    shop.events.track(u2, "page_view", properties={"sku": "A"})  # not a product kind: ignored
    found = shop.recommendations.similar("A")
    assert [r.sku for r in found] == ["D"]
    # co = 0.25 * 0.5, pop A 0.25, D 0.5.
    assert found[0].score == pytest.approx(0.125 / math.sqrt(0.125))
    assert found[0].reasons == (Reason(kind=ReasonKind.CO_VIEWED, sku="A", users=1),)


def test_for_user_rules(shop: siyu.Workspace) -> None:
    u1, u2, u3, fresh = users(shop, 4)
    buy(shop, u1, "AB")
    buy(shop, u2, "ABC")
    buy(shop, u3, "AE")
    picks = shop.recommendations.for_user(u3)
    assert "A" not in {r.sku for r in picks} and "E" not in {r.sku for r in picks}
    assert picks[0].sku == "B" and picks[0].reasons[0].kind is ReasonKind.CO_BOUGHT
    assert {r.sku for r in shop.recommendations.for_user(u3, exclude_bought=False)} >= {"A", "E"}
    shop.products.update("B", active=False)
    assert "B" not in {r.sku for r in shop.recommendations.for_user(u3)}
    assert "B" not in {r.sku for r in shop.recommendations.similar("A")}
    # A new user gets the popular products, said so.
    newbie = shop.recommendations.for_user(fresh, k=2)
    assert [r.sku for r in newbie] == ["A", "C"]
    assert all(r.reasons == (Reason(kind=ReasonKind.POPULAR),) for r in newbie)
    # What the user looks at steers the picks, and is not recommended itself.
    context = shop.recommendations.for_user(fresh, context_sku="C")
    assert context[0].reasons[0] == Reason(kind=ReasonKind.CO_BOUGHT, sku="C", users=1)
    assert "C" not in {r.sku for r in context}


def test_exclusive_products_only_for_their_tiers(shop: siyu.Workspace) -> None:
    shop.tiers.define("gold", 100)
    shop.products.add("VIP", "Gold tea", price="10", cost="2", role="exclusive", tiers=["gold"])
    u1, u2, u3 = users(shop, 3)
    for gold in (u1, u3):
        shop.tiers.add_growth(gold, 100, reason="test", key=f"g{gold}")
    buy(shop, u1, "A")
    shop.orders.record(u1, [{"sku": "VIP", "qty": 1}], paid_at=T0)
    buy(shop, u2, "A")
    buy(shop, u3, "A")
    assert "VIP" in {r.sku for r in shop.recommendations.for_user(u3)}
    assert "VIP" not in {r.sku for r in shop.recommendations.for_user(u2)}
    # Without a user to ask about, an exclusive product is left out.
    assert "VIP" not in {r.sku for r in shop.recommendations.similar("A")}


def test_refunds_and_erasure_leave_the_model(shop: siyu.Workspace) -> None:
    u1, u2, u3 = users(shop, 3)
    buy(shop, u1, "AB")
    refunded = buy(shop, u2, "AC")
    partly = buy(shop, u3, "AD")
    assert set(scores(shop.recommendations.similar("A"))) == {"B", "C", "D"}
    shop.orders.refund(refunded, key="r1")
    shop.orders.refund(partly, [{"sku": "D", "qty": 1}], key="r2")
    assert set(scores(shop.recommendations.similar("A"))) == {"B"}
    shop.events.track(u1, "product_view", properties={"sku": "E"})
    assert "E" in scores(shop.recommendations.similar("A"))
    shop.privacy.erase(u1)
    assert shop.recommendations.similar("A") == []
    assert shop.recommendations.similar("B") == []


def test_caught_up_model_equals_a_fresh_one(shop: siyu.Workspace) -> None:
    u1, u2, u3 = users(shop, 3)
    first = buy(shop, u1, "AB")
    shop.recommendations.similar("A")  # built now; the rest arrives through catch-up
    buy(shop, u2, "ABC")
    shop.events.track(u3, "product_view", properties={"sku": "C"})
    shop.events.track(u3, "product_favorited", properties={"sku": "F"})
    shop.orders.refund(first, [{"sku": "B", "qty": 1}], key="r")
    shop.users.merge(keep=u2, drop=u3)
    fresh = Recommendations(shop, analytics=shop.analytics, tiers=shop.tiers, promotions=shop.promotions)
    for sku in SKUS:
        assert shop.recommendations.similar(sku) == fresh.similar(sku)
    for uid in (u1, u2):
        assert shop.recommendations.for_user(uid, context_sku="A") == fresh.for_user(uid, context_sku="A")


def test_bad_input(shop: siyu.Workspace) -> None:
    (u1,) = users(shop, 1)
    with pytest.raises(NotFound, match="no product with sku 'ZZ'"):
        shop.recommendations.similar("ZZ")
    with pytest.raises(NotFound, match="no product"):
        shop.recommendations.for_user(u1, context_sku="ZZ")
    with pytest.raises(NotFound, match="no user"):
        shop.recommendations.for_user(999)
    with pytest.raises(ValidationError, match="k"):
        shop.recommendations.similar("A", k=0)
    with pytest.raises(ValidationError):
        shop.recommendations.for_user("1")  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------------------------
baskets = st.lists(st.tuples(st.integers(0, 4), st.sets(st.sampled_from(SKUS), min_size=1, max_size=3),
                             st.integers(0, 40), st.booleans()), max_size=8)
views = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(SKUS), st.integers(0, 40)), max_size=8)


@given(orders=baskets, viewed=views, inactive=st.sets(st.sampled_from(SKUS), max_size=2),
       who=st.integers(0, 4), context=st.none() | st.sampled_from(SKUS))
def test_properties(orders: list[tuple[int, set[str], int, bool]], viewed: list[tuple[int, str, int]],
                    inactive: set[str], who: int, context: str | None) -> None:
    with siyu.connect("memory://", clock=FakeClock(T0 + timedelta(days=41))) as ws:
        for sku in SKUS:
            ws.products.add(sku, sku, price="10", cost="2", role="profit", category="x" if sku < "D" else None)
        ids = users(ws, 5)
        kept: dict[int, set[str]] = {}
        for n, (user, skus, day, refund) in enumerate(orders):
            order = buy(ws, ids[user], "".join(sorted(skus)), T0 + timedelta(days=day))
            if refund:
                ws.orders.refund(order, key=f"r{n}")
            else:
                kept.setdefault(ids[user], set()).update(skus)
        ws.events.track_many([{"user_id": ids[u], "kind": "product_view", "at": T0 + timedelta(days=d),
                               "properties": {"sku": s}} for u, s, d in viewed])
        for sku in inactive:
            ws.products.update(sku, active=False)
        uid = ids[who]
        picks = ws.recommendations.for_user(uid, k=6, context_sku=context)
        got = {r.sku for r in picks}
        assert not got & kept.get(uid, set())
        assert not got & inactive
        assert context not in got
        assert picks == ws.recommendations.for_user(uid, k=6, context_sku=context)
        fresh = Recommendations(ws, analytics=ws.analytics, tiers=ws.tiers, promotions=ws.promotions)
        assert picks == fresh.for_user(uid, k=6, context_sku=context)
        touched: dict[int, set[str]] = {u: set(s) for u, s in kept.items()}
        for u, s, _ in viewed:
            touched.setdefault(ids[u], set()).add(s)
        for sku in SKUS:
            for rec in ws.recommendations.similar(sku) + picks:
                for reason in rec.reasons:
                    if reason.kind is ReasonKind.CO_BOUGHT:
                        both = [u for u, s in kept.items() if {reason.sku, rec.sku} <= s]
                        assert reason.users == len(both) > 0
                    elif reason.kind is ReasonKind.CO_VIEWED:
                        assert any({reason.sku, rec.sku} <= s for s in touched.values())


@pytest.mark.parametrize("warm", [False, True])
def test_campaign_messages_carry_each_users_own_pick(shop: siyu.Workspace, warm: bool) -> None:
    from siyu.testing import RecordingChannel

    channel = shop.channels.install(RecordingChannel())
    assert isinstance(channel, RecordingChannel)
    u1, u2, u3, fresh = users(shop, 4)
    buy(shop, u1, "AB")
    buy(shop, u2, "AB")
    buy(shop, u3, "A")
    shop.events.track(fresh, "product_view", properties={"sku": "C"})
    audience = [u3, fresh]
    for uid in audience:
        shop.users.consent(uid, purpose="marketing", channel="recording")
    if warm:
        shop.recommendations.similar("A")
    campaign = shop.campaigns.create("picks", audience=audience, channel="recording",
                                     template="${rec_1_title} (${rec_1_sku}), then ${rec_2_sku}")
    shop.campaigns.preview(campaign.id)  # computed variables are not missing attributes
    assert shop.campaigns.send(campaign.id).sent == 2
    texts = {m.user_id: m.text for m in channel.sent}
    expected = {uid: shop.recommendations.for_user(uid, k=2) for uid in audience}
    assert texts == {uid: f"{p[0].title} ({p[0].sku}), then {p[1].sku}" for uid, p in expected.items()}
    assert texts[u3] == "Item B (B), then C"  # co-bought with A, then what is popular


def test_campaign_skips_users_without_enough_picks(shop: siyu.Workspace) -> None:
    from siyu.testing import RecordingChannel

    channel = shop.channels.install(RecordingChannel())
    assert isinstance(channel, RecordingChannel)
    u1, u2 = users(shop, 2)
    buy(shop, u1, "AB")
    for uid in (u1, u2):
        shop.users.consent(uid, purpose="marketing", channel="recording")
    campaign = shop.campaigns.create("picks", audience=[u1, u2], channel="recording", template="${rec_2_title}")
    report = shop.campaigns.send(campaign.id)
    # u1 bought both products there are; u2 gets the two popular ones.
    assert report.sent == 1 and report.skipped_by == {"missing_variable": 1}
    assert [(m.user_id, m.text) for m in channel.sent] == [(u2, "Item B")]


def evaluation_shop(planted: bool) -> siyu.recommendations.Evaluation:
    """120 customers and 24 products in 6 categories of 4; two purchases more than 14 days
    ago, one new product in the last 14 days. ``planted``: all three from the customer's home
    category (otherwise any products)."""
    import random

    rng = random.Random(5)
    now = T0 + timedelta(days=60)
    with siyu.connect("memory://", clock=FakeClock(now)) as ws:
        skus = [f"P{i:02d}" for i in range(24)]
        for sku in skus:
            ws.products.add(sku, sku, price="10", cost="2", role="profit")
        for uid in users(ws, 120):
            pool = skus[(uid % 6) * 4:(uid % 6) * 4 + 4] if planted else skus
            first, second, new = rng.sample(pool, 3)
            for sku, days in ((first, 40), (second, 30), (new, 3)):
                ws.orders.record(uid, [{"sku": sku, "qty": 1}], paid_at=now - timedelta(days=days))
        return ws.recommendations.evaluate(holdout_days=14, k=2)


def test_evaluation_recovers_planted_structure() -> None:
    planted = evaluation_shop(planted=True)
    assert planted.users == 120 and planted.k == 2
    # The two products left in the home category are the only candidates co-purchase finds.
    assert planted.hit_rate == 1.0 and planted.ndcg > 0.6
    assert planted.popularity_hit_rate < 0.3
    assert planted.lift is not None and planted.lift > 3
    noise = evaluation_shop(planted=False)
    assert noise.users == 120
    assert noise.hit_rate <= noise.popularity_hit_rate + 0.15


def test_evaluate_input(shop: siyu.Workspace) -> None:
    empty = shop.recommendations.evaluate()
    assert (empty.users, empty.hit_rate, empty.lift) == (0, 0.0, None)
    with pytest.raises(ValidationError, match="holdout_days"):
        shop.recommendations.evaluate(holdout_days=0)


def test_a_slow_model_lags_writes_but_never_an_erasure(shop: siyu.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.recommendations import service

    # As if every build were slow: after writes, the model waits for its rebuild window.
    monkeypatch.setattr(service, "QUICK_BUILD", 0.0)
    monkeypatch.setattr(service, "REBUILD_SHARE", 1e12)
    u1, u2, u3 = users(shop, 3)
    buy(shop, u1, "AB")
    assert set(scores(shop.recommendations.similar("A"))) == {"B"}
    buy(shop, u2, "AC")
    assert set(scores(shop.recommendations.similar("A"))) == {"B"}  # not yet
    shop.privacy.erase(u1)
    assert set(scores(shop.recommendations.similar("A"))) == {"C"}  # the erasure, and the write before it
    buy(shop, u3, "AD")
    shop.users.add()
    assert set(scores(shop.recommendations.similar("A"))) == {"C"}


def test_cart_suggestions_reach_a_coupon_threshold(shop: siyu.Workspace) -> None:
    from decimal import Decimal

    shop.products.update("A", price="60", cost="10")
    shop.products.update("B", price="50", cost="10")
    shop.products.update("C", price="5", cost="1")
    u1, u2, u3, me = users(shop, 4)
    buy(shop, u1, "AC")
    buy(shop, u2, "AC")
    buy(shop, u3, "AB")
    shop.coupons.create("满100减20", amount="20", threshold="100", valid_days=7)
    shop.coupons.issue("满100减20", me)
    cart = [{"sku": "A", "qty": 1}]
    assert [r.sku for r in shop.recommendations.for_user(me, context_sku="A")][:2] == ["C", "B"]
    first, second = shop.recommendations.for_cart(me, cart, k=2)
    # B goes with A less often than C, but it takes the cart over the coupon's threshold.
    assert first.recommendation.sku == "B" and first.saves == Decimal("20.00") and first.unlocks
    assert first.recommendation.reasons[0] == Reason(kind=ReasonKind.CO_BOUGHT, sku="A", users=1)
    assert second.recommendation.sku == "C" and second.saves == 0 and second.unlocks == ()
    with pytest.raises(NotFound):
        shop.recommendations.for_cart(me, [{"sku": "ZZ", "qty": 1}])


def test_the_model_a_campaign_built_gives_way_to_the_shared_one(shop: siyu.Workspace) -> None:
    from siyu.testing import RecordingChannel

    shop.channels.install(RecordingChannel())
    u1, u2 = users(shop, 2)
    buy(shop, u1, "AB")
    shop.users.consent(u2, purpose="marketing", channel="recording")
    campaign = shop.campaigns.create("picks", audience=[u2], channel="recording", template="${rec_1_sku}")
    assert shop.campaigns.send(campaign.id).sent == 1  # built inside the send, before any other call
    buy(shop, u2, "AC")
    assert set(scores(shop.recommendations.similar("A"))) == {"B", "C"}
    fresh = Recommendations(shop, analytics=shop.analytics, tiers=shop.tiers, promotions=shop.promotions)
    assert shop.recommendations.for_user(u1) == fresh.for_user(u1)
