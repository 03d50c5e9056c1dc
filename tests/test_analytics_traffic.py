"""PV/UV, visit frequency, sessions and paths against a naive recomputation from the tracked
events (hypothesis), including events tracked after the first report (the facts catch up)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.cli import cli
from siyu.errors import ValidationError
from siyu.testing import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, tzinfo=TZ)  # a Monday
END = T0 + timedelta(days=14)
KINDS = ["page_view", "product_view", "added_to_cart"]
IDLE = timedelta(minutes=30)

events = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(KINDS), st.integers(0, 14 * 24 * 60 - 1)),
                  min_size=1, max_size=40)


def naive_sessions(tracked: list[tuple[int, str, datetime, int]]) -> list[list[tuple[str, datetime]]]:
    """Each session as its (kind, at) list; events by user, time, then order of tracking."""
    sessions: list[list[tuple[str, datetime]]] = []
    last: tuple[int, datetime] | None = None
    for user, kind, at, _ in sorted(tracked, key=lambda e: (e[0], e[2], e[3])):
        if last is None or last[0] != user or at - last[1] > IDLE:
            sessions.append([])
        sessions[-1].append((kind, at))
        last = (user, at)
    return sessions


def check(ws: siyu.Workspace, tracked: list[tuple[int, str, datetime, int]]) -> None:
    pv = ws.analytics.pv_uv("page_view", "week", since=T0, until=END)
    views = [e for e in tracked if e[1] == "page_view"]
    for week in range(2):
        inside = [e for e in views if T0 + timedelta(weeks=week) <= e[2] < T0 + timedelta(weeks=week + 1)]
        assert pv.rows[week][1:3] == (len(inside), len({e[0] for e in inside}))
    assert pv.rows[-1][1:3] == (len(views), len({e[0] for e in views}))

    days = Counter(len({e[2].astimezone(TZ).date() for e in tracked if e[0] == u}) for u in {e[0] for e in tracked})
    frequency = {row[0]: row[1] for row in ws.analytics.visit_frequency(since=T0, until=END).rows}
    assert frequency["1"] == days[1] and frequency["2"] == days[2]
    assert frequency["3-4"] == days[3] + days[4]
    assert sum(frequency.values()) == sum(days.values())

    sessions = naive_sessions(tracked)
    report = ws.analytics.sessions("week", since=T0, until=END)
    total = report.rows[-1]
    assert total[1] == len(sessions)
    seconds = sum((s[-1][1] - s[0][1]).total_seconds() for s in sessions)
    assert total[3] == pytest.approx(seconds / len(sessions))
    assert total[5] == pytest.approx(sum(1 for s in sessions if len(s) == 1) / len(sessions))

    if views:
        paths = ws.analytics.paths("page_view", depth=3, top=100, since=T0, until=END)
        expected: Counter[str] = Counter()
        for session in sessions:
            kinds = [k for i, (k, _) in enumerate(session) if i == 0 or session[i - 1][0] != k]
            if "page_view" in kinds:
                expected[" → ".join(kinds[kinds.index("page_view"):][:3])] += 1
        assert {row[0]: row[1] for row in paths.rows} == dict(expected)
        assert paths.steps[0][1] == sum(expected.values())


@settings(max_examples=20, deadline=None)
@given(first=events, then=events)
def test_traffic_reports_match_naive(first: list[tuple[int, str, int]], then: list[tuple[int, str, int]]) -> None:
    with siyu.connect("memory://", clock=FakeClock(END), tz="Asia/Shanghai") as ws:
        ids = [u.id for u in (ws.users.add(created_at=T0) for _ in range(5))]
        tracked: list[tuple[int, str, datetime, int]] = []

        def track(batch: list[tuple[int, str, int]]) -> None:
            for user, kind, minute in batch:
                at = T0 + timedelta(minutes=minute)
                ws.events.track(ids[user], kind, at=at)
                tracked.append((ids[user], kind, at, len(tracked)))  # ids ascend in tracking order

        track(first)
        check(ws, tracked)
        track(then)  # the facts catch up from the event log
        check(ws, tracked)


def test_bad_arguments_are_refused() -> None:
    with siyu.connect("memory://", clock=FakeClock(END)) as ws:
        with pytest.raises(ValidationError, match="idle must be a positive timedelta"):
            ws.analytics.sessions(idle=timedelta(0))
        with pytest.raises(ValidationError, match="depth"):
            ws.analytics.paths(depth=1)
        report: Any = ws.analytics.pv_uv("never_tracked")
        assert report.rows[-1][1:3] == (0, 0)


def test_the_cli_prints_the_traffic_reports(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path}/shop.db"
    with siyu.connect(db, clock=FakeClock(END), tz="Asia/Shanghai") as ws:
        user = ws.users.add(created_at=T0).id
        for minute, kind in ((0, "page_view"), (5, "product_view"), (6, "page_view"), (90, "page_view")):
            ws.events.track(user, kind, at=END - timedelta(days=1) + timedelta(minutes=minute))
        expected = {"pv-uv": ws.analytics.pv_uv("page_view", "day", since=T0, until=END),
                    "visit-frequency": ws.analytics.visit_frequency(since=T0, until=END),
                    "sessions": ws.analytics.sessions("day", idle=timedelta(minutes=10), since=T0, until=END),
                    "paths": ws.analytics.paths("page_view", depth=3, since=T0, until=END)}
    args = {"pv-uv": [], "visit-frequency": [], "sessions": ["--idle", "10"], "paths": ["--depth", "3"]}
    for name, report in expected.items():
        result = CliRunner().invoke(cli, ["--db", db, "report", name, "--since", "2026-03-02", "--until", "2026-03-16",
                                          "--format", "json", *args[name]], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["rows"] == json.loads(report.to_json())["rows"]
    table = CliRunner().invoke(cli, ["--db", db, "report", "paths", "--since", "2026-03-02", "--until", "2026-03-16"],
                               catch_exceptions=False)
    assert "page_view → product_view → page_view" in table.output and "still going" in table.output
