"""DingTalk (钉钉) group robot: ``POST /robot/send?access_token=...&timestamp=...&sign=...``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from siyu.channels import Channel, DeliveryResult, Limits, Message, Option, Status


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
        self._http = httpx.Client(
            base_url=str(self.config["base_url"]),
            transport=self.config["transport"],
            timeout=float(self.config["timeout"]),
        )

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: Message) -> DeliveryResult:
        clock: Any = self.config["clock"] or time.time
        stamp = int(clock() * 1000)
        params = {
            "access_token": self.config["access_token"],
            "timestamp": stamp,
            "sign": sign(str(self.config["secret"]), stamp),
        }
        try:
            response = self._http.post(
                "/robot/send", params=params, json={"msgtype": "text", "text": {"content": self.render(message)}}
            )
        except httpx.ConnectError:
            return DeliveryResult(message, Status.FAILED_RETRYABLE, code="connect", detail="could not connect")
        except httpx.TimeoutException:
            return DeliveryResult(message, Status.FAILED_RETRYABLE, code="timeout", detail="no answer")
        if response.status_code >= 500:
            return DeliveryResult(message, Status.FAILED_RETRYABLE, code=str(response.status_code))
        data = response.json()
        code = int(data.get("errcode", -1))
        if code == 0:
            return DeliveryResult(message, Status.SENT)
        if code == 130101:
            return DeliveryResult(
                message, Status.RATE_LIMITED, code="130101", detail=data.get("errmsg", ""), retry_after=60.0
            )
        return DeliveryResult(message, Status.FAILED_PERMANENT, code=str(code), detail=data.get("errmsg", ""))
