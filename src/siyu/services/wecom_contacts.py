"""``ws.wecom``: WeCom customer contacts mirrored in siyu.

The ``wecom`` channel only carries messages and speaks WeCom's API; what a WeCom
contact means for the shop is decided here:

* channel QR codes (渠道活码): :meth:`WeComContacts.add_contact_way` creates one
  and remembers which siyu tags and welcome text go with its ``state``;
* tags both ways: :meth:`~WeComContacts.pull_tags`, :meth:`~WeComContacts.push_tags`,
  :meth:`~WeComContacts.mark_tags`;
* customers: :meth:`~WeComContacts.sync_contacts` pages through the members'
  customers and creates the users siyu lacks;
* callbacks: :meth:`~WeComContacts.callbacks` gives the framework-free decoder of the
  callback URL (:class:`~siyu.channels.wecom.WeComCallbacks`) wired to
  :meth:`~WeComContacts.process`, which turns each contact event into user, tag and
  staff-relation changes:

  * ``add_external_contact`` / ``add_half_external_contact`` / ``edit_external_contact``:
    the user found or created by ``wecom_external_userid``, the source attributed
    (``source="wecom"``, ``state=State``), the contact way's tags applied, the
    (member, customer) relation recorded (``ws.staff.follow``), and the welcome
    message sent if a ``WelcomeCode`` came and the 20 s window is still open;
  * ``del_follow_user`` (the customer deleted the member) and ``del_external_contact``
    (the member deleted the customer; also tagged ``wecom/deleted_by_member``) end
    that one relation (``ws.staff.unfollow``); the customer is lost only when no
    active relation is left. ``Source=DELETE_BY_TRANSFER`` is a transfer, not churn;
  * ``transfer_fail``: the pending transfer to ``UserID`` is reconciled
    (``ws.staff.transfers.failed``);
  * ``change_external_chat`` (customer groups): ``ws.groups`` applies member changes as
    deltas and re-reads the group when it cannot (``siyu.community.callbacks``);
  * ``change_external_tag`` (corp tags edited in the console): the mapping is pulled again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any

from .._text import split_tag
from .._validation import check_many, check_text
from ..channels.wecom.callbacks import WELCOME_WINDOW, ContactEvent, WeComCallbacks
from ..channels.wecom.channel import WeComChannel
from ..community.callbacks import apply_chat_event
from ..errors import ChannelError, SiyuError, ValidationError
from ..staff.callbacks import apply_follow, apply_unfollow, apply_unfollows

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.service import ChannelService
    from ..community import Groups
    from ..staff import Staff
    from ..storage.base import Transaction
    from .tags import Tags
    from .users import Users

__all__ = ["WeComContacts"]

log = logging.getLogger("siyu.channels.wecom")

CHANNEL = "wecom"
_TAG_KEY = "tag:"  # channel_state: "tag:<group>/<name>" -> WeCom tag id
_WAY_KEY = "contact_way:"  # channel_state: "contact_way:<state>" -> {"config_id", "tags", ...}
_ADDED = ("add_external_contact", "add_half_external_contact", "edit_external_contact")


def _is_deletion(event: ContactEvent) -> bool:
    return event.change_type in ("del_follow_user", "del_external_contact") and bool(event.user_id)


def _state(state: str) -> str | None:
    # Contact-way states are <= 30 characters; a 获客链接 customer_channel may be longer.
    return state[:30] or None


class WeComContacts:
    """``ws.wecom``: WeCom contacts, tags and channel QR codes kept in step with siyu.

    Every call goes through the workspace's ``wecom`` channel
    (``ws.channels.get("wecom", corp_id=..., secret=...)`` configures it).
    """

    def __init__(
        self, uow: UnitOfWork, *, channels: ChannelService, users: Users, tags: Tags, staff: Staff, groups: Groups
    ) -> None:
        self._uow = uow
        self._channels = channels
        self._users = users
        self._tags = tags
        self._staff = staff
        self._groups = groups

    @property
    def channel(self) -> WeComChannel:
        """The workspace's ``wecom`` channel."""
        channel = self._channels.get(CHANNEL)
        if not isinstance(channel, WeComChannel):
            raise ValidationError(
                f"the channel installed as 'wecom' is a {type(channel).__name__}, not siyu's WeComChannel"
            )
        return channel

    # -- channel QR codes -----------------------------------------------------------------
    def add_contact_way(
        self, *, state: str, user: Sequence[str], tags: Sequence[str] = (), welcome: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Create a 渠道活码 for ``state`` and remember (in the workspace) which siyu
        ``tags`` and ``welcome`` text apply to customers who add through it."""
        check_text(state, "state", max_length=30)
        for tag in check_many(tags, "tags", "['source/wecom']"):
            split_tag(check_text(tag, "tag"))
        answer = self.channel.client.add_contact_way(state=state, user=user, type=1 if len(user) == 1 else 2, **extra)
        record = {
            "config_id": answer["config_id"],
            "qr_code": answer["qr_code"],
            "tags": list(tags),
            "welcome": welcome,
            "user": list(user),
        }
        with self._uow.write() as tx:
            tx.channels.state_put(CHANNEL, _WAY_KEY + state, json.dumps(record, ensure_ascii=False))
        return record

    def contact_way(self, state: str) -> dict[str, Any] | None:
        """What :meth:`add_contact_way` stored for ``state`` (or ``None``)."""
        check_text(state, "state", max_length=30)
        with self._uow.read() as tx:
            raw = tx.channels.state_get(CHANNEL, _WAY_KEY + state)
        return None if raw is None else dict(json.loads(raw))

    # -- tags -------------------------------------------------------------------------------
    def pull_tags(self) -> dict[str, str]:
        """Define a siyu tag ``<group>/<name>`` for every WeCom corp tag; return
        ``{siyu tag: wecom tag id}``."""
        mapping: dict[str, str] = {}
        for group in self.channel.client.get_corp_tag_list():
            if group.get("deleted"):
                continue
            for tag in group.get("tag") or []:
                if tag.get("deleted"):
                    continue
                mapping[f"{group['group_name']}/{tag['name']}"] = str(tag["id"])
        with self._uow.write() as tx:
            for full, tag_id in mapping.items():
                self._tags.define(full)
                tx.channels.state_put(CHANNEL, _TAG_KEY + full, tag_id)
        return mapping

    def push_tags(self, tags: Iterable[str] | None = None) -> dict[str, str]:
        """Create in WeCom every siyu tag (default: all) it lacks; return
        ``{siyu tag: wecom tag id}`` for all of them."""
        known = self.pull_tags()
        wanted = sorted(set(tags) if tags is not None else set(self._tags.names()))
        client = self.channel.client
        group_ids = {str(g["group_name"]): str(g["group_id"]) for g in client.get_corp_tag_list()}
        missing: dict[str, list[str]] = {}
        for full in wanted:
            if full not in known:
                group, _, name = full.partition("/")
                missing.setdefault(group, []).append(name)
        for group, names in missing.items():
            created = client.add_corp_tag(names, group_id=group_ids.get(group), group_name=group)
            for tag in created.get("tag") or []:
                known[f"{group}/{tag['name']}"] = str(tag["id"])
        with self._uow.write() as tx:
            for full, tag_id in known.items():
                tx.channels.state_put(CHANNEL, _TAG_KEY + full, tag_id)
        return {t: known[t] for t in wanted if t in known}

    def tag_id(self, tag: str) -> str | None:
        """The WeCom tag id synced for a siyu tag."""
        check_text(tag, "tag")
        with self._uow.read() as tx:
            return tx.channels.state_get(CHANNEL, _TAG_KEY + tag)

    def mark_tags(self, user_id: int, *, member: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """Apply siyu tags to a user in siyu AND in WeCom (on each of their external_userids)."""
        wanted = [*check_many(add, "add", "['interest/yoga']"), *check_many(remove, "remove", "['interest/yoga']")]
        ids = {t: self.tag_id(t) for t in wanted}
        unknown = sorted(t for t, i in ids.items() if i is None)
        if unknown:
            raise ValidationError(f"tags {unknown} are not synced with WeCom; run ws.wecom.push_tags() first")
        user = self._users.get(user_id)
        externals = [i.value for i in user.identities if i.kind == "wecom_external_userid"]
        if not externals:
            raise ValidationError(f"user {user_id} has no wecom_external_userid; link one first")
        client = self.channel.client
        for ext in externals:
            client.mark_tag(member, ext, add_tag=[str(ids[t]) for t in add], remove_tag=[str(ids[t]) for t in remove])
        for tag in add:
            self._tags.apply(user_id, tag, by=f"wecom:{member}")
        for tag in remove:
            self._tags.remove(user_id, tag, by=f"wecom:{member}")

    # -- customers --------------------------------------------------------------------------
    def sync_contacts(self, members: Iterable[str], *, limit: int = 100) -> dict[str, int]:
        """Page through the customers of ``members`` (``batch/get_by_user``) and
        mirror them in siyu: create missing users (``source="wecom"``, the
        contact's ``state``), and apply the siyu tags mapped to their WeCom tag
        ids (run :meth:`pull_tags` first to map them). Returns counts
        ``{"seen", "created", "tagged"}``."""
        with self._uow.read() as tx:
            by_id = {v: k.removeprefix(_TAG_KEY) for k, v in tx.channels.state_items(CHANNEL, _TAG_KEY)}
        counts = {"seen": 0, "created": 0, "tagged": 0}
        for item in self.channel.client.iter_contacts(members, limit=limit):
            contact = item.get("external_contact") or {}
            follow = item.get("follow_info") or {}
            ext = str(contact.get("external_userid") or "")
            if not ext:
                continue
            counts["seen"] += 1
            with self._uow.write():
                user = self._users.find(wecom_external_userid=ext)
                if user is None:
                    user = self._users.add(wecom_external_userid=ext, source="wecom",
                                           state=follow.get("state") or None)
                    counts["created"] += 1
                for tag_id in follow.get("tag_id") or []:
                    tag = by_id.get(str(tag_id))
                    if tag is not None and self._tags.apply(user.id, tag, by=f"wecom:{follow.get('userid', '')}"):
                        counts["tagged"] += 1
        return counts

    # -- callbacks --------------------------------------------------------------------------
    def callbacks(
        self,
        *,
        welcome: str | Callable[[ContactEvent], str | None] | None = None,
        inline: bool = False,
        random: Callable[[], bytes] | None = None,
    ) -> WeComCallbacks:
        """The handler of the WeCom callback URL, acting on this workspace.

        ``welcome`` is the default welcome text (a contact way's own ``welcome``
        wins; a callable gets the event and returns the text or ``None``).
        ``inline=True`` processes each event before answering (simple setups,
        tests); the default queues it for ``process_pending()``.
        """
        channel = self.channel
        return WeComCallbacks(
            channel.crypto(random),
            process=lambda event, received_at: self.process(event, welcome=welcome),
            now=lambda: self._uow.now().timestamp(),
            inline=inline,
        )

    def process(
        self, event: ContactEvent, *, welcome: str | Callable[[ContactEvent], str | None] | None = None
    ) -> str:
        """Apply one decoded callback event to the workspace; return what was done.
        A delivery WeCom repeats (same event, customer, member and time) is applied once."""
        if not isinstance(event, ContactEvent):
            raise ValidationError(
                f"event must be a ContactEvent (the WeCom callbacks decode one), got {type(event).__name__} "
                f"{event!r:.80}"
            )
        if event.event == "change_external_tag":
            # Someone edited corp tags in the admin console: refresh the mapping.
            return f"tags pulled: {len(self.pull_tags())}"
        if event.event == "change_external_chat":
            return apply_chat_event(self._groups, self.channel.client, event.fields)
        if event.event != "change_external_contact":
            return f"ignored event {event.event or '(none)'}"
        if not event.external_userid:
            return "ignored: no ExternalUserID"
        with self._uow.write() as tx:
            outcome, after = self._contact_event(tx, event, welcome)
        return outcome if after is None else after(outcome)
        return outcome

    def process_many(
        self, events: Sequence[ContactEvent], *, welcome: str | Callable[[ContactEvent], str | None] | None = None
    ) -> list[str]:
        """:meth:`process` for many events, in order, with one write for each run of
        customer-contact events (a backlog, a replay) instead of one per event. An event
        that fails is undone alone and reported as ``"error: ..."``; the others stay.
        Welcome messages go out after the write commits, group and tag events (which
        call WeCom) between the writes, never inside one."""
        events = check_many(events, "events", "[ContactEvent.from_xml(xml), ...]")
        for index, event in enumerate(events):
            if not isinstance(event, ContactEvent):
                raise ValidationError(f"events[{index}]: expected a ContactEvent, got {type(event).__name__}")
        outcomes = [""] * len(events)
        run: list[int] = []
        for index, event in enumerate(events):
            if event.event == "change_external_contact" and event.external_userid:
                run.append(index)
                continue
            self._process_run(events, run, outcomes, welcome)
            outcomes[index] = self.process(event, welcome=welcome)
        self._process_run(events, run, outcomes, welcome)
        return outcomes

    def _process_run(self, events: Sequence[ContactEvent], run: list[int], outcomes: list[str],
                     welcome: str | Callable[[ContactEvent], str | None] | None) -> None:
        afterwards: list[tuple[int, Callable[[str], str]]] = []
        if run:
            with self._uow.write() as tx:
                for is_deletion, part in groupby(run, key=lambda i: _is_deletion(events[i])):
                    indexes = list(part)
                    if is_deletion and len(indexes) > 1:
                        try:
                            with tx.savepoint():
                                self._deletions(tx, [events[i] for i in indexes], indexes, outcomes)
                            continue
                        except SiyuError:
                            pass  # one of them is refused: apply them one by one to find it
                    for index in indexes:
                        try:
                            with tx.savepoint():
                                outcomes[index], after = self._contact_event(tx, events[index], welcome)
                        except SiyuError as exc:
                            log.warning("WeCom event %s failed: %s", events[index].dedupe_id, exc)
                            outcomes[index] = f"error: {exc}"
                            continue
                        if after is not None:
                            afterwards.append((index, after))
        for index, after in afterwards:
            outcomes[index] = after(outcomes[index])
        run.clear()

    def _deletions(self, tx: Transaction, events: list[ContactEvent], indexes: list[int],
                   outcomes: list[str]) -> None:
        """Relations ended by customers or members, claimed, looked up and applied together."""
        claimed = tx.channels.claim_callbacks(CHANNEL, [e.dedupe_id for e in events], self._uow.now())
        users = self._users.find_many("wecom_external_userid", {e.external_userid for e in events})
        todo: list[tuple[int, ContactEvent, int]] = []
        for index, event, new in zip(indexes, events, claimed, strict=True):
            if not new:
                outcomes[index] = "duplicate"
            elif event.external_userid not in users:
                outcomes[index] = "ignored: unknown customer"
            else:
                todo.append((index, event, users[event.external_userid]))
        texts = apply_unfollows(self._staff, [(user_id, e.user_id, e.change_type, e.fields, e.create_time)
                                              for _, e, user_id in todo])
        for (index, event, user_id), text in zip(todo, texts, strict=True):
            outcomes[index] = text
            if event.change_type == "del_external_contact" and event.fields.get("Source") != "DELETE_BY_TRANSFER":
                self._tags.apply(user_id, "wecom/deleted_by_member", by=f"wecom:{event.user_id}")

    def _contact_event(
        self, tx: Transaction, event: ContactEvent, welcome: str | Callable[[ContactEvent], str | None] | None
    ) -> tuple[str, Callable[[str], str] | None]:
        """One ``change_external_contact`` event inside ``tx``: the outcome, and what to do
        once the write commits (send the welcome, read a failed transfer's result: calls to
        WeCom, never made while the write holds the database), which gives the final outcome."""
        if not tx.channels.claim_callback(CHANNEL, event.dedupe_id, self._uow.now()):
            return "duplicate", None
        if event.change_type in _ADDED:
            outcome, text = self._added(event)
            if event.change_type != "edit_external_contact":
                code, greeting = event.welcome_code, text or _text(welcome, event) or ""
                return outcome, lambda done: done + "; " + self._send_welcome(event, code, greeting)
            return outcome, None
        if event.change_type == "transfer_fail":
            user = self._users.find(wecom_external_userid=event.external_userid)
            if user is None:
                return "ignored: unknown customer", None
            return "transfer failed", lambda _: self._transfer_failed(user.id, event)
        if event.change_type in ("del_follow_user", "del_external_contact"):
            return self._deleted(event), None
        return f"ignored change {event.change_type}", None

    def _added(self, event: ContactEvent) -> tuple[str, str | None]:
        """A customer added (or edited): find or create the user, attribute the source and
        apply the contact way's tags. Returns the outcome and the way's welcome text."""
        way = self.contact_way(event.state) if event.state else None
        user = self._users.find(wecom_external_userid=event.external_userid)
        if user is None:
            user = self._users.add(wecom_external_userid=event.external_userid, source="wecom",
                                   state=_state(event.state))
            outcome = f"created user {user.id}"
        else:
            if event.state and event.change_type != "edit_external_contact":
                self._users.update(user.id, source=user.source or "wecom", state=_state(event.state))
            outcome = f"updated user {user.id}"
        if event.user_id:
            self._users.update(user.id, attributes={"wecom_owner": event.user_id})
            if event.change_type != "edit_external_contact":
                apply_follow(self._staff, user.id, event.user_id, state=event.state, create_time=event.create_time)
        for tag in (way or {}).get("tags", []):
            self._tags.apply(user.id, tag, by=f"wecom:state:{event.state}")
        return outcome, (way or {}).get("welcome")

    def _deleted(self, event: ContactEvent) -> str:
        """A relation ended (by the customer, the member or a transfer)."""
        user = self._users.find(wecom_external_userid=event.external_userid)
        if user is None:
            return "ignored: unknown customer"
        if not event.user_id:
            return "ignored: no UserID"
        outcome = apply_unfollow(self._staff, user.id, event.user_id, event.change_type, event.fields,
                                 event.create_time)
        if event.change_type == "del_external_contact" and event.fields.get("Source") != "DELETE_BY_TRANSFER":
            self._tags.apply(user.id, "wecom/deleted_by_member", by=f"wecom:{event.user_id}")
        return outcome

    def _transfer_failed(self, user_id: int, event: ContactEvent) -> str:
        """``transfer_fail``: reconcile the pending transfer (re-reading ``transfer_result``)."""
        try:
            done = self._staff.transfers.failed(user_id, event.user_id, event.fields.get("FailReason", ""))
        except ChannelError as exc:
            return f"transfer of user {user_id} to {event.user_id}: result not read ({exc}); poll() reads it"
        return f"transfer of user {user_id} to {event.user_id}: " + (
            ", ".join(str(t.status) for t in done) or "no pending transfer")

    def _send_welcome(self, event: ContactEvent, code: str, text: str) -> str:
        if not code:
            reason = "welcome skipped: no WelcomeCode (a console welcome message is configured, or not allowed)"
        elif not text:
            reason = "welcome skipped: no welcome text configured"
        elif self._uow.now().timestamp() > event.create_time + WELCOME_WINDOW:
            reason = "welcome skipped: the 20 s window after the event has passed"
        else:
            try:
                self.channel.client.send_welcome_msg(code, text=text)
                return "welcome sent"
            except ChannelError as exc:
                reason = f"welcome not sent: {exc}"
        log.info("WeCom %s: %s", event.dedupe_id, reason)
        return reason


def _text(welcome: str | Callable[[ContactEvent], str | None] | None, event: ContactEvent) -> str | None:
    return welcome(event) if callable(welcome) else welcome
