"""A fake WeChat server for mini-programs: login (``jscode2session``) and subscribe messages."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._server import FakeHttpServer, Request, Response, json_response

__all__ = ["FakeMiniProgram"]

# Value rules per key type (channels.md §2.3: the official table as copied by many
# sources; forum reports confirm 47003 for a `thing` over 20 characters and a
# non-Chinese `phrase`). Types without a rule here are accepted as any non-empty text.
_RULES: dict[str, re.Pattern[str]] = {
    "thing": re.compile(r".{1,20}", re.S),
    "number": re.compile(r"-?\d{1,32}(\.\d{1,31})?"),
    "letter": re.compile(r"[A-Za-z]{1,32}"),
    "symbol": re.compile(r".{1,5}", re.S),
    "character_string": re.compile(r".{1,32}", re.S),
    "phone_number": re.compile(r".{1,17}", re.S),
    "car_number": re.compile(r".{1,8}", re.S),
    "phrase": re.compile(r"[\u4e00-\u9fff]{1,5}"),
}


class FakeMiniProgram(FakeHttpServer):
    """``sns/jscode2session``, ``cgi-bin/stable_token`` and ``cgi-bin/message/subscribe/send``.

    Login: :meth:`login_code` plays ``wx.login()`` in the mini-program and returns
    the one-time code for an ``openid``; ``GET /sns/jscode2session?appid=..
    &secret=..&js_code=..&grant_type=authorization_code`` exchanges it, once, for
    ``{"openid", "session_key"[, "unionid"]}``. Like WeChat, an unknown code
    answers 40029, a code used before 40163, a wrong secret 40125.

    ``templates`` maps each subscribe template id of the app to its data keys
    (``{"TPL1": ["thing1", "time2"]}``); like WeChat, a send naming another
    template answers 40037, one missing a key or with a value breaking its
    key type's rule answers 47003 (``argument invalid! data.thing1.value ...``),
    one without ``touser`` 40003.
    ``errcodes[openid] = 43101`` makes sends to that user fail with the code;
    :meth:`expire_tokens` makes issued tokens answer 42001.
    """

    def __init__(
        self, appid: str = "wxapp", secret: str = "appsecret", *, templates: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        super().__init__()
        self.appid, self.secret = appid, secret
        self.templates: dict[str, list[str]] = {k: list(v) for k, v in (templates or {}).items()}
        self.valid_tokens: set[str] = set()
        self.expired: set[str] = set()
        self.errcodes: dict[str, int] = {}
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._codes: dict[str, tuple[str, str | None]] = {}
        self._used: set[str] = set()

    def login_code(self, openid: str, *, unionid: str | None = None) -> str:
        """A fresh ``wx.login()`` code that ``jscode2session`` exchanges for ``openid`` once."""
        code = f"code{next(self._ids):06d}{openid[-4:]}"
        self._codes[code] = (openid, unionid)
        return code

    def _session(self, request: Request) -> Response:
        q = request.query
        if q.get("appid") != self.appid or q.get("secret") != self.secret:
            return json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        if q.get("grant_type") != "authorization_code":
            return json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        code = q.get("js_code", "")
        if code in self._used:
            return json_response({"errcode": 40163, "errmsg": "code been used"})
        if code not in self._codes:
            return json_response({"errcode": 40029, "errmsg": "invalid code"})
        self._used.add(code)
        openid, unionid = self._codes.pop(code)
        answer = {"openid": openid, "session_key": f"SK{next(self._ids)}"}
        if unionid is not None:
            answer["unionid"] = unionid
        return json_response(answer)

    def expire_tokens(self) -> None:
        self.expired |= self.valid_tokens
        self.valid_tokens.clear()

    def respond(self, request: Request) -> Response:
        if request.path == "/sns/jscode2session":
            return self._session(request)
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
        try:
            body = request.json()
        except ValueError:
            return json_response({"errcode": 47001, "errmsg": "data format error"})
        refusal = self._check(body)
        if refusal is not None:
            return json_response({"errcode": refusal[0], "errmsg": refusal[1]})
        code = self.errcodes.get(body.get("touser", ""))
        if code is not None:
            message = "argument invalid! data.thing1.value is empty" if code == 47003 else "scripted"
            return json_response({"errcode": code, "errmsg": message})
        self.sent.append(body)
        return json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._ids)})

    def _check(self, body: Any) -> tuple[int, str] | None:
        """WeChat's refusals of a ``subscribe/send`` body (channels.md §2.2, §2.4)."""
        if not isinstance(body, dict):
            return 47001, "data format error"
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return 40003, "invalid openid"  # §2.4: 40003 = touser invalid
        template = body.get("template_id")
        keys = self.templates.get(template) if isinstance(template, str) else None
        if keys is None:
            return 40037, "invalid template_id"  # §2.4: 40037 = template_id invalid
        data = body.get("data")
        for key in keys:  # §2.2: `data` is required, keyed by the template's keys
            item = data.get(key) if isinstance(data, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, str) or not value:
                return 47003, f"argument invalid! data.{key}.value is empty"
            rule = _RULES.get(re.sub(r"\d+$", "", key))
            if rule is not None and not rule.fullmatch(value):
                return 47003, f"argument invalid! data.{key}.value invalid"
        return None
