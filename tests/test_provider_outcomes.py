"""Every provider answer is "not created" (safe to send again) or "unknown"
(never resent blindly): hostile fake servers, real HTTP, whole campaigns.

Each case counts the create requests that carried each customer and what the
provider ended up holding, and checks the delivery record: a message the
provider created is recorded ``sent`` after reconciliation and never sent
again; one it provably did not create is sent again, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

import siyu
from siyu.campaigns import RunReport
from siyu.campaigns.reconcile import RECONCILE_WINDOW
from siyu.channels import Message, Status
from siyu.channels.sms import SmsTemplate
from siyu.errors import Conflict, NotFound, ValidationError
from siyu.testing import FakeClock
from siyu.testing.fakes import FakeAliyunSms, FakeMiniProgram, FakeTencentSms, FakeWeCom
from siyu.testing.fakes._server import Fault

CUSTOMERS = ["wmA001", "wmA002"]


def settle(ws: siyu.Workspace, clock: FakeClock, campaign_id: int, first: RunReport, *, rounds: int = 8) -> RunReport:
    """Resume whenever the campaign says it has more to do (a wait, a provider check)."""
    report = first
    for _ in range(rounds):
        if report.paused_until is None:
            return report
        clock.set(max(clock.now, report.paused_until) + timedelta(seconds=1))
        report = ws.campaigns.resume(campaign_id)
    return report


# -- WeCom --------------------------------------------------------------------------------------------------
@pytest.fixture
def wecom_fake(clock: FakeClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(corp_id="wwcorp", secret="s3cret", clock=lambda: clock.now.timestamp()) as fake:
        for ext in CUSTOMERS:
            fake.add_contact(ext)
        yield fake


def wecom_campaign(ws: siyu.Workspace, fake: FakeWeCom) -> tuple[int, dict[str, int]]:
    channel = ws.channels.get("wecom", corp_id="wwcorp", secret="s3cret", base_url=fake.url, timeout=0.3,
                              sleep=lambda seconds: None)
    ws.channels.install(channel)
    users = {ext: ws.users.add(wecom_external_userid=ext).id for ext in CUSTOMERS}
    for uid in users.values():
        ws.users.consent(uid, purpose="marketing", channel="wecom")
    campaign = ws.campaigns.create("双11", audience=list(users.values()), channel="wecom", template="双11 全场五折",
                                   quiet_hours=None)
    return campaign.id, users


def creates_per_customer(fake: FakeWeCom) -> dict[str, int]:
    counts = dict.fromkeys(CUSTOMERS, 0)
    for request in fake.calls("add_msg_template"):
        for ext in request.json().get("external_userid") or []:
            counts[ext] += 1
    return counts


def held_per_customer(fake: FakeWeCom) -> dict[str, int]:
    return {ext: sum(ext in m.get("external_userid", []) for m in fake.mass_sends) for ext in CUSTOMERS}


def _nothing(fake: FakeWeCom) -> None:
    return None


WECOM_CASES: dict[str, tuple[Callable[[FakeWeCom], None], int]] = {
    # (how the fake misbehaves on the first add_msg_template, create requests per customer)
    "200 not JSON, created": (lambda f: f.inject(path="add_msg_template", status=200, body=b"<html>502</html>",
                                                 process=True), 1),
    "200 not JSON, not created": (lambda f: f.inject(path="add_msg_template", status=200, body=b"<html>"), 2),
    "errcode -1, created": (lambda f: f.inject(path="add_msg_template", json={"errcode": -1, "errmsg": "busy"},
                                               process=True), 1),
    "errcode -1, not created": (lambda f: f.fail("add_msg_template", -1), 2),
    "HTTP 502, created": (lambda f: f.inject(path="add_msg_template", status=502, process=True), 1),
    "HTTP 503, not created": (lambda f: f.inject(path="add_msg_template", status=503), 2),
    "read timeout, created": (lambda f: f.inject(path="add_msg_template", delay=1.0, process=True), 1),
    "connection dropped, created": (lambda f: f.inject(path="add_msg_template", drop=True, process=True), 1),
    "errcode null without msgid, created": (lambda f: f.inject(path="add_msg_template", json={"errcode": None},
                                                               process=True), 1),
    "errcode 0 without msgid, created": (lambda f: f.inject(path="add_msg_template",
                                                            json={"errcode": 0, "errmsg": "ok"}, process=True), 1),
    # Not created: refused before anything was done, so the client may repeat the request at once.
    "rate limit 45009 twice": (lambda f: f.fail("add_msg_template", 45009, times=2), 3),
    "token expired": (lambda f: f.expire_tokens(), 2),
    "well behaved": (_nothing, 1),
}


@pytest.mark.parametrize("case", list(WECOM_CASES))
def test_wecom_mass_send_answers(ws: siyu.Workspace, clock: FakeClock, wecom_fake: FakeWeCom, case: str) -> None:
    misbehave, requests = WECOM_CASES[case]
    campaign_id, _ = wecom_campaign(ws, wecom_fake)
    ws.channels.get("wecom").client.access_token()  # type: ignore[attr-defined]
    misbehave(wecom_fake)
    report = settle(ws, clock, campaign_id, ws.campaigns.send(campaign_id))
    assert creates_per_customer(wecom_fake) == dict.fromkeys(CUSTOMERS, requests)
    assert held_per_customer(wecom_fake) == dict.fromkeys(CUSTOMERS, 1)  # each customer gets it once
    records = ws.campaigns.deliveries(campaign_id)
    assert {d.status for d in records} == {"sent"}
    held = {m["msgid"] for m in wecom_fake.mass_sends}
    assert {d.provider_id for d in records} <= held  # the task WeCom really holds
    assert report.done


def test_wecom_busy_that_never_creates_is_tried_max_attempts_times(
    ws: siyu.Workspace, clock: FakeClock, wecom_fake: FakeWeCom
) -> None:
    campaign_id, _ = wecom_campaign(ws, wecom_fake)
    wecom_fake.fail("add_msg_template", -1, times=100)
    first = ws.campaigns.send(campaign_id)
    assert first.unknown == 2 and first.paused_until is not None
    report = settle(ws, clock, campaign_id, first, rounds=20)
    assert creates_per_customer(wecom_fake) == dict.fromkeys(CUSTOMERS, 3)  # one request per campaign attempt
    assert held_per_customer(wecom_fake) == dict.fromkeys(CUSTOMERS, 0)
    assert {(d.status, d.reason, d.attempts) for d in ws.campaigns.deliveries(campaign_id)} == {
        ("failed", "gave_up", 3)}
    assert report.done


def test_wecom_unknown_send_is_checked_only_after_the_records_settle(
    ws: siyu.Workspace, clock: FakeClock, wecom_fake: FakeWeCom
) -> None:
    campaign_id, _ = wecom_campaign(ws, wecom_fake)
    wecom_fake.inject(path="add_msg_template", status=502, process=True)
    report = ws.campaigns.send(campaign_id)
    assert (report.sent, report.unknown, report.done) == (0, 2, False)
    assert report.paused_until == clock.now + timedelta(seconds=60)
    records = ws.campaigns.deliveries(campaign_id, status="unknown")
    assert {(d.reason, d.code) for d in records} == {("reconciling", "timeout_unknown")}
    assert ws.campaigns.results(campaign_id, phase=None)["A"].unknown == 2
    assert "unknown outcome" in str(ws.campaigns.results(campaign_id, phase=None))
    assert ws.campaigns.resume(campaign_id).reconciled == 0  # too early: WeCom is not asked yet
    assert wecom_fake.calls("get_groupmsg_list_v2") == []
    clock.advance(seconds=61)
    later = ws.campaigns.resume(campaign_id)
    assert (later.reconciled, later.sent, later.claimed, later.done) == (2, 2, 0, True)
    assert len(wecom_fake.calls("get_groupmsg_list_v2")) == 1


def test_wecom_channel_reconcile_directly(ws: siyu.Workspace, clock: FakeClock, wecom_fake: FakeWeCom) -> None:
    channel = ws.channels.get("wecom", corp_id="wwcorp", secret="s3cret", base_url=wecom_fake.url, timeout=0.3)
    since = clock.now
    wecom_fake.inject(path="add_msg_template", status=200, body=b"", process=True)
    messages = [Message(ext, text="到店有礼") for ext in CUSTOMERS]
    assert [r.code for r in channel.send(messages)] == ["timeout_unknown"] * 2
    found = channel.reconcile([*messages, Message("wmNobody", text="到店有礼"), Message(CUSTOMERS[0], text="别的")],
                              since=since)
    assert [r.status for r in found] == [Status.SENT, Status.SENT, Status.FAILED_RETRYABLE, Status.FAILED_RETRYABLE]
    assert found[0].provider_id == wecom_fake.mass_sends[0]["msgid"] and found[2].code == "not_created"
    wecom_fake.inject(path="get_groupmsg_list_v2", status=500)
    assert channel.reconcile(messages[0], since=since)[0].code == "timeout_unknown"  # the query failed: still unknown
    with pytest.raises(ValidationError, match="since"):
        channel.reconcile(messages, since="yesterday")  # type: ignore[arg-type]


# -- SMS ------------------------------------------------------------------------------------------------------
PHONES = ["+8613800138001", "+8613800138002"]


def sms_campaign(ws: siyu.Workspace, name: str, **config: Any) -> tuple[int, list[int]]:
    # The channel signs by the workspace's (fake) clock, as the fake server checks.
    clock = ws.clock
    ws.channels.install(ws.channels.get(name, sign_name="小店", timeout=0.3, clock=lambda: clock().timestamp(),
                                        **config))
    ids = [ws.users.add(phone=p).id for p in PHONES]
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="sms")
    template, param = ("SMS_2", "name") if name == "sms_aliyun" else ("1002", "1")
    c = ws.campaigns.create(f"{name}-双11", audience=ids, channel=name, template=template, params=[param],
                            variants={"A": {param: "小王"}}, quiet_hours=None)
    return c.id, ids


@pytest.fixture
def aliyun_fake(clock: FakeClock) -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms(clock=lambda: clock.now.timestamp()) as fake:
        yield fake


@pytest.fixture
def tencent_fake(clock: FakeClock) -> Iterator[FakeTencentSms]:
    with FakeTencentSms(clock=lambda: clock.now.timestamp()) as fake:
        yield fake


def aliyun_campaign(ws: siyu.Workspace, fake: FakeAliyunSms) -> tuple[int, list[int]]:
    return sms_campaign(ws, "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret",
                        base_url=fake.url,
                        templates=[SmsTemplate("SMS_2", "marketing", "${name}会员，双11全场五折，拒收请回复R")])


def tencent_campaign(ws: siyu.Workspace, fake: FakeTencentSms) -> tuple[int, list[int]]:
    return sms_campaign(ws, "sms_tencent", secret_id="AKIDfake", secret_key="fakekey", sdk_app_id="1400000000",
                        base_url=fake.url,
                        templates=[SmsTemplate("1002", "marketing", "会员{1}：双11全场五折，回T退订")])


def aliyun_sends_per_phone(fake: FakeAliyunSms) -> dict[str, int]:
    counts = {p[3:]: 0 for p in PHONES}
    for request in fake.requests:
        if request.headers.get("x-acs-action") == "SendSms":
            for phone in request.query.get("PhoneNumbers", "").split(","):
                counts[phone] += 1
    return counts


ALIYUN_CASES: dict[str, tuple[Fault | None, int]] = {
    "HTTP 500, accepted": (Fault(status=500, process=True), 1),
    "HTTP 503, not accepted": (Fault(status=503, body=b"busy"), 2),
    "200 not JSON, accepted": (Fault(status=200, body=b"<html>", process=True), 1),
    "200 without a Code, not accepted": (Fault(json={"Code": None}), 2),
    "isp.SYSTEM_ERROR, accepted": (Fault(json={"Code": "isp.SYSTEM_ERROR", "Message": "系统错误"}, process=True), 1),
    "read timeout, accepted": (Fault(delay=1.0, process=True), 1),
    "well behaved": (None, 1),
}


@pytest.mark.parametrize("case", list(ALIYUN_CASES))
def test_aliyun_send_answers(ws: siyu.Workspace, clock: FakeClock, aliyun_fake: FakeAliyunSms, case: str) -> None:
    fault, requests = ALIYUN_CASES[case]
    campaign_id, _ = aliyun_campaign(ws, aliyun_fake)
    if fault is not None:
        aliyun_fake.inject(fault)
    report = settle(ws, clock, campaign_id, ws.campaigns.send(campaign_id))
    assert aliyun_sends_per_phone(aliyun_fake) == {p[3:]: requests for p in PHONES}
    assert sorted(phone for _, phone, _ in aliyun_fake.accepted) == sorted(p[3:] for p in PHONES)  # once each
    assert {d.status for d in ws.campaigns.deliveries(campaign_id)} == {"sent"}
    assert report.done


def test_aliyun_rate_limit_waits_and_sends_once(ws: siyu.Workspace, clock: FakeClock,
                                                aliyun_fake: FakeAliyunSms) -> None:
    campaign_id, _ = aliyun_campaign(ws, aliyun_fake)
    aliyun_fake.inject(json={"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"})
    first = ws.campaigns.send(campaign_id)
    assert (first.sent, first.unknown) == (0, 0) and first.paused_until == clock.now + timedelta(seconds=60)
    report = settle(ws, clock, campaign_id, first)
    assert aliyun_sends_per_phone(aliyun_fake) == {p[3:]: 2 for p in PHONES}
    assert len(aliyun_fake.accepted) == 2 and report.done
    assert not [r for r in aliyun_fake.requests if r.headers.get("x-acs-action") == "QuerySendDetails"]


def tencent_sends_per_phone(fake: FakeTencentSms) -> dict[str, int]:
    counts = dict.fromkeys(PHONES, 0)
    for request in fake.requests:
        if request.headers.get("x-tc-action") == "SendSms":
            for phone in request.json()["PhoneNumberSet"]:
                counts[phone] += 1
    return counts


@pytest.mark.parametrize("fault", [
    Fault(status=502, process=True),
    Fault(status=200, body=b"not json", process=True),
    Fault(json={"Response": {"Error": {"Code": "InternalError.Timeout", "Message": "x"}, "RequestId": "r"}},
          process=True),
    Fault(delay=1.0, process=True),
], ids=["502", "not JSON", "InternalError", "timeout"])
def test_tencent_accepted_send_found_in_status_reports(
    ws: siyu.Workspace, clock: FakeClock, tencent_fake: FakeTencentSms, fault: Fault
) -> None:
    campaign_id, _ = tencent_campaign(ws, tencent_fake)
    tencent_fake.inject(fault)
    first = ws.campaigns.send(campaign_id)
    assert first.unknown == 2
    report = settle(ws, clock, campaign_id, first)
    assert tencent_sends_per_phone(tencent_fake) == dict.fromkeys(PHONES, 1)
    records = ws.campaigns.deliveries(campaign_id)
    assert {d.status for d in records} == {"sent"}
    assert {d.provider_id for d in records} == {serial for serial, _, _ in tencent_fake.accepted}
    assert report.done and report.reconciled == 2


def test_tencent_without_a_report_is_left_to_a_person(ws: siyu.Workspace, clock: FakeClock,
                                                       tencent_fake: FakeTencentSms) -> None:
    campaign_id, ids = tencent_campaign(ws, tencent_fake)
    started = clock.now
    tencent_fake.inject(status=502)  # Tencent never got it, so no report will ever come
    report = settle(ws, clock, campaign_id, ws.campaigns.send(campaign_id), rounds=30)
    assert report.done and clock.now > started + RECONCILE_WINDOW
    unknown = ws.campaigns.deliveries(campaign_id, status="unknown")
    assert {d.reason for d in unknown} == {"outcome_unknown"} and len(unknown) == 2
    assert all("ws.campaigns.resolve" in (d.detail or "") for d in unknown)
    assert tencent_sends_per_phone(tencent_fake) == dict.fromkeys(PHONES, 1)  # never resent blindly
    # A person checked the console: the first never went out, the second did.
    not_sent, sent = sorted(unknown, key=lambda d: d.user_id)
    assert [d.status for d in ws.campaigns.resolve(campaign_id, [sent.id], sent=True, note="in the console")] == [
        "sent"]
    assert [d.status for d in ws.campaigns.resolve(campaign_id, not_sent.id, sent=False)] == ["queued"]
    assert ws.campaigns.get(campaign_id).status == "running"
    again = ws.campaigns.resume(campaign_id)
    assert (again.sent, again.done) == (1, True)
    resent = PHONES[ids.index(not_sent.user_id)]
    assert tencent_sends_per_phone(tencent_fake) == {p: 2 if p == resent else 1 for p in PHONES}
    assert {d.status for d in ws.campaigns.deliveries(campaign_id)} == {"sent"}
    with pytest.raises(Conflict, match="not unknown"):
        ws.campaigns.resolve(campaign_id, [sent.id], sent=False)


def test_resolve_refuses_bad_input_and_changes_nothing(ws: siyu.Workspace, clock: FakeClock,
                                                       tencent_fake: FakeTencentSms) -> None:
    campaign_id, _ = tencent_campaign(ws, tencent_fake)
    tencent_fake.inject(status=502)
    ws.campaigns.send(campaign_id)
    unknown = [d.id for d in ws.campaigns.deliveries(campaign_id, status="unknown")]
    before = ws.campaigns.deliveries(campaign_id)
    for bad, error in [((unknown, "yes"), ValidationError), (("1,2", True), ValidationError),
                       (([0], True), ValidationError), (([*unknown, 99_999], True), NotFound)]:
        with pytest.raises(error):
            ws.campaigns.resolve(campaign_id, bad[0], sent=bad[1])  # type: ignore[arg-type]
    assert ws.campaigns.deliveries(campaign_id) == before


# -- mini-program: no query API, so a person decides ----------------------------------------------------------
@pytest.mark.parametrize("fault", [
    Fault(json={"errcode": -1, "errmsg": "system error"}, process=True),
    Fault(json={"errcode": None}, process=True),
    Fault(status=500, process=True),
    Fault(status=200, body=b"<html>", process=True),
], ids=["-1", "errcode null", "500", "not JSON"])
def test_miniprogram_unknown_answer_is_sent_once_and_left_to_a_person(
    ws: siyu.Workspace, clock: FakeClock, fault: Fault
) -> None:
    with FakeMiniProgram(templates={"TPL1": ["thing1"]}) as fake:
        channel = ws.channels.install(ws.channels.get("miniprogram", appid="wxapp", secret="appsecret",
                                                      base_url=fake.url, timeout=0.3))
        uid = ws.users.add(wechat_openid="o1", app="wxapp").id
        ws.users.consent(uid, purpose="marketing", channel="miniprogram")
        channel.add_credit("o1", "TPL1", 3)  # type: ignore[attr-defined]
        c = ws.campaigns.create("到货提醒", audience=[uid], channel="miniprogram", template="TPL1",
                                params=["thing1"], variants={"A": {"thing1": "到货了"}}, quiet_hours=None)
        fake.inject(attrs.evolve(fault, path="subscribe/send"))
        report = settle(ws, clock, c.id, ws.campaigns.send(c.id))
        assert len(fake.calls("subscribe/send")) == 1 and len(fake.sent) == 1
        (record,) = ws.campaigns.deliveries(c.id)
        assert (record.status, record.reason, record.code, record.due_at) == (
            "unknown", "outcome_unknown", "timeout_unknown", None)
        assert report.done and channel.credits("o1", "TPL1") == 2  # type: ignore[attr-defined]
        assert ws.campaigns.resolve(c.id, [record.id], sent=True)[0].status == "sent"
        assert ws.campaigns.results(c.id, phase=None)["A"].sent == 1


def test_email_lost_connection_leaves_the_rest_retryable() -> None:
    from siyu.channels.email import EmailChannel

    class Breaks:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send_message(self, mail: Any, from_addr: str, to_addrs: list[str]) -> dict[str, Any]:
            if self.sent:
                raise TimeoutError("read timed out after DATA")
            self.sent.extend(to_addrs)
            return {}

        def quit(self) -> None:
            raise OSError("gone")

        def close(self) -> None:
            return None

    smtp = Breaks()
    channel = EmailChannel(host="127.0.0.1", from_addr="shop@example.cn")
    channel._connect = lambda: smtp  # type: ignore[method-assign]
    messages = [Message(f"u{i}@example.cn", subject="s", text="t") for i in range(3)]
    results = channel.send(messages)
    assert [r.status for r in results] == [Status.SENT, Status.FAILED_PERMANENT, Status.FAILED_RETRYABLE]
    assert [r.code for r in results][1:] == ["timeout_unknown", "connect"]
    assert smtp.sent == ["u0@example.cn"]
