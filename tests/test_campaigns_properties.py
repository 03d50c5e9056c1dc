"""Property tests: for random audiences, consents, budgets and caps, no user is ever
sent more than the budget allows and nobody without consent gets anything."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.channels import DeliveryResult, Message
from siyu.testing import FakeClock, RecordingChannel

MEDIUMS = ("sms", "wecom")

step = st.tuples(
    st.sampled_from(MEDIUMS),  # channel of the campaign
    st.sets(st.integers(0, 11), min_size=1),  # audience (indexes)
    st.integers(0, 30),  # hours to wait before it
    st.lists(st.tuples(st.integers(0, 11), st.sampled_from((*MEDIUMS, "*")), st.booleans()), max_size=4),
)


@settings(max_examples=25, deadline=None)
@given(
    consents=st.lists(st.tuples(st.integers(0, 11), st.sampled_from((*MEDIUMS, "*")), st.booleans()), max_size=20),
    per_day=st.integers(0, 2),
    per_week=st.integers(0, 4),
    wecom_cap=st.integers(0, 3),
    steps=st.lists(step, min_size=1, max_size=7),
)
def test_budget_caps_and_consent_always_hold(
    consents: list[tuple[int, str, bool]], per_day: int, per_week: int, wecom_cap: int, steps: list[Any]
) -> None:
    clock = FakeClock(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    log: list[tuple[int, str, datetime]] = []
    with siyu.connect("memory://", clock=clock) as ws:
        for medium in MEDIUMS:
            def outcome(message: Message, medium: str = medium) -> DeliveryResult | None:
                assert message.user_id is not None
                log.append((message.user_id, medium, clock.now))
                return None

            ws.channels.install(RecordingChannel(name=f"rec_{medium}", consent_channel=medium, outcome=outcome,
                                                 check_consent=False))
        ws.campaigns.configure(budget={"day": per_day, "week": per_week}, quiet_hours=None,
                               platform_caps={"wecom": [{"key": "t", "period": "week", "limit": wecom_cap}]})
        ids = ws.users.add_many(
            [{"phone": f"1380013{i:04d}", "wecom_external_userid": f"wm{i}"} for i in range(12)]
        )
        granted: dict[tuple[int, str], bool] = {}

        def consent(index: int, channel: str, ok: bool) -> None:
            ws.users.consent(ids[index], purpose="marketing", channel=channel, granted=ok)
            granted[(ids[index], channel)] = ok

        for index, channel, ok in consents:
            consent(index, channel, ok)
        allowed_at: list[tuple[int, str, datetime, bool]] = []
        for n, (medium, audience, hours, changes) in enumerate(steps):
            clock.advance(hours=hours)
            for index, channel, ok in changes:
                consent(index, channel, ok)
            # The model of consent at this instant: the latest record on the medium or "*".
            c = ws.campaigns.create(f"c{n}", audience=[ids[i] for i in audience], channel=f"rec_{medium}",
                                    template="hi")
            before = len(log)
            ws.campaigns.send(c.id)
            for uid, m, at in log[before:]:
                allowed_at.append((uid, m, at, ws.users.has_consent(uid, purpose="marketing", channel=m)))
    assert all(ok for *_, ok in allowed_at), "a user without consent was sent a message"
    tz = ws.tz
    per_user_days: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for uid, _, at in log:
        per_user_days[uid][at.astimezone(tz).date()] += 1
    for days in per_user_days.values():
        assert max(days.values()) <= per_day
        for day in days:
            window = sum(n for d, n in days.items() if day - timedelta(days=6) <= d <= day)
            assert window <= per_week
    wecom: dict[int, list[date]] = defaultdict(list)
    for uid, medium, at in log:
        if medium == "wecom":
            wecom[uid].append(at.astimezone(tz).date())
    for stamps in wecom.values():
        for day in stamps:
            assert sum(1 for d in stamps if day - timedelta(days=6) <= d <= day) <= wecom_cap
