"""A fake WeChat server for mini-program subscribe messages."""

from __future__ import annotations

import itertools
from typing import Any

from ._server import FakeHttpServer, Request, Response, json_response

__all__ = ["FakeMiniProgram"]


class FakeMiniProgram(FakeHttpServer):
    """``cgi-bin/stable_token`` and ``cgi-bin/message/subscribe/send``.

    ``errcodes[openid] = 43101`` makes sends to that user fail with the code;
    :meth:`expire_tokens` makes issued tokens answer 42001.
    """

    def __init__(self, appid: str = "wxapp", secret: str = "appsecret") -> None:
        super().__init__()
        self.appid, self.secret = appid, secret
        self.valid_tokens: set[str] = set()
        self.expired: set[str] = set()
        self.errcodes: dict[str, int] = {}
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def expire_tokens(self) -> None:
        self.expired |= self.valid_tokens
        self.valid_tokens.clear()

    def respond(self, request: Request) -> Response:
        if request.path == "/cgi-bin/stable_token":
            body = request.json()
            if body.get("appid") != self.appid or body.get("secret") != self.secret:
                return json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
            token = f"MP{next(self._ids)}"
            self.valid_tokens.add(token)
            return json_response({"access_token": token, "expires_in": 7200})
        token = request.query.get("access_token", "")
        if token in self.expired:
            return json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.valid_tokens:
            return json_response({"errcode": 40001, "errmsg": "invalid credential"})
        body = request.json()
        code = self.errcodes.get(body.get("touser", ""))
        if code is not None:
            message = "argument invalid! data.thing1.value is empty" if code == 47003 else "scripted"
            return json_response({"errcode": code, "errmsg": message})
        self.sent.append(body)
        return json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._ids)})
