"""A fake WeCom API server speaking the real wire format on 127.0.0.1."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict, deque
from typing import Any

from ._server import Clock, FakeHttpServer, Request, Response, json_response, unix_time

__all__ = ["FakeWeCom"]


class FakeWeCom(FakeHttpServer):
    """WeCom customer contact, in memory.

    * ``gettoken`` checks ``corpid``/``corpsecret`` (40013 / 40001 otherwise)
      and issues ``TOKEN<n>``; :meth:`expire_tokens` makes old tokens answer 42001.
    * Every other call checks ``access_token`` (40014 for unknown tokens).
    * :meth:`fail` scripts errcodes for a path (e.g. ``fail("add_msg_template", 45009, times=2)``).
    * Customers live in ``contacts`` (``external_userid -> dict``), tags in ``tag_groups``.
    * Welcome codes come from :meth:`issue_welcome_code` (WeCom puts one in the
      ``add_external_contact`` event) and, as in WeCom, work once and only within
      20 s of ``clock``: afterwards ``send_welcome_msg`` answers 41050, a second
      use 41051, an unknown code 41050. ``clock`` returns Unix seconds or an
      aware ``datetime`` (``siyu.testing.FakeClock``; default: real time).
    * Mass messages (``mass_sends``) are listed by ``get_groupmsg_list_v2``,
      ``get_groupmsg_task`` and ``get_groupmsg_send_result``, stamped by ``clock``.
    """

    #: domain-rules.md §1.6: a welcome_code is usable "only within 20 s of the event and once".
    welcome_window = 20.0

    def __init__(
        self, corp_id: str = "wwcorp", secret: str = "s3cret", *, page_size: int = 2, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.clock = clock
        self.corp_id = corp_id
        self.secrets = {secret}
        self.valid_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._errors: dict[str, deque[int]] = defaultdict(deque)
        self.page_size = page_size
        self.contacts: dict[str, dict[str, Any]] = {}
        self.follow: dict[str, list[str]] = defaultdict(list)  # member userid -> external ids
        self.tag_groups: list[dict[str, Any]] = []
        self.marks: list[dict[str, Any]] = []
        self.mass_sends: list[dict[str, Any]] = []
        self.welcomes: list[dict[str, Any]] = []
        self.used_welcome_codes: set[str] = set()
        self.welcome_codes: dict[str, float] = {}  # code -> when its event happened
        self.contact_ways: dict[str, dict[str, Any]] = {}
        #: WeCom's per-API cap on calls in flight: one more is answered 45033.
        self.max_concurrent = 5
        #: The most calls seen in flight at once, per API path.
        self.peak: dict[str, int] = defaultdict(int)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._flight = threading.Condition()
        self._gates: dict[str, threading.Event] = {}

    # -- concurrency -----------------------------------------------------------------------
    def hold(self, path: str) -> threading.Event:
        """Keep calls to ``path`` (after the 45033 check) waiting until the returned event is set,
        so a test can have many of them in flight at once."""
        gate = self._gates[path] = threading.Event()
        return gate

    def wait_in_flight(self, path: str, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` calls to ``path`` are in flight; ``False`` on timeout."""
        with self._flight:
            return self._flight.wait_for(lambda: self._in_flight[path] >= count, timeout)

    # -- scripting ------------------------------------------------------------------------
    def fail(self, path: str, errcode: int, *, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` (suffix) with ``errcode``."""
        self._errors[path].extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Every issued token now answers 42001 (expired)."""
        self.expired_tokens |= self.valid_tokens
        self.valid_tokens.clear()

    def add_contact(
        self,
        external_userid: str,
        *,
        member: str = "zhangsan",
        name: str = "客户",
        state: str = "",
        tag_ids: tuple[str, ...] = (),
    ) -> None:
        self.contacts[external_userid] = {
            "external_userid": external_userid,
            "name": name,
            "type": 1,
            "state": state,
            "tag_id": list(tag_ids),
        }
        self.follow[member].append(external_userid)

    def issue_welcome_code(self, code: str | None = None, *, at: float | None = None) -> str:
        """A ``WelcomeCode`` for an ``add_external_contact`` event that happened
        ``at`` (Unix seconds; default: now by ``clock``). Returns the code."""
        code = code or f"WELCOME{next(self._ids)}"
        self.welcome_codes[code] = unix_time(self.clock) if at is None else float(at)
        return code

    @property
    def token_calls(self) -> int:
        return len(self.calls("/cgi-bin/gettoken"))

    # -- the API --------------------------------------------------------------------------
    def _scripted(self, path: str) -> int | None:
        for key, queue in self._errors.items():
            if path.endswith(key) and queue:
                return queue.popleft()
        return None

    def respond(self, request: Request) -> Response:
        path = request.path.removeprefix("/cgi-bin/")
        scripted = self._scripted(path)
        if path == "gettoken":
            if scripted is not None:
                return json_response({"errcode": scripted, "errmsg": "scripted"})
            if request.query.get("corpid") != self.corp_id:
                return json_response({"errcode": 40013, "errmsg": "invalid corpid"})
            if request.query.get("corpsecret") not in self.secrets:
                return json_response({"errcode": 40001, "errmsg": "invalid credential"})
            token = f"TOKEN{next(self._ids)}"
            self.valid_tokens.add(token)
            return json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})
        token = request.query.get("access_token", "")
        if token in self.expired_tokens:
            return json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.valid_tokens:
            return json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if scripted is not None:
            return json_response({"errcode": scripted, "errmsg": f"scripted {scripted}"})
        return self._answer(path, request)

    def admit(self, request: Request) -> Response | None:
        path = request.path.removeprefix("/cgi-bin/")
        with self._flight:
            self._in_flight[path] += 1
            self.peak[path] = max(self.peak[path], self._in_flight[path])
            over = self._in_flight[path] > self.max_concurrent
            self._flight.notify_all()
        if over:
            return json_response({"errcode": 45033, "errmsg": "api concurrent out of limit"})
        gate = self._gates.get(path)
        if gate is not None:
            gate.wait(timeout=30)
        return None

    def release(self, request: Request) -> None:
        with self._flight:
            self._in_flight[request.path.removeprefix("/cgi-bin/")] -= 1
            self._flight.notify_all()

    def _answer(self, path: str, request: Request) -> Response:
        if b"\\u" in request.body:
            return json_response({"errcode": 40033, "errmsg": "invalid charset, \\uxxxx escapes"})
        body = request.json() if request.body else {}
        handler = getattr(self, "_" + path.replace("externalcontact/", "").replace("/", "_"), None)
        if handler is None:
            return json_response({"errcode": 404, "errmsg": f"unknown api {path}"}, status=404)
        result: dict[str, Any] = handler(request, body)
        return json_response({"errcode": 0, "errmsg": "ok", **result} if "errcode" not in result else result)

    def _add_msg_template(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("external_userid") or []
        if len(ids) > 10_000 or len(body.get("attachments") or []) > 9:
            return {"errcode": 40058, "errmsg": "too many"}
        msgid = f"msg{next(self._ids)}"
        self.mass_sends.append({**body, "msgid": msgid, "create_time": int(unix_time(self.clock))})
        return {"msgid": msgid, "fail_list": [x for x in ids if x not in self.contacts]}

    def _get_groupmsg_list_v2(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        start, end = int(body.get("start_time") or 0), int(body.get("end_time") or 0)
        if not 0 < end - start <= 31 * 86_400:
            return {"errcode": 40058, "errmsg": "start_time/end_time: at most one month"}
        if body.get("filter_type", 2) not in (0, 2):
            return {"group_msg_list": [], "next_cursor": ""}  # the API creates corp messages only
        found = [
            {"msgid": m["msgid"], "create_type": 0, "create_time": str(m["create_time"]),
             **({"text": m["text"]} if m.get("text") else {}), "attachments": list(m.get("attachments") or [])}
            for m in self.mass_sends
            if m.get("chat_type", "single") == body.get("chat_type", "single") and start <= m["create_time"] <= end
        ]
        return self._page(found, "group_msg_list", body, 100)

    def _get_groupmsg_task(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        sent = self._mass_send(body)
        if sent is None:
            return {"errcode": 41047, "errmsg": "invalid msgid"}
        members = [sent["sender"]] if sent.get("sender") else sorted(
            {m for m, ids in self.follow.items() for e in sent.get("external_userid") or [] if e in ids})
        return self._page([{"userid": m, "status": 0} for m in members], "task_list", body, 1000)

    def _get_groupmsg_send_result(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        sent = self._mass_send(body)
        if sent is None:
            return {"errcode": 41047, "errmsg": "invalid msgid"}
        member = str(body.get("userid") or "")
        targets = [e for e in sent.get("external_userid") or [] if e in self.contacts
                   and (sent.get("sender") == member or e in self.follow.get(member, []))]
        return self._page([{"external_userid": e, "userid": member, "status": 0} for e in targets], "send_list",
                          body, 1000)

    def _mass_send(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return next((m for m in self.mass_sends if m["msgid"] == body.get("msgid")), None)

    def _page(self, items: list[dict[str, Any]], key: str, body: dict[str, Any], most: int) -> dict[str, Any]:
        limit = int(body.get("limit") or most)
        limit = most if limit > most else limit
        start = int(body.get("cursor") or 0)
        nxt = start + limit
        return {key: items[start:nxt], "next_cursor": str(nxt) if nxt < len(items) else ""}

    def _send_welcome_msg(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        # Codes from WeCom's global error table (as encoded in the zsmhub/workweixin SDK):
        # 41049 缺少欢迎语code参数; 41050 无效的欢迎语code — "须在添加好友后20秒内使用";
        # 41051 the welcome message was already sent / the chat began (channels.md §1.2).
        code = body.get("welcome_code")
        if not isinstance(code, str) or not code:
            return {"errcode": 41049, "errmsg": "missing welcome_code"}
        if code in self.used_welcome_codes:
            return {"errcode": 41051, "errmsg": "customer has started chatting"}
        issued = self.welcome_codes.get(code)
        if issued is None or unix_time(self.clock) - issued > self.welcome_window:
            return {"errcode": 41050, "errmsg": "invalid welcome_code: use it within 20 seconds of the event"}
        self.used_welcome_codes.add(code)
        self.welcomes.append(body)
        return {}

    def _mark_tag(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.marks.append(body)
        return {}

    def _get_corp_tag_list(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"tag_group": self.tag_groups}

    def _add_corp_tag(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        group = None
        if body.get("group_id"):
            group = next((g for g in self.tag_groups if g["group_id"] == body["group_id"]), None)
        if group is None:
            group = next((g for g in self.tag_groups if g["group_name"] == body.get("group_name")), None)
        if group is None:
            group = {"group_id": f"grp{next(self._ids)}", "group_name": body.get("group_name"), "tag": []}
            self.tag_groups.append(group)
        created = []
        for tag in body.get("tag") or []:
            item = {"id": f"tag{next(self._ids)}", "name": tag["name"]}
            group["tag"].append(item)
            created.append(item)
        return {"tag_group": {"group_id": group["group_id"], "group_name": group["group_name"], "tag": created}}

    def _add_contact_way(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if len(body.get("state") or "") > 30:
            return {"errcode": 40058, "errmsg": "state too long"}
        config_id = f"cfg{next(self._ids)}"
        self.contact_ways[config_id] = body
        return {"config_id": config_id, "qr_code": f"https://wework.qpic.cn/fake/{config_id}.png"}

    def _get(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        ext = request.query.get("external_userid", "")
        if ext not in self.contacts:
            return {"errcode": 84061, "errmsg": "not external contact"}
        members = [m for m, ids in self.follow.items() if ext in ids]
        start = int(request.query.get("cursor") or 0)
        page = members[start : start + self.page_size]
        nxt = start + self.page_size
        return {
            "external_contact": self.contacts[ext],
            "follow_user": [{"userid": m, "state": ""} for m in page],
            "next_cursor": str(nxt) if nxt < len(members) else "",
        }

    def _list(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"external_userid": list(self.follow.get(request.query.get("userid", ""), []))}

    def _batch_get_by_user(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        limit = int(body.get("limit") or 50)
        if limit > 100 or "userid_list" not in body:
            return {"errcode": 40058, "errmsg": "invalid limit/userid_list"}
        items = [(m, e) for m in body["userid_list"] for e in self.follow.get(m, [])]
        start = int(body.get("cursor") or 0)
        page = items[start : start + limit]
        nxt = start + limit
        return {
            "external_contact_list": [
                {
                    "external_contact": self.contacts[e],
                    "follow_info": {
                        "userid": m,
                        "state": self.contacts[e].get("state", ""),
                        "tag_id": list(self.contacts[e].get("tag_id", [])),
                    },
                }
                for m, e in page
            ],
            "next_cursor": str(nxt) if nxt < len(items) else "",
        }
