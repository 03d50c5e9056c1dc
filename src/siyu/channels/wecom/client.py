"""A small, strict WeCom (企业微信) customer-contact API client.

Token rules (channels.md §1.1-1.2): the access token is cached per
(base_url, corp id, secret) with a refresh margin and a single-flight lock;
40014/42001 invalidate it and retry the call exactly once; 40001 (wrong
secret) and 40013 (wrong corp id) are configuration errors, never refreshed
in a loop; 45009/45011/45033 back off with bounded exponential delays, then
raise a rate-limit :class:`~siyu.errors.ChannelError`; -1 (busy) is retried at
most 3 times; at most ``concurrency`` (5) calls per API are in flight at once
(45033 is WeCom's per-API concurrency cap). Request bodies are UTF-8 JSON with raw characters (WeCom
rejects ``\\uXXXX`` escapes with 40033).

Calls that create something (``add_msg_template``, ``send_welcome_msg``) are
retried only on answers that prove nothing was created (rate limits, token
errors, a refused connection). An answer that may mean "done" -- a read
timeout, HTTP 5xx, a body that is not JSON, ``-1`` (busy), ``errcode`` missing
or null, success without a ``msgid`` -- raises a :class:`ChannelError` with
code ``timeout_unknown`` after one request; the group-message queries
(:meth:`WeComClient.get_groupmsg_list_v2` ...) tell what was created.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ...errors import ChannelError, InvalidMessage, ValidationError
from .._http import json_object, make_client, request, unknown_outcome

__all__ = ["TokenCache", "WeComClient", "error_for"]

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
TOKEN_ERRORS = {40014, 42001}
RATE_ERRORS = {45009, 45011, 45033}
CONFIG_ERRORS = {40001: "the secret is wrong (40001)", 40013: "the corp id is wrong (40013)"}
MAX_MASS_RECIPIENTS = 10_000
MAX_ATTACHMENTS = 9
MAX_TEXT_BYTES = 4000
MAX_STATE = 30


@attrs.define
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Access tokens per (base_url, corp id, secret digest), with one lock per key
    so concurrent callers wait for a single ``gettoken``."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, ...]) -> _Token | None:
        return self._tokens.get(key)

    def put(self, key: tuple[str, ...], token: _Token) -> None:
        self._tokens[key] = token

    def invalidate(self, key: tuple[str, ...], value: str) -> None:
        current = self._tokens.get(key)
        if current is not None and current.value == value:
            del self._tokens[key]


def error_for(errcode: int, errmsg: str, what: str) -> ChannelError:
    """The :class:`ChannelError` for a WeCom ``errcode`` (decided on the code, never the text)."""
    if errcode in CONFIG_ERRORS:
        return ChannelError(
            f"{what}: {CONFIG_ERRORS[errcode]}; fix corp_id/secret (SIYU_WECOM_CORP_ID / SIYU_WECOM_SECRET)",
            retryable=False,
            code=errcode,
        )
    if errcode in RATE_ERRORS:
        return ChannelError(
            f"{what}: WeCom rate limit ({errcode}); slow down", retryable=True, code=errcode, retry_after=60.0
        )
    if errcode in TOKEN_ERRORS:
        return ChannelError(
            f"{what}: access token refused twice ({errcode}) even after a refresh", retryable=True, code=errcode
        )
    if errcode == -1:
        return ChannelError(f"{what}: WeCom busy (-1) after 3 retries", retryable=True, code=-1)
    if errcode == 41051:
        return ChannelError(
            f"{what}: already sent (41051): the welcome message was delivered or the chat began",
            retryable=False,
            code=41051,
        )
    if errcode == 41096:
        return ChannelError(f"{what}: another app is sending the welcome message (41096)", retryable=True, code=41096)
    if errcode == 84061:
        return ChannelError(f"{what}: no relation with this external contact (84061)", retryable=False, code=84061)
    if errcode == 41063:
        return ChannelError(
            f"{what}: a mass message is being dispatched (41063); nothing was created, retry later",
            retryable=True, code=41063, retry_after=60.0,
        )
    if errcode == 40126:
        return ChannelError(
            f"{what}: the corp tag cap is reached (40126); delete unused WeCom tags", retryable=False, code=40126
        )
    return ChannelError(f"{what}: WeCom error {errcode}: {errmsg}", retryable=False, code=errcode)


class WeComClient:
    """Calls WeCom APIs with one app's credentials.

    ``base_url`` points at the real API or a fake server; ``transport`` is an
    httpx transport for tests; ``now`` returns Unix seconds (token expiry);
    ``sleep`` performs backoff waits (tests pass a recorder).
    """

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: Any = None,
        timeout: float = 10.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        tokens: TokenCache | None = None,
        refresh_margin: float = 300.0,
        rate_retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        concurrency: int = 5,
    ) -> None:
        if not corp_id or not secret:
            raise ValidationError("WeComClient needs corp_id and secret (the 客户联系 or app secret)")
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._http = make_client(self.base_url, transport=transport, timeout=timeout)
        self._now = now
        self._sleep = sleep
        self._tokens = tokens if tokens is not None else TokenCache()
        self._key = (self.base_url, corp_id, hashlib.sha256(secret.encode()).hexdigest()[:16])
        self.refresh_margin = refresh_margin
        self.rate_retries = rate_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        #: Number of ``gettoken`` calls made (observability; tests read it).
        self.token_fetches = 0
        # WeCom caps concurrent calls per API (45033); keep this client under the cap.
        self._concurrency = max(1, concurrency)
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_guard = threading.Lock()

    def _slot(self, path: str) -> threading.BoundedSemaphore:
        with self._slots_guard:
            return self._slots.setdefault(path, threading.BoundedSemaphore(self._concurrency))

    def __repr__(self) -> str:
        return f"<WeComClient corp_id={self.corp_id!r} secret=*** base_url={self.base_url!r}>"

    # -- tokens --------------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid access token (cached; fetched under a per-key lock)."""
        cached = self._tokens.get(self._key)
        if cached is not None and cached.expires_at - self.refresh_margin > self._now():
            return cached.value
        with self._tokens.lock(self._key):
            cached = self._tokens.get(self._key)
            if cached is not None and cached.expires_at - self.refresh_margin > self._now():
                return cached.value
            data = self._with_backoff(self._fetch_token, "gettoken")
            token = _Token(str(data["access_token"]), self._now() + float(data.get("expires_in") or 7200))
            self._tokens.put(self._key, token)
            return token.value

    def _fetch_token(self) -> dict[str, Any]:
        self.token_fetches += 1
        response = request(
            self._http,
            "GET",
            "/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self._secret},
            sent_means_maybe_delivered=False,
            what="WeCom gettoken",
        )
        data = self._decode(response, "WeCom gettoken")
        if not data.get("access_token") and int(data.get("errcode") or 0) == 0:
            raise ChannelError("WeCom gettoken: answer has no access_token", retryable=True, code="malformed")
        return data

    def _with_backoff(self, call: Callable[[], dict[str, Any]], what: str, *, creates: bool = False) -> dict[str, Any]:
        busy = rate = 0
        while True:
            data = call()
            errcode = _errcode(data, f"WeCom {what}", creates=creates)
            if errcode == 0:
                return data
            if errcode in RATE_ERRORS and rate < self.rate_retries:
                # WeCom refuses a rate-limited call before doing anything: safe to repeat.
                self._sleep(min(self.max_backoff, self.backoff * 2**rate))
                rate += 1
                continue
            if errcode == -1 and creates:
                raise unknown_outcome(f"WeCom {what}", "WeCom answered -1 (busy)")
            if errcode == -1 and busy < 3:
                self._sleep(min(self.max_backoff, self.backoff * 2**busy))
                busy += 1
                continue
            raise error_for(errcode, str(data.get("errmsg", "")), f"WeCom {what}")

    @staticmethod
    def _decode(response: Any, what: str, *, creates: bool = False) -> dict[str, Any]:
        return json_object(response, what, creates=creates)

    # -- calls ---------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Call ``/cgi-bin/<path>`` with the access token; return the JSON answer.

        Token errors refresh once; rate limits and ``-1`` back off (bounded);
        anything else raises :class:`ChannelError` with ``code = errcode``.
        ``idempotent=False`` marks calls that create something (sends): an answer
        that may mean "done" is raised as ``timeout_unknown`` and never retried.
        """
        what = f"WeCom {path}"
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        refreshed = False

        def once() -> dict[str, Any]:
            nonlocal refreshed
            token = self.access_token()
            with self._slot(path):
                response = request(
                    self._http,
                    method,
                    f"/cgi-bin/{path}",
                    params={**(params or {}), "access_token": token},
                    content=content,
                    headers={"Content-Type": "application/json; charset=utf-8"} if content else None,
                    sent_means_maybe_delivered=not idempotent,
                    what=what,
                )
            data = self._decode(response, what, creates=not idempotent)
            errcode = _errcode(data, what, creates=not idempotent)
            if errcode in TOKEN_ERRORS and not refreshed:
                refreshed = True
                self._tokens.invalidate(self._key, token)
                return once()
            return data

        return self._with_backoff(once, path, creates=not idempotent)

    # -- customer contact ------------------------------------------------------------------
    def add_msg_template(
        self,
        external_userids: Sequence[str],
        *,
        sender: str | None = None,
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        chat_type: str = "single",
    ) -> dict[str, Any]:
        """Create a mass-send task to customers (群发). Returns ``{"msgid", "fail_list"}``.

        At most 10,000 ``external_userids`` and 9 attachments; text ≤ 4,000 bytes.
        """
        ids = list(external_userids)
        if not ids:
            raise InvalidMessage("add_msg_template needs at least one external_userid")
        if len(ids) > MAX_MASS_RECIPIENTS:
            raise InvalidMessage(
                f"add_msg_template takes at most {MAX_MASS_RECIPIENTS} external_userids, got {len(ids)}; "
                "split the batch"
            )
        _check_content(text, attachments)
        body: dict[str, Any] = {"chat_type": chat_type, "external_userid": ids}
        if sender:
            body["sender"] = sender
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        data = self.call("POST", "externalcontact/add_msg_template", body=body, idempotent=False)
        msgid = data.get("msgid")
        if not isinstance(msgid, str) or not msgid:
            raise unknown_outcome("WeCom add_msg_template", "the answer has no msgid")
        fail_list = data.get("fail_list") or []
        if not isinstance(fail_list, list):
            raise unknown_outcome("WeCom add_msg_template", "fail_list is not a list")
        return {"msgid": msgid, "fail_list": fail_list}

    # -- group-message tracking (what add_msg_template created) --------------------------------
    def get_groupmsg_list_v2(
        self, start_time: int, end_time: int, *, chat_type: str = "single", filter_type: int = 2,
        creator: str | None = None, limit: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Every group message created between the Unix seconds ``start_time`` and
        ``end_time`` (``group_msg_list`` items: ``msgid``, ``create_time``,
        ``text``, ``attachments`` ...). WeCom takes at most one month per query,
        so a longer range is split; ``limit`` is clamped to 100; pages are followed.
        ``filter_type``: 0 created by the corp (and the API), 1 by members, 2 all."""
        if not isinstance(start_time, int) or not isinstance(end_time, int) or start_time > end_time:
            raise InvalidMessage("get_groupmsg_list_v2 needs Unix seconds start_time <= end_time")
        window = 30 * 86_400
        lo = start_time
        while lo <= end_time:
            hi = min(end_time, lo + window)
            cursor = ""
            while True:
                body: dict[str, Any] = {"chat_type": chat_type, "start_time": lo, "end_time": hi,
                                        "filter_type": filter_type, "limit": max(1, min(100, limit)), "cursor": cursor}
                if creator:
                    body["creator"] = creator
                data = self.call("POST", "externalcontact/get_groupmsg_list_v2", body=body)
                yield from data.get("group_msg_list") or []
                cursor = str(data.get("next_cursor") or "")
                if not cursor:
                    break
            lo = hi + 1

    def get_groupmsg_task(self, msgid: str) -> list[dict[str, Any]]:
        """The members a group message was handed to (``task_list``: ``userid``,
        ``status`` 0 not sent yet / 2 sent, ``send_time``), every page."""
        return self._pages("externalcontact/get_groupmsg_task", {"msgid": msgid}, "task_list")

    def get_groupmsg_send_result(self, msgid: str, userid: str) -> list[dict[str, Any]]:
        """One member's recipients of a group message (``send_list``:
        ``external_userid`` or ``chat_id``, ``status`` 0 not sent yet / 1 sent /
        2 not a friend / 3 the customer's receive cap was reached), every page."""
        return self._pages("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": userid},
                           "send_list")

    def _pages(self, path: str, body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = ""
        while True:
            data = self.call("POST", path, body={**body, "limit": 1000, "cursor": cursor})
            out.extend(data.get(key) or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return out

    def send_welcome_msg(
        self, welcome_code: str, *, text: str | None = None, attachments: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Send the welcome message (once, within 20 s of the add event).

        41051 (already sent) raises a non-retryable ChannelError with code 41051.
        """
        if not welcome_code:
            raise InvalidMessage("send_welcome_msg needs the WelcomeCode of the add_external_contact event")
        _check_content(text, attachments)
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        self.call("POST", "externalcontact/send_welcome_msg", body=body, idempotent=False)

    def mark_tag(
        self, userid: str, external_userid: str, *, add_tag: Sequence[str] = (), remove_tag: Sequence[str] = ()
    ) -> None:
        """Add/remove corp tags (by tag id) on one customer of one member."""
        if not add_tag and not remove_tag:
            raise InvalidMessage("mark_tag needs add_tag or remove_tag (both are empty)")
        self.call(
            "POST",
            "externalcontact/mark_tag",
            body={
                "userid": userid,
                "external_userid": external_userid,
                "add_tag": list(add_tag),
                "remove_tag": list(remove_tag),
            },
        )

    def get_corp_tag_list(self, *, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Corp tag groups with their tags (``tag_group`` of the answer)."""
        data = self.call(
            "POST", "externalcontact/get_corp_tag_list", body={"tag_id": list(tag_ids), "group_id": list(group_ids)}
        )
        return list(data.get("tag_group") or [])

    def add_corp_tag(
        self, tags: Sequence[str], *, group_name: str | None = None, group_id: str | None = None
    ) -> dict[str, Any]:
        """Create tags in a group (by id, or by name, creating the group). Returns the ``tag_group``."""
        if not tags:
            raise InvalidMessage("add_corp_tag needs at least one tag name")
        if not group_id and not group_name:
            raise InvalidMessage("add_corp_tag needs group_id or group_name")
        for name in tags:
            if not name or len(name) > 30:
                raise InvalidMessage(f"WeCom tag names are 1-30 characters; {name!r} is not")
        body: dict[str, Any] = {"tag": [{"name": n} for n in tags]}
        if group_id:
            body["group_id"] = group_id
        else:
            body["group_name"] = group_name
        data = self.call("POST", "externalcontact/add_corp_tag", body=body)
        return dict(data.get("tag_group") or {})

    def add_contact_way(
        self,
        *,
        state: str,
        user: Sequence[str] = (),
        party: Sequence[int] = (),
        type: int = 1,
        scene: int = 2,
        remark: str | None = None,
        skip_verify: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a 「联系我」 channel QR code (渠道活码); returns ``{"config_id", "qr_code"}``.

        ``state`` (≤ 30 characters) comes back in the add event's ``State``.
        """
        if not isinstance(state, str) or not state or len(state) > MAX_STATE:
            raise InvalidMessage(f"state must be 1-{MAX_STATE} characters, got {state!r}")
        if remark is not None and len(remark) > 30:
            raise InvalidMessage("remark is limited to 30 characters")
        if type == 1 and len(user) != 1:
            raise InvalidMessage("type=1 (single member) needs exactly one userid in user=")
        if not user and not party:
            raise InvalidMessage("add_contact_way needs user= or party=")
        body: dict[str, Any] = {"type": type, "scene": scene, "state": state, "skip_verify": skip_verify, **extra}
        if user:
            body["user"] = list(user)
        if party:
            body["party"] = list(party)
        if remark is not None:
            body["remark"] = remark
        data = self.call("POST", "externalcontact/add_contact_way", body=body)
        return {"config_id": data.get("config_id"), "qr_code": data.get("qr_code")}

    def get_external_contact(self, external_userid: str) -> dict[str, Any]:
        """One customer with every ``follow_user`` (follows ``next_cursor``)."""
        cursor = ""
        result: dict[str, Any] = {}
        follow: list[Any] = []
        while True:
            params = {"external_userid": external_userid}
            if cursor:
                params["cursor"] = cursor
            data = self.call("GET", "externalcontact/get", params=params)
            result = result or dict(data.get("external_contact") or {})
            follow.extend(data.get("follow_user") or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return {"external_contact": result, "follow_user": follow}

    def list_external_contacts(self, userid: str) -> list[str]:
        """External user ids of one member's customers."""
        data = self.call("GET", "externalcontact/list", params={"userid": userid})
        return list(data.get("external_userid") or [])

    def iter_contacts(self, userids: Iterable[str], *, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every customer of the members, page by page (``batch/get_by_user``)."""
        ids = list(userids)
        if not ids:
            raise InvalidMessage("iter_contacts needs at least one member userid")
        if not 1 <= limit <= 100:
            raise InvalidMessage("limit must be 1..100")
        cursor = ""
        while True:
            data = self.call(
                "POST",
                "externalcontact/batch/get_by_user",
                body={"userid_list": ids, "cursor": cursor, "limit": limit},
            )
            yield from data.get("external_contact_list") or []
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return

    def close(self) -> None:
        self._http.close()


def _errcode(data: Mapping[str, Any], what: str, *, creates: bool) -> int:
    """The answer's ``errcode``. Reads tolerate a missing one (0); a create must
    carry an integer, or the answer may be anything, "done" included."""
    value = data.get("errcode", None if creates else 0)
    if isinstance(value, bool) or not isinstance(value, int):
        if creates:
            raise unknown_outcome(what, f"the answer's errcode is {value!r}, not a number")
        raise ChannelError(f"{what}: the answer's errcode is {value!r}, not a number", retryable=True,
                           code="malformed")
    return value


def _check_content(text: str | None, attachments: Sequence[Mapping[str, Any]]) -> None:
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidMessage(f"WeCom allows at most {MAX_ATTACHMENTS} attachments, got {len(attachments)}")
    if text is not None and len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise InvalidMessage(f"WeCom text is limited to {MAX_TEXT_BYTES} bytes (UTF-8)")
    if not text and not attachments:
        raise InvalidMessage("a WeCom message needs text or attachments")
