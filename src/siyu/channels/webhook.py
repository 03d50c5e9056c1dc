"""``webhook``: HTTP POST of a JSON message, signed with HMAC-SHA256.

Each request carries::

    Content-Type: application/json; charset=utf-8
    X-Siyu-Timestamp: 1732320000                  (Unix seconds)
    X-Siyu-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    Idempotency-Key: <message key, or a digest of the message>

A receiver checks it with :func:`verify` (constant-time comparison, replay
window ``tolerance`` seconds, default 300) and de-duplicates on
``Idempotency-Key``: the channel may retry a request whose answer was lost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import CallbackRejected, ChannelError
from ._http import make_client, request, status_error
from .base import Channel, DeliveryResult, Limits, Message, Option, Status

__all__ = ["WebhookChannel", "sign", "verify"]

SIGNATURE_HEADER = "X-Siyu-Signature"
TIMESTAMP_HEADER = "X-Siyu-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Siyu-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: int = 300,
) -> dict[str, Any]:
    """Check a received webhook and return its JSON payload.

    Raises :class:`~siyu.errors.CallbackRejected` when the signature is missing
    or wrong, or the timestamp is outside ``tolerance`` seconds of ``now``
    (a replay). ``headers`` may use any capitalisation.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get(SIGNATURE_HEADER.lower(), "")
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    if not signature or not stamp.isdigit():
        raise CallbackRejected(
            f"webhook lacks {SIGNATURE_HEADER}/{TIMESTAMP_HEADER} headers; refuse it (HTTP 400)", code="missing"
        )
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise CallbackRejected(
            f"webhook timestamp {stamp} is more than {tolerance}s from now: stale or replayed; refuse it",
            code="stale",
        )
    expected = sign(secret, int(stamp), body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise CallbackRejected("webhook signature does not match; wrong secret or tampered body", code="signature")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CallbackRejected("webhook body is not UTF-8 JSON", code="malformed") from None
    if not isinstance(payload, dict):
        raise CallbackRejected("webhook body is not a JSON object", code="malformed")
    return payload


class WebhookChannel(Channel):
    """POSTs each message as JSON to ``url`` (or to the recipient itself when
    it is an ``http(s)://`` URL), signed with ``secret``.

    Outcomes: 2xx → sent; 410 → unavailable; 429 → rate_limited (Retry-After);
    5xx, timeouts, refused connections → failed_retryable (safe: receivers
    de-duplicate on ``Idempotency-Key``); other 4xx → rejected.
    """

    name: ClassVar[str] = "webhook"
    accepts_idempotency_key: ClassVar[bool] = True
    consent_channel: ClassVar[str] = "webhook"
    limits: ClassVar[Limits] = Limits(max_recipients_per_call=1, max_attachments=20, max_text_length=65_536)
    options: ClassVar[dict[str, Option]] = {
        "url": Option(doc="endpoint; required unless recipients are URLs"),
        "secret": Option(required=True, secret=True, doc="HMAC-SHA256 key shared with the receiver"),
        "clock": Option(env=False, doc="a zero-argument callable returning Unix seconds"),
    }

    def _setup(self) -> None:
        self._client: Any = None

    def _check(self, message: Message) -> list[str]:
        problems = super()._check(message)
        if not self.config["url"] and not message.recipient.startswith(("http://", "https://")):
            problems.append("no url configured and the recipient is not an http(s) URL")
        return problems

    def payload(self, message: Message) -> dict[str, Any]:
        """The JSON object posted for ``message``."""
        return {
            "id": self.idempotency_key(message),
            "recipient": message.recipient,
            "user_id": message.user_id,
            "purpose": message.purpose,
            "subject": message.subject,
            "text": self.render(message),
            "template": message.template,
            "variables": dict(message.variables),
            "attachments": [
                {"kind": a.kind, **{k: v for k, v in a.data.items() if not isinstance(v, bytes)}}
                for a in message.attachments
            ],
        }

    @staticmethod
    def idempotency_key(message: Message) -> str:
        if message.key:
            return message.key
        raw = json.dumps(
            [message.recipient, message.text, message.template, dict(message.variables)],
            ensure_ascii=False,
            sort_keys=True,
        )
        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        if self._client is None:
            self._client = make_client("", transport=self.config["transport"], timeout=float(self.config["timeout"]))
        return [self._post(m) for m in messages]

    def _post(self, message: Message) -> DeliveryResult:
        url = message.recipient if message.recipient.startswith(("http://", "https://")) else self.config["url"]
        body = json.dumps(self.payload(message), ensure_ascii=False).encode("utf-8")
        clock = self.config["clock"] or time.time
        stamp = int(clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(str(self.config["secret"]), stamp, body),
            "Idempotency-Key": self.idempotency_key(message),
            "User-Agent": "siyu-webhook/1",
        }
        from .base import failure

        try:
            response = request(
                self._client,
                "POST",
                url,
                content=body,
                headers=headers,
                sent_means_maybe_delivered=False,
                what="webhook",
            )
        except ChannelError as exc:
            return failure(message, exc)
        error = status_error(response, "webhook")
        if error is None:
            return DeliveryResult(message, Status.SENT, provider_id=response.headers.get("x-request-id"))
        if error.code == 410:
            return DeliveryResult(message, Status.UNAVAILABLE, code="410", detail=str(error))
        if not error.retryable and error.code != 429:
            return DeliveryResult(message, Status.REJECTED, code=str(error.code), detail=str(error))
        return failure(message, error)
