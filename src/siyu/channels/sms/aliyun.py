"""``sms_aliyun``: Alibaba Cloud SMS (dysmsapi 2017-05-25, ``SendSms``),
signed with ``ACS3-HMAC-SHA256``.

One ``SendSms`` call carries up to 1,000 numbers with the same template and
parameters, so ``send`` groups messages by (template, variables). Alibaba
answers for the whole call, so every number of a call gets the same result.
SendSms is not idempotent: a read timeout is reported as
``failed_permanent`` / ``timeout_unknown`` and never retried; ``OutId``
carries the message key (or the first key of the call) for reconciliation.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ...errors import ChannelError
from .._http import make_client, request
from ..base import DeliveryResult, Message, Option, Status, failure
from ..receipts import Receipt, aliyun_receipts
from .base import RATE_LIMIT_SECONDS, SmsChannel, SmsTemplate
from .signing import aliyun_v3_authorization

__all__ = ["AliyunSmsChannel"]

OPT_OUT_SUFFIX = "拒收请回复R"
VERIFICATION_WORDS = ("验证码", "注册码", "校验码", "动态码")
DEFAULT_BASE_URL = "https://dysmsapi.aliyuncs.com"

_REJECTED = {
    "isv.SMS_CONTENT_ILLEGAL",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_PARAMETERS",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
}
_UNAVAILABLE = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.DENY_IP_RANGE"}
_RETRYABLE = {"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError"}


class AliyunSmsChannel(SmsChannel):
    """Alibaba Cloud SMS. Options (or ``SIYU_SMS_ALIYUN_<OPTION>``):
    ``access_key_id``, ``access_key_secret``, ``sign_name``, ``templates``,
    ``base_url``."""

    name: ClassVar[str] = "sms_aliyun"
    opt_out_hint: ClassVar[str] = OPT_OUT_SUFFIX
    options: ClassVar[dict[str, Option]] = {
        **SmsChannel.common_sms_options,
        "access_key_id": Option(required=True, doc="AccessKey ID"),
        "access_key_secret": Option(required=True, secret=True, doc="AccessKey secret"),
        "base_url": Option(default=DEFAULT_BASE_URL, doc="API root"),
        "clock": Option(env=False, doc="a zero-argument callable returning Unix seconds"),
    }

    def check_template(self, template: SmsTemplate) -> list[str]:
        problems = super().check_template(template)
        text = template.text.strip()
        if template.kind == "marketing" and not text.endswith(OPT_OUT_SUFFIX):
            problems.append(f"Alibaba marketing templates must end with the opt-out text {OPT_OUT_SUFFIX!r}")
        if template.kind != "marketing" and OPT_OUT_SUFFIX in text:
            problems.append(f"only marketing templates may contain {OPT_OUT_SUFFIX!r}")
        if template.kind == "verification" and not any(w in text for w in VERIFICATION_WORDS):
            problems.append(f"verification templates must contain one of {VERIFICATION_WORDS}")
        return problems

    def phone(self, recipient: str) -> str:
        e164 = super().phone(recipient)
        # Alibaba takes mainland numbers without the country code, others with it (no '+').
        return e164[3:] if e164.startswith("+86") else e164.lstrip("+")

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        first = messages[0]
        params = {
            "PhoneNumbers": ",".join(self.phone(m.recipient) for m in messages),
            "SignName": str(self.config["sign_name"]),
            "TemplateCode": str(first.template),
            "TemplateParam": json.dumps(dict(first.variables), ensure_ascii=False, separators=(",", ":")),
            "OutId": first.key or f"siyu-{uuid.uuid4().hex[:16]}",
        }
        try:
            data = self._call("SendSms", params)
        except ChannelError as exc:
            return [failure(m, exc) for m in messages]
        code = str(data.get("Code", ""))
        if code == "OK":
            return [DeliveryResult(m, Status.SENT, code="OK", provider_id=data.get("BizId")) for m in messages]
        return [self._result(m, code, str(data.get("Message", ""))) for m in messages]

    def _result(self, message: Message, code: str, text: str) -> DeliveryResult:
        detail = f"Alibaba {code}: {text}"
        if code.endswith("LIMIT_CONTROL") or code.startswith("Throttling"):
            window = "day" if "DAY" in code or "天" in text else "hour" if "小时" in text else "minute"
            retry = None if "MONTH" in code else RATE_LIMIT_SECONDS[window]
            return DeliveryResult(message, Status.RATE_LIMITED, code=code, detail=detail, retry_after=retry)
        if code in _UNAVAILABLE:
            return DeliveryResult(message, Status.UNAVAILABLE, code=code, detail=detail)
        if code in _REJECTED:
            return DeliveryResult(message, Status.REJECTED, code=code, detail=detail)
        if code in _RETRYABLE:
            return DeliveryResult(message, Status.FAILED_RETRYABLE, code=code, detail=detail)
        return DeliveryResult(message, Status.FAILED_PERMANENT, code=code, detail=detail)

    def _call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        if self._client is None:
            self._client = make_client(
                str(self.config["base_url"]), transport=self.config["transport"], timeout=float(self.config["timeout"])
            )
        clock = self.config["clock"] or time.time
        host = urlsplit(str(self.config["base_url"])).netloc
        headers = {
            "host": host,
            "x-acs-action": action,
            "x-acs-version": "2017-05-25",
            "x-acs-date": datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        }
        headers["Authorization"] = aliyun_v3_authorization(
            str(self.config["access_key_id"]), str(self.config["access_key_secret"]), "POST", "/", params, headers
        )
        response = request(
            self._client,
            "POST",
            "/",
            params=params,
            headers=headers,
            content=b"",
            sent_means_maybe_delivered=True,
            what=f"Alibaba {action}",
        )
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 500 and not data.get("Code"):
            raise ChannelError(
                f"Alibaba {action}: HTTP {response.status_code}", retryable=True, code=response.status_code
            )
        if not isinstance(data, dict) or not data.get("Code"):
            raise ChannelError(
                f"Alibaba {action}: HTTP {response.status_code} without a Code",
                retryable=False,
                code=response.status_code,
            )
        return data

    def _uplink_fields(self, item: Mapping[str, Any]) -> tuple[str, str]:
        return str(item.get("phone_number", "")), str(item.get("content", ""))

    def parse_receipts(self, payload: Any) -> list[Receipt]:
        """Receipts from the ``SmsReport`` push (see :func:`siyu.channels.receipts.aliyun_receipts`).
        One ``BizId`` covers every number of a ``SendSms`` call, so each receipt
        carries its ``phone_number`` to find the right record."""
        return aliyun_receipts(payload, self.name)
