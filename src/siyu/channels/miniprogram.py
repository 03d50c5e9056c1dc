"""``miniprogram``: WeChat mini-program subscribe messages (``subscribeMessage.send``).

A one-time subscription lets you send ONE message per acceptance. WeChat
offers no API to ask how many are left, so siyu keeps a credit ledger per
(openid, template) in the workspace: :meth:`MiniProgramChannel.add_credit`
when the front end reports an acceptance (``wx.requestSubscribeMessage``
result or the ``subscribe_msg_popup_event``), −1 per send, 0 on 43101 (the
user refused / unsubscribed). A send without a credit is refused before any
network call. Field values are validated by key type (``thing`` ≤ 20
characters, ``phrase`` ≤ 5 Chinese characters, ``number`` numeric ...).

Access tokens come from ``cgi-bin/stable_token`` with ``force_refresh=false``;
40001/42001 refresh once (WeChat semantics: 40001 = token not latest).

``subscribeMessage.send`` is not idempotent and WeChat offers no query for what
was sent: an answer that may mean "sent" (a read timeout, HTTP 5xx, a body
that is not JSON, ``-1`` busy, ``errcode`` missing or null) is
``timeout_unknown``, never resent, and keeps its credit; a person decides.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import ChannelError, ValidationError
from ._http import json_object, make_client, request
from .base import Channel, DeliveryResult, Limits, Message, Option, Status, failure, unknown

__all__ = ["MiniProgramChannel", "check_value"]

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
CHANNEL = "miniprogram"

_CHINESE = re.compile(r"^[\u4e00-\u9fff]+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_LETTERS = re.compile(r"^[A-Za-z]+$")
_AMOUNT = re.compile(r"^[¥$€£]?\d{1,10}(\.\d{1,2})?元?$")


def check_value(key: str, value: str) -> str | None:
    """Why ``value`` is not valid for the data key ``key`` (``thing1``, ``time2`` ...), or ``None``."""
    kind = re.sub(r"\d+$", "", key)
    n = len(value)
    if not value:
        return f"{key} is empty"
    rules = {
        "thing": (n <= 20, "at most 20 characters"),
        "number": (
            len(value.replace(".", "").lstrip("-")) <= 32 and bool(_NUMBER.match(value)),
            "a number of at most 32 digits",
        ),
        "letter": (n <= 32 and bool(_LETTERS.match(value)), "at most 32 letters"),
        "symbol": (n <= 5, "at most 5 symbols"),
        "character_string": (n <= 32, "at most 32 letters, digits or symbols"),
        "phone_number": (n <= 17, "at most 17 characters"),
        "car_number": (n <= 8, "at most 8 characters"),
        "name": (
            (n <= 10 and bool(_CHINESE.match(value))) or (n <= 20 and bool(_LETTERS.match(value.replace(" ", "")))),
            "at most 10 Chinese characters or 20 letters",
        ),
        "phrase": (n <= 5 and bool(_CHINESE.match(value)), "at most 5 Chinese characters"),
        "amount": (bool(_AMOUNT.match(value)), "a currency symbol and at most 10 digits, optionally ending with 元"),
        "time": (n <= 64, "a formatted time"),
        "date": (n <= 64, "a formatted date"),
    }
    rule = rules.get(kind)
    if rule is None or rule[0]:
        return None
    return f"{key} must be {rule[1]}, got {value!r}"


class MiniProgramChannel(Channel):
    """Mini-program subscribe messages. Recipients are openids; ``template``
    is the subscribe template id; ``variables`` are the data keys
    (``{"thing1": "订单已发货", "time2": "2026-11-23 10:00"}``);
    ``options={"page": "pages/order?id=1"}`` opens a page.

    Options (or ``SIYU_MINIPROGRAM_<OPTION>``): ``appid``, ``secret``,
    ``miniprogram_state`` (``formal`` | ``trial`` | ``developer``), ``lang``,
    ``base_url``.
    """

    name: ClassVar[str] = "miniprogram"
    consent_channel: ClassVar[str] = "miniprogram"
    limits: ClassVar[Limits] = Limits(
        max_recipients_per_call=1,
        requires_template=True,
        allows_text=False,
        as_of="developers.weixin.qq.com subscribeMessage.send",
    )
    options: ClassVar[dict[str, Option]] = {
        "appid": Option(required=True, doc="mini-program AppID"),
        "secret": Option(required=True, secret=True, doc="AppSecret"),
        "base_url": Option(default=DEFAULT_BASE_URL, doc="API root"),
        "miniprogram_state": Option(default="formal", doc="formal | trial | developer"),
        "lang": Option(default="zh_CN", doc="zh_CN | en_US | zh_HK | zh_TW"),
        "clock": Option(env=False, doc="a zero-argument callable returning Unix seconds"),
    }

    def _setup(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def render(self, message: Message) -> str:
        return "; ".join(f"{k}: {v}" for k, v in message.variables.items())

    def _check(self, message: Message) -> list[str]:
        problems = [p for k, v in message.variables.items() if (p := check_value(k, v))]
        if not message.variables:
            problems.append("a subscribe message needs data: variables={'thing1': ...}")
        return problems

    # -- credits ------------------------------------------------------------------------
    def add_credit(self, openid: str, template: str, count: int = 1) -> int:
        """Record ``count`` accepted one-time subscriptions; return the credits now held."""
        if count < 1:
            raise ValidationError("count must be >= 1")
        ws = self._require_workspace("subscription credits")
        with ws.write() as tx:
            return tx.channels.add_credits(CHANNEL, openid, template, count, ws.now())

    def credits(self, openid: str, template: str) -> int:
        ws = self._require_workspace("subscription credits")
        with ws.read() as tx:
            return tx.channels.credits(CHANNEL, openid, template)

    def handle_event(self, payload: str | bytes) -> dict[str, int]:
        """Apply a subscription event pushed to the mini-program message server
        (already decrypted; XML or JSON): ``subscribe_msg_popup_event`` with
        ``accept`` adds a credit, ``reject`` (popup or ``subscribe_msg_change_event``)
        zeroes it. Returns ``{template_id: credits now}``."""
        ws = self._require_workspace("subscription credits")
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        openid, event, items = _parse_subscribe_event(text)
        changed: dict[str, int] = {}
        if event not in ("subscribe_msg_popup_event", "subscribe_msg_change_event") or not openid:
            return changed
        with ws.write() as tx:
            for template, status in items:
                if status == "accept" and event == "subscribe_msg_popup_event":
                    changed[template] = tx.channels.add_credits(CHANNEL, openid, template, 1, ws.now())
                elif status == "reject":
                    tx.channels.set_credits(CHANNEL, openid, template, 0, ws.now())
                    changed[template] = 0
        return changed

    # -- tokens -------------------------------------------------------------------------
    def _now(self) -> float:
        clock = self.config["clock"]
        if clock is not None:
            return float(clock())
        return self.workspace.now().timestamp() if self.workspace is not None else time.time()

    def _tokens(self) -> dict[Any, Any]:
        if self.workspace is not None:
            store: dict[Any, Any] = self.workspace.channels.tokens.setdefault(CHANNEL, {})
            return store
        if not hasattr(self, "_own_tokens"):
            self._own_tokens: dict[Any, Any] = {}
        return self._own_tokens

    def _token(self) -> str:
        key = (str(self.config["base_url"]), str(self.config["appid"]))
        with self._lock:
            cached = self._tokens().get(key)
            if cached and cached[1] - 60 > self._now():
                return str(cached[0])
            response = request(
                self._http(),
                "POST",
                "/cgi-bin/stable_token",
                content=json.dumps(
                    {
                        "grant_type": "client_credential",
                        "appid": self.config["appid"],
                        "secret": self.config["secret"],
                        "force_refresh": False,
                    }
                ).encode(),
                headers={"Content-Type": "application/json"},
                sent_means_maybe_delivered=False,
                what="WeChat stable_token",
            )
            data = self._json(response, "WeChat stable_token")
            if int(data.get("errcode") or 0) or not data.get("access_token"):
                code = int(data.get("errcode") or 0)
                raise ChannelError(
                    f"WeChat stable_token refused ({code}: {data.get('errmsg', '')}); check appid/secret",
                    retryable=code in (-1, 45009),
                    code=code,
                )
            self._tokens()[key] = (data["access_token"], self._now() + float(data.get("expires_in") or 7200))
            return str(data["access_token"])

    def _invalidate(self, token: str) -> None:
        key = (str(self.config["base_url"]), str(self.config["appid"]))
        cached = self._tokens().get(key)
        if cached and cached[0] == token:
            del self._tokens()[key]

    def _http(self) -> Any:
        if self._client is None:
            self._client = make_client(
                str(self.config["base_url"]), transport=self.config["transport"], timeout=float(self.config["timeout"])
            )
        return self._client

    @staticmethod
    def _json(response: Any, what: str) -> dict[str, Any]:
        return json_object(response, what)

    # -- sending ------------------------------------------------------------------------
    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: Message) -> DeliveryResult:
        ws = self._require_workspace("subscription credits")
        template = str(message.template)
        with ws.write() as tx:
            if not tx.channels.take_credit(CHANNEL, message.recipient, template, ws.now()):
                return DeliveryResult(
                    message,
                    Status.FAILED_PERMANENT,
                    code="no_credit",
                    detail="no one-time subscription credit for this openid and template; nothing was sent",
                )
        try:
            result = self._post(message)
        except ChannelError as exc:
            result = failure(message, exc)
        if result.code == "43101":
            with ws.write() as tx:
                tx.channels.set_credits(CHANNEL, message.recipient, template, 0, ws.now())
        elif result.status is not Status.SENT and result.code != "timeout_unknown":
            with ws.write() as tx:  # definitely not delivered: give the credit back
                tx.channels.add_credits(CHANNEL, message.recipient, template, 1, ws.now())
        return result

    def _post(self, message: Message) -> DeliveryResult:
        body: dict[str, Any] = {
            "touser": message.recipient,
            "template_id": message.template,
            "data": {k: {"value": v} for k, v in message.variables.items()},
            "miniprogram_state": self.config["miniprogram_state"],
            "lang": self.config["lang"],
        }
        if message.options.get("page"):
            body["page"] = str(message.options["page"])
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        refreshed = False
        while True:
            token = self._token()
            response = request(
                self._http(),
                "POST",
                "/cgi-bin/message/subscribe/send",
                params={"access_token": token},
                content=content,
                headers={"Content-Type": "application/json; charset=utf-8"},
                sent_means_maybe_delivered=True,
                what="WeChat subscribe/send",
            )
            data = json_object(response, "WeChat subscribe/send", creates=True)
            raw = data.get("errcode")
            if isinstance(raw, bool) or not isinstance(raw, int):
                return unknown(message, f"WeChat subscribe/send answered errcode {raw!r}, not a number; it may "
                                        "have been sent, so it is not resent blindly")
            code = raw
            if code in (40001, 42001) and not refreshed:
                refreshed = True
                self._invalidate(token)
                continue
            return self._result(message, code, str(data.get("errmsg", "")), data.get("msgid"))

    @staticmethod
    def _result(message: Message, code: int, text: str, msgid: Any) -> DeliveryResult:
        detail = f"WeChat {code}: {text}"
        if code == 0:
            return DeliveryResult(message, Status.SENT, code="0", provider_id=None if msgid is None else str(msgid))
        if code in (43101, 40003):
            return DeliveryResult(message, Status.UNAVAILABLE, code=str(code), detail=detail)
        if code == 47003:
            match = re.search(r"data\.(\w+)", text)
            field = match.group(1) if match else "?"
            return DeliveryResult(
                message, Status.REJECTED, code="47003", detail=f"field {field} was refused by WeChat: {text}"
            )
        if code in (45009, 45011):
            return DeliveryResult(message, Status.RATE_LIMITED, code=str(code), detail=detail, retry_after=60.0)
        if code == -1:
            # "System busy" may come after WeChat queued the message.
            return unknown(message, f"{detail}; WeChat may have sent it, so it is not resent blindly")
        return DeliveryResult(message, Status.FAILED_PERMANENT, code=str(code), detail=detail)


def _parse_subscribe_event(text: str) -> tuple[str, str, list[tuple[str, str]]]:
    """``(openid, event, [(template_id, status), ...])`` of a subscription push."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ValidationError("subscription event is not valid JSON") from None
        raw = data.get("List") or []
        entries = raw if isinstance(raw, list) else [raw]
        items = [(str(e.get("TemplateId", "")), str(e.get("SubscribeStatusString", ""))) for e in entries]
        return str(data.get("FromUserName", "")), str(data.get("Event", "")), items
    try:
        from defusedxml import ElementTree
    except ImportError:  # pragma: no cover
        raise ValidationError("XML events need defusedxml: pip install 'siyu[channels]'") from None
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except Exception as exc:
        raise ValidationError(f"subscription event XML refused: {exc}") from None
    items = [
        (node.findtext("TemplateId", ""), node.findtext("SubscribeStatusString", "")) for node in root.iter("List")
    ]
    return root.findtext("FromUserName", ""), root.findtext("Event", ""), items
