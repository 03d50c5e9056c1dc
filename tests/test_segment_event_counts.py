"""``events.<kind>`` in segment expressions: each user's count of tracked events of that kind."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import ValidationError
from siyu.testing import FakeClock

T0 = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))


@settings(max_examples=20, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["page_view", "share"])), min_size=1,
                       max_size=30),
       threshold=st.integers(0, 4))
def test_event_counts_match_the_tracked_events(events: list[tuple[int, str]], threshold: int) -> None:
    with siyu.connect("memory://", clock=FakeClock(T0 + timedelta(days=1))) as ws:
        ids = [u.id for u in (ws.users.add() for _ in range(6))]
        for n, (user, kind) in enumerate(events):
            ws.events.track(ids[user], kind, at=T0 + timedelta(minutes=n))
        for kind in {k for _, k in events}:
            counts = {uid: sum(1 for u, k in events if ids[u] == uid and k == kind) for uid in ids}
            expected = sorted(uid for uid, n in counts.items() if n >= threshold)
            assert sorted(ws.segments.users(f"events.{kind} >= {threshold}")) == expected
            assert ws.segments.count(f"events.{kind} = 0") == sum(1 for n in counts.values() if n == 0)


def test_a_new_event_moves_the_count_and_an_unknown_kind_is_refused() -> None:
    with siyu.connect("memory://", clock=FakeClock(T0)) as ws:
        user = ws.users.add().id
        ws.events.track(user, "page_view", at=T0)
        assert ws.segments.count("events.page_view >= 2") == 0
        ws.events.track(user, "page_view", at=T0)
        assert ws.segments.count("events.page_view >= 2") == 1
        with pytest.raises(ValidationError, match="no 'pageview' event was ever tracked"):
            ws.segments.count("events.pageview >= 1")
