"""``weeks_since(X)`` and ``months_since(X)``: calendar weeks (from Monday) and months in the
business time zone, against a naive count from the dates (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import SegmentSyntaxError
from siyu.testing import FakeClock

TZ = ZoneInfo("Asia/Shanghai")


@settings(max_examples=25, deadline=None)
@given(now_h=st.integers(0, 24 * 400), ages_h=st.lists(st.integers(0, 24 * 120), min_size=1, max_size=8),
       n=st.integers(0, 4))
def test_weeks_and_months_since_count_calendar_units(now_h: int, ages_h: list[int], n: int) -> None:
    now = datetime(2025, 1, 1, tzinfo=TZ) + timedelta(hours=now_h)
    with siyu.connect("memory://", clock=FakeClock(now), tz="Asia/Shanghai") as ws:
        ids = ws.users.add_many([{"created_at": now - timedelta(hours=h)} for h in ages_h])
        today = now.date()
        monday = today - timedelta(days=today.weekday())
        weeks, months = {}, {}
        for uid, h in zip(ids, ages_h, strict=True):
            day = (now - timedelta(hours=h)).astimezone(TZ).date()
            weeks[uid] = (monday - (day - timedelta(days=day.weekday()))).days // 7
            months[uid] = (today.year - day.year) * 12 + today.month - day.month
        assert sorted(ws.segments.users(f"weeks_since(first_seen) = {n}")) == sorted(
            u for u, w in weeks.items() if w == n)
        assert sorted(ws.segments.users(f"months_since(first_seen) <= {n}")) == sorted(
            u for u, m in months.items() if m <= n)


def test_a_week_is_compared_with_a_number() -> None:
    with siyu.connect("memory://") as ws:
        ws.users.add()
        with pytest.raises(SegmentSyntaxError, match="weeks_since"):
            ws.segments.count('weeks_since(first_seen) = "this"')
