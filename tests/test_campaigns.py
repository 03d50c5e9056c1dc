"""Campaigns: create, preview and gates, exactly-once delivery, A/B, schedules, triggers."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import siyu
from siyu.campaigns import Trigger
from siyu.campaigns.stats import normal_interval, prob_best, two_proportion_z, wilson_interval
from siyu.channels import DeliveryResult, Limits, Message, Status
from siyu.errors import (
    AlreadyDecided,
    ChannelError,
    Conflict,
    NotFound,
    TemplateError,
    UnknownChannelError,
    ValidationError,
)
from siyu.events import CampaignSent, ConversionAttributed, DeliverySkipped
from siyu.testing import FakeClock, RecordingChannel


def users(ws: siyu.Workspace, n: int, *, consent: str | None = "recording", **attrs: Any) -> list[int]:
    ids = ws.users.add_many([{"attributes": {"name": f"用户{i}", **attrs}} for i in range(n)])
    if consent is not None:
        for uid in ids:
            ws.users.consent(uid, purpose="marketing", channel=consent)
    return ids


@pytest.fixture
def rec(ws: siyu.Workspace) -> RecordingChannel:
    channel = ws.channels.install(RecordingChannel())
    assert isinstance(channel, RecordingChannel)
    return channel


def sent_to(rec: RecordingChannel) -> Counter[int]:
    return Counter(m.user_id for m in rec.sent if m.user_id is not None)


# -- bad input ---------------------------------------------------------------------------


def test_bad_input_is_refused_clearly(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 3)
    with pytest.raises(ValidationError, match="empty audience"):
        ws.campaigns.create("empty", audience=[], channel="recording", template="hi")
    with pytest.raises(UnknownChannelError, match="no_such"):
        ws.campaigns.create("x", audience=ids, channel="no_such", template="hi")
    with pytest.raises(ValidationError, match="needs"):  # SMS without credentials: not configured
        ws.campaigns.create("x", audience=ids, channel="sms_aliyun", template="SMS_1")
    with pytest.raises(ValidationError, match="purpose"):
        ws.campaigns.create("x", audience=ids, channel="recording", template="hi", purpose="spam")
    with pytest.raises(ValidationError, match="holdout"):
        ws.campaigns.create("x", audience=ids, channel="recording", template="hi", variants={"holdout": {}})
    with pytest.raises(ValidationError, match="non_personalized"):
        ws.campaigns.create("x", audience=ids, channel="recording", template="hi ${name}", non_personalized=True)
    c = ws.campaigns.create("ok", audience=ids, channel="recording", template="hi", variants={"A": {}, "B": {}})
    with pytest.raises(Conflict, match="exists"):
        ws.campaigns.create("ok", audience=ids, channel="recording", template="hi")
    for bad in (0, 1, -0.1, 1.5, True, "0.1"):
        with pytest.raises(ValidationError, match="between 0 and 1"):
            ws.campaigns.pilot(c.id, fraction=bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        ws.campaigns.get(999)
    with pytest.raises(ValidationError, match="variant="):
        ws.campaigns.send(c.id)
    assert rec.sent == []


def test_non_personalized_campaign_uses_campaign_data_only(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 2)
    c = ws.campaigns.create("np", audience=ids, channel="recording", template="双11 ${offer}",
                            variants={"A": {"offer": "满300减50"}}, non_personalized=True)
    ws.campaigns.send(c.id)
    assert rec.texts() == ["双11 满300减50"] * 2


# -- preview and gates ------------------------------------------------------------------------


def test_preview_counts_each_gate(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 10, consent=None)
    for uid in ids[:8]:
        ws.users.consent(uid, purpose="marketing", channel="recording")
    ws.users.consent(ids[7], purpose="marketing", channel="recording", granted=False)  # withdrawn (SMS "TD")
    ws.users.consent(ids[8], purpose="marketing", channel="*")  # all channels
    ws.campaigns.suppress(ids[0], channel="recording")
    ws.tags.apply(ids[1], "lifecycle/lost")  # e.g. a WeCom deletion
    c = ws.campaigns.create("p", audience=ids, channel="recording", template="你好 ${name}")
    p = ws.campaigns.preview(c.id)
    assert p.audience == 10
    assert p.removed("consent") == 2  # ids[7] withdrew, ids[9] never consented
    assert p.removed("suppressed") == 2
    assert p.reach == 6
    assert [g.gate for g in p.gates][:3] == ["inactive", "consent", "suppressed"]
    assert p.samples and all(s.text.startswith("你好 用户") for s in p.samples)
    assert "reach" in str(p)
    report = ws.campaigns.send(c.id)
    assert report.sent == 6 and report.skipped_by == {"consent": 2, "suppressed": 2}
    assert set(sent_to(rec)) == set(ids[2:7]) | {ids[8]}
    skipped = {d.user_id: d.reason for d in ws.campaigns.deliveries(c.id, status="skipped")}
    assert skipped == {ids[0]: "suppressed", ids[1]: "suppressed", ids[7]: "consent", ids[9]: "consent"}


def test_missing_variable_fails_the_preview_not_the_send(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 4)
    ws.users.update(ids[0], attributes={"name": None})
    c = ws.campaigns.create("m", audience=ids, channel="recording", template="${name}，您的券 ${coupon}",
                            variants={"A": {"coupon": "C10"}})
    with pytest.raises(TemplateError, match="'name' has no value for 1 of 4") as info:
        ws.campaigns.preview(c.id)
    assert info.value.problems
    report = ws.campaigns.send(c.id)
    assert report.sent == 3 and report.skipped_by == {"missing_variable": 1}
    assert ws.campaigns.deliveries(c.id, user_id=ids[0])[0].reason == "missing_variable"


def test_length_is_counted_the_channels_way(ws: siyu.Workspace) -> None:
    ws.channels.install(RecordingChannel(name="short", limits=Limits(max_recipients_per_call=100, max_text_length=10)))
    ws.channels.install(RecordingChannel(name="bytes", limits=Limits(
        max_recipients_per_call=100, max_text_length=12, length_unit="utf8_bytes")))
    ids = users(ws, 2, consent="*")
    ok = ws.campaigns.create("emoji", audience=ids, channel="short", template="双11大促🎉来了")  # 8 code points
    assert ws.campaigns.preview(ok.id).max_length == {"A": 8}
    too_long = ws.campaigns.create("bytes", audience=ids, channel="bytes", template="双11大促🎉")  # 4+2+... bytes
    with pytest.raises(TemplateError, match="bytes"):
        ws.campaigns.preview(too_long.id)


def test_contact_budget_across_all_channels(ws: siyu.Workspace, clock: FakeClock) -> None:
    a = ws.channels.install(RecordingChannel(name="chan_a", consent_channel="a"))
    b = ws.channels.install(RecordingChannel(name="chan_b", consent_channel="b"))
    assert isinstance(a, RecordingChannel) and isinstance(b, RecordingChannel)
    ids = users(ws, 5, consent="*")
    first = ws.campaigns.create("c1", audience=ids, channel="chan_a", template="one")
    second = ws.campaigns.create("c2", audience=ids, channel="chan_b", template="two")
    assert ws.campaigns.send(first.id).sent == 5
    assert ws.campaigns.preview(second.id).removed("budget") == 5
    report = ws.campaigns.send(second.id)
    assert report.sent == 0 and report.skipped_by == {"budget": 5}
    # Next day: the daily budget is fresh, the weekly one (3) still has room.
    for day in range(1, 4):
        clock.advance(days=1)
        c = ws.campaigns.create(f"d{day}", audience=ids, channel="chan_b", template="x")
        assert ws.campaigns.send(c.id).sent == (5 if day < 3 else 0)
    assert len(b.sent) == 10  # days 1 and 2; day 3 would be the 4th touch in 7 days


def test_budget_is_configurable(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 2)
    ws.campaigns.configure(budget={"day": 2, "week": None})
    assert ws.campaigns.settings()["budget"] == {"day": 2, "week": None}
    for name in ("a", "b", "c"):
        ws.campaigns.send(ws.campaigns.create(name, audience=ids, channel="recording", template=name).id)
    assert sent_to(rec) == {ids[0]: 2, ids[1]: 2}
    with pytest.raises(ValidationError):
        ws.campaigns.configure(budget={"fortnight": 1})


def test_transactional_campaigns_skip_consent_and_budget(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 2, consent=None)
    c = ws.campaigns.create("ship", audience=ids, channel="recording", template="已发货", purpose="transactional")
    assert ws.campaigns.send(c.id).sent == 2


def test_platform_caps_are_data(ws: siyu.Workspace, clock: FakeClock) -> None:
    wecom = ws.channels.install(RecordingChannel(name="wecom_test", consent_channel="wecom"))
    assert isinstance(wecom, RecordingChannel)
    ids = users(ws, 1, consent="*")
    ws.users.link(ids[0], "wecom_external_userid", "wmABC")
    ws.campaigns.configure(budget={"day": 10}, platform_caps={"wecom": [{"key": "t", "period": "day", "limit": 1}]})
    for name in ("x", "y"):
        ws.campaigns.send(ws.campaigns.create(name, audience=ids, channel="wecom_test", template=name).id)
    assert [m.recipient for m in wecom.sent] == ["wmABC"]
    assert ws.campaigns.deliveries("y")[0].reason == "platform_cap"
    from siyu.campaigns import platform_caps

    assert platform_caps.VERSION and platform_caps.CAPS["wecom"][0]["limit"] == "days_in_month"


def test_no_address_gate(ws: siyu.Workspace) -> None:
    sms = ws.channels.install(RecordingChannel(name="sms_test", consent_channel="sms"))
    assert isinstance(sms, RecordingChannel)
    ids = users(ws, 2, consent="sms")
    ws.users.link(ids[0], "phone", "13800138000")
    c = ws.campaigns.create("sms", audience=ids, channel="sms_test", template="hi")
    assert ws.campaigns.preview(c.id).removed("no_address") == 1
    ws.campaigns.send(c.id)
    assert [m.recipient for m in sms.sent] == ["+8613800138000"]


def test_quiet_hours_wait_for_the_next_window(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    ids = users(ws, 3)
    ws.users.update(ids[2], attributes={"tz": "Europe/Berlin"})
    clock.set(datetime(2026, 11, 22, 14, 30, tzinfo=UTC))  # 22:30 in Shanghai, 15:30 in Berlin
    c = ws.campaigns.create("night", audience=ids, channel="recording", template="hi")
    p = ws.campaigns.preview(c.id)
    assert p.deferred == 2 and p.reach == 1
    report = ws.campaigns.send(c.id)
    assert report.sent == 1 and report.deferred == 2
    assert report.paused_until == datetime(2026, 11, 23, 8, 0, tzinfo=ws.tz)
    assert ws.campaigns.run_due()[0].sent == 0  # still night
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))  # 08:00 in Shanghai
    assert sum(r.sent for r in ws.campaigns.run_due()) == 2
    assert sent_to(rec) == {uid: 1 for uid in ids}
    assert ws.campaigns.get(c.id).status == "done"


# -- exactly once ---------------------------------------------------------------------------------


def test_rerun_and_resume_never_send_twice(ws: siyu.Workspace) -> None:
    ids = users(ws, 30, consent="outbox")
    c = ws.campaigns.create("once", audience=ids, channel="outbox", template="hi ${name}")
    assert ws.campaigns.send(c.id).sent == 30
    again = ws.campaigns.resume(c.id)
    assert again.sent == 0 and again.claimed == 0
    assert again.done  # a finished campaign says so
    with pytest.raises(Conflict, match="already launched"):
        ws.campaigns.send(c.id)
    outbox = ws.channels.get("outbox")
    assert outbox.count() == 30  # type: ignore[attr-defined]
    assert {d.status for d in ws.campaigns.deliveries(c.id)} == {"sent"}


def test_rate_limit_pauses_and_resume_continues(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    ids = users(ws, 5)
    rec.script(Status.RATE_LIMITED, code="45009", retry_after=120, times=5)
    c = ws.campaigns.create("rl", audience=ids, channel="recording", template="hi")
    report = ws.campaigns.send(c.id)
    assert report.sent == 0 and report.paused_until == clock.now + timedelta(seconds=120)
    assert ws.campaigns.get(c.id).status == "paused"
    assert ws.campaigns.resume(c.id).sent == 0  # too early: nothing is sent
    clock.advance(seconds=121)
    assert ws.campaigns.resume(c.id).sent == 5
    assert sent_to(rec) == {uid: 1 for uid in ids}


def test_transient_failures_retry_then_give_up(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    ids = users(ws, 1)
    rec.script(Status.FAILED_RETRYABLE, times=3)
    c = ws.campaigns.create("tf", audience=ids, channel="recording", template="hi")
    ws.campaigns.send(c.id)
    for _ in range(3):
        clock.advance(minutes=5)
        ws.campaigns.resume(c.id)
    record = ws.campaigns.deliveries(c.id)[0]
    assert record.status == "failed" and record.attempts == 3 and rec.sent == []


def test_a_failing_channel_leaves_exact_records(ws: siyu.Workspace) -> None:
    ids = users(ws, 6)

    def outcome(message: Message) -> DeliveryResult | None:
        if message.user_id == ids[1]:
            return DeliveryResult(message, Status.REJECTED, code="isv.TEMPLATE_MISSING")
        if message.user_id == ids[2]:
            return DeliveryResult(message, Status.FAILED_PERMANENT, code="timeout_unknown")
        return None

    ws.channels.install(RecordingChannel(outcome=outcome))
    c = ws.campaigns.create("f", audience=ids, channel="recording", template="hi")
    report = ws.campaigns.send(c.id)
    assert (report.sent, report.failed, report.unknown) == (4, 1, 1)
    status = {d.user_id: d.status for d in ws.campaigns.deliveries(c.id)}
    assert status[ids[1]] == "rejected" and status[ids[2]] == "unknown"
    result = ws.campaigns.results(c.id, phase=None)["A"]
    assert (result.failed, result.unknown) == (1, 1)  # unknown is not counted as failed: it may have gone out


class Exploding(RecordingChannel):
    name = "exploding"
    consent_channel = "recording"

    def _deliver(self, messages: Any) -> list[DeliveryResult]:
        raise RuntimeError("provider SDK bug")


def test_crash_inside_a_non_idempotent_channel_marks_unknown(ws: siyu.Workspace) -> None:
    ids = users(ws, 3)
    ws.channels.install(Exploding())
    c = ws.campaigns.create("boom", audience=ids, channel="exploding", template="hi")
    with pytest.raises(ChannelError, match="resume"):
        ws.campaigns.send(c.id)
    assert {d.status for d in ws.campaigns.deliveries(c.id)} == {"unknown"}
    # Nothing is resent blindly.
    rec = ws.channels.install(RecordingChannel(name="exploding"))
    assert ws.campaigns.resume(c.id).sent == 0 and rec.sent == []  # type: ignore[attr-defined]


def test_pending_records_after_a_crash_are_resent_with_the_same_key_on_outbox(ws: siyu.Workspace) -> None:
    ids = users(ws, 4, consent="outbox")
    c = ws.campaigns.create("crash", audience=ids, channel="outbox", template="hi")
    # Simulate a crash after the outbox stored two messages but before completion.
    from siyu.storage.contracts.campaigns import NewDelivery

    now = ws.now()
    with ws.write() as tx:
        rows = [NewDelivery(user_id=u, variant="A", phase="send", status="pending", claimed_at=now,
                            idem_key=f"campaign:{c.id}::{u}") for u in ids[:2]]
        claimed = tx.campaigns.add_deliveries(c.id, "outbox", "marketing", rows, now)
        # Claimed by a sender that is gone (no process holds its token).
        tx.campaigns.set_status([(d, {"holder": "0dead0:run"}) for d in claimed])
        tx.channels.outbox_add([("outbox", str(ids[0]), ids[0], "hi", None, "{}", "marketing",
                                 f"campaign:{c.id}::{ids[0]}")], now)
        state = {"rest": {"variant": "A", "phase": "send", "occurrence": ""}, "phase": "send",
                 "cursor:": ids[1]}
        tx.campaigns.update(c.id, status="running", state=state)
    report = ws.campaigns.resume(c.id)
    assert report.retried == 2 and report.sent == 4
    outbox = ws.channels.get("outbox")
    assert sorted(m.user_id for m in outbox.iter_messages()) == sorted(ids)  # type: ignore[attr-defined]


def test_a_live_senders_claims_are_left_to_it(ws: siyu.Workspace) -> None:
    ids = users(ws, 4)
    seen: list[Any] = []

    def outcome(message: Message) -> DeliveryResult | None:
        if not seen:  # in the middle of the provider call, someone else resumes the campaign
            seen.append(ws.campaigns.resume(c.id))
            seen.append({d.user_id: d.status for d in ws.campaigns.deliveries(c.id)})
        return None

    ws.channels.install(RecordingChannel(outcome=outcome))
    c = ws.campaigns.create("live", audience=ids, channel="recording", template="hi")
    report = ws.campaigns.send(c.id)
    inner, during = seen
    assert inner.unknown == 0 and not inner.done
    assert during == dict.fromkeys(ids, "pending")
    assert report.sent == 4 and report.done
    assert {d.status for d in ws.campaigns.deliveries(c.id)} == {"sent"}


def test_legacy_claims_without_a_holder_are_left_alone_for_ten_minutes(ws: siyu.Workspace,
                                                                        clock: FakeClock) -> None:
    ids = users(ws, 2)
    rec = ws.channels.install(RecordingChannel(name="sms_like", consent_channel="recording"))
    c = ws.campaigns.create("lease", audience=ids, channel="sms_like", template="hi")
    from siyu.storage.contracts.campaigns import NewDelivery

    with ws.write() as tx:
        tx.campaigns.add_deliveries(c.id, "recording", "marketing", [
            NewDelivery(user_id=ids[0], variant="A", phase="send", status="pending", claimed_at=ws.now())], ws.now())
    ws.campaigns.send(c.id)  # a claim of unknown holder is recovered only once 10 minutes old
    assert {d.user_id: d.status for d in ws.campaigns.deliveries(c.id)} == {ids[0]: "pending", ids[1]: "sent"}
    clock.advance(minutes=11)
    ws.campaigns.resume(c.id, recover_after=timedelta(minutes=10))
    assert ws.campaigns.deliveries(c.id, user_id=ids[0])[0].status == "unknown"
    assert [m.user_id for m in rec.sent] == [ids[1]]  # type: ignore[attr-defined]


# -- A/B ----------------------------------------------------------------------------------------------


def test_pilot_is_reproducible_with_a_holdout(ws: siyu.Workspace, clock: FakeClock) -> None:
    splits = []
    for _ in range(2):
        with siyu.connect("memory://", clock=clock) as w:
            w.channels.install(RecordingChannel())
            ids = users(w, 200)
            c = w.campaigns.create("ab", audience=ids, channel="recording", template="${v}",
                                   variants={"A": {"v": "a"}, "B": {"v": "b"}})
            report = w.campaigns.pilot(c.id, fraction=0.3, seed=42)
            assert report.sent == 40
            splits.append({d.user_id: d.variant for d in w.campaigns.deliveries(c.id)})
            res = w.campaigns.results(c.id)
            assert {v: r.assigned for v, r in res.variants.items()} == {"A": 20, "B": 20, "holdout": 20}
            assert res["holdout"].sent == 0
    assert splits[0] == splits[1]


def test_ab_pilot_decide_rollout(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    ids = users(ws, 2000)
    c = ws.campaigns.create("double11", audience=ids, channel="recording", template="${copy}",
                            variants={"A": {"copy": "满300减50"}, "B": {"copy": "今晚8点秒杀"}}, goal="purchase")
    ws.campaigns.pilot(c.id, fraction=0.45, seed=7)
    pilot = {d.user_id: d.variant for d in ws.campaigns.deliveries(c.id, limit=5000)}
    assert Counter(pilot.values()) == {"A": 300, "B": 300, "holdout": 300}
    with pytest.raises(ValidationError, match="no winner"):
        ws.campaigns.rollout(c.id)
    too_early = ws.campaigns.decide(c.id, min_sample=301)
    assert too_early.winner is None and "fewer than 301" in too_early.reason
    clock.advance(hours=2)
    converters = [u for u, v in pilot.items() if v == "A"][:60] + [u for u, v in pilot.items() if v == "B"][:30]
    converters += [u for u, v in pilot.items() if v == "holdout"][:9]
    for uid in converters:
        ws.campaigns.convert(uid, "purchase")
    res = ws.campaigns.results(c.id)
    assert (res["A"].conversions, res["B"].conversions, res["holdout"].conversions) == (60, 30, 9)
    assert res["A"].rate == pytest.approx(0.2) and res["A"].interval == pytest.approx(wilson_interval(60, 300))
    decision = ws.campaigns.decide(c.id)
    z, p = two_proportion_z(60, 300, 30, 300)
    assert decision.winner == "A" and decision.statistic == pytest.approx(z) and decision.p_value == pytest.approx(p)
    assert "z-test" in decision.test and "p =" in decision.reason
    with pytest.raises(AlreadyDecided):
        ws.campaigns.decide(c.id)
    report = ws.campaigns.rollout(c.id)
    assert report.sent == 1100 and report.done
    counts = sent_to(rec)
    assert max(counts.values()) == 1 and len(counts) == 1700  # holdout untouched
    assert set(rec.texts()[-1100:]) == {"满300减50"}
    assert ws.campaigns.get(c.id).status == "done" and ws.campaigns.get(c.id).winner == "A"


def test_not_significant_is_said_with_numbers(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 400)
    c = ws.campaigns.create("flat", audience=ids, channel="recording", template="${v}",
                            variants={"A": {"v": "a"}, "B": {"v": "b"}}, goal="purchase")
    ws.campaigns.pilot(c.id, fraction=0.5, seed=1, holdout=False)
    by_variant: dict[str, list[int]] = {}
    for d in ws.campaigns.deliveries(c.id):
        by_variant.setdefault(d.variant, []).append(d.user_id)
    for uid in by_variant["A"][:11] + by_variant["B"][:10]:
        ws.campaigns.convert(uid, "purchase")
    d = ws.campaigns.decide(c.id)
    assert d.winner is None and d.reason.startswith("not yet significant") and d.p_value is not None
    bayes = ws.campaigns.decide(c.id, method="bayes")
    assert bayes.winner is None and bayes.probability is not None and "P(best)" in bayes.reason


def test_orders_and_tracked_events_are_attributed_to_the_last_touch(ws: siyu.Workspace, rec: RecordingChannel,
                                                                    clock: FakeClock) -> None:
    ids = users(ws, 2)
    seen: list[Any] = []
    ws.subscribe(seen.append)
    first = ws.campaigns.create("first", audience=ids, channel="recording", template="a", goal="page_view",
                                attribution_window=timedelta(days=1))
    ws.campaigns.send(first.id)
    clock.advance(days=1, hours=1)
    second = ws.campaigns.create("second", audience=ids[:1], channel="recording", template="b", goal="page_view")
    ws.campaigns.send(second.id)
    clock.advance(hours=1)
    ws.events.track(ids[0], "page_view")
    ws.events.track(ids[1], "page_view")  # first's window (1 day) is over
    assert ws.campaigns.results(second.id, phase=None)["A"].conversions == 1
    assert ws.campaigns.results(first.id, phase=None)["A"].conversions == 0
    assert any(isinstance(e, ConversionAttributed) and e.campaign_id == second.id for e in seen)
    assert any(isinstance(e, CampaignSent) for e in seen)


def test_stats_against_hand_computed_values() -> None:
    # p1 = 60/500 = .12, p2 = 40/500 = .08, pooled .10, se = sqrt(.1 * .9 * 2/500) = .0189737
    z, p = two_proportion_z(60, 500, 40, 500)
    assert z == pytest.approx(0.04 / math.sqrt(0.1 * 0.9 * 2 / 500))
    assert z == pytest.approx(2.10819, abs=1e-5) and p == pytest.approx(0.035015, abs=1e-5)
    # Textbook Wilson interval for 10/100 at 95%: [0.0552, 0.1744]
    lo, hi = wilson_interval(10, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.0552, 0.1744)
    assert normal_interval(10, 100) == pytest.approx((0.1 - 1.959964 * 0.03, 0.1 + 1.959964 * 0.03))
    assert two_proportion_z(0, 10, 0, 10) == (0.0, 1.0)
    probs = prob_best({"A": (60, 500), "B": (40, 500)}, seed=3)
    assert probs["A"] > 0.97 and probs["A"] + probs["B"] == pytest.approx(1)


# -- schedules, throttle, triggers ---------------------------------------------------------------------


def test_scheduled_start_and_throttle(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    ids = users(ws, 25)
    start = clock.now + timedelta(hours=1)
    c = ws.campaigns.create("later", audience=ids, channel="recording", template="hi", schedule=start, throttle=10)
    report = ws.campaigns.send(c.id)
    assert report.sent == 0 and report.paused_until == start
    assert ws.campaigns.run_due() == [] or all(r.sent == 0 for r in ws.campaigns.run_due())
    clock.set(start)
    sent = [sum(r.sent for r in ws.campaigns.run_due())]
    for _ in range(3):
        clock.advance(minutes=1)
        sent.append(sum(r.sent for r in ws.campaigns.run_due()))
    assert sent == [10, 10, 5, 0]
    assert sent_to(rec) == {uid: 1 for uid in ids}


def test_recurring_campaign_sends_once_per_occurrence(ws: siyu.Workspace, rec: RecordingChannel,
                                                      clock: FakeClock) -> None:
    ids = users(ws, 3)
    c = ws.campaigns.create("weekly", audience=ids, channel="recording", template="周报",
                            schedule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0")
    ws.campaigns.send(c.id)
    assert rec.sent == []
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 Shanghai
    ws.campaigns.run_due()
    ws.campaigns.run_due()
    assert len(rec.sent) == 3
    clock.set(datetime(2026, 11, 30, 2, 30, tzinfo=UTC))
    ws.campaigns.run_due()
    assert sent_to(rec) == {uid: 2 for uid in ids}
    assert ws.campaigns.get(c.id).status == "active"


def test_welcome_trigger_sends_once_per_user(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ws.campaigns.create("welcome", channel="recording", template="欢迎 ${name}", purpose="transactional",
                        trigger=Trigger(event="UserCreated", where={"source": "wecom_qr"}))
    a = ws.users.add(source="wecom_qr", attributes={"name": "阿里"})
    ws.users.add(source="douyin", attributes={"name": "抖音"})
    assert rec.texts() == ["欢迎 阿里"]
    assert ws.campaigns.deliveries("welcome")[0].user_id == a.id
    with pytest.raises(ValidationError, match="not an event class"):
        ws.campaigns.create("bad", channel="recording", template="x", trigger={"event": "Nope"})


def test_points_expiring_trigger(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    ids = users(ws, 2)
    ws.points.earn(ids[0], 100, reason="x", key="k1", expires_at=clock.now + timedelta(days=5))
    ws.points.earn(ids[1], 100, reason="x", key="k2", expires_at=clock.now + timedelta(days=30))
    ws.campaigns.create("expiring", channel="recording", template="积分快过期了",
                        trigger=Trigger(event="points_expiring", within=timedelta(days=7)))
    ws.campaigns.run_due()
    ws.campaigns.run_due()
    assert [m.user_id for m in rec.sent] == [ids[0]]


def test_events_are_per_batch(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 5, consent=None)
    ws.users.consent(ids[0], purpose="marketing", channel="recording")
    seen: list[Any] = []
    ws.subscribe(seen.append)
    ws.campaigns.send(ws.campaigns.create("e", audience=ids, channel="recording", template="x").id)
    skipped = [e for e in seen if isinstance(e, DeliverySkipped)]
    assert len(skipped) == 1 and skipped[0].reason == "consent" and len(skipped[0].user_ids) == 4


def test_merge_moves_delivery_records(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 2)
    ws.campaigns.send(ws.campaigns.create("m1", audience=ids[1:], channel="recording", template="x").id)
    merge = ws.users.merge(keep=ids[0], drop=ids[1])
    c = ws.campaigns.create("m2", audience=ids[:1], channel="recording", template="y")
    assert ws.campaigns.send(c.id).skipped_by == {"budget": 1}  # the dropped user's touch counts
    ws.users.unmerge(merge.id)
    assert ws.campaigns.deliveries("m1")[0].user_id == ids[1]


def test_judge_divides_alpha_over_comparisons() -> None:
    from siyu.campaigns.ab import judge

    now = datetime(2026, 1, 1, tzinfo=UTC)
    # Best vs one other: p = 0.035 < 0.05 wins; with a third arm the level is 0.025 and it does not.
    two = judge(1, {"A": (60, 500), "B": (40, 500)}, method="z-test", alpha=0.05, min_sample=100,
                threshold=0.95, seed=0, now=now)
    three = judge(1, {"A": (60, 500), "B": (40, 500), "C": (45, 500)}, method="z-test", alpha=0.05,
                  min_sample=100, threshold=0.95, seed=0, now=now)
    assert two.winner == "A" and two.threshold == 0.05
    assert three.winner is None and three.threshold == 0.025  # the weakest comparison decides:
    assert three.p_value == pytest.approx(two_proportion_z(60, 500, 45, 500)[1])
    small = judge(1, {"A": (9, 50), "B": (1, 50)}, method="z-test", alpha=0.05, min_sample=100,
                  threshold=0.95, seed=0, now=now)
    assert small.winner is None and "fewer than 100" in small.reason


def test_records_keep_masked_addresses(ws: siyu.Workspace) -> None:
    sms = ws.channels.install(RecordingChannel(name="sms_mask", consent_channel="sms"))
    ids = users(ws, 1, consent="sms")
    ws.users.link(ids[0], "phone", "13800138000")
    ws.campaigns.send(ws.campaigns.create("mask", audience=ids, channel="sms_mask", template="hi").id)
    assert sms.sent[0].recipient == "+8613800138000"  # type: ignore[attr-defined]
    assert ws.campaigns.deliveries("mask")[0].recipient == "138****8000"


def test_legal_hold_suppresses_every_campaign(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{"email": f"u{i}@example.com"} for i in range(4)])
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="*")
    ws.privacy.hold(ids[0], reason="litigation")
    campaign = ws.campaigns.create("held", audience=ids, channel="outbox", template="hi {user_id}")
    preview = ws.campaigns.preview(campaign.id)
    assert preview.reach == 3
    assert {g.gate: g.removed for g in preview.gates}["suppressed"] == 1
