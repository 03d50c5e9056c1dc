"""The WeCom callback URL: verification, decryption, customer-contact events.

:meth:`WeComCallbacks.handle` is framework-agnostic: give it the HTTP method,
the query string (or a mapping) and the raw body; it returns a
:class:`CallbackResponse` (status, body, content type) to send back. WeCom
retries a delivery that is not answered within a few seconds, so ``handle``
only verifies, decrypts and queues the event; :meth:`process_pending` does the
work (run it right after answering, or from a worker). Duplicate deliveries
(same ExternalUserID, UserID, CreateTime and ChangeType) are processed once:
the claim is stored in the workspace together with the user changes.

What an event does:

* ``add_external_contact`` / ``add_half_external_contact`` / ``edit_external_contact``:
  find or create the siyu user by ``wecom_external_userid``; attribute the
  source (``source="wecom"``, ``state=State``); apply the siyu tags stored
  for that state by :meth:`WeComChannel.add_contact_way`; send the welcome
  message if a ``WelcomeCode`` came and the 20 s window is still open.
* ``add_external_contact`` also records the (member, customer) relation (``ws.staff.follow``).
* ``del_follow_user`` (the customer deleted the member) and ``del_external_contact``
  (the member deleted the customer; also tagged ``wecom/deleted_by_member``) end
  that one relation (``ws.staff.unfollow``); the customer is lost only when no
  active relation is left. ``Source=DELETE_BY_TRANSFER`` is a transfer, not churn.
* ``transfer_fail``: the pending transfer to ``UserID`` (the takeover member) is
  reconciled (``ws.staff.transfers.failed``).
* ``change_external_tag`` (corp tags edited in the console): re-pull the tag mapping.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import attrs

from ...errors import CallbackRejected, ChannelError
from ...staff.callbacks import apply_follow, apply_unfollow
from .crypto import parse_xml

if TYPE_CHECKING:
    from .channel import WeComChannel

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


def _state(state: str) -> str | None:
    # Contact-way states are <= 30 characters; a 获客链接 customer_channel may be longer.
    return state[:30] or None


def _query(query: str | bytes | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(query, Mapping):
        return {str(k): str(v[0] if isinstance(v, list | tuple) else v) for k, v in query.items()}
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    # parse_qs URL-decodes exactly once, which is what WeCom asks for ('+' in Base64 arrives as %2B).
    return {k: v[0] for k, v in parse_qs(text.lstrip("?"), keep_blank_values=True).items()}


class WeComCallbacks:
    """Handle the callback URL of one WeCom app, acting on a siyu workspace.

    ``welcome`` is the default welcome text (a contact way's own ``welcome``
    wins; a callable gets the event and returns the text or ``None``).
    ``inline=True`` processes each event before answering (simple setups,
    tests); the default queues it for :meth:`process_pending`.
    """

    def __init__(
        self,
        channel: WeComChannel,
        *,
        welcome: str | Callable[[ContactEvent], str | None] | None = None,
        inline: bool = False,
        random: Callable[[], bytes] | None = None,
    ) -> None:
        self.channel = channel
        self.workspace = channel._require_workspace("callbacks")
        self.crypto = channel.crypto(random)
        self.welcome = welcome
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
        self._queue.append((event, self.workspace.now().timestamp()))
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
        """Apply one event to the workspace; return what was done."""
        if event.event == "change_external_tag":
            # Someone edited corp tags in the admin console: refresh the mapping.
            return f"tags pulled: {len(self.channel.pull_tags())}"
        if event.event != "change_external_contact":
            return f"ignored event {event.event or '(none)'}"
        if not event.external_userid:
            return "ignored: no ExternalUserID"
        ws = self.workspace
        welcome: tuple[str, str] | None = None
        with ws.write() as tx:
            if not tx.channels.claim_callback("wecom", event.dedupe_id, ws.now()):
                return "duplicate"
            user = ws.users.find(wecom_external_userid=event.external_userid)
            if event.change_type in ("add_external_contact", "add_half_external_contact", "edit_external_contact"):
                way = self.channel.contact_way(event.state) if event.state else None
                if user is None:
                    user = ws.users.add(
                        wecom_external_userid=event.external_userid, source="wecom", state=_state(event.state)
                    )
                    outcome = f"created user {user.id}"
                else:
                    if event.state and event.change_type != "edit_external_contact":
                        ws.users.update(user.id, source=user.source or "wecom", state=_state(event.state))
                    outcome = f"updated user {user.id}"
                if event.user_id:
                    ws.users.update(user.id, attributes={"wecom_owner": event.user_id})
                    if event.change_type != "edit_external_contact":
                        apply_follow(ws.staff, user.id, event.user_id, state=event.state,
                                     create_time=event.create_time)
                for tag in (way or {}).get("tags", []):
                    ws.tags.apply(user.id, tag, by=f"wecom:state:{event.state}")
                text = (way or {}).get("welcome") or self._welcome_text(event)
                if event.change_type != "edit_external_contact":
                    welcome = (event.welcome_code, text or "")
            elif event.change_type in ("del_follow_user", "del_external_contact"):
                if user is None:
                    return "ignored: unknown customer"
                if not event.user_id:
                    return "ignored: no UserID"
                outcome = apply_unfollow(ws.staff, user.id, event.user_id, event.change_type, event.fields,
                                         event.create_time)
                if event.change_type == "del_external_contact" and event.fields.get("Source") != "DELETE_BY_TRANSFER":
                    ws.tags.apply(user.id, "wecom/deleted_by_member", by=f"wecom:{event.user_id}")
            elif event.change_type == "transfer_fail":
                if user is None:
                    return "ignored: unknown customer"
                done = ws.staff.transfers.failed(user.id, event.user_id, event.fields.get("FailReason", ""))
                outcome = f"transfer of user {user.id} to {event.user_id}: " + (
                    ", ".join(str(t.status) for t in done) or "no pending transfer")
            else:
                return f"ignored change {event.change_type}"
        if welcome is not None:
            outcome += "; " + self._send_welcome(event, *welcome)
        return outcome

    def _welcome_text(self, event: ContactEvent) -> str | None:
        if callable(self.welcome):
            return self.welcome(event)
        return self.welcome

    def _send_welcome(self, event: ContactEvent, code: str, text: str) -> str:
        if not code:
            reason = "welcome skipped: no WelcomeCode (a console welcome message is configured, or not allowed)"
        elif not text:
            reason = "welcome skipped: no welcome text configured"
        elif self.workspace.now().timestamp() > event.create_time + WELCOME_WINDOW:
            reason = "welcome skipped: the 20 s window after the event has passed"
        else:
            try:
                self.channel.client.send_welcome_msg(code, text=text)
                return "welcome sent"
            except ChannelError as exc:
                reason = f"welcome not sent: {exc}"
        log.info("WeCom %s: %s", event.dedupe_id, reason)
        return reason
