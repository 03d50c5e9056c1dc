"""``wecom``: WeCom customer contact as a siyu channel.

``send`` mass-sends to customers through ``add_msg_template`` (one task per
identical content, ≤ 10,000 recipients each; the member confirms it in the
WeCom app). A send whose answer may mean "done" is never repeated;
:meth:`WeComChannel.reconcile` looks for the task in WeCom's group-message
records (``get_groupmsg_list_v2`` → ``get_groupmsg_task`` →
``get_groupmsg_send_result``). The channel carries messages and gives the API
client (:attr:`WeComChannel.client`) and the callback crypto
(:meth:`WeComChannel.crypto`); what WeCom contacts mean for the shop (users,
tags, channel QR codes, callbacks) is ``ws.wecom``
(:class:`siyu.services.wecom_contacts.WeComContacts`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ...errors import ValidationError
from ..base import NOT_CREATED, Channel, DeliveryResult, Limits, Message, Option, Status, unknown
from .client import DEFAULT_BASE_URL, TokenCache, WeComClient
from .crypto import WXBizMsgCrypt

__all__ = ["WeComChannel"]

#: Seconds of clock difference allowed between siyu and WeCom when looking for a task.
_CLOCK_SLACK = 600
#: How far back WeCom's group-message records are searched for an unknown send.
_RECONCILE_RANGE = 30 * 86_400


def _same_content(item: Mapping[str, Any], text: str | None, attachments: list[dict[str, Any]]) -> bool:
    """Whether a ``group_msg_list`` item may be this message. Lenient on purpose:
    WeCom may list attachments in another shape than they were sent (a media id for a
    picture URL), and a wrong "found" only withholds a resend, while a wrong "not
    found" would send twice. So: the same text, or, without text, the same kinds of
    attachments in the same order."""
    listed_text = (item.get("text") or {}).get("content") or None
    if text is not None:
        return bool(listed_text == text)
    kinds = [a.get("msgtype") for a in item.get("attachments") or [] if isinstance(a, Mapping)]
    return listed_text is None and kinds == [a.get("msgtype") for a in attachments]


class WeComChannel(Channel):
    """WeCom (企业微信) customer contact. Recipients are ``external_userid``s.

    Options (or ``SIYU_WECOM_<OPTION>``): ``corp_id``, ``secret`` (the 客户联系
    secret or an authorised app's), ``sender`` (member userid who sends mass
    messages), ``token`` / ``encoding_aes_key`` (callback settings),
    ``base_url`` (tests point it at :class:`siyu.testing.fakes.FakeWeCom`).
    """

    name: ClassVar[str] = "wecom"
    consent_channel: ClassVar[str] = "wecom"
    reconciles: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits(
        max_recipients_per_call=10_000,
        max_text_length=4000,
        length_unit="utf8_bytes",
        max_attachments=9,
        as_of="developer.work.weixin.qq.com 92135 (add_msg_template), 2025",
    )
    options: ClassVar[dict[str, Option]] = {
        "corp_id": Option(required=True, doc="企业ID"),
        "secret": Option(required=True, secret=True, doc="客户联系 secret or an authorised app's secret"),
        "base_url": Option(default=DEFAULT_BASE_URL, doc="API root"),
        "sender": Option(doc="member userid that sends mass messages"),
        "token": Option(secret=True, doc="callback Token"),
        "encoding_aes_key": Option(secret=True, doc="callback EncodingAESKey (43 characters)"),
        "refresh_margin": Option(default=300.0, parse=float, doc="refresh tokens this many seconds early"),
        "backoff": Option(default=1.0, parse=float, doc="first backoff delay on rate limits"),
    }

    def _setup(self) -> None:
        self._client: WeComClient | None = None

    @property
    def client(self) -> WeComClient:
        """The API client (built on first use; shares the workspace's token cache)."""
        if self._client is None:
            tokens: TokenCache | None = None
            if self.workspace is not None:
                tokens = self.workspace.channels.tokens.setdefault("wecom", TokenCache())
            kwargs: dict[str, Any] = {}
            if self.config["sleep"] is not None:
                kwargs["sleep"] = self.config["sleep"]
            if self.workspace is not None:
                ws = self.workspace
                kwargs["now"] = lambda: ws.now().timestamp()
            self._client = WeComClient(
                str(self.config["corp_id"]),
                str(self.config["secret"]),
                base_url=str(self.config["base_url"]),
                transport=self.config["transport"],
                timeout=float(self.config["timeout"]),
                tokens=tokens,
                refresh_margin=float(self.config["refresh_margin"]),
                backoff=float(self.config["backoff"]),
                **kwargs,
            )
        return self._client

    # -- sending ------------------------------------------------------------------------
    @staticmethod
    def attachment_payload(message: Message) -> list[dict[str, Any]]:
        """WeCom ``attachments``: ``Attachment("image", {"media_id": ...})`` →
        ``{"msgtype": "image", "image": {"media_id": ...}}``."""
        return [{"msgtype": a.kind, a.kind: dict(a.data)} for a in message.attachments]

    def _group(self, ready: list[tuple[int, Message]]) -> Iterable[list[tuple[int, Message]]]:
        groups: dict[str, list[tuple[int, Message]]] = {}
        for index, message in ready:
            token = json.dumps(
                [self.render(message), self.attachment_payload(message), message.options.get("sender")],
                ensure_ascii=False,
                sort_keys=True,
            )
            groups.setdefault(token, []).append((index, message))
        return list(groups.values())

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        first = messages[0]
        answer = self.client.add_msg_template(
            [m.recipient for m in messages],
            sender=first.options.get("sender") or self.config["sender"],
            text=self.render(first) or None,
            attachments=self.attachment_payload(first),
        )
        failed = {str(x) for x in answer["fail_list"]}
        msgid = answer["msgid"]
        return [
            DeliveryResult(
                m,
                Status.UNAVAILABLE,
                code="fail_list",
                detail="WeCom listed this customer in fail_list (no relation or limit reached)",
            )
            if m.recipient in failed
            else DeliveryResult(m, Status.SENT, provider_id=msgid)
            for m in messages
        ]

    def _reconcile(self, messages: Sequence[Message], since: datetime) -> list[DeliveryResult]:
        # A task created by add_msg_template appears in the corp's group-message list with
        # its text and attachments; its recipients appear in each member's send result.
        start = int(since.timestamp()) - _CLOCK_SLACK
        end = int(self._now()) + _CLOCK_SLACK
        if end - start > _RECONCILE_RANGE:
            return [unknown(m, f"the send is older than {_RECONCILE_RANGE // 86_400} days; WeCom's records "
                            "cannot settle it, a person decides") for m in messages]
        listed = list(self.client.get_groupmsg_list_v2(start, end, chat_type="single", filter_type=2))
        out: dict[int, DeliveryResult] = {}
        for group in self._group(list(enumerate(messages))):
            first = group[0][1]
            text = self.render(first) or None
            attachments = self.attachment_payload(first)
            recipients: dict[str, tuple[str, int]] = {}
            for item in listed:
                if not _same_content(item, text, attachments):
                    continue
                msgid = str(item.get("msgid") or "")
                for task in self.client.get_groupmsg_task(msgid):
                    for sent in self.client.get_groupmsg_send_result(msgid, str(task.get("userid") or "")):
                        ext = str(sent.get("external_userid") or "")
                        if ext:
                            recipients.setdefault(ext, (msgid, int(sent.get("status") or 0)))
            for index, message in group:
                found = recipients.get(message.recipient)
                if found is None:
                    out[index] = DeliveryResult(
                        message, Status.FAILED_RETRYABLE, code=NOT_CREATED,
                        detail="WeCom's group messages since the send do not include this customer: "
                        "the task was not created, sending again is safe",
                    )
                elif found[1] in (2, 3):
                    why = "not a friend" if found[1] == 2 else "the customer's receive cap was reached"
                    out[index] = DeliveryResult(message, Status.UNAVAILABLE, code="fail_list", provider_id=found[0],
                                                detail=f"WeCom created task {found[0]} but cannot deliver: {why}")
                else:
                    out[index] = DeliveryResult(message, Status.SENT, provider_id=found[0],
                                                detail=f"found in WeCom group message {found[0]}")
        return [out[i] for i in range(len(messages))]

    def _now(self) -> float:
        return self.workspace.now().timestamp() if self.workspace is not None else time.time()

    # -- callbacks --------------------------------------------------------------------------
    def crypto(self, random: Callable[[], bytes] | None = None) -> WXBizMsgCrypt:
        """The WXBizMsgCrypt of this app's callback settings (``token``, ``encoding_aes_key``)."""
        token, key = self.config["token"], self.config["encoding_aes_key"]
        if not token or not key:
            raise ValidationError(
                "WeCom callbacks need token= and encoding_aes_key= (SIYU_WECOM_TOKEN / SIYU_WECOM_ENCODING_AES_KEY)"
            )
        return WXBizMsgCrypt(str(token), str(key), str(self.config["corp_id"]), random=random)
