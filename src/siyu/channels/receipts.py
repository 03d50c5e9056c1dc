"""Delivery receipts: what a provider reports *after* it accepted a message.

A channel's ``send`` says whether the provider **accepted** a message
(``Status.SENT``, stored on a campaign delivery as ``sent``). Whether it then
**reached** the phone or the user arrives later, as a status report: SMS
providers push them to an HTTP callback or let you pull them. siyu records
them channel-independently as :class:`Receipt` objects against campaign
delivery records, matched by the provider message id the send stored
(``Delivery.provider_id``: Alibaba ``BizId``, Tencent ``SerialNo``)::

    report = ws.channels.get("sms_aliyun").handle_receipts(request_json)
    report = ws.campaigns.record_receipts([Receipt(channel="sms_aliyun", message_id=..., status="delivered")])

The parser contract
-------------------
``Channel.parse_receipts(payload)`` turns one provider payload (the decoded
JSON, or its ``bytes``/``str``) into receipts, one per reported message, and
raises :class:`~siyu.errors.CallbackRejected` when the payload is not the
documented shape (a field missing, a status it does not know): answer the
provider with HTTP 400 and nothing is recorded. Every receipt carries

* ``message_id`` -- the id the send stored as ``provider_id``;
* ``status`` -- ``"delivered"`` (the provider says it reached the recipient) or
  ``"failed"`` (it says it did not);
* ``recipient`` -- the address as reported (a phone), needed where one id
  covers several recipients (an Alibaba ``SendSms`` call to many numbers
  returns one ``BizId``);
* ``code``, ``detail``, ``reported_at`` -- the provider's status code and text
  and the time it reports (provider local times are Beijing time).

Built-in parsers (see each for the fields it reads):

* ``sms_aliyun`` -- the ``SmsReport`` push: a JSON list of
  ``{phone_number, success, err_code, err_msg, report_time, biz_id, out_id}``;
* ``sms_tencent`` -- the status-report push: a JSON list of
  ``{mobile, nationcode, report_status, errmsg, description, user_receive_time, sid}``,
  and the ``PullSmsSendStatus`` answer ``{"Response": {"PullSmsSendStatusSet":
  [{SerialNo, PhoneNumber, ReportStatus, Description, UserReceiveTime, ...}]}}``.

These shapes are the providers' published status-report formats (Alibaba's
``SmsReport`` HTTP push; Tencent's status-report callback and the API 3.0
``PullSmsSendStatus`` answer, whose ``UserReceiveTime`` is Unix seconds);
they are not in siyu's provider reference, which documents the send side
(``BizId``, ``OutId``, ``SerialNo``, ``SessionContext``). The parsers are
strict so that a renamed field fails loudly instead of recording nothing.
Other channels (WeCom mass-message results, mini-program ``subscribe_msg_sent_event``) build
:class:`Receipt` objects themselves.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ..errors import CallbackRejected, ValidationError

__all__ = ["Receipt", "ReceiptStatus", "aliyun_receipts", "tencent_receipts"]

#: Provider report times without a zone are Beijing time.
PROVIDER_TZ = ZoneInfo("Asia/Shanghai")


class ReceiptStatus(enum.StrEnum):
    """What a provider reported about a message it had accepted."""

    #: It reached the recipient (SMS ``DELIVRD``).
    DELIVERED = "delivered"
    #: It did not (switched off, unknown number, carrier refusal ...); ``code`` says why.
    FAILED = "failed"


def _status(value: object) -> ReceiptStatus:
    if isinstance(value, str) and value in ReceiptStatus.__members__.values():
        return ReceiptStatus(value)
    raise ValidationError(f"receipt status must be 'delivered' or 'failed', got {value!r}")


def _text(name: str, required: bool) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or (required and not value.strip()):
            raise ValidationError(f"receipt {name} must be a non-empty string, got {value!r}")

    return check


def _aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValidationError(f"receipt reported_at must be a timezone-aware datetime, got {value!r}")


@attrs.frozen(kw_only=True)
class Receipt:
    """One provider status report for one message (see the module docs).

    ``channel`` is the channel name that sent it (``"sms_aliyun"``) and
    ``message_id`` the provider id that send stored on the delivery record.
    """

    channel: str = attrs.field(validator=_text("channel", True))
    message_id: str = attrs.field(validator=_text("message_id", True))
    status: ReceiptStatus = attrs.field(converter=_status)
    recipient: str | None = attrs.field(default=None, validator=_text("recipient", False))
    code: str | None = attrs.field(default=None, validator=_text("code", False))
    detail: str = ""
    reported_at: datetime | None = attrs.field(default=None, validator=_aware)
    #: The caller's key echoed by the provider (Alibaba ``OutId``, Tencent ``SessionContext``).
    key: str | None = None


# -- payload helpers ------------------------------------------------------------------------------
def items(payload: Any, what: str, *, wrapper: str | None = None) -> list[Mapping[str, Any]]:
    """The report objects of a payload: decoded JSON, ``bytes`` or ``str``; a list of
    objects, one object, or (with ``wrapper``) ``{"Response": {wrapper: [...]}}``."""
    if isinstance(payload, bytes | bytearray):
        payload = payload.decode("utf-8")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise CallbackRejected(f"{what}: the body is not JSON ({exc})", code="malformed") from None
    if wrapper is not None and isinstance(payload, Mapping) and "Response" in payload:
        response = payload["Response"]
        if isinstance(response, Mapping) and response.get("Error"):
            raise CallbackRejected(f"{what}: the provider answered an error: {response['Error']}", code="error")
        payload = response.get(wrapper) if isinstance(response, Mapping) else None
        if payload is None:
            raise CallbackRejected(f"{what}: Response has no {wrapper}", code="malformed")
    found: Iterable[Any] = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(found, list | tuple):
        raise CallbackRejected(
            f"{what}: expected a JSON list of reports, got {type(payload).__name__}", code="malformed"
        )
    for item in found:
        if not isinstance(item, Mapping):
            raise CallbackRejected(f"{what}: every report must be a JSON object, got {item!r}", code="malformed")
    return list(found)


def field(item: Mapping[str, Any], name: str, what: str) -> str:
    value = item.get(name)
    if value is None or str(value).strip() == "":
        raise CallbackRejected(
            f"{what}: a report lacks {name!r} (it has {sorted(item)}); siyu cannot match it to a message",
            code="malformed",
        )
    return str(value)


def local_time(value: Any, what: str) -> datetime | None:
    """``"2024-05-01 10:00:00"`` (Beijing time) or Unix seconds as an aware datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CallbackRejected(f"{what}: time {text!r} is not 'YYYY-MM-DD HH:MM:SS'", code="malformed") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=PROVIDER_TZ)


def _truthy(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise CallbackRejected(f"{what}: 'success' must be true or false, got {value!r}", code="malformed")


# -- providers --------------------------------------------------------------------------------------
def aliyun_receipts(payload: Any, channel: str = "sms_aliyun") -> list[Receipt]:
    """Receipts from Alibaba Cloud's ``SmsReport`` push: a list of
    ``{"phone_number", "success", "err_code", "err_msg", "report_time", "biz_id", "out_id", ...}``."""
    what = "Alibaba SmsReport"
    out = []
    for item in items(payload, what):
        delivered = _truthy(field(item, "success", what) if not isinstance(item.get("success"), bool)
                            else item["success"], what)
        out.append(Receipt(
            channel=channel,
            message_id=field(item, "biz_id", what),
            status=ReceiptStatus.DELIVERED if delivered else ReceiptStatus.FAILED,
            recipient=field(item, "phone_number", what),
            code=None if item.get("err_code") in (None, "") else str(item["err_code"]),
            detail=str(item.get("err_msg") or ""),
            reported_at=local_time(item.get("report_time"), what),
            key=None if item.get("out_id") in (None, "") else str(item["out_id"]),
        ))
    return out


_TENCENT_STATUS = {"SUCCESS": ReceiptStatus.DELIVERED, "FAIL": ReceiptStatus.FAILED}


def _tencent_status(value: str, what: str) -> ReceiptStatus:
    status = _TENCENT_STATUS.get(value.upper())
    if status is None:
        raise CallbackRejected(f"{what}: report status {value!r} is neither SUCCESS nor FAIL", code="malformed")
    return status


def tencent_receipts(payload: Any, channel: str = "sms_tencent") -> list[Receipt]:
    """Receipts from Tencent Cloud SMS: the status-report push (a list of
    ``{"mobile", "nationcode", "report_status", "errmsg", "description",
    "user_receive_time", "sid"}``) or a ``PullSmsSendStatus`` answer
    (``Response.PullSmsSendStatusSet[]{SerialNo, PhoneNumber, ReportStatus,
    Description, UserReceiveTime, SessionContext}``)."""
    what = "Tencent SMS status report"
    out = []
    for item in items(payload, what, wrapper="PullSmsSendStatusSet"):
        if "SerialNo" in item or "ReportStatus" in item:  # the API 3.0 pull shape
            phone = item.get("PhoneNumber")
            out.append(Receipt(
                channel=channel,
                message_id=field(item, "SerialNo", what),
                status=_tencent_status(field(item, "ReportStatus", what), what),
                recipient=None if phone in (None, "") else str(phone),
                code=str(item.get("ReportStatus")),
                detail=str(item.get("Description") or ""),
                reported_at=local_time(item.get("UserReceiveTime"), what),
                key=str(item.get("SessionContext")) if item.get("SessionContext") else None,
            ))
            continue
        mobile = field(item, "mobile", what)
        nation = str(item.get("nationcode") or "86")
        out.append(Receipt(
            channel=channel,
            message_id=field(item, "sid", what),
            status=_tencent_status(field(item, "report_status", what), what),
            recipient=mobile if mobile.startswith("+") else f"+{nation}{mobile}",
            code=str(item.get("errmsg")) if item.get("errmsg") else None,
            detail=str(item.get("description") or ""),
            reported_at=local_time(item.get("user_receive_time"), what),
        ))
    return out
