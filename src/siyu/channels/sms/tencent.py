"""``sms_tencent``: Tencent Cloud SMS (API 3.0, ``SendSms`` 2021-01-11),
signed with ``TC3-HMAC-SHA256``.

One call carries up to 200 E.164 numbers with the same template parameters;
Tencent answers per number (``SendStatusSet``), so one bad number fails alone.
Request-level errors arrive as HTTP 200 with ``Response.Error``. Like
Alibaba's, SendSms is treated as non-idempotent: an answer that may mean
"sent" (a read timeout, HTTP 5xx, a body that is not Tencent's answer,
``InternalError``, a number missing from ``SendStatusSet``) is
``timeout_unknown`` and never retried. ``SessionContext`` carries the message
key (or what the keys of the call share), which Tencent echoes in its status
reports: :meth:`TencentSmsChannel.reconcile` looks for it with
``PullSmsSendStatusByPhoneNumber``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ...errors import ChannelError, ValidationError
from .._http import make_client, request, unknown_outcome
from ..base import DeliveryResult, Limits, Message, Option, Status, failure, unknown
from ..receipts import Receipt, tencent_receipts
from .base import SmsChannel, SmsTemplate, call_context, context_matches
from .signing import tc3_authorization

__all__ = ["TencentSmsChannel"]

DEFAULT_BASE_URL = "https://sms.tencentcloudapi.com"
_OPT_OUT = re.compile(r"(回复?|发送?)\s*(TD|T|N)\b|退订\s*(回复?)?\s*(TD|T|N)\b|(TD|T|N)\s*退订", re.IGNORECASE)
_FORBIDDEN = ("【", "】", "¥", "★", "^_^", "&", "✓", "※")
#: Seconds of clock difference allowed between siyu and Tencent when looking for a send.
_CLOCK_SLACK = 600
#: How far back PullSmsSendStatusByPhoneNumber reaches (7 days).
_PULL_RANGE = 7 * 86_400 - _CLOCK_SLACK


class TencentSmsChannel(SmsChannel):
    """Tencent Cloud SMS. Options (or ``SIYU_SMS_TENCENT_<OPTION>``):
    ``secret_id``, ``secret_key``, ``sdk_app_id``, ``sign_name``,
    ``templates`` (text with ``{1}``, ``{2}`` …; variables are passed as
    ``{"1": ..., "2": ...}``), ``region``, ``base_url``."""

    name: ClassVar[str] = "sms_tencent"
    opt_out_hint: ClassVar[str] = "回T退订 / 退订回TD / 回N退订"
    reconciles: ClassVar[bool] = True
    # Tencent lists a message only once the carrier reported on it, usually within minutes.
    reconcile_after: ClassVar[float] = 300.0
    limits: ClassVar[Limits] = Limits(
        max_recipients_per_call=200,
        max_text_length=500,
        requires_template=True,
        allows_text=False,
        as_of="cloud.tencent.com/document/product/382/39023",
    )
    options: ClassVar[dict[str, Option]] = {
        **SmsChannel.common_sms_options,
        "secret_id": Option(required=True, doc="SecretId"),
        "secret_key": Option(required=True, secret=True, doc="SecretKey"),
        "sdk_app_id": Option(required=True, doc="SmsSdkAppId"),
        "region": Option(default="ap-guangzhou", doc="X-TC-Region"),
        "base_url": Option(default=DEFAULT_BASE_URL, doc="API root"),
        "clock": Option(env=False, doc="a zero-argument callable returning Unix seconds"),
    }

    def check_template(self, template: SmsTemplate) -> list[str]:
        problems = super().check_template(template)
        if template.kind == "marketing" and not _OPT_OUT.search(template.text):
            problems.append(
                "Tencent marketing templates must carry an unsubscribe keyword (TD, T or N), e.g. '回T退订'"
            )
        bad = [c for c in _FORBIDDEN if c in template.text]
        if bad:
            problems.append(f"Tencent templates must not contain {bad}")
        if re.search(r"\{\d+\}\{\d+\}", template.text):
            problems.append("Tencent template variables must not be adjacent")
        return problems

    def _check(self, message: Message) -> list[str]:
        problems = super()._check(message)
        template = self.template_for(message)
        if template.kind == "verification":
            for name, value in message.variables.items():
                if not (value.isdigit() and len(value) <= 6):
                    problems.append(f"verification-code variable {name} must be at most 6 digits, got {value!r}")
        for value in message.variables.values():
            if re.search(r"https?://|www\.", value, re.IGNORECASE):
                problems.append("Tencent forbids URLs inside template variables; put approved links in the template")
        return problems

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        first = messages[0]
        template = self.template_for(first)
        body = {
            "PhoneNumberSet": [self.phone(m.recipient) for m in messages],
            "SmsSdkAppId": str(self.config["sdk_app_id"]),
            "TemplateId": template.code,
            "SignName": str(self.config["sign_name"]),
            "TemplateParamSet": [first.variables.get(v, "") for v in template.variables],
            "SessionContext": call_context([m.key for m in messages])[:500],
        }
        try:
            data = self._call("SendSms", body, creates=True)
        except ChannelError as exc:
            return [failure(m, exc) for m in messages]
        listed = data.get("SendStatusSet")
        statuses = {str(s.get("PhoneNumber")): s for s in listed if isinstance(s, dict)} if isinstance(
            listed, list) else {}
        results = []
        for message in messages:
            status = statuses.get(self.phone(message.recipient))
            if status is None:
                results.append(unknown(message, "Tencent answered without a status for this number; it may have "
                                                "been accepted"))
            else:
                results.append(
                    self._result(
                        message, str(status.get("Code")), str(status.get("Message", "")), status.get("SerialNo")
                    )
                )
        return results

    @staticmethod
    def _result(message: Message, code: str, text: str, serial: Any = None) -> DeliveryResult:
        detail = f"Tencent {code}: {text}"
        if code == "Ok":
            return DeliveryResult(message, Status.SENT, code=code, provider_id=serial)
        if code.startswith(("LimitExceeded", "RequestLimitExceeded")):
            retry = 86_400.0 if "Day" in code else 3600.0 if "Hour" in code else 60.0
            return DeliveryResult(message, Status.RATE_LIMITED, code=code, detail=detail, retry_after=retry)
        if code in (
            "InvalidParameterValue.IncorrectPhoneNumber",
            "FailedOperation.PhoneNumberInBlacklist",
            "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        ):
            return DeliveryResult(message, Status.UNAVAILABLE, code=code, detail=detail)
        if code.startswith("InternalError"):
            return unknown(message, f"{detail}; Tencent may have accepted it, so it is not resent blindly")
        if code.startswith(("AuthFailure", "UnauthorizedOperation")):
            return DeliveryResult(message, Status.FAILED_PERMANENT, code=code, detail=detail)
        return DeliveryResult(message, Status.REJECTED, code=code, detail=detail)

    # -- unknown outcomes -----------------------------------------------------------------
    def _reconcile(self, messages: Sequence[Message], since: datetime) -> list[DeliveryResult]:
        now = self._now()
        begin = int(since.timestamp()) - _CLOCK_SLACK
        if now - begin > _PULL_RANGE:
            return [unknown(m, "the send is older than Tencent's status reports reach back (7 days); a person "
                            "decides") for m in messages]
        return [self._look_up(m, begin, now) for m in messages]

    def _look_up(self, message: Message, begin: int, now: int) -> DeliveryResult:
        data = self._call("PullSmsSendStatusByPhoneNumber", {
            "BeginTime": begin, "EndTime": now, "Offset": 0, "Limit": 100,
            "PhoneNumber": self.phone(message.recipient), "SmsSdkAppId": str(self.config["sdk_app_id"]),
        })
        for report in data.get("PullSmsSendStatusSet") or []:
            if isinstance(report, dict) and context_matches(str(report.get("SessionContext") or ""), message.key):
                serial = report.get("SerialNo")
                return DeliveryResult(
                    message, Status.SENT, code="Ok", provider_id=None if serial is None else str(serial),
                    detail=f"found in Tencent's status reports ({report.get('ReportStatus')})",
                )
        # Tencent lists a message only once the carrier reported on it: no report is no proof.
        return unknown(message, "no status report from Tencent for it yet; still unknown")

    def _now(self) -> int:
        clock = self.config["clock"]
        if clock is not None:
            return int(clock())
        return int(self.workspace.now().timestamp()) if self.workspace is not None else int(time.time())

    def _call(self, action: str, body: Mapping[str, Any], *, creates: bool = False) -> dict[str, Any]:
        if self._client is None:
            self._client = make_client(
                str(self.config["base_url"]), transport=self.config["transport"], timeout=float(self.config["timeout"])
            )
        clock = self.config["clock"] or time.time
        stamp = int(clock())
        host = urlsplit(str(self.config["base_url"])).netloc
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        content_type = "application/json; charset=utf-8"
        headers = {
            "Authorization": tc3_authorization(
                str(self.config["secret_id"]),
                str(self.config["secret_key"]),
                host=host,
                service="sms",  # the product's name in the credential scope, whatever the host
                timestamp=stamp,
                body=content,
            ),
            "Content-Type": content_type,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(stamp),
            "X-TC-Region": str(self.config["region"]),
        }
        response = request(
            self._client,
            "POST",
            "/",
            content=content,
            headers=headers,
            sent_means_maybe_delivered=creates,
            what=f"Tencent {action}",
        )
        status = int(response.status_code)
        if status >= 500 or status == 408:
            if creates:
                raise unknown_outcome(f"Tencent {action}", f"HTTP {status}")
            raise ChannelError(f"Tencent {action}: HTTP {status}", retryable=True, code=status)
        try:
            data = response.json()["Response"]
        except (ValueError, KeyError, TypeError):
            data = None
        if not isinstance(data, dict):
            if creates and 200 <= status < 300:
                raise unknown_outcome(f"Tencent {action}", f"HTTP {status} with an answer that is not Tencent's")
            raise ChannelError(f"Tencent {action}: HTTP {status}, answer not understood",
                               retryable=200 <= status < 300 or status == 429, code="malformed")
        error = data.get("Error")
        if error:
            code, text = (str(error.get("Code")), str(error.get("Message", ""))) if isinstance(error, dict) else (
                "malformed", str(error))
            if code.startswith(("LimitExceeded", "RequestLimitExceeded")):
                raise ChannelError(f"Tencent {code}: {text}", retryable=True, code=code, retry_after=60.0)
            if code.startswith("InternalError"):
                if creates:
                    raise unknown_outcome(f"Tencent {action}", f"Tencent {code}: {text}")
                raise ChannelError(f"Tencent {code}: {text}", retryable=True, code=code)
            raise ChannelError(f"Tencent {code}: {text}", retryable=False, code=code)
        return dict(data)

    def parse_receipts(self, payload: Any) -> list[Receipt]:
        """Receipts from the status-report push or a ``PullSmsSendStatus`` answer
        (see :func:`siyu.channels.receipts.tencent_receipts`), matched by ``SerialNo``."""
        return tencent_receipts(payload, self.name)

    def pull_receipts(self, limit: int = 100) -> list[Receipt]:
        """Pull pending status reports (``PullSmsSendStatus``, at most ``limit``) for
        ``ws.campaigns.record_receipts``. Tencent hands each report out once: record
        what this returns before pulling again."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ValidationError(f"limit must be an int from 1 to 100, got {limit!r}")
        data = self._call("PullSmsSendStatus", {"Limit": limit, "SmsSdkAppId": str(self.config["sdk_app_id"])})
        return tencent_receipts({"Response": data}, self.name)

    def _uplink_fields(self, item: Mapping[str, Any]) -> tuple[str, str]:
        phone = str(item.get("mobile", ""))
        nation = str(item.get("nationcode", "86"))
        return (f"+{nation}{phone}" if phone and not phone.startswith("+") else phone), str(item.get("text", ""))
