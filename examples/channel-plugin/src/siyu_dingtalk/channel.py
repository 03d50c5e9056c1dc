"""DingTalk (钉钉) group robot: ``POST /robot/send?access_token=...&timestamp=...&sign=...``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from siyu.channels import Channel, DeliveryResult, Limits, Message, Option, Status
from siyu.channels.http import json_object, make_client, request


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: Base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class DingTalkChannel(Channel):
    """Text messages to a DingTalk group robot. The recipient names the group
    (for your records); the robot's ``access_token`` decides where it lands.

    Options (or ``SIYU_DINGTALK_<OPTION>``): ``access_token``, ``secret``
    (the robot's 加签 secret), ``base_url``.
    """

    name: ClassVar[str] = "dingtalk"
    consent_channel: ClassVar[str] = "dingtalk"
    # DingTalk: 20 messages per minute per robot; text up to 20,000 bytes.
    limits: ClassVar[Limits] = Limits(
        max_recipients_per_call=1,
        max_text_length=20_000,
        length_unit="utf8_bytes",
        as_of="open.dingtalk.com custom robot, 2025",
    )
    options: ClassVar[dict[str, Option]] = {
        "access_token": Option(required=True, secret=True, doc="the robot's access_token"),
        "secret": Option(required=True, secret=True, doc="the robot's signing secret (SEC...)"),
        "base_url": Option(default="https://oapi.dingtalk.com", doc="API root"),
        "clock": Option(env=False, doc="returns Unix seconds (tests)"),
    }

    def _setup(self) -> None:
        # Options are resolved once (keyword, else SIYU_DINGTALK_<OPTION>, else default);
        # self.option(name) reads them. transport= and timeout= are test seams every channel has.
        self._http = make_client(
            str(self.option("base_url")), transport=self.option("transport"), timeout=float(self.option("timeout"))
        )

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        (message,) = messages  # limits.max_recipients_per_call is 1
        clock: Any = self.option("clock") or time.time
        stamp = int(clock() * 1000)
        params = {
            "access_token": self.option("access_token"),
            "timestamp": stamp,
            "sign": sign(str(self.option("secret")), stamp),
        }
        # request() turns network failures into ChannelError: refused -> retryable "connect";
        # no answer after sending -> "timeout_unknown", never retried (a robot message is not
        # idempotent). json_object(creates=True) maps HTTP 429 -> rate limited, other 4xx ->
        # refused, and 5xx or a body that is not JSON -> "timeout_unknown" (it may have been
        # posted). A ChannelError raised here becomes this message's result (see Channel.send).
        response = request(
            self._http, "POST", "/robot/send", sent_means_maybe_delivered=True, what="DingTalk robot",
            params=params, json={"msgtype": "text", "text": {"content": self.render(message)}},
        )
        data = json_object(response, "DingTalk robot", creates=True)
        code = int(data.get("errcode", -1))
        if code == 0:
            return [DeliveryResult(message, Status.SENT)]
        if code == 130101:
            return [DeliveryResult(
                message, Status.RATE_LIMITED, code="130101", detail=data.get("errmsg", ""), retry_after=60.0
            )]
        return [DeliveryResult(message, Status.FAILED_PERMANENT, code=str(code), detail=data.get("errmsg", ""))]
