"""The WeCom callback URL: verification, decryption, a queue of decoded events.

:meth:`WeComCallbacks.handle` is framework-agnostic: give it the HTTP method,
the query string (or a mapping) and the raw body; it returns a
:class:`CallbackResponse` (status, body, content type) to send back. WeCom
retries a delivery that is not answered within a few seconds, so ``handle``
only verifies, decrypts and queues the event; :meth:`process_pending` hands
each one to the function the handler was built with (run it right after
answering, or from a worker).

This module decides nothing about users: ``ws.wecom.callbacks()``
(:class:`siyu.services.wecom_contacts.WeComContacts`) builds a handler whose
events create and tag users, mark them lost and send the welcome message.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import attrs

from ...errors import CallbackRejected
from .crypto import WXBizMsgCrypt, parse_xml

__all__ = ["CallbackResponse", "ContactEvent", "WeComCallbacks"]

log = logging.getLogger("siyu.channels.wecom")

WELCOME_WINDOW = 20.0


@attrs.frozen
class CallbackResponse:
    """What to answer WeCom: HTTP ``status``, ``body`` bytes, ``content_type``."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


@attrs.frozen
class ContactEvent:
    """A decrypted ``change_external_contact`` (or other) callback event."""

    event: str
    change_type: str
    user_id: str
    external_userid: str
    state: str
    welcome_code: str
    create_time: int
    fields: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_xml(cls, text: str) -> ContactEvent:
        fields = parse_xml(text)
        try:
            create_time = int(fields.get("CreateTime") or 0)
        except ValueError:
            raise CallbackRejected("CreateTime is not a number", code=-40002) from None
        return cls(
            event=fields.get("Event", ""),
            change_type=fields.get("ChangeType", ""),
            user_id=fields.get("UserID", ""),
            external_userid=fields.get("ExternalUserID", ""),
            state=fields.get("State", ""),
            welcome_code=fields.get("WelcomeCode", ""),
            create_time=create_time,
            fields=fields,
        )

    @property
    def dedupe_id(self) -> str:
        who = self.external_userid or self.fields.get("FromUserName", "")
        return f"{self.event}:{self.change_type}:{who}:{self.user_id}:{self.create_time}"


def _query(query: str | bytes | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(query, Mapping):
        return {str(k): str(v[0] if isinstance(v, list | tuple) else v) for k, v in query.items()}
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    # parse_qs URL-decodes exactly once, which is what WeCom asks for ('+' in Base64 arrives as %2B).
    return {k: v[0] for k, v in parse_qs(text.lstrip("?"), keep_blank_values=True).items()}


class WeComCallbacks:
    """Handle the callback URL of one WeCom app: answer WeCom, queue what it sent.

    ``crypto`` is the app's :class:`~siyu.channels.wecom.crypto.WXBizMsgCrypt`;
    ``process(event, received_at)`` applies one decoded event and says what it did;
    ``now()`` gives the time in seconds (the workspace clock). ``inline=True``
    processes each event before answering (simple setups, tests); the default
    queues it for :meth:`process_pending`. Build it with ``ws.wecom.callbacks()``.
    """

    def __init__(
        self,
        crypto: WXBizMsgCrypt,
        *,
        process: Callable[[ContactEvent, float | None], str],
        now: Callable[[], float] = time.time,
        inline: bool = False,
    ) -> None:
        self.crypto = crypto
        self._process = process
        self._now = now
        self.inline = inline
        self._queue: deque[tuple[ContactEvent, float]] = deque()
        #: What happened to each processed event, newest last (bounded): (dedupe_id, outcome).
        self.log: deque[tuple[str, str]] = deque(maxlen=1000)

    # -- HTTP ---------------------------------------------------------------------------
    def handle(self, method: str, query: str | bytes | Mapping[str, Any], body: bytes = b"") -> CallbackResponse:
        """Answer one HTTP request to the callback URL. Never raises for bad input:
        a forged or malformed request gets 403/400 and changes nothing."""
        params = _query(query)
        try:
            if method.upper() == "GET":
                plain = self.crypto.verify_url(
                    params.get("msg_signature", ""),
                    params.get("timestamp", ""),
                    params.get("nonce", ""),
                    params.get("echostr", ""),
                )
                return CallbackResponse(200, plain.encode("utf-8"))
            if method.upper() != "POST":
                return CallbackResponse(405, b"method not allowed")
            text = self.crypto.decrypt_message(
                params.get("msg_signature", ""), params.get("timestamp", ""), params.get("nonce", ""), body
            )
            event = ContactEvent.from_xml(text)
        except CallbackRejected as exc:
            log.warning("WeCom callback refused: %s (code %s)", exc, exc.code)
            status = 403 if exc.code in (-40001, -40005) else 400
            return CallbackResponse(status, b"forbidden" if status == 403 else b"bad request")
        self._queue.append((event, self._now()))
        if self.inline:
            self.process_pending()
        return CallbackResponse(200, b"success")

    def wsgi(self, environ: Mapping[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """A WSGI application serving the callback URL."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        response = self.handle(environ.get("REQUEST_METHOD", "GET"), environ.get("QUERY_STRING", ""), body)
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed"}[response.status]
        start_response(
            f"{response.status} {reason}",
            [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))],
        )
        return [response.body]

    # -- work ----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._queue)

    def process_pending(self) -> list[tuple[str, str]]:
        """Process queued events; return ``(dedupe_id, outcome)`` for each."""
        done = []
        while self._queue:
            event, received = self._queue.popleft()
            try:
                outcome = self.process(event, received_at=received)
            except Exception as exc:  # one bad event must not block the queue
                log.exception("WeCom event %s failed", event.dedupe_id)
                outcome = f"error: {exc!r}"
            self.log.append((event.dedupe_id, outcome))
            done.append((event.dedupe_id, outcome))
        return done

    def process(self, event: ContactEvent, *, received_at: float | None = None) -> str:
        """Apply one decoded event now; return what was done."""
        return self._process(event, received_at)
