"""The fake SMS servers refuse what Alibaba Cloud and Tencent Cloud refuse, with their error codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import siyu
from siyu.channels import Message
from siyu.channels.sms import SmsTemplate
from siyu.channels.sms.signing import tc3_authorization, tc3_canonical_request
from siyu.testing.fakes import FakeAliyunSms, FakeTencentSms

NOW = 1_795_000_000  # 2026-11-18, the fakes' clock in these tests
TC_BODY = json.dumps(
    {"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400000000", "TemplateId": "1001",
     "SignName": "小店", "TemplateParamSet": ["A1"]},
    ensure_ascii=False,
).encode()


# -- Tencent ----------------------------------------------------------------------------------------
@pytest.fixture
def tencent() -> Iterator[FakeTencentSms]:
    with FakeTencentSms(clock=lambda: NOW) as fake:
        yield fake


def tc3_post(
    fake: FakeTencentSms,
    *,
    timestamp: int = NOW,
    service: str = "sms",
    content_type: str = "application/json; charset=utf-8",
    drop: tuple[str, ...] = (),
    body: bytes = TC_BODY,
    authorization: str | None = None,
) -> dict[str, Any]:
    host = fake.url.removeprefix("http://")
    headers = {
        "Authorization": authorization
        or tc3_authorization(
            "AKIDfake", "fakekey", host=host, service=service, timestamp=timestamp, body=body,
            content_type=content_type,
        ),
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": "SendSms",
        "X-TC-Version": "2021-01-11",
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": "ap-guangzhou",
    }
    for name in drop:
        del headers[name]
    response = httpx.post(fake.url, content=body, headers=headers)
    assert response.status_code == 200  # Tencent answers errors with HTTP 200 and Response.Error
    data: dict[str, Any] = response.json()["Response"]
    return data


def error(data: Mapping[str, Any]) -> str | None:
    return data.get("Error", {}).get("Code")


def test_tencent_accepts_a_correct_request(tencent: FakeTencentSms) -> None:
    data = tc3_post(tencent)
    assert error(data) is None and data["SendStatusSet"][0]["Code"] == "Ok"


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [
        (int(datetime(2020, 6, 1, tzinfo=UTC).timestamp()), False),
        (NOW - 301, False),
        (NOW + 301, False),
        (NOW - 299, True),
        (NOW + 299, True),
    ],
)
def test_tencent_allows_five_minutes_of_skew(tencent: FakeTencentSms, timestamp: int, accepted: bool) -> None:
    data = tc3_post(tencent, timestamp=timestamp)
    assert error(data) == (None if accepted else "AuthFailure.SignatureExpire")


def test_tencent_refuses_a_credential_scope_of_another_service(tencent: FakeTencentSms) -> None:
    assert error(tc3_post(tencent, service="cvm")) == "AuthFailure.SignatureFailure"


def test_tencent_refuses_a_scope_date_in_local_time() -> None:
    stamp = int(datetime(2026, 11, 18, 20, 0, tzinfo=UTC).timestamp())  # 04:00 the next day in Beijing
    with FakeTencentSms(clock=lambda: stamp) as fake:
        good = tc3_authorization("AKIDfake", "fakekey", host=fake.url[7:], service="sms", timestamp=stamp, body=TC_BODY)
        assert "/2026-11-18/sms/" in good and error(tc3_post(fake, timestamp=stamp, authorization=good)) is None
        local = good.replace("2026-11-18", "2026-11-19")
        assert error(tc3_post(fake, timestamp=stamp, authorization=local)) == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_tencent_refuses_a_body_that_is_not_json(tencent: FakeTencentSms, content_type: str) -> None:
    assert error(tc3_post(tencent, content_type=content_type)) == "InvalidParameter"


@pytest.mark.parametrize("header", ["X-TC-Action", "X-TC-Version", "X-TC-Timestamp"])
def test_tencent_refuses_a_request_without_a_common_header(tencent: FakeTencentSms, header: str) -> None:
    data = tc3_post(tencent, drop=(header,))
    assert error(data) == "MissingParameter" and header in data["Error"]["Message"]
    assert tencent.sent == []


def test_tencent_accepts_more_signed_headers_with_values_lower_cased(tencent: FakeTencentSms) -> None:
    # Tencent's own example also signs X-TC-Action, lower-cased: "x-tc-action:sendsms".
    host = tencent.url[7:]
    canonical_headers = f"content-type:application/json; charset=utf-8\nhost:{host}\nx-tc-action:sendsms\n"
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, "content-type;host;x-tc-action", hashlib.sha256(TC_BODY).hexdigest()]
    )
    date = datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%d")
    to_sign = f"TC3-HMAC-SHA256\n{NOW}\n{date}/sms/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = b"TC3fakekey"
    for part in (date, "sms", "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (
        f"TC3-HMAC-SHA256 Credential=AKIDfake/{date}/sms/tc3_request, "
        f"SignedHeaders=content-type;host;x-tc-action, Signature={signature}"
    )
    assert error(tc3_post(tencent, authorization=auth)) is None
    unsigned_host = auth.replace("SignedHeaders=content-type;host;x-tc-action", "SignedHeaders=content-type")
    assert error(tc3_post(tencent, authorization=unsigned_host)) == "AuthFailure.InvalidAuthorization"


def test_tencent_signing_lower_cases_header_values_like_the_server() -> None:
    canonical = tc3_canonical_request("SMS.TencentCloudAPI.com", "Application/JSON; charset=UTF-8", b"{}")
    assert "host:sms.tencentcloudapi.com\n" in canonical
    assert "content-type:application/json; charset=utf-8\n" in canonical


TC_TEMPLATES = [SmsTemplate("1001", "notification", "您的订单{1}已发货")]


def test_siyu_tencent_channel_passes_the_strict_fake(ws: siyu.Workspace) -> None:
    with FakeTencentSms(clock=lambda: NOW) as fake:
        port = fake.url.rsplit(":", 1)[1]
        for base_url in (fake.url, f"http://LOCALHOST:{port}"):
            channel = ws.channels.get(
                "sms_tencent", secret_id="AKIDfake", secret_key="fakekey", sdk_app_id="1400000000",
                sign_name="小店", templates=TC_TEMPLATES, base_url=base_url, clock=lambda: NOW, timeout=2,
            )
            result = channel.send([Message("13800138000", template="1001", variables={"1": "A1"})])[0]
            assert result.ok, result.detail
        late = ws.channels.get(
            "sms_tencent", secret_id="AKIDfake", secret_key="fakekey", sdk_app_id="1400000000",
            sign_name="小店", templates=TC_TEMPLATES, base_url=fake.url, clock=lambda: NOW - 600,
        )
        result = late.send([Message("13800138000", template="1001", variables={"1": "A1"})])[0]
        assert not result.ok and result.code == "AuthFailure.SignatureExpire"


# -- Alibaba ----------------------------------------------------------------------------------------
@pytest.fixture
def aliyun() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms(clock=lambda: NOW) as fake:
        yield fake


ALI_QUERY = {
    "PhoneNumbers": "13800138000",
    "SignName": "小店",
    "TemplateCode": "SMS_1",
    "TemplateParam": '{"order":"A1"}',
    "OutId": "k1",
}


def _pe(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="-_.~")


def acs3_post(
    fake: FakeAliyunSms,
    *,
    date: datetime | None = None,
    nonce: str | None = None,
    body: bytes = b"",
    content_sha256: str | None = None,
    extra: Mapping[str, str] | None = None,
    signed: list[str] | None = None,
    secret: str = "fakesecret",
) -> httpx.Response:
    """A request built and signed the way Alibaba documents ACS3-HMAC-SHA256 (or broken on purpose)."""
    host = fake.url.removeprefix("http://")
    headers = {
        "host": host,
        "x-acs-action": "SendSms",
        "x-acs-version": "2017-05-25",
        "x-acs-date": (date or datetime.fromtimestamp(NOW, UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": content_sha256 or hashlib.sha256(body).hexdigest(),
        **(extra or {}),
    }
    names = sorted(signed if signed is not None else headers)
    query = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(ALI_QUERY.items()))
    canonical = "\n".join(
        ["POST", "/", query, "".join(f"{n}:{headers[n].strip()}\n" for n in names), ";".join(names),
         headers["x-acs-content-sha256"]]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential=LTAIfake,SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return httpx.post(fake.url + "/?" + query, content=body, headers=headers)


def test_alibaba_accepts_a_correct_request(aliyun: FakeAliyunSms) -> None:
    response = acs3_post(aliyun)
    assert response.status_code == 200 and response.json()["Code"] == "OK"


def test_alibaba_accepts_a_request_that_also_signs_user_agent(aliyun: FakeAliyunSms) -> None:
    # Alibaba's own SDKs sign user-agent too; any header may be signed.
    response = acs3_post(aliyun, extra={"user-agent": "AlibabaCloud (Linux) Python/3.11 Core/1.0 TeaDSL/2"})
    assert response.status_code == 200 and response.json()["Code"] == "OK"


@pytest.mark.parametrize(
    ("date", "accepted"),
    [
        (datetime(2019, 3, 1, tzinfo=UTC), False),
        (datetime.fromtimestamp(NOW - 15 * 60 - 1, UTC), False),
        (datetime.fromtimestamp(NOW + 15 * 60 + 1, UTC), False),
        (datetime.fromtimestamp(NOW - 15 * 60 + 1, UTC), True),
    ],
)
def test_alibaba_allows_fifteen_minutes_of_skew(aliyun: FakeAliyunSms, date: datetime, accepted: bool) -> None:
    response = acs3_post(aliyun, date=date)
    if accepted:
        assert response.json()["Code"] == "OK"
    else:
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_alibaba_refuses_a_nonce_used_twice(aliyun: FakeAliyunSms) -> None:
    assert acs3_post(aliyun, nonce="n-1").json()["Code"] == "OK"
    again = acs3_post(aliyun, nonce="n-1")
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
    assert len(aliyun.sent) == 1


def test_alibaba_refuses_a_content_hash_that_is_not_the_body(aliyun: FakeAliyunSms) -> None:
    response = acs3_post(aliyun, body=b"PhoneNumbers=13900139000", content_sha256=hashlib.sha256(b"").hexdigest())
    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert aliyun.sent == []


def test_alibaba_refuses_an_x_acs_header_left_out_of_signed_headers(aliyun: FakeAliyunSms) -> None:
    names = ["host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-version"]  # nonce unsigned
    response = acs3_post(aliyun, signed=names)
    assert (response.status_code, response.json()["Code"]) == (400, "IncompleteSignature")
    assert "x-acs-signature-nonce" in response.json()["Message"]


def test_alibaba_refuses_a_wrong_secret_with_its_error_shape(aliyun: FakeAliyunSms) -> None:
    response = acs3_post(aliyun, secret="not-the-secret")
    body = response.json()
    assert response.status_code == 400 and body["Code"] == "SignatureDoesNotMatch"
    assert {"RequestId", "HostId", "Message", "Recommend"} <= set(body)


ALI_TEMPLATES = [SmsTemplate("SMS_1", "notification", "您的订单${order}已发货")]


def test_siyu_alibaba_channel_passes_the_strict_fake(ws: siyu.Workspace) -> None:
    with FakeAliyunSms(clock=lambda: NOW) as fake:
        channel = ws.channels.get(
            "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret", sign_name="小店",
            templates=ALI_TEMPLATES, base_url=fake.url, clock=lambda: NOW,
        )
        results = channel.send([Message(p, template="SMS_1", variables={"order": "A1"}) for p in ("13800138000",)])
        assert results[0].ok, results[0].detail
        stale = ws.channels.get(
            "sms_aliyun", access_key_id="LTAIfake", access_key_secret="fakesecret", sign_name="小店",
            templates=ALI_TEMPLATES, base_url=fake.url, clock=lambda: NOW - 3600,
        )
        result = stale.send([Message("13800138000", template="SMS_1", variables={"order": "A1"})])[0]
        assert not result.ok and result.code == "InvalidTimeStamp.Expired"
