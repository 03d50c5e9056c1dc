"""Analytics on a small shop whose every number was worked out by hand.

Five users in Asia/Shanghai over five weeks (Monday 2026-05-04 to
2026-06-08): two from ``douyin`` (one on WeCom from the start, one who
tracked ``added_wecom``), two from ``parcel`` (one on WeCom, invited by the
first user), one without a source. Orders include a fully refunded one
(never counted) and a partly refunded one (counted, net of the refund).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import siyu
from siyu.testing import FakeClock

from .base import ContractBase

__all__ = ["AnalyticsContract", "build_small_shop"]

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 5, 4, 10, 0, tzinfo=TZ)
UNTIL = datetime(2026, 6, 8, 0, 0, tzinfo=TZ)


def _at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=TZ)


def build_small_shop(ws: siyu.Workspace, clock: FakeClock) -> dict[str, int]:
    """Build the hand-computed shop; returns the user ids by name (u1 ... u5)."""
    clock.set(START)
    ws.products.add("TEA", "Tea", price="100", cost="20", role="profit")
    ids: dict[str, int] = {}

    def user(name: str, when: datetime, **fields: Any) -> int:
        clock.set(when)
        ids[name] = ws.users.add(created_at=when, **fields).id
        return ids[name]

    def order(uid: int, when: datetime, qty: int, channel: str) -> int:
        clock.set(when)
        return ws.orders.record(uid, [{"sku": "TEA", "qty": qty}], paid_at=when, channel=channel).id

    u1 = user("u1", _at(5, 4), source="douyin", wecom_external_userid="wm_u1")
    u2 = user("u2", _at(5, 5), source="douyin")
    order(u1, _at(5, 5, 12), 1, "mini")
    refunded = order(u2, _at(5, 6), 2, "mini")
    clock.set(_at(5, 7))
    ws.orders.refund(refunded, key="refund-u2")
    clock.set(_at(5, 12))
    ws.events.track(u2, "added_wecom", at=_at(5, 12), key="u2-wecom")
    u3 = user("u3", _at(5, 12, 11), source="parcel")
    ws.events.track_many([
        {"user_id": u3, "kind": "page_view", "at": _at(5, 12, 12), "key": "u3-pv-1"},
    ])
    u4 = user("u4", _at(5, 13), source="parcel", wecom_external_userid="wm_u4")
    ws.referrals.bind(u4, inviter_id=u1)
    user("u5", _at(5, 19))
    order(u1, _at(5, 20), 1, "mini")
    clock.set(_at(5, 26))
    ws.events.track_many([
        {"user_id": u3, "kind": "page_view", "at": _at(5, 26), "key": "u3-pv-2"},
        {"user_id": u3, "kind": "page_view", "at": _at(5, 26), "key": "u3-pv-2"},  # a retried duplicate
    ])
    order(u3, _at(5, 27), 1, "store")
    big = order(u4, _at(6, 1), 3, "mini")
    order(u4, _at(6, 2), 1, "mini")
    clock.set(_at(6, 3))
    ws.orders.refund(big, "50", key="refund-u4")
    clock.set(UNTIL)
    return ids


class AnalyticsContract(ContractBase):
    """Every report's numbers on the hand-computed shop, on this backend."""

    @pytest.fixture
    def shop(self, connect: Any, clock: FakeClock) -> tuple[siyu.Workspace, dict[str, int]]:
        ws = connect(tz="Asia/Shanghai")
        return ws, build_small_shop(ws, clock)

    def test_analytics_funnel(self, shop: Any) -> None:
        ws, _ = shop
        report = ws.analytics.funnel(by="source")
        assert report.counts["(all)"] == (5, 3, 2, 2, 1)
        assert report.counts["douyin"] == (2, 2, 1, 1, 1)
        assert report.counts["parcel"] == (2, 1, 1, 1, 0)
        assert report.counts["(none)"] == (1, 0, 0, 0, 0)
        rows = {(r[0], r[1]): r for r in report.rows}
        assert rows[("(all)", "added_wecom")][3] == pytest.approx(3 / 5)
        assert rows[("(all)", "invited_friend")][4] == pytest.approx(1 / 5)
        # Entering in a window: only users created in the week of 2026-05-11.
        week = ws.analytics.funnel(["first_seen", "page_view", "first_order"], since=_at(5, 11, 0), until=_at(5, 18, 0))
        assert week.totals() == (2, 1, 0)  # u3's order is after `until`
        later = ws.analytics.funnel(["first_seen", "page_view", "first_order"], since=_at(5, 11, 0))
        assert later.totals() == (3, 1, 1)

    def test_analytics_funnel_first_step_in_range(self, shop: Any) -> None:
        ws, _ = shop
        # Users whose first counted order was in June: only u4.
        report = ws.analytics.funnel(["first_order", "second_order"], since=_at(6, 1, 0))
        assert report.totals() == (1, 1)
        assert ws.analytics.funnel(["added_wecom"], since=_at(5, 12, 0)).totals() == (2,)  # u2 (event), u4

    def test_analytics_cohorts(self, shop: Any) -> None:
        ws, _ = shop
        active = ws.analytics.cohorts("week", "active", since=_at(5, 4, 0), until=UNTIL)
        assert active.cohorts == ("2026-05-04", "2026-05-11", "2026-05-18", "2026-05-25", "2026-06-01")
        assert active.sizes == (2, 2, 1, 0, 0)
        assert active.retained[0] == (1, 1, 1, 0, 0)
        assert active.retained[1] == (1, 0, 1, 1, None)
        assert active.retained[2] == (0, 0, 0, None, None)
        assert active.rows[0][2:] == (0.5, 0.5, 0.5, 0.0, 0.0)
        ordered = ws.analytics.cohorts("week", "ordered", since=_at(5, 4, 0), until=UNTIL)
        assert ordered.retained[0] == (1, 0, 1, 0, 0)
        assert ordered.retained[1] == (0, 0, 1, 1, None)
        monthly = ws.analytics.cohorts("month", "ordered", since=_at(5, 1, 0), until=UNTIL)
        assert monthly.cohorts == ("2026-05", "2026-06")
        assert monthly.sizes == (5, 0)
        assert monthly.retained[0] == (2, 1)  # u1, u3 in May; u4 in June
        # Whatever a store derives to answer faster, rebuilding it from the rows changes no answer.
        ws.analytics.reindex()
        assert ws.analytics.cohorts("week", "active", since=_at(5, 4, 0), until=UNTIL) == active
        assert ws.analytics.cohorts("month", "ordered", since=_at(5, 1, 0), until=UNTIL) == monthly

    def test_analytics_rfm(self, shop: Any) -> None:
        ws, ids = shop
        report = ws.analytics.rfm()
        scores = report.scores()
        # F: u3 ordered once and is below both others, so 1 of 3 places up: ceil(5 * 1 / 3) = 2; u1 and u4
        # tie on 2 orders and share the score of their lower place, ceil(5 * 2 / 3) = 4.
        assert scores == {ids["u1"]: (2, 4, 4), ids["u3"]: (4, 2, 2), ids["u4"]: (5, 4, 5)}
        row = next(r for r in report.rows if r[0] == ids["u4"])
        assert row[4:] == (5, 2, Decimal("350.00"))  # 06-02 10:00 -> 06-08 00:00 is 5 whole days
        assert ws.segments.users("rfm.r >= 4 and rfm.m >= 4") == [ids["u4"]]
        assert ws.segments.count("rfm.f = 4") == 2 and ws.segments.count("rfm.f = 5") == 0

    def test_analytics_funnel_segments(self, shop: Any) -> None:
        ws, ids = shop
        assert ws.segments.users("funnel.added_wecom = true") == sorted([ids["u1"], ids["u2"], ids["u4"]])
        assert ws.segments.users("funnel.invited_friend = true") == [ids["u1"]]
        assert ws.segments.count("funnel.second_order = false") == 3

    def test_analytics_repurchase_aov(self, shop: Any) -> None:
        ws, _ = shop
        rep = ws.analytics.repurchase(timedelta(days=90))
        assert [r[:4] for r in rep.rows] == [("2026-05", 2, 1, 0.5), ("2026-06", 1, 1, 1.0), ("(all)", 3, 2, 2 / 3)]
        assert rep.rows[-1][4] is False
        assert ws.analytics.repurchase(timedelta(days=10)).rate == pytest.approx(1 / 3)
        aov = ws.analytics.aov(by="channel")
        assert aov.rows == (
            ("mini", 4, 2, Decimal("550.00"), Decimal("137.50"), Decimal("275.00")),
            ("store", 1, 1, Decimal("100.00"), Decimal("100.00"), Decimal("100.00")),
            ("(all)", 5, 3, Decimal("650.00"), Decimal("130.00"), Decimal("216.67")),
        )
        weekly = ws.analytics.aov(by="week", since=_at(5, 4, 0), until=UNTIL)
        assert [r[:4] for r in weekly.rows] == [
            ("2026-05-04", 1, 1, Decimal("100.00")), ("2026-05-18", 1, 1, Decimal("100.00")),
            ("2026-05-25", 1, 1, Decimal("100.00")), ("2026-06-01", 2, 1, Decimal("350.00")),
            ("(all)", 5, 3, Decimal("650.00")),
        ]
        assert ws.analytics.aov(by="source").rows[0][:4] == ("parcel", 3, 2, Decimal("450.00"))

    def test_analytics_touchpoints_and_new_vs_returning(self, shop: Any) -> None:
        ws, _ = shop
        tp = ws.analytics.touchpoints()
        assert [(*r[:3], r[4]) for r in tp.rows] == [
            ("douyin", 2, 2, 1), ("parcel", 2, 1, 1), ("(none)", 1, 0, 0)
        ]
        exposed = ws.analytics.touchpoints(reached={"parcel": 40})
        assert next(r for r in exposed.rows if r[0] == "parcel")[3] == pytest.approx(1 / 40)
        nvr = ws.analytics.new_vs_returning("month", since=_at(5, 1, 0), until=UNTIL)
        assert nvr.rows == (
            ("2026-05", 2, 2, 0, 0.0, 3, 0, Decimal("300.00"), Decimal("0.00")),
            ("2026-06", 1, 1, 0, 0.0, 2, 0, Decimal("350.00"), Decimal("0.00")),
        )
        weekly = ws.analytics.new_vs_returning("week", since=_at(5, 18, 0), until=UNTIL)
        assert weekly.rows[0][:4] == ("2026-05-18", 1, 0, 1)  # u1 bought first on 05-05

    def test_analytics_fission(self, shop: Any) -> None:
        ws, _ids = shop
        report = ws.analytics.fission()
        values = dict(report.rows)
        assert values["seed_users"] == 1 and values["new_users"] == 1 and values["generation_1"] == 1

    def test_analytics_recommendation_rows(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        """What ``ws.recommendations`` reads: order lines with units kept, product events, erased users."""
        for sku in ("TEA", "CUP"):
            ws.products.add(sku, sku, price="10", cost="2", role="profit")
        u1, u2, u3 = (ws.users.add().id for _ in range(3))
        first = ws.orders.record(u1, [{"sku": "TEA", "qty": 2}, {"sku": "CUP", "qty": 1}]).id
        second = ws.orders.record(u2, [{"sku": "TEA", "qty": 1}]).id
        ws.orders.refund(first, [{"sku": "TEA", "qty": 1}], key="r")
        ws.events.track_many([
            {"user_id": u1, "kind": "product_view", "properties": {"sku": "CUP"}},
            {"user_id": u1, "kind": "product_view", "properties": {"sku": 7}},
            {"user_id": u1, "kind": "page_view", "properties": {"sku": "TEA"}},
            {"user_id": u2, "kind": "added_to_cart", "properties": {"sku": "TEA", "qty": 1}},
        ])
        with ws.read() as tx:
            store = tx.analytics
            assert store.order_line_items(None) == [(first, "TEA", 1), (first, "CUP", 1), (second, "TEA", 1)]
            assert store.order_line_items([second]) == [(second, "TEA", 1)]
            items = store.event_items(None, ["added_to_cart", "product_view"])
            assert [sku for _, sku in items] == ["CUP", "TEA"]
            assert store.event_items([items[1][0]], ["added_to_cart"]) == [items[1]]
            assert store.event_items(None, []) == []
            assert store.erased_users() == []
        assert [r.sku for r in ws.recommendations.similar("TEA")] == ["CUP"]
        ws.privacy.erase(u3)
        ws.privacy.erase(u1)
        with ws.read() as tx:
            assert tx.analytics.erased_users() == [u1, u3]
        assert ws.recommendations.similar("TEA") == []
