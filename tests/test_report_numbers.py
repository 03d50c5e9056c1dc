"""The numbers an operator acts on, on a shop small enough to work out by hand:
RFM scores under heavy ties, the K-factor, the invite funnel, repurchase
windows still open, and the dates every report and chart states.

The shop (Asia/Shanghai): ten buyers b1 ... b10 with orders from April to
June 2026 (seven ordered once, two twice, one five times), then a 任务宝
campaign in late June where b10 shares a poster and brings two friends.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.cli import cli
from siyu.demo_shop import build
from siyu.models.referrals import Reward
from siyu.testing import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
#: Every RFM and repurchase number below is as of this instant (exclusive).
UNTIL = datetime(2026, 6, 20, tzinfo=TZ)


def _at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ)


#: buyer -> [(order day, qty)]; TEA costs 100 yuan.
ORDERS: dict[str, list[tuple[tuple[int, int], int]]] = {
    "b1": [((4, 1), 1)],
    "b2": [((4, 3), 1)],
    "b3": [((4, 5), 1)],
    "b4": [((4, 7), 1)],
    "b5": [((5, 1), 1)],
    "b6": [((5, 10), 1)],
    "b7": [((6, 1), 3)],
    "b8": [((4, 10), 1), ((4, 25), 1)],
    "b9": [((5, 25), 1), ((6, 10), 1)],
    "b10": [((4, 2), 1), ((4, 12), 1), ((5, 2), 1), ((5, 22), 1), ((6, 12), 1)],
}


def build_shop(ws: siyu.Workspace, clock: FakeClock) -> dict[str, int]:
    clock.set(_at(3, 1))
    ws.products.add("TEA", "tea", price="100", cost="20", role="profit")
    ids = {name: ws.users.add(created_at=_at(3, 1)).id for name in ORDERS}
    ids.update({name: ws.users.add(created_at=_at(3, 1)).id for name in ("n1", "n2", "n3", "n4")})
    placed = sorted((_at(*day), name, qty) for name, orders in ORDERS.items() for day, qty in orders)
    for when, name, qty in placed:
        clock.set(when)
        ws.orders.record(ids[name], [{"sku": "TEA", "qty": qty}], paid_at=when)
    # A 任务宝 from 06-22: b10 shares the poster with ten friends; b1 only opened the task page (which
    # fetches their code) and never shared. Four scans, three friends bind within the hour; the burst
    # guard holds the third, and the review rejects it. n1 then buys.
    clock.set(_at(6, 22))
    ws.referrals.fraud.configure(burst=(2, timedelta(hours=1)), phone_prefix=None, shared_device=None)
    ws.referrals.tasks.create("spring", campaign="task", stages=[(2, Reward.of_points(50))], deadline=_at(7, 22))
    code = ws.referrals.invite_code(ids["b10"], campaign="task", channel_state="poster")
    ws.referrals.invite_code(ids["b1"], campaign="task", channel_state="poster")
    ws.referrals.record_share(ids["b10"], campaign="task", channel_state="poster", count=10)
    for _ in range(4):
        ws.referrals.record_scan(code)
    for name in ("n1", "n2", "n3"):
        clock.advance(minutes=5)
        ws.referrals.bind(ids[name], code)
    [hold] = ws.referrals.fraud.held("binding")
    ws.referrals.fraud.reject(hold.id, by="operator:li")
    clock.set(_at(6, 24))
    ws.orders.record(ids["n1"], [{"sku": "TEA", "qty": 1}], paid_at=_at(6, 24))
    # Another campaign where the shop records nothing but the binding itself: a clerk binds n4 to b9.
    ws.referrals.bind(ids["n4"], inviter_id=ids["b9"], campaign="counter", channel_state="store_qr")
    clock.set(_at(6, 25))
    return ids


@pytest.fixture
def shop() -> Any:
    clock = FakeClock(_at(3, 1))
    with siyu.connect("memory://", clock=clock, tz="Asia/Shanghai") as ws:
        yield ws, build_shop(ws, clock), clock


# -- RFM ------------------------------------------------------------------------------------------------------
def test_rfm_scores_by_hand(shop: Any) -> None:
    ws, ids, _ = shop
    report = ws.analytics.rfm(until=UNTIL)
    # F: seven buyers ordered once (none below them): ceil(5 * 1/10) = 1. b8 and b9 ordered twice, seven
    # below: ceil(5 * 8/10) = 4. b10, nine below: 5.
    # R: last orders from oldest b1 4/01, b2 4/03, b3 4/05, b4 4/07, b8 4/25, b5 5/01, b6 5/10, b7 6/01,
    # b9 6/10, b10 6/12: the k-th oldest scores ceil(5 * k/10) = ceil(k / 2).
    # M: b1..b6 spent 100 (1), b8 and b9 200 (six below: ceil(5 * 7/10) = 4), b7 300 (ceil(4.5) = 5),
    # b10 500 (5).
    expected = {
        "b1": (1, 1, 1), "b2": (1, 1, 1), "b3": (2, 1, 1), "b4": (2, 1, 1), "b5": (3, 1, 1),
        "b6": (4, 1, 1), "b7": (4, 1, 5), "b8": (3, 4, 4), "b9": (5, 4, 4), "b10": (5, 5, 5),
    }
    assert report.scores() == {ids[name]: score for name, score in expected.items()}
    # The segment metrics score every order up to now, n1's 06-24 order too: eleven buyers. R = ceil(5k/11)
    # for the k-th oldest last order puts b6, b7 (k = 7, 8) at 4 and b9, b10, n1 at 5; the eight one-time
    # buyers still score F = 1, so the loyal, recent buyers are b9 and b10 (b8's last order is too old).
    loyal = ws.segments.users("rfm.r >= 4 and rfm.f >= 4")
    assert loyal == sorted([ids["b9"], ids["b10"]])


_buyers = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 40), st.integers(1, 3)),  # orders, days ago of the last, qty
    min_size=1, max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(buyers=_buyers, quantiles=st.integers(2, 6))
def test_rfm_is_monotone_and_heavy_ties_score_lowest(buyers: list[tuple[int, int, int]], quantiles: int) -> None:
    """Fewer orders never score a higher F (an older last order never a higher R, less money never a
    higher M), equal values share a score, and the value shared by the lowest buyers scores 1 whenever
    there are at least as many buyers as scores."""
    clock = FakeClock(_at(3, 1))
    with siyu.connect("memory://", clock=clock, tz="Asia/Shanghai") as ws:
        ws.products.add("TEA", "tea", price="10", cost="2", role="profit")
        uids = ws.users.add_many([{} for _ in buyers])
        rows = []
        for uid, (orders, ago, qty) in zip(uids, buyers, strict=True):
            last = UNTIL - timedelta(days=ago, hours=1)
            rows += [{"user_id": uid, "paid_at": last - timedelta(days=50 * k), "key": f"{uid}:{k}",
                      "lines": [{"sku": "TEA", "qty": qty}]} for k in range(orders)]
        clock.set(UNTIL)
        ws.orders.record_many(rows)
        scores = ws.analytics.rfm(quantiles, until=UNTIL).scores()
    values = {uid: (-ago, orders, orders * qty) for uid, (orders, ago, qty) in zip(uids, buyers, strict=True)}
    for axis in range(3):
        for a in uids:
            for b in uids:
                if values[a][axis] < values[b][axis]:
                    assert scores[a][axis] <= scores[b][axis], (axis, values[a], values[b])
                if values[a][axis] == values[b][axis]:
                    assert scores[a][axis] == scores[b][axis]
        if len(uids) >= quantiles:
            lowest = min(v[axis] for v in values.values())
            assert {scores[u][axis] for u in uids if values[u][axis] == lowest} == {1}


# -- K-factor and the invite funnel ----------------------------------------------------------------------------
def test_k_factor_counts_users_who_shared_not_code_fetchers(shop: Any) -> None:
    ws, _, _ = shop
    stats = ws.referrals.stats("task")
    # One user shared (b10); b1 fetched a code and never shared. Ten invites, two new users (n3 rejected):
    # K = (10 invites / 1 inviter) x (2 new users / 10 invites) = 2.0; fission rate 2 / 1 seed = 2.0.
    assert (stats.inviters, stats.invites_sent, stats.new_users) == (1, 10, 2)
    assert stats.k_factor == pytest.approx(2.0)
    assert stats.fission_rate == pytest.approx(2.0)
    # Every campaign: b10 and b9 invited; 10 + 1 invites (the unrecorded one that bound n4); 3 new users:
    # K = (11 / 2) x (3 / 11) = 1.5.
    everything = ws.referrals.stats()
    assert (everything.inviters, everything.invites_sent, everything.new_users) == (2, 11, 3)
    assert everything.k_factor == pytest.approx(1.5)
    report = ws.analytics.fission("task")
    values = dict(report.rows)
    assert values["k_factor"] == 2.0 and values["inviters"] == 1 and values["fission_rate"] == 2.0


def test_invite_funnel_by_hand(shop: Any) -> None:
    ws, _, _ = shop
    funnel = ws.referrals.stats("task").funnel
    # 10 shared, 4 scans, 2 bound (the rejected third left), n1 bought after binding.
    assert (funnel.sent, funnel.scanned, funnel.bound, funnel.converted) == (10, 4, 2, 1)
    # Nothing recorded but the binding: whoever bound was sent an invitation and opened it.
    counter = ws.referrals.stats("counter")
    assert (counter.funnel.sent, counter.funnel.scanned, counter.funnel.bound, counter.funnel.converted) \
        == (1, 1, 1, 0)
    assert counter.by_channel_state["store_qr"] == counter.funnel
    states = ws.analytics.fission().channel_states().as_dicts()
    assert [(s["channel_state"], s["sent"], s["scanned"], s["bound"]) for s in states] == [
        ("poster", 10, 4, 2), ("store_qr", 1, 1, 1)]


def test_a_held_binding_is_bound_until_the_review_rejects_it(shop: Any) -> None:
    ws, ids, clock = shop
    clock.set(_at(6, 26))
    code = ws.referrals.invite_code(ids["b10"], campaign="task", channel_state="poster")
    extra = ws.users.add_many([{}, {}, {}])
    for uid in extra:
        clock.advance(minutes=1)
        ws.referrals.bind(uid, code)
    assert ws.referrals.stats("task").funnel.bound == 2 + 3  # the third is held: still bound
    [hold] = ws.referrals.fraud.held("binding")
    ws.referrals.fraud.reject(hold.id)
    funnel = ws.referrals.stats("task").funnel
    assert funnel.bound == 4 and funnel.scanned >= funnel.bound and funnel.sent >= funnel.scanned


def test_fission_cli_and_chart_show_the_same_k(shop: Any, tmp_path: Path) -> None:
    ws, _, _ = shop
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    clock = FakeClock(_at(3, 1))
    with siyu.connect(db, clock=clock, tz="Asia/Shanghai") as file_ws:
        build_shop(file_ws, clock)
    result = CliRunner().invoke(cli, ["--db", db, "report", "fission", "--campaign", "task", "--format", "json"],
                                catch_exceptions=False)
    values = {row["metric"]: row["value"] for row in json.loads(result.output)["rows"]}
    assert values["k_factor"] == 2.0 and values["inviters"] == 1 and values["invites_sent"] == 10
    pytest.importorskip("matplotlib")
    from siyu.analytics import charts

    chart = charts.draw(ws.analytics.fission("task"), tmp_path / "fission.png")
    assert "K = 2.00" in chart.title and chart.covers == "as of 2026-06-25 10:00"


# -- repurchase windows and report dates -------------------------------------------------------------------------
def test_repurchase_windows_by_hand(shop: Any, tmp_path: Path) -> None:
    ws, _, _ = shop
    report = ws.analytics.repurchase(timedelta(days=30), until=UNTIL)
    # April first orders: b1, b2, b3, b4, b8 (again 15 days later), b10 (again 10 days later); every
    # window closed by 05-10. May: b5, b6, b9 (again 16 days later, but its window runs to 06-24, past
    # UNTIL). June: b7, window open.
    assert report.rows == (
        ("2026-04", 6, 2, pytest.approx(1 / 3), True),
        ("2026-05", 3, 1, pytest.approx(1 / 3), False),
        ("2026-06", 1, 0, 0.0, False),
        ("(all)", 10, 3, 0.3, False),
    )
    assert report.title.endswith("2026-04-01 to 2026-06-19")
    text = str(report).splitlines()
    assert text[3].startswith("2026-04 ") and text[4].startswith("2026-05* ") and text[5].startswith("2026-06* ")
    assert "window is still open" in text[-1]
    pytest.importorskip("matplotlib")
    from siyu.analytics import charts

    chart = charts.draw(report, tmp_path / "repurchase.png")
    assert chart.x == ("2026-04", "2026-05", "2026-06") and chart.partial == (False, True, True)
    assert chart.covers == "first orders 2026-04-01 to 2026-06-19"


def test_running_periods_are_marked(shop: Any, tmp_path: Path) -> None:
    ws, _, _ = shop
    mid_june = _at(6, 17, 15)  # a Wednesday afternoon
    cohorts = ws.analytics.cohorts("week", "ordered", since=_at(6, 1), until=mid_june)
    assert cohorts.cohorts == ("2026-06-01", "2026-06-08", "2026-06-15") and cohorts.running
    assert cohorts.partial() == [[False, False, True], [False, True, False], [True, False, False]]
    lines = str(cohorts).splitlines()
    assert lines[0].endswith("2026-06-01 to 2026-06-17 15:00")
    assert lines[-2].startswith("2026-06-15*") and lines[-1].startswith("* 2026-06-15 had not ended")
    closed = ws.analytics.cohorts("week", "ordered", since=_at(6, 1), until=datetime(2026, 6, 15, tzinfo=TZ))
    assert not closed.running and "*" not in str(closed)
    nvr = ws.analytics.new_vs_returning("month", since=_at(4, 1, 0), until=mid_june)
    assert nvr.running and [r[0] for r in nvr.rows] == ["2026-04", "2026-05", "2026-06"]
    assert str(nvr).splitlines()[-2].startswith("2026-06*")
    aov = ws.analytics.aov(by="month", until=mid_june)
    assert aov.running and aov.cells()[-2][0] == "2026-06*"
    pytest.importorskip("matplotlib")
    from siyu.analytics import charts

    # Everyone joined in March: only the March cohort has cells to hatch, its June one.
    monthly = ws.analytics.cohorts("month", "ordered", since=_at(3, 1), until=mid_june)
    heat = charts.draw(monthly, tmp_path / "cohorts.png")
    assert heat.y == ("2026-03", "2026-04", "2026-05", "2026-06") and heat.values[0][3] is not None
    assert [[i, k] for i, row in enumerate(heat.partial) for k, flag in enumerate(row) if flag] == [[0, 3]]
    bars = charts.draw(nvr, tmp_path / "nvr.png")
    assert bars.partial == (False, False, True) and bars.covers == "2026-04-01 to 2026-06-17 15:00"


def test_every_report_and_chart_states_its_period(shop: Any, tmp_path: Path) -> None:
    ws, _, _ = shop
    a = ws.analytics
    reports = [a.funnel(until=UNTIL), a.cohorts(until=UNTIL), a.rfm(until=UNTIL), a.touchpoints(until=UNTIL),
               a.aov(until=UNTIL), a.aov(by="week", until=UNTIL), a.repurchase(until=UNTIL),
               a.new_vs_returning(until=UNTIL)]
    for report in reports:
        assert report.covers.endswith("2026-06-19") and report.covers in report.title, report.title
    assert a.fission().covers == "as of 2026-06-25 10:00"
    pytest.importorskip("matplotlib")
    from siyu.analytics import charts

    for n, report in enumerate([*reports, a.fission()]):
        drawn = charts.draw(report, tmp_path / f"{n}.svg")
        assert drawn.covers and drawn.covers.endswith(report.covers), (drawn.kind, drawn.covers)
        assert drawn.covers.split(" to ")[-1] in (tmp_path / f"{n}.svg").read_text()


# -- the demo -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    clock = FakeClock(datetime(2026, 5, 4, tzinfo=ZoneInfo("UTC")))
    with siyu.connect(db, clock=clock) as ws:
        shop = build(ws, clock, users=1000, weeks=26)
    return db, shop.end


def test_demo_loyal_segment_has_no_one_time_buyers(demo: Any) -> None:
    db, _ = demo
    with siyu.connect(db) as ws:
        orders = {row[0]: row[5] for row in ws.analytics.rfm().rows}
        one_time = sum(1 for n in orders.values() if n == 1)
        assert one_time > len(orders) / 2  # most buyers ordered once ...
        assert {s[1] for u, s in ws.analytics.rfm().scores().items() if orders[u] == 1} == {1}  # ... and score F=1
        loyal = ws.segments.users("rfm.r >= 4 and rfm.f >= 4")
        assert loyal and all(orders[u] >= 2 for u in loyal)


def test_demo_invite_funnel_is_recorded_and_monotone(demo: Any) -> None:
    db, _ = demo
    with siyu.connect(db) as ws:
        stats = ws.referrals.stats("demo_invite")
        f = stats.funnel
        assert f.sent > f.scanned > f.bound > f.converted > 0
        assert f.bound == stats.new_users
        with ws.read() as tx:
            recorded = {stage: n for (_, _, stage), n in tx.referrals.funnel("demo_invite").items()}
        assert (recorded["sent"], recorded["scanned"]) == (f.sent, f.scanned)  # recorded, not filled in
        assert stats.k_factor == pytest.approx(stats.new_users / stats.inviters)


def test_demo_reports_end_where_its_history_ends(demo: Any) -> None:
    db, end = demo
    with siyu.connect(db) as ws:  # the real clock: months after the simulated history
        assert ws.analytics.as_of() == end
        assert ws.analytics.cohorts() == ws.analytics.cohorts(until=end)
        assert ws.analytics.new_vs_returning().rows[-1][1] > 0  # the last month has buyers, not an empty tail
    last_day = f"{(end - timedelta(days=1)).astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d}"
    result = CliRunner().invoke(cli, ["--db", db, "report", "cohorts"], catch_exceptions=False)
    assert result.exit_code == 0 and f"to {last_day}" in result.output
    result = CliRunner().invoke(cli, ["--db", db, "report", "repurchase", "--format", "json"], catch_exceptions=False)
    assert json.loads(result.output)["title"].endswith(f"to {last_day}")


def test_a_database_not_built_by_the_demo_reports_up_to_now(shop: Any) -> None:
    ws, _, clock = shop
    assert ws.analytics.as_of() == clock.now
    assert ws.analytics.rfm().until == clock.now
