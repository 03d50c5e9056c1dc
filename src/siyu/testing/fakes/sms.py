"""Fake Alibaba Cloud and Tencent Cloud SMS servers that verify signatures."""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Mapping
from typing import Any

from ...channels.sms.signing import aliyun_v3_authorization, tc3_authorization
from ._server import FakeHttpServer, Request, Response, json_response

__all__ = ["FakeAliyunSms", "FakeTencentSms"]


#: When the fakes say their reports happened (Beijing time, as the providers write it).
REPORT_TIME = "2026-11-22 16:00:05"


class FakeAliyunSms(FakeHttpServer):
    """``SendSms`` of dysmsapi 2017-05-25 with ACS3-HMAC-SHA256 verification.

    A wrong signature answers HTTP 400 ``SignatureDoesNotMatch``; an unknown key
    ``InvalidAccessKeyId.NotFound``. ``codes[phone] = "isv.BUSINESS_LIMIT_CONTROL"``
    makes a call containing that number fail with the code (Alibaba answers per call).
    :meth:`status_reports` builds the ``SmsReport`` push for what was accepted.
    """

    def __init__(self, access_key_id: str = "LTAIfake", access_key_secret: str = "fakesecret") -> None:
        super().__init__()
        self.keys = {access_key_id: access_key_secret}
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
        auth = request.headers.get("authorization", "")
        key_id = auth.partition("Credential=")[2].partition(",")[0]
        if key_id not in self.keys:
            return json_response(
                {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}, 404
            )
        signed = {k: v for k, v in request.headers.items() if k == "host" or k.startswith("x-acs-")}
        expected = aliyun_v3_authorization(
            key_id, self.keys[key_id], request.method, request.path, request.query, signed, request.body
        )
        if not hmac.compare_digest(expected, auth):
            return json_response({"Code": "SignatureDoesNotMatch", "Message": "signature mismatch"}, 400)
        if request.headers.get("x-acs-action") != "SendSms":
            return json_response({"Code": "InvalidAction.NotFound", "Message": "?"}, 404)
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


class FakeTencentSms(FakeHttpServer):
    """``SendSms`` 2021-01-11 with TC3-HMAC-SHA256 verification; per-number codes
    via ``codes[phone] = "LimitExceeded.PhoneNumberDailyLimit"``. Status reports:
    :meth:`status_reports` builds the push body; ``PullSmsSendStatus`` hands out
    each accepted number's report once (``failed[phone] = description`` makes it FAIL)."""

    def __init__(self, secret_id: str = "AKIDfake", secret_key: str = "fakekey") -> None:
        super().__init__()
        self.keys = {secret_id: secret_key}
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
        auth = request.headers.get("authorization", "")
        secret_id = auth.partition("Credential=")[2].partition("/")[0]
        if secret_id not in self.keys:
            return self._error("AuthFailure.SecretIdNotFound", "secret id not found")
        host = request.headers.get("host", "")
        expected = tc3_authorization(
            secret_id,
            self.keys[secret_id],
            host=host,
            service=auth.split("/")[2] if auth.count("/") >= 3 else "sms",
            timestamp=int(request.headers.get("x-tc-timestamp") or 0),
            body=request.body,
            content_type=request.headers.get("content-type", ""),
        )
        if not hmac.compare_digest(expected, auth):
            return self._error("AuthFailure.SignatureFailure", "signature mismatch")
        body = request.json()
        if request.headers.get("x-tc-action") == "PullSmsSendStatus":
            return self._pull(body)
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
