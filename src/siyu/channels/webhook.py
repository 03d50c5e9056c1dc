"""``webhook``: HTTP POST of a JSON message, signed with HMAC-SHA256.

Each request carries::

    Content-Type: application/json; charset=utf-8
    X-Siyu-Timestamp: 1732320000                  (Unix seconds)
    X-Siyu-Nonce: <random, new for every request>
    Idempotency-Key: <message key, or a digest of the message>
    X-Siyu-Signature: v2=<hex HMAC-SHA256(secret,
        "v2\\n<timestamp>\\n<nonce>\\n<idempotency key>\\n" + body)>

A receiver checks it with :class:`~siyu.channels.webhook_signing.WebhookVerifier`
(or :func:`verify`): constant-time comparison, replay window ``tolerance``
seconds (default 300), a replay store refusing a request accepted before, and
several secrets during a rotation. It then de-duplicates on
``Idempotency-Key``: the channel may retry a request whose answer was lost
(a retry has a new nonce and timestamp, and the same key).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import ChannelError
from ._http import make_client, request, status_error
from .base import Channel, DeliveryResult, Limits, Message, Option, Status
from .webhook_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MemoryReplayStore,
    ReplayStore,
    WebhookVerifier,
    _secret_list,
    header_safe_key,
    sign,
    sign_v1,
    signed_headers,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "MemoryReplayStore",
    "ReplayStore",
    "WebhookChannel",
    "WebhookVerifier",
    "sign",
    "sign_v1",
    "signed_headers",
    "verify",
]


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
        "secret": Option(
            required=True,
            secret=True,
            doc="HMAC-SHA256 key shared with the receiver; during a rotation a list, newest first (signs with it)",
        ),
        "clock": Option(env=False, doc="a zero-argument callable returning Unix seconds"),
    }

    def _setup(self) -> None:
        self._client: Any = None
        self._secrets = _secret_list(self.config["secret"])

    def secrets(self) -> list[str]:
        return list(self._secrets)

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
        """The ``Idempotency-Key`` of ``message``: its key when a header can carry
        it unchanged, else a digest of it (or of the message when it has no key)."""
        if message.key:
            return header_safe_key(message.key)
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
            "User-Agent": "siyu-webhook/2",
            **signed_headers(self._secrets[0], body, key=self.idempotency_key(message), timestamp=stamp),
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
