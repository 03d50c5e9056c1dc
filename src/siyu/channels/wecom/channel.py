"""``wecom``: WeCom customer contact as a siyu channel.

``send`` mass-sends to customers through ``add_msg_template`` (one task per
identical content, ≤ 10,000 recipients each; the member confirms it in the
WeCom app). A send whose answer may mean "done" is never repeated;
:meth:`WeComChannel.reconcile` looks for the task in WeCom's group-message
records (``get_groupmsg_list_v2`` → ``get_groupmsg_task`` →
``get_groupmsg_send_result``). Beyond sending, the channel manages channel QR codes
(:meth:`WeComChannel.add_contact_way`, with the siyu tags to apply to whoever
scans), two-way tag sync (:meth:`push_tags`, :meth:`pull_tags`) and the
callback handler (:meth:`callbacks`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ..._text import split_tag
from ...errors import ValidationError
from ..base import NOT_CREATED, Channel, DeliveryResult, Limits, Message, Option, Status, unknown
from .client import DEFAULT_BASE_URL, TokenCache, WeComClient

__all__ = ["WeComChannel"]

_TAG_KEY = "tag:"  # channel_state: "tag:<group>/<name>" -> WeCom tag id
_WAY_KEY = "contact_way:"  # channel_state: "contact_way:<state>" -> {"config_id", "tags", ...}
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

    # -- channel QR codes -----------------------------------------------------------------
    def add_contact_way(
        self, *, state: str, user: Sequence[str], tags: Sequence[str] = (), welcome: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Create a 渠道活码 for ``state`` and remember (in the workspace) which siyu
        ``tags`` and ``welcome`` text apply to customers who add through it."""
        ws = self._require_workspace("remembering contact ways")
        for tag in tags:
            split_tag(tag)
        answer = self.client.add_contact_way(state=state, user=user, type=1 if len(user) == 1 else 2, **extra)
        record = {
            "config_id": answer["config_id"],
            "qr_code": answer["qr_code"],
            "tags": list(tags),
            "welcome": welcome,
            "user": list(user),
        }
        with ws.write() as tx:
            tx.channels.state_put(self.name, _WAY_KEY + state, json.dumps(record, ensure_ascii=False))
        return record

    def contact_way(self, state: str) -> dict[str, Any] | None:
        """What :meth:`add_contact_way` stored for ``state`` (or ``None``)."""
        ws = self._require_workspace("reading contact ways")
        with ws.read() as tx:
            raw = tx.channels.state_get(self.name, _WAY_KEY + state)
        return None if raw is None else dict(json.loads(raw))

    # -- tags -------------------------------------------------------------------------------
    def pull_tags(self) -> dict[str, str]:
        """Define a siyu tag ``<group>/<name>`` for every WeCom corp tag; return
        ``{siyu tag: wecom tag id}``."""
        ws = self._require_workspace("syncing tags")
        mapping: dict[str, str] = {}
        for group in self.client.get_corp_tag_list():
            if group.get("deleted"):
                continue
            for tag in group.get("tag") or []:
                if tag.get("deleted"):
                    continue
                mapping[f"{group['group_name']}/{tag['name']}"] = str(tag["id"])
        with ws.write() as tx:
            for full, tag_id in mapping.items():
                ws.tags.define(full)
                tx.channels.state_put(self.name, _TAG_KEY + full, tag_id)
        return mapping

    def push_tags(self, tags: Iterable[str] | None = None) -> dict[str, str]:
        """Create in WeCom every siyu tag (default: all) it lacks; return
        ``{siyu tag: wecom tag id}`` for all of them."""
        ws = self._require_workspace("syncing tags")
        known = self.pull_tags()
        wanted = sorted(set(tags) if tags is not None else set(ws.tags.names()))
        group_ids: dict[str, str] = {}
        for tag_group in self.client.get_corp_tag_list():
            group_ids[str(tag_group["group_name"])] = str(tag_group["group_id"])
        missing: dict[str, list[str]] = {}
        for full in wanted:
            if full not in known:
                group, _, name = full.partition("/")
                missing.setdefault(group, []).append(name)
        for group, names in missing.items():
            created = self.client.add_corp_tag(names, group_id=group_ids.get(group), group_name=group)
            for tag in created.get("tag") or []:
                known[f"{group}/{tag['name']}"] = str(tag["id"])
        with ws.write() as tx:
            for full, tag_id in known.items():
                tx.channels.state_put(self.name, _TAG_KEY + full, tag_id)
        return {t: known[t] for t in wanted if t in known}

    def tag_id(self, tag: str) -> str | None:
        """The WeCom tag id synced for a siyu tag."""
        ws = self._require_workspace("reading tags")
        with ws.read() as tx:
            return tx.channels.state_get(self.name, _TAG_KEY + tag)

    def mark_tags(self, user_id: int, *, member: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """Apply siyu tags to a user in siyu AND in WeCom (on each of their external_userids)."""
        ws = self._require_workspace("tagging")
        ids = {t: self.tag_id(t) for t in (*add, *remove)}
        unknown = sorted(t for t, i in ids.items() if i is None)
        if unknown:
            raise ValidationError(f"tags {unknown} are not synced with WeCom; run channel.push_tags() first")
        user = ws.users.get(user_id)
        externals = [i.value for i in user.identities if i.kind == "wecom_external_userid"]
        if not externals:
            raise ValidationError(f"user {user_id} has no wecom_external_userid; link one first")
        for ext in externals:
            self.client.mark_tag(
                member, ext, add_tag=[str(ids[t]) for t in add], remove_tag=[str(ids[t]) for t in remove]
            )
        for tag in add:
            ws.tags.apply(user_id, tag, by=f"wecom:{member}")
        for tag in remove:
            ws.tags.remove(user_id, tag, by=f"wecom:{member}")

    def sync_contacts(self, members: Iterable[str], *, limit: int = 100) -> dict[str, int]:
        """Page through the customers of ``members`` (``batch/get_by_user``) and
        mirror them in siyu: create missing users (``source="wecom"``, the
        contact's ``state``), and apply the siyu tags mapped to their WeCom tag
        ids (run :meth:`pull_tags` first to map them). Returns counts
        ``{"seen", "created", "tagged"}``."""
        ws = self._require_workspace("syncing contacts")
        with ws.read() as tx:
            by_id = {v: k.removeprefix(_TAG_KEY) for k, v in tx.channels.state_items(self.name, _TAG_KEY)}
        counts = {"seen": 0, "created": 0, "tagged": 0}
        for item in self.client.iter_contacts(members, limit=limit):
            contact = item.get("external_contact") or {}
            follow = item.get("follow_info") or {}
            ext = str(contact.get("external_userid") or "")
            if not ext:
                continue
            counts["seen"] += 1
            with ws.write():
                user = ws.users.find(wecom_external_userid=ext)
                if user is None:
                    user = ws.users.add(wecom_external_userid=ext, source="wecom", state=follow.get("state") or None)
                    counts["created"] += 1
                for tag_id in follow.get("tag_id") or []:
                    tag = by_id.get(str(tag_id))
                    if tag is not None and ws.tags.apply(user.id, tag, by=f"wecom:{follow.get('userid', '')}"):
                        counts["tagged"] += 1
        return counts

    # -- callbacks --------------------------------------------------------------------------
    def callbacks(self, **options: Any) -> Any:
        """The callback handler (:class:`siyu.channels.wecom.callbacks.WeComCallbacks`)."""
        from .callbacks import WeComCallbacks

        return WeComCallbacks(self, **options)

    def crypto(self, random: Callable[[], bytes] | None = None) -> Any:
        """The WXBizMsgCrypt of this app's callback settings."""
        from .crypto import WXBizMsgCrypt

        token, key = self.config["token"], self.config["encoding_aes_key"]
        if not token or not key:
            raise ValidationError(
                "WeCom callbacks need token= and encoding_aes_key= (SIYU_WECOM_TOKEN / SIYU_WECOM_ENCODING_AES_KEY)"
            )
        return WXBizMsgCrypt(str(token), str(key), str(self.config["corp_id"]), random=random)
