"""Fake Alibaba Cloud and Tencent Cloud SMS servers that check requests as strictly as the providers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from ._server import Clock, FakeHttpServer, Request, Response, json_response
from ._sms_auth import Acs3Gate, Refusal, Tc3Gate

__all__ = ["FakeAliyunSms", "FakeTencentSms"]


#: When the fakes say their reports happened (Beijing time, as the providers write it).
REPORT_TIME = "2026-11-22 16:00:05"


class FakeAliyunSms(FakeHttpServer):
    """``SendSms`` of dysmsapi 2017-05-25 behind Alibaba's ACS3-HMAC-SHA256 checks.

    Refused like Alibaba refuses them (HTTP 400 unless noted): an unknown key
    (404 ``InvalidAccessKeyId.NotFound``), a host/``x-acs-*`` header left out of
    ``SignedHeaders`` (``IncompleteSignature``), an ``x-acs-date`` more than 15
    minutes from ``clock`` (``InvalidTimeStamp.Expired``), an
    ``x-acs-content-sha256`` that is not the body's, a wrong signature
    (``SignatureDoesNotMatch``), a nonce used before (``SignatureNonceUsed``).
    ``clock`` returns Unix seconds or an aware ``datetime`` (default: real time).
    ``codes[phone] = "isv.BUSINESS_LIMIT_CONTROL"`` makes a call containing that
    number fail with the code (Alibaba answers per call).
    :meth:`status_reports` builds the ``SmsReport`` push for what was accepted.
    """

    def __init__(
        self, access_key_id: str = "LTAIfake", access_key_secret: str = "fakesecret", *, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.keys = {access_key_id: access_key_secret}
        self.gate = Acs3Gate(self.keys, clock=clock)
        self.codes: dict[str, str] = {}
        self.sent: list[dict[str, str]] = []
        #: ``(BizId, phone, OutId)`` of every number accepted, in order.
        self.accepted: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    def status_reports(
        self, *, failed: Mapping[str, str] | None = None, at: str = REPORT_TIME
    ) -> list[dict[str, Any]]:
        """The ``SmsReport`` push body for every accepted number: delivered
        (``err_code`` ``DELIVERED``), or failed with ``failed[phone]`` as ``err_code``."""
        failed = failed or {}
        return [
            {
                "phone_number": phone, "send_time": at, "report_time": at, "success": phone not in failed,
                "err_code": failed.get(phone, "DELIVERED"),
                "err_msg": "用户接收成功" if phone not in failed else "失败",
                "sms_size": "1", "biz_id": biz, "out_id": out_id,
            }
            for biz, phone, out_id in self.accepted
        ]

    def respond(self, request: Request) -> Response:
        refusal = self.gate.check(request)
        if refusal is not None:
            return self._error(refusal)
        if request.headers.get("x-acs-action") != "SendSms":
            return self._error(Refusal("InvalidAction.NotFound", "Specified api is not found.", 404))
        params = dict(request.query)
        phones = params.get("PhoneNumbers", "").split(",")
        if len(phones) > 1000:
            return json_response({"Code": "isv.MOBILE_COUNT_OVER_LIMIT", "Message": "too many numbers"})
        json.loads(params.get("TemplateParam") or "{}")  # must be a JSON string
        for phone in phones:
            if phone in self.codes:
                return json_response({"Code": self.codes[phone], "Message": "scripted", "RequestId": "r"})
        self.sent.append(params)
        biz = f"biz{next(self._ids)}"
        self.accepted.extend((biz, phone, params.get("OutId", "")) for phone in phones)
        return json_response({"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": "r"})

    @staticmethod
    def _error(refusal: Refusal) -> Response:
        # The shape of Alibaba's gateway errors.
        body = {
            "RequestId": "fake-request",
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": refusal.code,
            "Message": refusal.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={refusal.code}&product=Dysmsapi",
        }
        return json_response(body, refusal.status)


class FakeTencentSms(FakeHttpServer):
    """``SendSms`` 2021-01-11 behind Tencent's API 3.0 checks: ``Content-Type:
    application/json``, ``X-TC-Action`` / ``X-TC-Version`` / ``X-TC-Timestamp``
    present (``MissingParameter``), the timestamp within 5 minutes of ``clock``
    (``AuthFailure.SignatureExpire``), a TC3-HMAC-SHA256 signature whose scope is
    the timestamp's UTC date and ``sms`` (``AuthFailure.SignatureFailure``).
    Errors come as HTTP 200 with ``Response.Error``. ``clock`` returns Unix
    seconds or an aware ``datetime`` (default: real time). Per-number codes
    via ``codes[phone] = "LimitExceeded.PhoneNumberDailyLimit"``. Status reports:
    :meth:`status_reports` builds the push body; ``PullSmsSendStatus`` hands out
    each accepted number's report once (``failed[phone] = description`` makes it FAIL)."""

    def __init__(self, secret_id: str = "AKIDfake", secret_key: str = "fakekey", *, clock: Clock | None = None) -> None:
        super().__init__()
        self.keys = {secret_id: secret_key}
        self.actions: dict[str, Callable[[dict[str, Any]], Response]] = {
            "SendSms": self._send,
            "PullSmsSendStatus": self._pull,
        }
        self.gate = Tc3Gate(self.keys, service="sms", version="2021-01-11", actions=self.actions, clock=clock)
        self.codes: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        #: ``(SerialNo, E.164 phone, SessionContext)`` of every number accepted, in order.
        self.accepted: list[tuple[str, str, str]] = []
        self._unpulled: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    def status_reports(self, *, at: str = REPORT_TIME) -> list[dict[str, Any]]:
        """The status-report push body for every accepted number."""
        return [
            {
                "user_receive_time": at, "nationcode": phone[1:3], "mobile": phone[3:],
                "report_status": "FAIL" if phone in self.failed else "SUCCESS",
                "errmsg": "UNDELIV" if phone in self.failed else "DELIVRD",
                "description": self.failed.get(phone, "用户短信送达成功"), "sid": serial,
            }
            for serial, phone, _ in self.accepted
        ]

    def _pull(self, body: Mapping[str, Any]) -> Response:
        limit = int(body.get("Limit") or 0)
        if not 1 <= limit <= 100:
            return self._error("InvalidParameterValue", "Limit must be 1..100")
        batch, self._unpulled = self._unpulled[:limit], self._unpulled[limit:]
        reports = [
            {
                "UserReceiveTime": 1795334405, "CountryCode": phone[1:3], "SubscriberNumber": phone[3:],
                "PhoneNumber": phone, "SerialNo": serial,
                "ReportStatus": "FAIL" if phone in self.failed else "SUCCESS",
                "Description": self.failed.get(phone, "用户短信送达成功"), "SessionContext": context,
            }
            for serial, phone, context in batch
        ]
        return json_response({"Response": {"PullSmsSendStatusSet": reports, "RequestId": "req"}})

    def respond(self, request: Request) -> Response:
        refusal = self.gate.check(request)
        if refusal is not None:
            return self._error(refusal.code, refusal.message)
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._error("InvalidParameter", "The request body is not a JSON object.")
        return self.actions[request.headers["x-tc-action"]](body)

    def _send(self, body: dict[str, Any]) -> Response:
        numbers = body.get("PhoneNumberSet") or []
        if len(numbers) > 200:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "more than 200 numbers")
        statuses = []
        for phone in numbers:
            code = self.codes.get(phone, "Ok")
            serial = f"sn{next(self._ids)}" if code == "Ok" else ""
            if serial:
                self.accepted.append((serial, phone, body.get("SessionContext", "")))
                self._unpulled.append(self.accepted[-1])
            statuses.append(
                {
                    "SerialNo": serial,
                    "PhoneNumber": phone,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": body.get("SessionContext", ""),
                    "Code": code,
                    "Message": "send success" if code == "Ok" else "scripted",
                    "IsoCode": "CN",
                }
            )
        self.sent.append(body)
        return json_response({"Response": {"SendStatusSet": statuses, "RequestId": "req"}})

    @staticmethod
    def _error(code: str, message: str) -> Response:
        return json_response({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "req"}})
