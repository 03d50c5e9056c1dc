"""WeCom's side of the callback URL: events encrypted, signed and delivered with WeCom's retries."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlencode

from ...channels.wecom.crypto import WXBizMsgCrypt, signature

__all__ = ["FakeWeComCallbackSender"]


class _Answer(Protocol):
    status: int


class FakeWeComCallbackSender:
    """Deliver events to a callback endpoint as WeCom does: each event encrypted and signed,
    POSTed, and sent again when the answer is not HTTP 200 or takes longer than ``timeout``
    seconds (5), at most ``retries`` (3) more times.

    ``endpoint(method, query, body)`` answers with an object that has ``status`` (such as
    :meth:`siyu.channels.wecom.WeComCallbacks.handle`); ``clock`` reads the time in seconds
    (pass a :class:`siyu.testing.FakeClock`'s ``timestamp`` to make an endpoint "slow" by
    advancing it)."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str, endpoint: Callable[[str, str, bytes], _Answer],
                 *, clock: Callable[[], float], timeout: float = 5.0, retries: int = 3) -> None:
        self.crypto = WXBizMsgCrypt(token, encoding_aes_key, corp_id)
        self.token = token
        self.endpoint = endpoint
        self.clock = clock
        self.timeout = timeout
        self.retries = retries
        self._nonces = itertools.count(1)
        #: Every attempt: (attempt number from 1, HTTP status, seconds the answer took).
        self.attempts: list[tuple[int, int, float]] = []

    def send(self, xml: str) -> list[int]:
        """Deliver one plain event XML; returns the HTTP status of each attempt."""
        encrypt = self.crypto.encrypt(xml)
        statuses: list[int] = []
        for attempt in range(1, self.retries + 2):
            stamp, nonce = str(int(self.clock())), f"n{next(self._nonces)}"
            query = urlencode({"msg_signature": signature(self.token, stamp, nonce, encrypt), "timestamp": stamp,
                               "nonce": nonce})
            body = f"<xml><ToUserName><![CDATA[x]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            start = self.clock()
            status = self.endpoint("POST", query, body.encode())
            took = self.clock() - start
            self.attempts.append((attempt, status.status, took))
            statuses.append(status.status)
            if status.status == 200 and took <= self.timeout:
                break
        return statuses
