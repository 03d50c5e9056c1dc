"""Fake Alibaba Cloud and Tencent Cloud SMS servers that verify signatures."""

from __future__ import annotations

import hmac
import itertools
import json
from typing import Any

from ...channels.sms.signing import aliyun_v3_authorization, tc3_authorization
from ._server import FakeHttpServer, Request, Response, json_response

__all__ = ["FakeAliyunSms", "FakeTencentSms"]


class FakeAliyunSms(FakeHttpServer):
    """``SendSms`` of dysmsapi 2017-05-25 with ACS3-HMAC-SHA256 verification.

    A wrong signature answers HTTP 400 ``SignatureDoesNotMatch``; an unknown key
    ``InvalidAccessKeyId.NotFound``. ``codes[phone] = "isv.BUSINESS_LIMIT_CONTROL"``
    makes a call containing that number fail with the code (Alibaba answers per call).
    """

    def __init__(self, access_key_id: str = "LTAIfake", access_key_secret: str = "fakesecret") -> None:
        super().__init__()
        self.keys = {access_key_id: access_key_secret}
        self.codes: dict[str, str] = {}
        self.sent: list[dict[str, str]] = []
        self._ids = itertools.count(1)

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
        return json_response({"Code": "OK", "Message": "OK", "BizId": f"biz{next(self._ids)}", "RequestId": "r"})


class FakeTencentSms(FakeHttpServer):
    """``SendSms`` 2021-01-11 with TC3-HMAC-SHA256 verification; per-number codes
    via ``codes[phone] = "LimitExceeded.PhoneNumberDailyLimit"``."""

    def __init__(self, secret_id: str = "AKIDfake", secret_key: str = "fakekey") -> None:
        super().__init__()
        self.keys = {secret_id: secret_key}
        self.codes: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

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
        numbers = body.get("PhoneNumberSet") or []
        if len(numbers) > 200:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "more than 200 numbers")
        statuses = []
        for phone in numbers:
            code = self.codes.get(phone, "Ok")
            statuses.append(
                {
                    "SerialNo": f"sn{next(self._ids)}" if code == "Ok" else "",
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
