"""Campaign edge cases found by review: DST quiet hours, holdouts in recurring rounds,
per-variant mini-program credits, window edges."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import siyu
from siyu.campaigns.gates import QuietHours
from siyu.errors import NotFound
from siyu.testing import FakeClock, RecordingChannel

NEW_YORK = ZoneInfo("America/New_York")


def users(ws: siyu.Workspace, n: int, **attributes: Any) -> list[int]:
    ids = ws.users.add_many([{"attributes": dict(attributes)} for _ in range(n)])
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="*")
    return ids


# -- quiet hours and DST ------------------------------------------------------------------


def test_next_open_in_the_repeated_fall_back_hour_is_in_the_future() -> None:
    quiet = QuietHours.parse(("21:00", "01:30"))
    assert quiet is not None
    # 2026-11-01 01:15 EST is the second 01:15 of the night (fold=1); 01:30 EDT was 45 minutes earlier.
    local = datetime(2026, 11, 1, 6, 15, tzinfo=UTC).astimezone(NEW_YORK)
    assert local.fold == 1 and quiet.contains(local)
    opened = quiet.next_open(local)
    assert opened.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST


def test_next_open_in_a_spring_forward_gap_is_a_real_local_time() -> None:
    quiet = QuietHours.parse(("21:00", "02:30"))  # 02:30 does not exist on 2026-03-08 in New York
    assert quiet is not None
    local = datetime(2026, 3, 8, 6, 45, tzinfo=UTC).astimezone(NEW_YORK)  # 01:45 EST
    opened = quiet.next_open(local)
    assert opened.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert opened.astimezone(UTC) > local.astimezone(UTC) and not quiet.contains(opened)
    assert (opened.hour, opened.minute) == (3, 30)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Shanghai"])
def test_next_open_is_never_in_the_past(zone: str) -> None:
    tz = ZoneInfo(zone)
    for window in (("21:00", "08:00"), ("22:00", "01:30"), ("00:30", "02:30"), ("12:00", "14:00")):
        quiet = QuietHours.parse(window)
        assert quiet is not None
        at = datetime(2026, 1, 1, tzinfo=UTC)
        while at < datetime(2027, 1, 1, tzinfo=UTC):
            local = at.astimezone(tz)
            opened = quiet.next_open(local)
            assert opened.astimezone(UTC) >= at, (zone, window, local)
            assert not quiet.contains(opened), (zone, window, local, opened)
            at += timedelta(minutes=15) if 2 <= at.month <= 3 or 10 <= at.month <= 11 else timedelta(hours=7)


def test_a_send_in_the_repeated_hour_waits_instead_of_spinning(clock: FakeClock) -> None:
    clock.set(datetime(2026, 11, 1, 6, 15, tzinfo=UTC))  # 01:15 EST, the second time round
    with siyu.connect("memory://", clock=clock) as ws:
        rec = ws.channels.install(RecordingChannel())
        assert isinstance(rec, RecordingChannel)
        ids = users(ws, 2, tz="America/New_York")
        c = ws.campaigns.create("dst", audience=ids, channel="recording", template="hi",
                                quiet_hours=("21:00", "01:30"))
        report = ws.campaigns.send(c.id)  # used to re-defer the same records to a past time forever
        assert report.sent == 0 and report.deferred == 2
        assert report.paused_until == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
        clock.set(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))
        assert sum(r.sent for r in ws.campaigns.run_due()) == 2
        assert Counter(m.user_id for m in rec.sent) == {uid: 1 for uid in ids}


# -- holdouts ---------------------------------------------------------------------------------


def test_recurring_rounds_after_a_pilot_never_message_the_holdout(clock: FakeClock) -> None:
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    with siyu.connect("memory://", clock=clock) as ws:
        rec = ws.channels.install(RecordingChannel())
        assert isinstance(rec, RecordingChannel)
        ws.campaigns.configure(budget={"day": 5, "week": None})
        ids = users(ws, 300)
        c = ws.campaigns.create("weekly", audience=ids, channel="recording", template="${v}",
                                variants={"A": {"v": "a"}, "B": {"v": "b"}},
                                schedule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0;COUNT=2")
        ws.campaigns.pilot(c.id, fraction=0.3, seed=1)
        holdout = {d.user_id for d in ws.campaigns.deliveries(c.id, status="holdout")}
        assert len(holdout) == 30
        ws.campaigns.rollout(c.id, variant="A")
        for _ in range(8):
            clock.advance(days=1)
            ws.campaigns.run_due()
        got = Counter(m.user_id for m in rec.sent)
        assert not holdout & set(got)
        assert set(got) == set(ids) - holdout
        assert ws.campaigns.get(c.id).status == "done"  # the last round finished: the holdout is not "left to send"


# -- mini-program credits per variant ------------------------------------------------------


def test_credit_gate_checks_the_template_of_the_variant_being_sent(ws: siyu.Workspace) -> None:
    from siyu.testing.fakes import FakeMiniProgram

    with FakeMiniProgram(templates={"TPL_A": ["thing1"], "TPL_B": ["thing1"]}) as fake:
        mp = ws.channels.get("miniprogram", appid="wxapp", secret="appsecret", base_url=fake.url)
        ws.channels.install(mp)
        only_b = ws.users.add(wechat_openid="o_b", app="wxapp").id
        only_a = ws.users.add(wechat_openid="o_a", app="wxapp").id
        for uid in (only_a, only_b):
            ws.users.consent(uid, purpose="marketing", channel="miniprogram")
        mp.add_credit("o_b", "TPL_B")
        mp.add_credit("o_a", "TPL_A")
        c = ws.campaigns.create(
            "subscribe", audience=[only_a, only_b], channel="miniprogram", template="TPL_A",
            variants={"A": {"thing1": "上新了"}, "B": {"template": "TPL_B", "thing1": "限时折扣"}},
        )
        report = ws.campaigns.send(c.id, variant="B")
        assert report.sent == 1 and report.skipped_by == {"platform_cap": 1}
        assert [(b["touser"], b["template_id"]) for b in fake.sent] == [("o_b", "TPL_B")]
        assert mp.credits("o_a", "TPL_A") == 1  # untouched: never claimed, never sent


# -- budget and cap windows at their exact edges ------------------------------------------------


def _send_one(ws: siyu.Workspace, name: str, ids: list[int]) -> int:
    return ws.campaigns.send(ws.campaigns.create(name, audience=ids, channel="recording", template=name,
                                                 quiet_hours=None).id).sent


def test_rolling_24h_lets_a_touch_go_exactly_24_hours_later(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.channels.install(RecordingChannel())
    ids = users(ws, 1)
    ws.campaigns.configure(budget={"day": None, "week": None, "rolling_24h": 1})
    assert _send_one(ws, "d1", ids) == 1
    clock.advance(hours=24, microseconds=-1)
    assert _send_one(ws, "almost", ids) == 0  # still inside the 24 h
    clock.advance(microseconds=1)
    assert _send_one(ws, "d2", ids) == 1  # a daily 10:00 send is not skipped every other day


def test_calendar_windows_turn_over_at_local_midnight(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.channels.install(RecordingChannel())
    ids = users(ws, 1)
    tz = ws.tz
    clock.set(datetime(2026, 11, 22, 23, 59, 59, 999_999, tzinfo=tz))
    assert _send_one(ws, "late", ids) == 1
    assert _send_one(ws, "same-day", ids) == 0  # day: 1
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=tz))
    assert _send_one(ws, "midnight", ids) == 1
    clock.set(datetime(2026, 11, 24, 0, 0, tzinfo=tz))
    assert _send_one(ws, "third", ids) == 1
    clock.set(datetime(2026, 11, 25, 0, 0, tzinfo=tz))
    assert _send_one(ws, "fourth", ids) == 0  # week: 3 in the last 7 calendar days (22nd-25th)
    clock.set(datetime(2026, 11, 28, 23, 59, tzinfo=tz))
    assert _send_one(ws, "still-week", ids) == 0  # the 22nd is still one of the last 7 days
    clock.set(datetime(2026, 11, 29, 0, 0, tzinfo=tz))
    assert _send_one(ws, "week-over", ids) == 1  # the 22nd dropped out at local midnight


# -- suppression ---------------------------------------------------------------------------------


def test_suppressing_by_channel_name_suppresses_its_medium(ws: siyu.Workspace) -> None:
    sms = ws.channels.install(RecordingChannel(name="sms_test", consent_channel="sms"))
    assert isinstance(sms, RecordingChannel)
    ids = users(ws, 2)
    for i, uid in enumerate(ids):
        ws.users.link(uid, "phone", f"1380013800{i}")
    ws.campaigns.suppress(ids[0], channel="sms_test")  # the channel's name, not the medium "sms"
    c = ws.campaigns.create("promo", audience=ids, channel="sms_test", template="hi", quiet_hours=None)
    assert ws.campaigns.preview(c.id).removed("suppressed") == 1
    assert ws.campaigns.send(c.id).skipped_by == {"suppressed": 1}
    assert [m.user_id for m in sms.sent] == [ids[1]]
    assert ws.campaigns.unsuppress(ids[0], channel="sms_test") is True


def test_a_channels_last_moment_suppression_refusal_is_recorded_as_skipped(ws: siyu.Workspace) -> None:
    from siyu.channels import Status

    rec = ws.channels.install(RecordingChannel())
    assert isinstance(rec, RecordingChannel)
    ids = users(ws, 1)
    rec.script(Status.FAILED_PERMANENT, code="suppressed", times=1)  # suppressed after the claim
    c = ws.campaigns.create("late", audience=ids, channel="recording", template="hi", quiet_hours=None)
    report = ws.campaigns.send(c.id)
    assert report.failed == 0 and report.skipped_by == {"suppressed": 1}
    record = ws.campaigns.deliveries(c.id)[0]
    assert (record.status, record.reason) == ("skipped", "suppressed")


# -- a holdout without a pilot -------------------------------------------------------------------


def test_send_to_everyone_except_a_holdout(ws: siyu.Workspace, clock: FakeClock) -> None:
    from siyu.errors import ValidationError

    rec = ws.channels.install(RecordingChannel())
    assert isinstance(rec, RecordingChannel)
    ids = users(ws, 200)
    c = ws.campaigns.create("lift", audience=ids, channel="recording", template="hi", goal="purchase",
                            quiet_hours=None)
    with pytest.raises(ValidationError, match="holdout"):
        ws.campaigns.send(c.id, holdout=1.0)
    report = ws.campaigns.send(c.id, holdout=0.1, seed=3)
    held = {d.user_id for d in ws.campaigns.deliveries(c.id, status="holdout")}
    assert len(held) == 20 and report.sent == 180 and report.done
    assert not held & {m.user_id for m in rec.sent}
    clock.advance(hours=1)
    for uid in sorted(held)[:2] + [m.user_id for m in rec.sent][:9]:
        ws.campaigns.convert(uid, "purchase")
    res = ws.campaigns.results(c.id, phase="send")
    assert (res["A"].sent, res["A"].conversions, res["holdout"].assigned, res["holdout"].conversions) == (180, 9, 20, 2)
    with siyu.connect("memory://", clock=clock) as other:  # the same seed draws the same holdout
        other.channels.install(RecordingChannel())
        again = users(other, 200)
        c2 = other.campaigns.create("lift", audience=again, channel="recording", template="hi", quiet_hours=None)
        other.campaigns.send(c2.id, holdout=0.1, seed=3)
        assert {d.user_id for d in other.campaigns.deliveries(c2.id, status="holdout")} == held


def test_recurring_send_with_a_holdout_keeps_it_out_of_every_round(clock: FakeClock) -> None:
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        rec = ws.channels.install(RecordingChannel())
        assert isinstance(rec, RecordingChannel)
        ws.campaigns.configure(budget={"day": 5, "week": None})
        ids = users(ws, 100)
        c = ws.campaigns.create("weekly", audience=ids, channel="recording", template="hi",
                                schedule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0;COUNT=2")
        ws.campaigns.send(c.id, holdout=0.2)
        held = {d.user_id for d in ws.campaigns.deliveries(c.id, status="holdout")}
        assert len(held) == 20
        for _ in range(8):
            clock.advance(days=1)
            ws.campaigns.run_due()
        got = Counter(m.user_id for m in rec.sent)
        assert set(got) == set(ids) - held and set(got.values()) == {2}


# -- audiences name existing users ----------------------------------------------------------------


def test_an_audience_with_a_user_that_does_not_exist_is_refused(ws: siyu.Workspace) -> None:
    ws.channels.install(RecordingChannel())
    ids = ws.users.add_many([{} for _ in range(3)])
    with pytest.raises(NotFound, match=r"names 1 user id\(s\) that do not exist \(999999\)"):
        ws.campaigns.create("typo", channel="recording", template="hi", audience=[999999])
    with pytest.raises(NotFound, match=r"names 7 user id\(s\) that do not exist \(4, 5, 6, 7, 8 and 2 more\)"):
        ws.campaigns.create("typo", channel="recording", template="hi", audience=[*ids, *range(4, 11)])
    assert ws.campaigns.list() == []
    assert ws.campaigns.create("ok", channel="recording", template="hi", audience=ids).audience_count == 3


def test_the_audience_check_holds_when_ids_have_gaps(ws: siyu.Workspace) -> None:
    ws.channels.install(RecordingChannel())
    first = ws.users.add().id
    with ws.write() as tx:  # ids with a hole, as a PostgreSQL sequence leaves after a rollback
        tx.execute("INSERT INTO users (id, created_at, attributes) VALUES (?, ?, ?)", (50, 0, "{}"))
        tx.meta.bump("users")
    assert ws.users.get(50).id == 50
    with pytest.raises(NotFound, match=r"names 2 user id\(s\) that do not exist \(2, 777\)"):
        ws.campaigns.create("gap", channel="recording", template="hi", audience=[first, 2, 50, 777])
    assert ws.campaigns.create("gap", channel="recording", template="hi", audience=[first, 50]).audience_count == 2
