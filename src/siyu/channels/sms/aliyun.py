"""``sms_aliyun``: Alibaba Cloud SMS (dysmsapi 2017-05-25, ``SendSms``),
signed with ``ACS3-HMAC-SHA256``.

One ``SendSms`` call carries up to 1,000 numbers with the same template and
parameters, so ``send`` groups messages by (template, variables). Alibaba
answers for the whole call, so every number of a call gets the same result.
SendSms is not idempotent: an answer that may mean "sent" (a read timeout,
HTTP 5xx, a body without a ``Code``, ``isp.SYSTEM_ERROR``) is reported as
``failed_permanent`` / ``timeout_unknown`` and never retried. ``OutId``
carries the message key (or what the keys of the call share) so that
:meth:`AliyunSmsChannel.reconcile` can find the message in ``QuerySendDetails``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ...errors import ChannelError
from .._http import make_client, request, unknown_outcome
from ..base import NOT_CREATED, DeliveryResult, Message, Option, Status, failure, unknown
from ..receipts import Receipt, aliyun_receipts
from .base import RATE_LIMIT_SECONDS, SmsChannel, SmsTemplate, call_context, context_matches
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
#: Server-side failures after the request arrived: the message may have been accepted.
_MAYBE_SENT = {"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError"}
#: Alibaba writes the dates of QuerySendDetails in Beijing time.
_BEIJING = timezone(timedelta(hours=8))
#: QuerySendDetails covers the last 30 days.
_QUERY_DAYS = 30
_PAGE = 50
_MAX_PAGES = 10
#: Minutes of clock difference allowed between siyu and Alibaba when matching a send.
_CLOCK_SLACK = timedelta(minutes=10)


class AliyunSmsChannel(SmsChannel):
    """Alibaba Cloud SMS. Options (or ``SIYU_SMS_ALIYUN_<OPTION>``):
    ``access_key_id``, ``access_key_secret``, ``sign_name``, ``templates``,
    ``base_url``."""

    name: ClassVar[str] = "sms_aliyun"
    opt_out_hint: ClassVar[str] = OPT_OUT_SUFFIX
    reconciles: ClassVar[bool] = True
    # Alibaba writes an accepted message into QuerySendDetails (status 1, waiting for the
    # receipt) as it accepts it; a few minutes leave room for its own queues.
    reconcile_after: ClassVar[float] = 300.0
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
            "OutId": call_context([m.key for m in messages]) or f"siyu-{uuid.uuid4().hex[:16]}",
        }
        try:
            data = self._call("SendSms", params, creates=True)
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
        if code in _MAYBE_SENT:
            return unknown(message, f"{detail}; Alibaba may have accepted it, so it is not resent blindly")
        return DeliveryResult(message, Status.FAILED_PERMANENT, code=code, detail=detail)

    # -- unknown outcomes -----------------------------------------------------------------
    def _reconcile(self, messages: Sequence[Message], since: datetime) -> list[DeliveryResult]:
        now = self._now()
        if now - since > timedelta(days=_QUERY_DAYS - 1):
            return [unknown(m, f"the send is older than QuerySendDetails keeps ({_QUERY_DAYS} days); a person "
                            "decides") for m in messages]
        return [self._look_up(m, since, now) for m in messages]

    def _look_up(self, message: Message, since: datetime, now: datetime) -> DeliveryResult:
        template = str(message.template)
        text = self.render(message)
        earliest = (since - _CLOCK_SLACK).astimezone(_BEIJING)
        day, last = earliest.date(), now.astimezone(_BEIJING).date()
        complete = True
        while day <= last:
            rows, whole = self._details(self.phone(message.recipient), day.strftime("%Y%m%d"))
            complete = complete and whole
            for row in rows:
                if str(row.get("TemplateCode") or "") != template or not self._after(row.get("SendDate"), earliest):
                    continue
                if str(row.get("Content") or "") == text or context_matches(str(row.get("OutId") or ""), message.key):
                    status = {1: "waiting for its receipt", 2: "failed at the carrier", 3: "delivered"}.get(
                        _int(row.get("SendStatus")), "listed")
                    return DeliveryResult(message, Status.SENT, code="OK",
                                          detail=f"found in Alibaba QuerySendDetails ({status})")
            day += timedelta(days=1)
        if not complete:
            return unknown(message, "Alibaba QuerySendDetails did not list every record; still unknown")
        return DeliveryResult(message, Status.FAILED_RETRYABLE, code=NOT_CREATED,
                              detail="Alibaba QuerySendDetails has no such message since the send: it was not "
                              "accepted, sending again is safe")

    def _details(self, phone: str, send_date: str) -> tuple[list[dict[str, Any]], bool]:
        """One number's records on one day, and whether they are all there."""
        rows: list[dict[str, Any]] = []
        total = 0
        for page in range(1, _MAX_PAGES + 1):
            data = self._call("QuerySendDetails", {"PhoneNumber": phone, "SendDate": send_date,
                                                   "PageSize": str(_PAGE), "CurrentPage": str(page)})
            if str(data.get("Code")) != "OK":
                raise ChannelError(f"Alibaba QuerySendDetails: {data.get('Code')}: {data.get('Message', '')}",
                                   retryable=True, code=str(data.get("Code")))
            total = _int(data.get("TotalCount"))
            listed = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            rows.extend(r for r in listed if isinstance(r, dict))
            if not listed or len(rows) >= total:
                break
        return rows, len(rows) >= total

    @staticmethod
    def _after(value: Any, earliest: datetime) -> bool:
        try:
            when = datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=_BEIJING)
        except ValueError:
            return True  # an unreadable date does not rule a record out
        return when >= earliest

    def _now(self) -> datetime:
        clock = self.config["clock"]
        if clock is not None:
            return datetime.fromtimestamp(float(clock()), UTC)
        return self.workspace.now() if self.workspace is not None else datetime.now(UTC)

    def _call(self, action: str, params: Mapping[str, str], *, creates: bool = False) -> dict[str, Any]:
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
            sent_means_maybe_delivered=creates,
            what=f"Alibaba {action}",
        )
        try:
            data = response.json()
        except ValueError:
            data = None
        status = int(response.status_code)
        if isinstance(data, dict) and isinstance(data.get("Code"), str) and data["Code"]:
            return data
        if creates and (status >= 500 or status == 408 or 200 <= status < 300):
            raise unknown_outcome(f"Alibaba {action}", f"HTTP {status} without a Code")
        if status == 429:
            raise ChannelError(f"Alibaba {action}: HTTP 429", retryable=True, code=429, retry_after=60.0)
        if status >= 500 or 200 <= status < 300:
            raise ChannelError(f"Alibaba {action}: HTTP {status} without a Code", retryable=True, code=status)
        # A 4xx without a Code: refused before anything was done.
        raise ChannelError(f"Alibaba {action}: HTTP {status} without a Code", retryable=False, code=status)

    def _uplink_fields(self, item: Mapping[str, Any]) -> tuple[str, str]:
        return str(item.get("phone_number", "")), str(item.get("content", ""))

    def parse_receipts(self, payload: Any) -> list[Receipt]:
        """Receipts from the ``SmsReport`` push (see :func:`siyu.channels.receipts.aliyun_receipts`).
        One ``BizId`` covers every number of a ``SendSms`` call, so each receipt
        carries its ``phone_number`` to find the right record."""
        return aliyun_receipts(payload, self.name)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
