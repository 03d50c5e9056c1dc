"""ws.analytics beyond the numbers: bad input, result formats, charts, the CLI,
segment metrics, merges and tracking."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import siyu
from siyu.analytics._time import buckets
from siyu.cli import cli
from siyu.errors import ValidationError
from siyu.testing import FakeClock
from siyu.testing.contract.analytics import START, TZ, UNTIL, build_small_shop

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shop() -> Any:
    clock = FakeClock(START)
    with siyu.connect("memory://", clock=clock, tz="Asia/Shanghai") as ws:
        ids = build_small_shop(ws, clock)
        yield ws, ids, clock


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.funnel(["first_seen", "nope"]), "unknown funnel step 'nope'"),
        (lambda a: a.funnel([]), "non-empty list"),
        (lambda a: a.funnel("first_seen"), "non-empty list"),
        (lambda a: a.funnel(["first_seen", "first_seen"]), "repeat a step"),
        (lambda a: a.funnel(by="city"), "not a breakdown"),
        (lambda a: a.funnel(since=UNTIL, until=START), "is after until"),
        (lambda a: a.funnel(since=START, until=START), "is empty"),
        (lambda a: a.funnel(since=datetime(2026, 5, 1)), "has no timezone"),
        (lambda a: a.cohorts("year"), "period must be one of"),
        (lambda a: a.cohorts("week", "clicked"), "metric must be"),
        (lambda a: a.cohorts("day", since=datetime(2000, 1, 1, tzinfo=UTC)), "more than 2000 days"),
        (lambda a: a.new_vs_returning("quarter"), "period must be one of"),
        (lambda a: a.repurchase(timedelta(0)), "positive timedelta"),
        (lambda a: a.repurchase(90), "positive timedelta"),
        (lambda a: a.repurchase(period="hour"), "period must be one of"),
        (lambda a: a.aov(by="city"), "not an AOV breakdown"),
        (lambda a: a.rfm(1), "quantiles must be >= 2"),
        (lambda a: a.rfm(2.5), "quantiles must be an int"),
        (lambda a: a.touchpoints(by=None), "need by="),
        (lambda a: a.touchpoints(reached={"parcel": -1}), "non-negative int"),
        (lambda a: a.touchpoints(reached={"douyin": 1}), "less than the 2 users"),
    ],
)
def test_bad_input_raises_clear_errors(shop: Any, call: Any, message: str) -> None:
    ws, _, _ = shop
    with pytest.raises(ValidationError, match=message):
        call(ws.analytics)


# -- calendar -------------------------------------------------------------------------------------
def test_buckets_follow_the_business_calendar() -> None:
    # Weeks start on Monday in the business zone even when UTC is still on Sunday.
    since = datetime(2026, 5, 10, 17, 0, tzinfo=UTC)  # Monday 01:00 in Shanghai
    assert buckets(since, since + timedelta(days=1), "week", TZ)[0] == datetime(2026, 5, 11, tzinfo=TZ)
    months = buckets(datetime(2026, 1, 31, tzinfo=TZ), datetime(2026, 3, 2, tzinfo=TZ), "month", TZ)
    assert months == [datetime(2026, 1, 1, tzinfo=TZ), datetime(2026, 2, 1, tzinfo=TZ),
                      datetime(2026, 3, 1, tzinfo=TZ), datetime(2026, 4, 1, tzinfo=TZ)]
    # Across a DST change, days stay calendar days.
    berlin = siyu._clock.zone("Europe/Berlin")
    days = buckets(datetime(2026, 3, 28, 12, tzinfo=berlin), datetime(2026, 3, 30, tzinfo=berlin), "day", berlin)
    assert [d.hour for d in days] == [0, 0, 0]
    assert days[2].astimezone(UTC) - days[1].astimezone(UTC) == timedelta(hours=23)


def test_default_cohort_range_is_twelve_periods(shop: Any) -> None:
    ws, _, _ = shop
    report = ws.analytics.cohorts("week")  # now = 2026-06-08 00:00, a Monday: 12 full weeks
    assert len(report.cohorts) == 12 and report.cohorts[-1] == "2026-06-01"
    assert sum(report.sizes) == 5


# -- result formats ---------------------------------------------------------------------------------
def test_report_csv_json_and_text(shop: Any) -> None:
    ws, _, _ = shop
    report = ws.analytics.aov(by="channel")
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert rows[0] == ["group", "orders", "buyers", "revenue", "aov", "per_buyer"]
    assert rows[1] == ["mini", "4", "2", "550.00", "137.50", "275.00"]
    payload = json.loads(report.to_json())
    assert payload["rows"][-1] == {"group": "(all)", "orders": 5, "buyers": 3, "revenue": "650.00",
                                   "aov": "130.00", "per_buyer": "216.67"}
    text = str(ws.analytics.funnel())
    assert "added_wecom" in text and "60.0%" in text
    assert report.as_dicts()[1]["aov"] == Decimal("100.00")
    rfm = ws.analytics.rfm()
    assert "R=5" in str(rfm) and rfm.to_csv().count("\n") == 4  # header + 3 buyers
    cohorts = ws.analytics.cohorts(since=START, until=UNTIL)
    assert cohorts.shares()[0] == [0.5, 0.5, 0.5, 0.0, 0.0]
    assert json.loads(cohorts.to_json())["rows"][1]["4"] is None


# -- segments, merges, tracking ---------------------------------------------------------------------------
def test_event_steps_become_segment_metrics_after_a_funnel(shop: Any) -> None:
    ws, ids, _ = shop
    with pytest.raises(siyu.errors.SegmentSyntaxError):
        ws.segments.count("funnel.page_view = true")
    ws.analytics.funnel(["first_seen", "page_view"])
    assert ws.segments.users("funnel.page_view = true") == [ids["u3"]]


def test_rfm_metrics_follow_new_orders(shop: Any) -> None:
    ws, ids, clock = shop
    assert ws.segments.users("rfm.r = 5") == [ids["u4"]]
    clock.advance(timedelta(hours=1))
    ws.orders.record(ids["u3"], [{"sku": "TEA", "qty": 1}])
    assert ws.segments.users("rfm.r = 5") == [ids["u3"]]


def test_merged_users_count_once(shop: Any) -> None:
    ws, ids, _ = shop
    before = ws.analytics.funnel()
    ws.users.merge(keep=ids["u3"], drop=ids["u5"])
    after = ws.analytics.funnel()
    assert after.totals()[0] == before.totals()[0] - 1
    assert after.totals()[1:] == before.totals()[1:]


def test_tracking_is_idempotent_and_bulk(shop: Any) -> None:
    ws, ids, _ = shop
    rows = [{"user_id": ids["u5"], "kind": "page_view", "at": START + timedelta(days=20, hours=i), "key": f"k{i}"}
            for i in range(50)]
    assert ws.events.track_many(rows) == 50
    assert ws.events.track_many(rows + rows) == 0
    report = ws.analytics.cohorts(since=START, until=UNTIL)
    assert report.retained[2][0] == 1  # u5 (joined 05-19) now active in its own week


# -- charts --------------------------------------------------------------------------------------------------
def test_charts_write_valid_images_of_the_report_data(shop: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib import image

    from siyu.analytics import charts

    ws, _, _ = shop
    funnel = charts.funnel_chart(ws.analytics.funnel(by="source"), tmp_path / "funnel.png", group="douyin")
    assert funnel.values == (2, 2, 1, 1, 1) and funnel.x[0] == "first_seen"
    heat = charts.cohort_heatmap(ws.analytics.cohorts(since=START, until=UNTIL), tmp_path / "cohorts.png")
    assert heat.values[1] == (0.5, 0.0, 0.5, 0.5, None) and heat.y[0] == "2026-05-04"
    grid = charts.draw(ws.analytics.rfm(), tmp_path / "rfm.svg")
    assert grid.values[0] == (0, 0, 0, 1, 0) and sum(map(sum, grid.values)) == 3
    touch = charts.draw(ws.analytics.touchpoints(), tmp_path / "touch.png")
    assert touch.values == (1.0, 0.5, 0.0)
    for name in ("funnel.png", "cohorts.png", "touch.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG)
        pixels = image.imread(tmp_path / name)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert (tmp_path / "rfm.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    with pytest.raises(ValidationError, match=r"\.png or \.svg"):
        charts.draw(ws.analytics.rfm(), tmp_path / "rfm.jpg")
    with pytest.raises(ValidationError, match="has no chart"):
        charts.draw(ws.analytics.fission().channel_states(), tmp_path / "states.png")


# -- CLI -------------------------------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    clock = FakeClock(START)
    with siyu.connect(url, clock=clock, tz="Asia/Shanghai") as ws:
        build_small_shop(ws, clock)
    return url


def _run(db: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", db, "report", *args], catch_exceptions=False)


def test_cli_reports(db: str, tmp_path: Path) -> None:
    result = _run(db, "funnel", "--by", "source", "--until", "2026-06-08")
    assert result.exit_code == 0, result.output
    assert "douyin" in result.output and "invited_friend" in result.output
    result = _run(db, "cohorts", "--since", "2026-05-04", "--until", "2026-06-08", "--format", "csv")
    assert result.output.splitlines()[1] == "2026-05-04,2,0.5,0.5,0.5,0.0,0.0"
    result = _run(db, "rfm", "--until", "2026-06-08", "--format", "json")
    rows = json.loads(result.output)["rows"]
    assert [(r["r"], r["f"], r["m"]) for r in rows] == [(2, 4, 4), (4, 2, 2), (5, 4, 5)]
    result = _run(db, "touchpoints", "--reached", "parcel=40", "--until", "2026-06-08")
    assert "2.5%" in result.output
    result = _run(db, "fission")
    assert "seed_users" in result.output and "channel state" in result.output
    for name in ("aov", "repurchase", "new-vs-returning"):
        assert _run(db, name).exit_code == 0
    result = _run(db, "reindex")
    assert result.exit_code == 0 and "activity rollup rebuilt" in result.output
    result = _run(db, "cohorts", "--since", "2026-05-04", "--until", "2026-06-08", "--format", "csv")
    assert result.output.splitlines()[1] == "2026-05-04,2,0.5,0.5,0.5,0.0,0.0"


def test_cli_chart_and_errors(db: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "funnel.png"
    result = _run(db, "funnel", "--chart", str(chart))
    assert result.exit_code == 0 and chart.read_bytes().startswith(PNG)
    result = _run(db, "funnel", "--steps", "first_seen,bogus")
    assert result.exit_code == 1 and "unknown funnel step 'bogus'" in result.output
    result = _run(db, "cohorts", "--since", "someday")
    assert result.exit_code == 1 and "is not a date" in result.output
    result = _run(db, "touchpoints", "--reached", "parcel")
    assert result.exit_code == 1 and "NAME=COUNT" in result.output


def test_demo_ends_with_the_funnel_and_the_cohort_table(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "demo", "--users", "200", "--weeks", "14"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    funnel_at = result.output.index("funnel (first_seen")
    cohorts_at = result.output.index("weekly cohort retention (active)")
    assert funnel_at < cohorts_at
    with siyu.connect(db, tz="Asia/Shanghai") as ws:
        funnel = ws.analytics.funnel()
        assert funnel.totals()[0] == 200
        assert all(n > 0 for n in funnel.totals()), funnel.totals()  # events, orders and invitations exist
        assert ws.analytics.aov().rows[-1][1] > 0
        assert ws.analytics.fission().stats.new_users > 0


def test_order_charts_plot_the_report_rows(shop: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from siyu.analytics import charts

    ws, _, _ = shop
    aov = charts.draw(ws.analytics.aov(by="channel"), tmp_path / "aov.png")
    assert aov.x == ("mini", "store") and aov.values == (137.5, 100.0)
    rep = charts.draw(ws.analytics.repurchase(), tmp_path / "rep.svg")
    assert rep.x == ("2026-05", "2026-06") and rep.values == (0.5, 1.0)
    nvr = charts.draw(ws.analytics.new_vs_returning("month", since=START, until=UNTIL), tmp_path / "nvr.png")
    assert nvr.values == ((2, 1), (0, 0))
    assert (tmp_path / "nvr.png").read_bytes().startswith(PNG)
