"""Fake Alibaba Cloud and Tencent Cloud SMS servers that check requests as strictly as the providers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ._server import Clock, FakeHttpServer, Request, Response, json_response, unix_time
from ._sms_auth import Acs3Gate, Refusal, Tc3Gate

__all__ = ["FakeAliyunSms", "FakeTencentSms"]


#: When the fakes say their reports happened (Beijing time, as the providers write it).
REPORT_TIME = "2026-11-22 16:00:05"
_BEIJING = timezone(timedelta(hours=8))


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
    :meth:`status_reports` builds the ``SmsReport`` push for what was accepted;
    ``QuerySendDetails`` lists it per number and day (send times by ``clock``).
    """

    def __init__(
        self, access_key_id: str = "LTAIfake", access_key_secret: str = "fakesecret", *, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.clock = clock
        # (SendSms parameters, Beijing send time) of each accepted call, for QuerySendDetails.
        self._calls: list[tuple[dict[str, str], str]] = []
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
        if request.headers.get("x-acs-action") == "QuerySendDetails":
            return self._query(dict(request.query))
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
        when = datetime.fromtimestamp(unix_time(self.clock), _BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        self._calls.append((params, when))
        return json_response({"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": "r"})

    def _query(self, query: Mapping[str, str]) -> Response:
        phone, day = query.get("PhoneNumber", ""), query.get("SendDate", "")
        try:
            size, page = int(query.get("PageSize", "")), int(query.get("CurrentPage", ""))
        except ValueError:
            size = page = 0
        if not phone or len(day) != 8 or not 1 <= size <= 50 or page < 1:
            return json_response({"Code": "isv.INVALID_PARAMETERS", "Message": "PhoneNumber, SendDate, PageSize "
                                  "(1-50) and CurrentPage are required", "RequestId": "r"})
        date = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        rows = [
            {"PhoneNum": phone, "SendStatus": 1, "ErrCode": "", "TemplateCode": params.get("TemplateCode", ""),
             "Content": f"【{params.get('SignName', '')}】{params.get('TemplateParam', '')}", "SendDate": when,
             "ReceiveDate": "", "OutId": params.get("OutId", "")}
            for params, when in self._calls
            if when.startswith(date) and phone in params.get("PhoneNumbers", "").split(",")
        ]
        return json_response({"Code": "OK", "Message": "OK", "RequestId": "r", "TotalCount": len(rows),
                              "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows[(page - 1) * size : page * size]}})

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
    each accepted number's report once (``failed[phone] = description`` makes it FAIL);
    ``PullSmsSendStatusByPhoneNumber`` lists one number's reports by send time
    (by ``clock``), except numbers in ``unreported`` (no carrier report yet)."""

    def __init__(self, secret_id: str = "AKIDfake", secret_key: str = "fakekey", *, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock
        #: Numbers whose carrier has not reported yet: not listed by number.
        self.unreported: set[str] = set()
        self._sent_at: dict[str, int] = {}
        self.keys = {secret_id: secret_key}
        self.actions: dict[str, Callable[[dict[str, Any]], Response]] = {
            "SendSms": self._send,
            "PullSmsSendStatus": self._pull,
            "PullSmsSendStatusByPhoneNumber": self._pull_number,
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
                self._sent_at[serial] = int(unix_time(self.clock))
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

    def _pull_number(self, body: Mapping[str, Any]) -> Response:
        limit, begin, phone = int(body.get("Limit") or 0), body.get("BeginTime"), str(body.get("PhoneNumber") or "")
        if not 1 <= limit <= 100 or not isinstance(begin, int) or not phone.startswith("+"):
            return self._error("InvalidParameterValue", "BeginTime, Limit (1-100) and an E.164 PhoneNumber")
        if begin < int(unix_time(self.clock)) - 7 * 86_400:
            return self._error("InvalidParameterValue", "BeginTime reaches back at most 7 days")
        end = body.get("EndTime")
        reports = [
            {
                "UserReceiveTime": self._sent_at[serial], "CountryCode": number[1:3], "SubscriberNumber": number[3:],
                "PhoneNumber": number, "SerialNo": serial,
                "ReportStatus": "FAIL" if number in self.failed else "SUCCESS",
                "Description": self.failed.get(number, "DELIVRD"), "SessionContext": context,
            }
            for serial, number, context in self.accepted
            if number == phone and number not in self.unreported and begin <= self._sent_at[serial]
            and (not isinstance(end, int) or self._sent_at[serial] <= end)
        ]
        return json_response({"Response": {"PullSmsSendStatusSet": reports[:limit], "RequestId": "req"}})

    @staticmethod
    def _error(code: str, message: str) -> Response:
        return json_response({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "req"}})
