"""SMS: signers against the published vectors, sends against signature-checking fakes (acceptance 24-31)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import siyu
from siyu.channels import Message, Status
from siyu.channels.sms import SmsTemplate
from siyu.channels.sms.signing import (
    aliyun_v2_signature,
    aliyun_v3_authorization,
    aliyun_v3_canonical_request,
    percent_encode,
    tc3_authorization,
    tc3_canonical_request,
)
from siyu.errors import ValidationError
from siyu.testing.fakes import FakeAliyunSms, FakeTencentSms

V2_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}
V3_QUERY = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
TC3_BODY = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'


def test_aliyun_v2_vector() -> None:
    assert percent_encode('{"customer":"test"}') == "%7B%22customer%22%3A%22test%22%7D"
    assert percent_encode("a b~*") == "a%20b~%2A"
    assert aliyun_v2_signature("testSecret", V2_PARAMS) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_v3_vector() -> None:
    import hashlib

    canonical, _ = aliyun_v3_canonical_request("POST", "/", V3_QUERY, V3_HEADERS, b"")
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    assert aliyun_v3_authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", "/", V3_QUERY, V3_HEADERS) == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_tencent_tc3_vector_uses_the_utc_date() -> None:
    import hashlib

    assert len(TC3_BODY) == 86
    canonical = tc3_canonical_request("cvm.tencentcloudapi.com", "application/json; charset=utf-8", TC3_BODY)
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    assert tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        host="cvm.tencentcloudapi.com",
        service="cvm",
        timestamp=1551113065,
        body=TC3_BODY,
    ) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


ALI_TEMPLATES = [
    SmsTemplate("SMS_1", "notification", "您的订单${order}已发货"),
    SmsTemplate("SMS_2", "marketing", "${name}会员，双11全场五折，拒收请回复R"),
    SmsTemplate("SMS_3", "verification", "您的验证码为${code}"),
]
TC_TEMPLATES = [
    SmsTemplate("1001", "notification", "您的订单{1}已发货"),
    SmsTemplate("1002", "marketing", "会员{1}：双11全场五折，回T退订"),
    SmsTemplate("1003", "verification", "您的验证码为{1}，5分钟内有效"),
]


@pytest.fixture
def aliyun_fake() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
def tencent_fake() -> Iterator[FakeTencentSms]:
    with FakeTencentSms() as fake:
        yield fake


@pytest.fixture
def aliyun(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms):  # type: ignore[no-untyped-def]
    return ws.channels.get(
        "sms_aliyun",
        access_key_id="LTAIfake",
        access_key_secret="fakesecret",
        sign_name="小店",
        templates=ALI_TEMPLATES,
        base_url=aliyun_fake.url,
        timeout=0.5,
    )


@pytest.fixture
def tencent(ws: siyu.Workspace, tencent_fake: FakeTencentSms):  # type: ignore[no-untyped-def]
    return ws.channels.get(
        "sms_tencent",
        secret_id="AKIDfake",
        secret_key="fakekey",
        sdk_app_id="1400000000",
        sign_name="小店",
        templates=TC_TEMPLATES,
        base_url=tencent_fake.url,
        timeout=0.5,
    )


def test_aliyun_send_groups_by_content(aliyun, aliyun_fake: FakeAliyunSms) -> None:  # type: ignore[no-untyped-def]
    msgs = [
        Message(p, template="SMS_1", variables={"order": "A1"}, key=f"k{i}")
        for i, p in enumerate(["13800138000", "+86 139-0013-9000"])
    ]
    msgs.append(Message("13700137000", template="SMS_1", variables={"order": "B2"}))
    results = aliyun.send(msgs)
    assert all(r.ok for r in results)
    assert [s["PhoneNumbers"] for s in aliyun_fake.sent] == ["13800138000,13900139000", "13700137000"]
    assert aliyun_fake.sent[0]["TemplateParam"] == '{"order":"A1"}' and aliyun_fake.sent[0]["OutId"] == "k0"
    assert aliyun.render(msgs[0]) == "【小店】您的订单A1已发货"


def test_aliyun_wrong_credentials(ws: siyu.Workspace, aliyun_fake: FakeAliyunSms) -> None:
    bad = ws.channels.get(
        "sms_aliyun",
        access_key_id="LTAIfake",
        access_key_secret="nope-secret",
        sign_name="小店",
        templates=ALI_TEMPLATES,
        base_url=aliyun_fake.url,
    )
    result = bad.send([Message("13800138000", template="SMS_1", variables={"order": "1"})])[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "SignatureDoesNotMatch"
    assert aliyun_fake.sent == []
    assert "nope-secret" not in repr(bad)


def test_aliyun_rate_limit_and_rejections(aliyun, aliyun_fake: FakeAliyunSms) -> None:  # type: ignore[no-untyped-def]
    aliyun_fake.codes["13800138000"] = "isv.BUSINESS_LIMIT_CONTROL"
    aliyun_fake.codes["13900139000"] = "isv.SMS_CONTENT_ILLEGAL"
    results = aliyun.send(
        [
            Message("13800138000", template="SMS_1", variables={"order": "1"}),
            Message("13900139000", template="SMS_1", variables={"order": "2"}),
        ]
    )
    assert results[0].status is Status.RATE_LIMITED and results[0].retry_after == 60.0
    assert results[1].status is Status.REJECTED
    assert len(aliyun_fake.requests) == 2  # no immediate retry


def test_no_retry_after_timeout(aliyun, aliyun_fake: FakeAliyunSms) -> None:  # type: ignore[no-untyped-def]
    aliyun_fake.inject(delay=1.0)
    result = aliyun.send([Message("13800138000", template="SMS_1", variables={"order": "1"})])[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "timeout_unknown" and not result.retryable
    assert len(aliyun_fake.requests) == 1
    aliyun_fake.inject(status=503, body=b"busy")  # a gateway may have passed it on: unknown too
    result = aliyun.send([Message("13800138000", template="SMS_1", variables={"order": "1"})])[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "timeout_unknown"
    aliyun_fake.inject(status=429, body=b"slow down")  # refused before anything was done
    result = aliyun.send([Message("13800138000", template="SMS_1", variables={"order": "1"})])[0]
    assert result.status is Status.RATE_LIMITED
    assert len(aliyun_fake.requests) == 3


def test_connection_refused_is_retryable(ws: siyu.Workspace) -> None:
    channel = ws.channels.get(
        "sms_aliyun",
        access_key_id="a",
        access_key_secret="b",
        sign_name="小店",
        templates=ALI_TEMPLATES,
        base_url="http://127.0.0.1:9",
    )
    result = channel.send([Message("13800138000", template="SMS_1", variables={"order": "1"})])[0]
    assert result.status is Status.FAILED_RETRYABLE and result.code == "connect"


def test_tencent_per_number_results(tencent, tencent_fake: FakeTencentSms) -> None:  # type: ignore[no-untyped-def]
    tencent_fake.codes["+8613900139000"] = "LimitExceeded.PhoneNumberDailyLimit"
    tencent_fake.codes["+8613700137000"] = "InvalidParameterValue.IncorrectPhoneNumber"
    results = tencent.send(
        [
            Message(p, template="1001", variables={"1": "A1"}, key="batch-1")
            for p in ("13800138000", "13900139000", "13700137000")
        ]
    )
    assert [r.status for r in results] == [Status.SENT, Status.RATE_LIMITED, Status.UNAVAILABLE]
    body = tencent_fake.sent[0]
    assert body["PhoneNumberSet"] == ["+8613800138000", "+8613900139000", "+8613700137000"]
    assert body["TemplateParamSet"] == ["A1"] and body["SessionContext"] == "batch-1"
    assert results[0].provider_id


def test_tencent_batches_of_200(tencent, tencent_fake: FakeTencentSms) -> None:  # type: ignore[no-untyped-def]
    msgs = [Message(f"+86138{i:08d}", template="1001", variables={"1": "x"}) for i in range(450)]
    results = tencent.send(msgs)
    assert all(r.ok for r in results)
    assert [len(b["PhoneNumberSet"]) for b in tencent_fake.sent] == [200, 200, 50]


def test_tencent_wrong_key(ws: siyu.Workspace, tencent_fake: FakeTencentSms) -> None:
    bad = ws.channels.get(
        "sms_tencent",
        secret_id="AKIDfake",
        secret_key="wrong",
        sdk_app_id="1",
        sign_name="小店",
        templates=TC_TEMPLATES,
        base_url=tencent_fake.url,
    )
    result = bad.send([Message("13800138000", template="1001", variables={"1": "x"})])[0]
    assert result.status is Status.FAILED_PERMANENT and result.code == "AuthFailure.SignatureFailure"


def test_template_guards(ws: siyu.Workspace, aliyun, tencent) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="拒收请回复R"):
        aliyun.add_template(SmsTemplate("SMS_9", "marketing", "双11全场五折"))
    with pytest.raises(ValidationError, match="only marketing"):
        aliyun.add_template(SmsTemplate("SMS_9", "notification", "订单已发货，拒收请回复R"))
    with pytest.raises(ValidationError, match="TD, T or N"):
        tencent.add_template(SmsTemplate("9", "marketing", "双11全场五折"))
    with pytest.raises(ValidationError, match="only of variables"):
        tencent.add_template(SmsTemplate("9", "notification", "{1}"))
    bad_code = tencent.send([Message("13800138000", template="1003", variables={"1": "1234567"})])[0]
    assert bad_code.code == "invalid" and "6 digits" in bad_code.detail
    wrong_kind = aliyun.send([Message("13800138000", template="SMS_1", variables={"order": "1"}, purpose="marketing")])[
        0
    ]
    assert wrong_kind.code == "invalid"
    unknown = aliyun.send([Message("13800138000", template="SMS_404")])[0]
    assert unknown.code == "invalid" and "not registered" in unknown.detail
    free_text = aliyun.send([Message("13800138000", text="hello")])[0]
    assert free_text.code == "invalid"
    too_long = aliyun.send([Message("13800138000", template="SMS_1", variables={"order": "长" * 500})])[0]
    assert too_long.code == "invalid" and "500" in too_long.detail


def test_consent_gate_and_opt_out_replies(ws: siyu.Workspace, aliyun, tencent, aliyun_fake: FakeAliyunSms) -> None:  # type: ignore[no-untyped-def]
    user = ws.users.add(phone="13800138000")
    promo = Message("13800138000", template="SMS_2", variables={"name": "李"}, purpose="marketing", user_id=user.id)
    blocked = aliyun.send([promo])[0]
    assert blocked.code == "consent_required" and aliyun_fake.requests == []
    ws.users.consent(user.id, purpose="marketing", channel="sms", source="signup")
    assert aliyun.send([promo])[0].ok
    assert tencent.handle_reply("+8613800138000", "hello") is None
    assert aliyun.handle_uplink({"phone_number": "13800138000", "content": " r ", "send_time": "2026-11-22"}) == [
        user.id
    ]
    assert not ws.users.has_consent(user.id, purpose="marketing", channel="sms")
    assert aliyun.send([promo])[0].code == "consent_required"
    assert len(aliyun_fake.sent) == 1
    ws.users.consent(user.id, purpose="marketing", channel="sms", source="re-signup")
    assert tencent.handle_uplink([{"mobile": "13800138000", "nationcode": "86", "text": "TD"}]) == [user.id]
    assert ws.users.consents(user.id)[-1].source == "sms_tencent:reply:TD"


def test_aliyun_batches_of_1000(aliyun, aliyun_fake: FakeAliyunSms) -> None:  # type: ignore[no-untyped-def]
    msgs = [Message(f"138{i:08d}", template="SMS_1", variables={"order": "A"}) for i in range(1500)]
    assert all(r.ok for r in aliyun.send(msgs))
    assert [len(s["PhoneNumbers"].split(",")) for s in aliyun_fake.sent] == [1000, 500]
