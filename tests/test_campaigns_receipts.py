"""Delivery receipts: SMS status reports recorded against campaign delivery records,
end to end through the fake Alibaba and Tencent servers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import siyu
from siyu.channels import Receipt
from siyu.channels.receipts import PROVIDER_TZ, aliyun_receipts, tencent_receipts
from siyu.channels.sms import SmsTemplate
from siyu.errors import CallbackRejected, ValidationError
from siyu.events import ReceiptsRecorded
from siyu.testing import FakeClock, RecordingChannel
from siyu.testing.fakes import FakeAliyunSms, FakeTencentSms

PHONES = ["+8613800138001", "+8613800138002", "+8613800138003"]


@pytest.fixture
def aliyun_fake() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
def tencent_fake() -> Iterator[FakeTencentSms]:
    with FakeTencentSms() as fake:
        yield fake


def sms_users(ws: siyu.Workspace, phones: list[str]) -> list[int]:
    ids = [ws.users.add(phone=p).id for p in phones]
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="sms")
    return ids


def aliyun_campaign(ws: siyu.Workspace, fake: FakeAliyunSms, phones: list[str]) -> tuple[Any, int, list[int]]:
    channel = ws.channels.get(
        "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret", sign_name="小店",
        templates=[SmsTemplate("SMS_2", "marketing", "${name}会员，双11全场五折，拒收请回复R")], base_url=fake.url,
    )
    ws.channels.install(channel)
    ids = sms_users(ws, phones)
    c = ws.campaigns.create("double11", audience=ids, channel="sms_aliyun", template="SMS_2", params=["name"],
                            variants={"A": {"name": "尊敬的"}}, quiet_hours=None)
    assert ws.campaigns.send(c.id).sent == len(phones)
    return channel, c.id, ids


def tencent_campaign(ws: siyu.Workspace, fake: FakeTencentSms, phones: list[str]) -> tuple[Any, int, list[int]]:
    channel = ws.channels.get(
        "sms_tencent", secret_id="AKIDfake", secret_key="fakekey", sdk_app_id="1400000000", sign_name="小店",
        templates=[SmsTemplate("1002", "marketing", "会员{1}：双11全场五折，回T退订")], base_url=fake.url,
    )
    ws.channels.install(channel)
    ids = sms_users(ws, phones)
    c = ws.campaigns.create("double11-tc", audience=ids, channel="sms_tencent", template="1002", params=["1"],
                            variants={"A": {"1": "小王"}}, quiet_hours=None)
    assert ws.campaigns.send(c.id).sent == len(phones)
    return channel, c.id, ids


def receipts_of(ws: siyu.Workspace, cid: int) -> dict[int, str | None]:
    return {d.user_id: d.receipt for d in ws.campaigns.deliveries(cid)}


# -- Alibaba: one BizId for the whole call ---------------------------------------------------------------


def test_aliyun_status_reports_confirm_delivery_per_number(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    seen: list[Any] = []
    ws.subscribe(seen.append)
    channel, cid, ids = aliyun_campaign(ws, aliyun_fake, PHONES)
    assert len({d.provider_id for d in ws.campaigns.deliveries(cid)}) == 1  # one SendSms call, one BizId
    payload = aliyun_fake.status_reports(failed={"13800138002": "MK:0001"})
    report = channel.handle_receipts(json.dumps(payload).encode())
    assert (report.recorded, report.unchanged, report.unmatched) == (3, 0, ())
    assert receipts_of(ws, cid) == {ids[0]: "delivered", ids[1]: "failed", ids[2]: "delivered"}
    failed = next(d for d in ws.campaigns.deliveries(cid) if d.user_id == ids[1])
    assert failed.status == "sent" and failed.receipt_code == "MK:0001"
    assert failed.receipt_at == datetime(2026, 11, 22, 16, 0, 5, tzinfo=PROVIDER_TZ)
    result = ws.campaigns.results(cid, phase="send")["A"]
    assert (result.sent, result.delivered, result.confirmed, result.receipt_failed) == (3, 3, 2, 1)
    assert result.awaiting_receipt == 0
    assert "confirm." in str(ws.campaigns.results(cid, phase="send"))
    events = [e for e in seen if isinstance(e, ReceiptsRecorded)]
    assert {(e.status, e.user_ids) for e in events} == {("delivered", (ids[0], ids[2])), ("failed", (ids[1],))}


def test_the_same_report_twice_changes_nothing(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    channel, cid, _ = aliyun_campaign(ws, aliyun_fake, PHONES)
    payload = aliyun_fake.status_reports(failed={"13800138002": "MK:0001"})
    channel.handle_receipts(payload)
    before = ws.campaigns.deliveries(cid)
    seen: list[Any] = []
    ws.subscribe(seen.append)
    again = channel.handle_receipts(payload)
    assert (again.recorded, again.unchanged, again.delivery_ids) == (0, 3, ())
    assert ws.campaigns.deliveries(cid) == before
    assert not [e for e in seen if isinstance(e, ReceiptsRecorded)]


def test_delivered_after_failed_wins_and_failed_after_delivered_is_ignored(
    ws: siyu.Workspace, aliyun_fake: FakeAliyunSms
) -> None:
    channel, cid, ids = aliyun_campaign(ws, aliyun_fake, PHONES[:2])
    channel.handle_receipts(aliyun_fake.status_reports(failed={"13800138002": "MK:0001"}))
    late = channel.handle_receipts(aliyun_fake.status_reports(failed={"13800138001": "UNDELIV"}))
    assert (late.recorded, late.unchanged) == (1, 1)  # 002 upgraded to delivered; 001's late failure ignored
    assert receipts_of(ws, cid) == {ids[0]: "delivered", ids[1]: "delivered"}
    upgraded = next(d for d in ws.campaigns.deliveries(cid) if d.user_id == ids[1])
    assert upgraded.receipt_code == "DELIVERED"
    assert ws.campaigns.results(cid, phase="send")["A"].confirmed == 2


def test_unknown_message_ids_are_reported_and_not_stored(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    channel, cid, _ = aliyun_campaign(ws, aliyun_fake, PHONES[:1])
    payload = aliyun_fake.status_reports()
    stranger = {**payload[0], "biz_id": "biz-not-ours"}
    report = channel.handle_receipts([stranger, payload[0]])
    assert report.recorded == 1
    assert [(u.receipt.message_id, u.reason) for u in report.unmatched] == [("biz-not-ours", "unknown_id")]
    only = ws.campaigns.record_receipts([Receipt(channel="sms_aliyun", message_id="nope", status="delivered")])
    assert (only.recorded, only.unchanged, [u.reason for u in only.unmatched]) == (0, 0, ["unknown_id"])
    with ws.read() as tx:
        assert tx.campaigns.receipt_counts(cid) == {("A", "delivered"): 1}


def test_an_id_is_matched_only_among_the_receipts_channel(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    _, cid, _ = aliyun_campaign(ws, aliyun_fake, PHONES[:1])
    biz = ws.campaigns.deliveries(cid)[0].provider_id
    assert biz is not None
    report = ws.campaigns.record_receipts([Receipt(channel="sms_tencent", message_id=biz, status="delivered")])
    assert [u.reason for u in report.unmatched] == ["unknown_id"]


def test_a_shared_id_is_resolved_by_the_recipient(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    twins = ["+8613811110000", "+8613822220000"]  # same mask: 138****0000
    channel, cid, ids = aliyun_campaign(ws, aliyun_fake, [*twins, "+8613800138003"])
    assert len({d.recipient for d in ws.campaigns.deliveries(cid)}) == 2
    biz = aliyun_fake.accepted[0][0]
    report = channel.handle_receipts(aliyun_fake.status_reports(failed={"13822220000": "UNDELIV"}))
    assert report.recorded == 3
    assert receipts_of(ws, cid) == {ids[0]: "delivered", ids[1]: "failed", ids[2]: "delivered"}
    odd = ws.campaigns.record_receipts([
        Receipt(channel="sms_aliyun", message_id=biz, status="delivered"),  # which of the three?
        Receipt(channel="sms_aliyun", message_id=biz, status="delivered", recipient="13900000000"),
    ])
    assert [u.reason for u in odd.unmatched] == ["ambiguous", "recipient_mismatch"]


# -- Tencent: push and pull ------------------------------------------------------------------------------


def test_tencent_push_and_pull_record_each_report_once(ws: siyu.Workspace, tencent_fake: FakeTencentSms) -> None:
    channel, cid, ids = tencent_campaign(ws, tencent_fake, PHONES)
    tencent_fake.failed["+8613800138003"] = "空号"
    pushed = channel.handle_receipts(tencent_fake.status_reports())
    assert (pushed.recorded, pushed.unmatched) == (3, ())
    assert receipts_of(ws, cid) == {ids[0]: "delivered", ids[1]: "delivered", ids[2]: "failed"}
    pulled = channel.pull_receipts(limit=2) + channel.pull_receipts(limit=2)
    assert [r.recipient for r in pulled] == PHONES and channel.pull_receipts() == []
    assert pulled[2].detail == "空号" and pulled[2].reported_at == datetime.fromtimestamp(1795334405, UTC)
    again = ws.campaigns.record_receipts(pulled)  # the pull repeats what the push said
    assert (again.recorded, again.unchanged) == (0, 3)
    result = ws.campaigns.results(cid, phase=None)["A"]
    assert (result.confirmed, result.receipt_failed) == (2, 1)


def test_tencent_pull_alone(ws: siyu.Workspace, tencent_fake: FakeTencentSms) -> None:
    channel, cid, ids = tencent_campaign(ws, tencent_fake, PHONES[:2])
    report = ws.campaigns.record_receipts(channel.pull_receipts())
    assert report.recorded == 2
    assert receipts_of(ws, cid) == {ids[0]: "delivered", ids[1]: "delivered"}
    with pytest.raises(ValidationError, match="limit"):
        channel.pull_receipts(limit=0)


# -- parsers ---------------------------------------------------------------------------------------------


def test_parsers_read_the_documented_fields() -> None:
    (ali,) = aliyun_receipts('[{"phone_number": "13800138000", "success": "false", "err_code": "MK:0001", '
                             '"err_msg": "x", "report_time": "2026-11-22 16:00:05", "biz_id": "b1", "out_id": "k"}]')
    assert (ali.message_id, ali.status, ali.recipient, ali.code, ali.key) == (
        "b1", "failed", "13800138000", "MK:0001", "k")
    assert ali.reported_at == datetime(2026, 11, 22, 8, 0, 5, tzinfo=UTC)  # Beijing time
    (push,) = tencent_receipts({"user_receive_time": "2026-11-22 16:00:05", "nationcode": "86",
                                "mobile": "13800138000", "report_status": "SUCCESS", "errmsg": "DELIVRD",
                                "description": "ok", "sid": "s1"})
    assert (push.message_id, push.status, push.recipient, push.code) == ("s1", "delivered", "+8613800138000", "DELIVRD")


@pytest.mark.parametrize(
    ("parse", "payload", "match"),
    [
        (aliyun_receipts, b"not json", "not JSON"),
        (aliyun_receipts, '"a string"', "JSON list"),
        (aliyun_receipts, [{"phone_number": "138", "success": True}], "biz_id"),
        (aliyun_receipts, [{"biz_id": "b", "phone_number": "138", "success": "maybe"}], "success"),
        (aliyun_receipts, [{"biz_id": "b", "phone_number": "138"}], "success"),
        (aliyun_receipts, [{"biz_id": "b", "phone_number": "138", "success": True, "report_time": "soon"}], "time"),
        (aliyun_receipts, [1], "JSON object"),
        (tencent_receipts, [{"sid": "s", "mobile": "138", "report_status": "PENDING"}], "SUCCESS nor FAIL"),
        (tencent_receipts, {"Response": {"Error": {"Code": "AuthFailure"}}}, "error"),
        (tencent_receipts, {"Response": {}}, "PullSmsSendStatusSet"),
    ],
)
def test_malformed_reports_are_rejected(parse: Any, payload: Any, match: str) -> None:
    with pytest.raises(CallbackRejected, match=match):
        parse(payload)


def test_a_malformed_payload_records_nothing(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    channel, cid, _ = aliyun_campaign(ws, aliyun_fake, PHONES[:2])
    good, other = aliyun_fake.status_reports()
    with pytest.raises(CallbackRejected):
        channel.handle_receipts([good, {**other, "biz_id": ""}])
    assert set(receipts_of(ws, cid).values()) == {None}


def test_channels_without_a_parser_and_bad_arguments(ws: siyu.Workspace) -> None:
    with pytest.raises(ValidationError, match="no delivery-receipt parser"):
        ws.channels.get("outbox").parse_receipts([])
    with pytest.raises(ValidationError, match="Receipt objects"):
        ws.campaigns.record_receipts([{"message_id": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="'delivered' or 'failed'"):
        Receipt(channel="sms_aliyun", message_id="x", status="read")
    with pytest.raises(ValidationError, match="message_id"):
        Receipt(channel="sms_aliyun", message_id="", status="delivered")
    with pytest.raises(ValidationError, match="timezone-aware"):
        Receipt(channel="sms_aliyun", message_id="x", status="delivered", reported_at=datetime(2026, 1, 1))


# -- the rule holds in any order -----------------------------------------------------------------------------

STATUSES = st.sampled_from(["delivered", "failed"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reports=st.lists(st.tuples(st.integers(0, 3), STATUSES, st.sampled_from(["c1", "c2"])), max_size=14),
    cuts=st.lists(st.integers(0, 14), max_size=4),
)
def test_receipts_settle_the_same_in_any_order_and_batching(
    clock: FakeClock, reports: list[tuple[int, str, str]], cuts: list[int]
) -> None:
    with siyu.connect("memory://", clock=clock) as ws:
        ws.channels.install(RecordingChannel())
        ids = ws.users.add_many([{} for _ in range(4)])
        for uid in ids:
            ws.users.consent(uid, purpose="marketing", channel="recording")
        cid = ws.campaigns.create("c", audience=ids, channel="recording", template="hi", quiet_hours=None).id
        ws.campaigns.send(cid)
        message = {d.user_id: str(d.provider_id) for d in ws.campaigns.deliveries(cid)}
        receipts = [Receipt(channel="recording", message_id=message[ids[i]], status=s, code=code)
                    for i, s, code in reports]
        bounds = sorted({0, len(receipts), *(c for c in cuts if c <= len(receipts))})
        for lo, hi in itertools.pairwise(bounds):
            ws.campaigns.record_receipts(receipts[lo:hi])
        expected: dict[int, str | None] = dict.fromkeys(ids)
        for i, status, _ in reports:
            if expected[ids[i]] != "delivered":
                expected[ids[i]] = status
        assert receipts_of(ws, cid) == expected
        before = ws.campaigns.deliveries(cid)
        again = ws.campaigns.record_receipts(receipts)
        assert again.recorded == 0 and ws.campaigns.deliveries(cid) == before
