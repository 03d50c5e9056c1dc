"""Every report against a naive recomputation from the public API, on random shops
(hypothesis), on memory and SQLite."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.testing import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=TZ)  # a Monday
SPAN_H = 24 * 7 * 10  # ten weeks of hours
END = T0 + timedelta(hours=SPAN_H + 1)
SOURCES = ["douyin", "parcel", None]
KINDS = ["page_view", "added_wecom"]

hours = st.integers(0, SPAN_H)
shops = st.fixed_dictionaries({
    "users": st.lists(st.tuples(hours, st.sampled_from(SOURCES), st.booleans()), min_size=1, max_size=10),
    "events": st.lists(st.tuples(st.integers(0, 9), st.sampled_from(KINDS), hours), max_size=20),
    "orders": st.lists(
        st.tuples(st.integers(0, 9), hours, st.integers(1, 4), st.sampled_from(["mini", "store"]),
                  st.sampled_from(["none", "none", "full", "part"])),
        max_size=14,
    ),
    "binds": st.lists(st.tuples(st.integers(1, 9), st.integers(0, 8)), max_size=5),
})


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
        return
    folder = tempfile.mkdtemp()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _open(backend: str) -> tuple[siyu.Workspace, FakeClock]:
    clock = FakeClock(END)
    url = backend if backend == "memory://" else f"sqlite:///{tempfile.mkdtemp(dir=backend)}/shop.db"
    return siyu.connect(url, clock=clock, tz="Asia/Shanghai"), clock


def build(ws: siyu.Workspace, shop: dict[str, Any]) -> list[int]:
    ws.products.add("TEA", "Tea", price="10", cost="2", role="profit")
    ids = ws.users.add_many([
        {"created_at": T0 + timedelta(hours=h), "source": s, **({"wecom_external_userid": f"wm{i}"} if w else {})}
        for i, (h, s, w) in enumerate(shop["users"])
    ])
    n = len(ids)
    rows = [{"user_id": ids[u % n], "kind": k, "at": T0 + timedelta(hours=h)} for u, k, h in shop["events"]]
    if rows:
        ws.events.track_many(rows)
    for index, (u, h, qty, channel, refund) in enumerate(shop["orders"]):
        order = ws.orders.record(ids[u % n], [{"sku": "TEA", "qty": qty}], paid_at=T0 + timedelta(hours=h),
                                 channel=channel)
        if refund == "full":
            ws.orders.refund(order.id, key=f"r{index}")
        elif refund == "part":
            ws.orders.refund(order.id, "5", key=f"r{index}")
    binds = {}
    for invitee, inviter in shop["binds"]:
        if invitee < n and inviter < invitee and invitee not in binds:
            binds[invitee] = inviter
    if binds:
        ws.referrals.import_bindings([
            {"invitee_id": ids[a], "inviter_id": ids[b], "bound_at": T0 + timedelta(hours=shop["users"][a][0])}
            for a, b in binds.items()
        ])
    return ids


def facts(ws: siyu.Workspace, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per user, from the public API only: created, source, first reach of each step, activity, orders."""
    out: dict[int, dict[str, Any]] = {}
    for uid in ids:
        user = ws.users.get(uid)
        events = ws.events.of(uid, limit=10_000)
        orders = sorted((o for o in ws.orders.of(uid) if o.refunded_fen < o.total_fen or o.total_fen == 0),
                        key=lambda o: (o.paid_at, o.id))
        wecom = [i.linked_at for i in user.identities if i.kind == "wecom_external_userid" and i.linked_at]
        wecom += [e.at for e in events if e.kind == "added_wecom"]
        invited = [b.bound_at for v in ws.referrals.invitees(uid) if (b := ws.referrals.binding(v)) is not None
                   and b.status == "active"]
        reach: dict[str, datetime | None] = {
            "first_seen": user.created_at,
            "added_wecom": min(wecom, default=None),
            "first_order": orders[0].paid_at if orders else None,
            "second_order": orders[1].paid_at if len(orders) > 1 else None,
            "invited_friend": min(invited, default=None),
            "page_view": min((e.at for e in events if e.kind == "page_view"), default=None),
        }
        out[uid] = {"source": user.source, "reach": reach, "events": [e.at for e in events], "orders": orders}
    return out


def week(at: datetime) -> datetime:
    day = at.astimezone(TZ).date()
    day -= timedelta(days=day.weekday())
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


@settings(max_examples=8, deadline=None)
@given(shop=shops, steps=st.permutations(["first_seen", "added_wecom", "first_order", "second_order",
                                         "invited_friend", "page_view"]).map(lambda p: p[:4]),
       since_h=st.one_of(st.none(), hours), length_h=st.integers(1, SPAN_H))
def test_funnel_matches_naive(backend: str, shop: dict[str, Any], steps: list[str], since_h: int | None,
                              length_h: int) -> None:
    ws, _ = _open(backend)
    with ws:
        ids = build(ws, shop)
        if "page_view" in steps and not any(k == "page_view" for _, k, _ in shop["events"]):
            with pytest.raises(siyu.errors.ValidationError, match="unknown funnel step 'page_view'"):
                ws.analytics.funnel(steps)
            return
        since = None if since_h is None else T0 + timedelta(hours=since_h)
        until = (T0 if since is None else since) + timedelta(hours=length_h)
        report = ws.analytics.funnel(steps, since=since, until=until, by="source")
        data = facts(ws, ids)

        def count(members: list[int]) -> tuple[int, ...]:
            counts = []
            for k in range(len(steps)):
                n = 0
                for uid in members:
                    first = data[uid]["reach"][steps[0]]
                    if first is None or first >= until or (since is not None and first < since):
                        continue
                    if all((t := data[uid]["reach"][s]) is not None and t < until for s in steps[1:k + 1]):
                        n += 1
                counts.append(n)
            return tuple(counts)

        assert report.counts["(all)"] == count(ids)
        for source in SOURCES:
            members = [u for u in ids if data[u]["source"] == source]
            expected = count(members)
            label = "(none)" if source is None else source
            assert report.counts.get(label, (0,) * len(steps)) == expected


@settings(max_examples=8, deadline=None)
@given(shop=shops, metric=st.sampled_from(["active", "ordered"]))
def test_weekly_cohorts_match_naive(backend: str, shop: dict[str, Any], metric: str) -> None:
    ws, _ = _open(backend)
    with ws:
        ids = build(ws, shop)
        report = ws.analytics.cohorts("week", metric, since=T0, until=END)
        data = facts(ws, ids)
        starts = [week(T0) + timedelta(weeks=i) for i in range(len(report.cohorts))]
        assert report.cohorts == tuple(f"{s:%Y-%m-%d}" for s in starts)
        for i, start in enumerate(starts):
            members = [u for u in ids if week(data[u]["reach"]["first_seen"]) == start]
            assert report.sizes[i] == len(members)
            for k in range(len(starts) - i):
                target = starts[i + k]
                n = 0
                for uid in members:
                    when = [o.paid_at for o in data[uid]["orders"]]
                    if metric == "active":
                        when += data[uid]["events"]
                    if any(week(t) == target and t < END for t in when):
                        n += 1
                assert report.retained[i][k] == n


@settings(max_examples=8, deadline=None)
@given(shop=shops, quantiles=st.integers(2, 6))
def test_rfm_matches_naive(backend: str, shop: dict[str, Any], quantiles: int) -> None:
    ws, _ = _open(backend)
    with ws:
        ids = build(ws, shop)
        report = ws.analytics.rfm(quantiles)
        data = facts(ws, ids)
        buyers = {u: d for u, d in data.items() if d["orders"]}
        values = {
            u: (d["orders"][-1].paid_at if len(d["orders"]) else None, len(d["orders"]),
                sum(o.total_fen - o.refunded_fen for o in d["orders"]))
            for u, d in buyers.items()
        }
        # The last counted order by time (orders are sorted by paid_at, id).
        values = {u: (max(o.paid_at for o in buyers[u]["orders"]), f, m) for u, (_, f, m) in values.items()}
        n = len(values)

        def score(axis: int, v: Any) -> int:
            below = sum(1 for other in values.values() if other[axis] < v)
            return math.ceil(quantiles * (below + 1) / n)

        expected = {u: (score(0, v[0]), score(1, v[1]), score(2, v[2])) for u, v in values.items()}
        assert report.scores() == expected
        for row in report.rows:
            assert row[6] == Decimal(values[row[0]][2]) / 100
        if quantiles == 5:
            assert set(ws.segments.users("rfm.r >= 4 and rfm.m >= 4")) == {
                u for u, s in expected.items() if s[0] >= 4 and s[2] >= 4}


@settings(max_examples=8, deadline=None)
@given(shop=shops, window_days=st.integers(1, 60))
def test_repurchase_aov_new_vs_returning_match_naive(backend: str, shop: dict[str, Any], window_days: int) -> None:
    ws, _ = _open(backend)
    with ws:
        ids = build(ws, shop)
        data = facts(ws, ids)
        orders = [o for d in data.values() for o in d["orders"]]
        window = timedelta(days=window_days)
        rep = ws.analytics.repurchase(window, period="week")
        buyers = [d["orders"] for d in data.values() if d["orders"]]
        again = sum(1 for os_ in buyers if len(os_) > 1 and os_[1].paid_at - os_[0].paid_at <= window)
        assert rep.rows[-1][1:3] == (len(buyers), again)
        aov = ws.analytics.aov(by="channel")
        for channel in ("mini", "store"):
            mine = [o for o in orders if o.channel == channel]
            row = next((r for r in aov.rows if r[0] == channel), None)
            if not mine:
                assert row is None
                continue
            assert row is not None
            net = sum(o.total_fen - o.refunded_fen for o in mine)
            assert row[1:4] == (len(mine), len({o.user_id for o in mine}), Decimal(net) / 100)
        nvr = ws.analytics.new_vs_returning("week", since=T0, until=END)
        firsts = {os_[0].user_id: os_[0].paid_at for os_ in buyers}
        for i, row in enumerate(nvr.rows):
            start = week(T0) + timedelta(weeks=i)
            inside = [o for o in orders if week(o.paid_at) == start]
            new = {o.user_id for o in inside if week(firsts[o.user_id]) == start}
            old = {o.user_id for o in inside} - new
            assert row[1:4] == (len(new | old), len(new), len(old))
            assert row[5:7] == (sum(o.user_id in new for o in inside), sum(o.user_id in old for o in inside))
