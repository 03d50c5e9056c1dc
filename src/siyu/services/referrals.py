"""Referrals: one referral graph for invites, 任务宝, 拼团 and 分销.

``ws.referrals`` issues invite codes, binds invitees to inviters under the
binding rules, answers graph questions (inviter, invitees, downline, upline,
leaderboard, fission stats) and carries the fission tools built on the graph:
``ws.referrals.tasks`` (任务宝 invite tasks), ``ws.referrals.group_buys``
(拼团), ``ws.referrals.commissions`` (分销 within the legal guards) and
``ws.referrals.fraud`` (guards that hold bindings and rewards for review).

The graph is a forest: one inviter per user, no self-invites, no cycles.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Required, TypedDict

import attrs

from .._clock import aware
from ..errors import (
    AlreadyBound,
    CampaignClosed,
    NotFound,
    NotNewUser,
    ReferralCycle,
    SelfInvite,
    UnknownInviteCode,
    ValidationError,
)
from ..events import (
    Event,
    EventTracked,
    IdentityLinked,
    OrderRecorded,
    OrderRefunded,
    ReferralBound,
    ReferralUnbound,
)
from ..models.referrals import (
    Binding,
    BindingChange,
    FissionStats,
    InviteCode,
    ReferralCampaign,
    ReferralSettings,
)
from ._common import check_int, check_many, check_text, check_user_id, require_user
from .fission.commissions import Commissions
from .fission.forest import ForestCounts, forest_counts_by_id
from .fission.fraud import FraudGuards
from .fission.group_buys import GroupBuys
from .fission.invite_tasks import InviteTasks
from .fission.merge import merge_fission, unmerge_fission
from .fission.stats import compute_stats
from .fission.unbound import record_unbound
from .users import attribute_source

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from ..workspace import Workspace
    from .coupons import Coupons
    from .orders import Orders
    from .points import Points

__all__ = ["Referrals"]

_SETTINGS_KEY = "referrals.settings"
#: Unambiguous characters for codes that people type from posters (no 0/O, 1/I/L).
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 8


def _opt(value: object, name: str, max_length: int) -> str | None:
    return None if value is None else check_text(value, name, max_length=max_length)


class ReferralsMoved(TypedDict, total=False):
    """The referrals part of a merge record: the bindings before, the invitees moved
    under ``keep`` (or dropped, with ``"dropped": True``), whether ``keep`` took ``drop``'s
    inviter and the holds that went with it, and the fission data moved."""

    keep_binding: Required[dict[str, Any] | None]
    drop_binding: Required[dict[str, Any] | None]
    moved: Required[list[dict[str, Any]]]
    keep_took_inviter: bool
    binding_holds: list[int]
    fission: dict[str, Any]


class Referrals:
    """``ws.referrals``: invite codes, binding, graph queries and fission tools.

    >>> code = ws.referrals.invite_code(alice.id, campaign="spring", channel_state="poster_a")
    >>> ws.referrals.bind(bob.id, code).inviter_id == alice.id
    True
    """

    name = "referrals"

    def __init__(self, uow: UnitOfWork, *, points: Points, coupons: Coupons, orders: Orders) -> None:
        self._uow = uow
        self.fraud = FraudGuards(uow, self)
        self.tasks = InviteTasks(uow, self, points=points, coupons=coupons)
        self.group_buys = GroupBuys(uow, self, orders=orders)
        self.commissions = Commissions(uow, self)

    # -- settings ----------------------------------------------------------------------
    def settings(self) -> ReferralSettings:
        """The binding rules in force (shared by every process on the database)."""
        with self._uow.read() as tx:
            return self._settings(tx)

    @staticmethod
    def _settings(tx: Transaction) -> ReferralSettings:
        raw = tx.meta.get(_SETTINGS_KEY)
        if raw is None:
            return ReferralSettings()
        data = json.loads(raw)
        protection = data.get("protection_s")
        return ReferralSettings(
            protection=None if protection is None else timedelta(seconds=protection),
            require_new=bool(data["require_new"]),
            customer_tags=tuple(data["customer_tags"]),
        )

    def configure(
        self,
        *,
        protection: object = ...,
        require_new: bool | None = None,
        customer_tags: Iterable[str] | None = None,
    ) -> ReferralSettings:
        """Change the binding rules; arguments not given keep their value.

        ``protection``: how long a binding is protected from other inviters
        (``None``: forever — the first valid binding wins). After it, a valid
        binding by another inviter takes the user over, and is recorded.
        ``require_new``: refuse invitees who are already customers (have
        bought, or hold one of ``customer_tags``).
        """
        with self._uow.write() as tx:
            current = self._settings(tx)
            if protection is not ...:
                if protection is not None and (not isinstance(protection, timedelta) or protection <= timedelta()):
                    raise ValidationError(f"protection must be a positive timedelta or None, got {protection!r}")
                current = ReferralSettings(protection=protection, require_new=current.require_new,  # type: ignore[arg-type]
                                           customer_tags=current.customer_tags)
            if require_new is not None:
                if not isinstance(require_new, bool):
                    raise ValidationError(f"require_new must be True or False, got {require_new!r}")
                current = ReferralSettings(protection=current.protection, require_new=require_new,
                                           customer_tags=current.customer_tags)
            if customer_tags is not None:
                tags = tuple(check_text(t, "customer tag", max_length=46)
                             for t in check_many(customer_tags, "customer_tags", "['vip', 'wholesale']"))
                current = ReferralSettings(protection=current.protection, require_new=current.require_new,
                                           customer_tags=tags)
            tx.meta.set(_SETTINGS_KEY, json.dumps({
                "protection_s": None if current.protection is None else current.protection.total_seconds(),
                "require_new": current.require_new,
                "customer_tags": list(current.customer_tags),
            }))
        return current

    # -- campaigns and codes ---------------------------------------------------------------
    def campaign(
        self, name: str, *, starts_at: datetime | None = None, ends_at: datetime | None = None
    ) -> ReferralCampaign:
        """Create or update a referral campaign. Its codes bind only between
        ``starts_at`` and ``ends_at`` (open-ended if not given); outside, binding
        raises :class:`~siyu.errors.CampaignClosed`."""
        check_text(name, "campaign", max_length=64)
        start = None if starts_at is None else aware(starts_at, "starts_at")
        end = None if ends_at is None else aware(ends_at, "ends_at")
        if start is not None and end is not None and end <= start:
            raise ValidationError(f"campaign {name!r}: ends_at {end.isoformat()} is not after starts_at")
        campaign = ReferralCampaign(name=name, starts_at=start, ends_at=end)
        with self._uow.write() as tx:
            tx.referrals.save_campaign(campaign, self._uow.now())
        return campaign

    def get_campaign(self, name: str) -> ReferralCampaign | None:
        check_text(name, "name", max_length=64)
        with self._uow.read() as tx:
            return tx.referrals.campaign(name)

    def _check_open(self, tx: Transaction, campaign: str | None, now: datetime) -> None:
        if campaign is None:
            return
        info = tx.referrals.campaign(campaign)
        if info is None:
            return
        if info.starts_at is not None and now < info.starts_at:
            raise CampaignClosed(
                f"campaign {campaign!r} starts at {info.starts_at.isoformat()}; bind after that, or move its "
                "start with ws.referrals.campaign(name, starts_at=...)"
            )
        if info.ends_at is not None and now >= info.ends_at:
            raise CampaignClosed(
                f"campaign {campaign!r} ended at {info.ends_at.isoformat()}; its codes no longer bind. "
                "Issue a code of a running campaign, or extend it with ws.referrals.campaign(name, ends_at=...)"
            )

    def invite_code(self, inviter_id: int, *, campaign: str | None = None, channel_state: str | None = None) -> str:
        """The invite code of ``inviter_id`` for a campaign and channel state.

        The same arguments return the same code, so a poster can be reprinted.
        The code also works as a link parameter or a channel-QR ``state``
        value (8 characters, no look-alike letters)."""
        camp = _opt(campaign, "campaign", 64)
        state = _opt(channel_state, "channel_state", 30)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, inviter_id)
            self._check_open(tx, camp, now)
            existing = tx.referrals.code_for(uid, camp, state)
            if existing is not None:
                return existing.code
            while True:
                code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
                if tx.referrals.get_code(code) is None:
                    break
            tx.referrals.add_code(InviteCode(code=code, inviter_id=uid, campaign=camp, channel_state=state,
                                             created_at=now))
        return code

    def code_info(self, code: str) -> InviteCode:
        """Who issued ``code``, for which campaign and channel state."""
        with self._uow.read() as tx:
            return self._code(tx, code)

    @staticmethod
    def _code(tx: Transaction, code: object) -> InviteCode:
        if not isinstance(code, str) or not code.strip():
            raise ValidationError(f"an invite code must be a non-empty str, got {code!r}")
        info = tx.referrals.get_code(code.strip().upper())
        if info is None:
            raise UnknownInviteCode(
                f"no invite code {code!r}; codes come from ws.referrals.invite_code(inviter_id, ...) "
                "(check for a typo or a truncated link)"
            )
        return info

    # -- funnel inputs ------------------------------------------------------------------------
    def record_share(self, inviter_id: int, *, campaign: str | None = None, channel_state: str | None = None,
                     count: int = 1) -> None:
        """Count invites ``inviter_id`` sent (a poster shared, a link forwarded):
        the funnel's first step and the *invites sent* of the K-factor, which
        also counts ``inviter_id`` among the users who invite."""
        camp, state = _opt(campaign, "campaign", 64), _opt(channel_state, "channel_state", 30)
        check_int(count, "count", minimum=1, maximum=1_000_000)
        with self._uow.write() as tx:
            uid = require_user(tx, inviter_id)
            tx.referrals.add_funnel(camp or "", state or "", "sent", count)
            tx.referrals.add_share(camp or "", state or "", uid, count)

    def record_scan(self, code: str) -> InviteCode:
        """Count a scan or click of an invite code (the funnel's second step)."""
        with self._uow.write() as tx:
            info = self._code(tx, code)
            tx.referrals.add_funnel(info.campaign or "", info.channel_state or "", "scanned", 1)
        return info

    def record_action(self, user_id: int, action: str) -> bool:
        """Record that a user completed ``action`` (``"wecom_added"``,
        ``"first_login"`` ...); 任务宝 tasks can require one for a valid invite.
        Events tracked with ``ws.events.track`` are recorded as actions too.
        Returns ``False`` if it was already recorded. Progress of the user's
        inviter in running tasks is re-evaluated."""
        name = check_text(action, "action", max_length=64)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            new = tx.referrals.add_action(uid, name, now)
            if new:
                self._after_change(tx, uid)
        return new

    def record_leave(self, user_id: int, *, at: datetime | None = None) -> None:
        """Record that the user left (deleted the WeCom contact, unfollowed):
        an invite that leaves within a task's stay window is deducted, and a
        leave right after the inviter's reward is held for review."""
        when = self._uow.now() if at is None else aware(at, "at")
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            tx.referrals.set_left(uid, when)
            self.fraud._on_leave(tx, uid, when)

    def record_return(self, user_id: int) -> None:
        """Forget a recorded leave (the user came back)."""
        with self._uow.write() as tx:
            tx.referrals.set_left(require_user(tx, user_id), None)

    # -- binding ----------------------------------------------------------------------------------
    def bind(
        self,
        invitee_id: int,
        code: str | None = None,
        *,
        inviter_id: int | None = None,
        campaign: str | None = None,
        channel_state: str | None = None,
        device: str | None = None,
    ) -> Binding:
        """Bind ``invitee_id`` to the owner of ``code`` (or to ``inviter_id``).

        Returns the binding in force. First valid binding wins: binding an
        invitee again to the inviter they already have is idempotent (the
        stored binding is returned, with its first campaign and code); binding
        them to another inviter raises :class:`~siyu.errors.AlreadyBound`
        (carrying the binding in force and its ``inviter_id``) — unless the
        protection window (see :meth:`configure`) is over, in which case this
        binding takes over, recorded in :meth:`history`. Refused, changing
        nothing: unknown codes (:class:`~siyu.errors.UnknownInviteCode`), closed
        campaigns (:class:`~siyu.errors.CampaignClosed`), self-invites
        (:class:`~siyu.errors.SelfInvite`), cycles
        (:class:`~siyu.errors.ReferralCycle`) and invitees who are already
        customers (:class:`~siyu.errors.NotNewUser`, while ``require_new``).
        ``device`` (a device fingerprint) feeds the fraud guards. The binding
        fills the invitee's source attribution if they have none.
        """
        if (code is None) == (inviter_id is None):
            raise ValidationError("bind needs exactly one of code=... or inviter_id=...")
        camp, state = _opt(campaign, "campaign", 64), _opt(channel_state, "channel_state", 30)
        dev = _opt(device, "device", 128)
        now = self._uow.now()
        with self._uow.write() as tx:
            if code is not None:
                if camp is not None or state is not None:
                    raise ValidationError("campaign and channel_state come from the code; do not pass them too")
                info = self._code(tx, code)
                inviter, camp, state, used = _owner(tx, info), info.campaign, info.channel_state, info.code
            else:
                inviter, used = check_user_id(inviter_id), None
            self._check_open(tx, camp, now)
            invitee = require_user(tx, invitee_id)
            require_user(tx, inviter)
            if invitee == inviter:
                raise SelfInvite(f"user {invitee} cannot invite themselves; bind them with someone else's code")
            self._serialize(tx, invitee, inviter)
            existing = tx.referrals.binding(invitee)
            via = "code" if used is not None else "direct"
            if existing is not None:
                if existing.inviter_id == inviter:
                    return existing
                settings = self._settings(tx)
                if settings.protection is None or now < existing.bound_at + settings.protection:
                    until = "for good" if settings.protection is None else \
                        f"until {(existing.bound_at + settings.protection).isoformat()}"
                    raise AlreadyBound(
                        f"user {invitee} is already bound to inviter {existing.inviter_id} (since "
                        f"{existing.bound_at.isoformat()}), who keeps them {until}; nothing was changed. "
                        "Move them explicitly with ws.referrals.rebind(...), or set a protection window with "
                        "ws.referrals.configure(protection=...)",
                        binding=existing, inviter_id=existing.inviter_id)
                via = "takeover"
            else:
                # A takeover after the protection window is the 分销 "customer protection" rule: the
                # user may well have bought by then, so the new-user rule guards first bindings only.
                self._check_new(tx, invitee)
            self._check_cycle(tx, invitee, inviter)
            binding = Binding(invitee_id=invitee, inviter_id=inviter, campaign=camp, channel_state=state, code=used,
                              bound_at=now, via=via, device=dev)
            return self._attach(tx, binding, previous=existing, reason=via)

    def import_bindings(self, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> int:
        """Load existing referral relations in bulk (a migration from an SCRM or
        a mall), all or nothing. Each row is ``(invitee_id, inviter_id)`` or a
        dict with ``invitee_id``, ``inviter_id`` and optionally ``campaign``,
        ``channel_state``, ``bound_at``. The graph rules hold — one inviter per
        user, no self-invites, no cycles — but imported history is trusted: the
        new-user rule, fraud guards and source attribution do not apply, and
        no events are emitted. Returns how many bindings were added (rows that
        repeat a user's current binding are skipped)."""
        now = self._uow.now()
        parsed: list[Binding] = []
        seen: dict[int, int] = {}
        for index, row in enumerate(check_many(rows, "rows", "[(invitee_id, inviter_id)]")):
            try:
                if isinstance(row, Mapping):
                    unknown = set(row) - {"invitee_id", "inviter_id", "campaign", "channel_state", "bound_at"}
                    if unknown:
                        raise ValidationError(f"unknown field(s) {sorted(unknown)}")
                    invitee, inviter = check_user_id(row.get("invitee_id")), check_user_id(row.get("inviter_id"))
                    camp = _opt(row.get("campaign"), "campaign", 64)
                    state = _opt(row.get("channel_state"), "channel_state", 30)
                    at = now if row.get("bound_at") is None else aware(row["bound_at"], "bound_at")
                else:
                    if isinstance(row, str | bytes) or not isinstance(row, Sequence) or len(row) != 2:
                        raise ValidationError(f"expected (invitee_id, inviter_id), got {row!r:.80}")
                    invitee, inviter = check_user_id(row[0]), check_user_id(row[1])
                    camp = state = None
                    at = now
            except ValidationError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
            if invitee == inviter:
                raise SelfInvite(f"row {index}: user {invitee} cannot invite themselves")
            if invitee in seen:
                raise ValidationError(f"row {index}: user {invitee} already has an inviter in row {seen[invitee]}; "
                                      "one inviter per user")
            seen[invitee] = index
            parsed.append(Binding(invitee_id=invitee, inviter_id=inviter, campaign=camp, channel_state=state,
                                  code=None, bound_at=at, via="import"))
        with self._uow.write() as tx:
            self._serialize(tx)
            ids = sorted({b.invitee_id for b in parsed} | {b.inviter_id for b in parsed})
            missing = set(ids) - tx.users.exists(ids)
            if missing:
                raise NotFound(f"no user with id {min(missing)}" + (
                    f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            fresh: list[Binding] = []
            for binding in parsed:
                current = tx.referrals.binding(binding.invitee_id) if len(parsed) < 10_000 else None
                if current is not None:
                    if current.inviter_id == binding.inviter_id:
                        continue
                    raise ValidationError(f"user {binding.invitee_id} is already bound to {current.inviter_id}; "
                                          "move them with ws.referrals.rebind(...) instead")
                fresh.append(binding)
            if len(parsed) >= 10_000:
                bound = {u for u, p in zip(*tx.referrals.parents(), strict=True) if p}
                clash = [b for b in fresh if b.invitee_id in bound]
                if clash:
                    raise ValidationError(f"user {clash[0].invitee_id} is already bound; import only unbound users "
                                          "or move them with ws.referrals.rebind(...)")
            self._check_forest(tx, fresh)
            tx.referrals.attach_many(fresh)
            tx.referrals.log_changes([BindingChange(invitee_id=b.invitee_id, old_inviter_id=None,
                                                    new_inviter_id=b.inviter_id, at=now, reason="import")
                                      for b in fresh])
        return len(fresh)

    @staticmethod
    def _check_forest(tx: Transaction, bindings: list[Binding]) -> None:
        """Refuse an import whose edges, with the stored ones, would close a cycle.
        Every invitee is currently a root, so only the new edges can loop."""
        parent = {b.invitee_id: b.inviter_id for b in bindings}
        stored_root = tx.referrals.roots(sorted(set(parent.values()) - set(parent)))
        state: dict[int, int] = {}  # 1 = on the current walk, 2 = known to end at a root
        for start in parent:
            walk = []
            node = start
            while node in parent and state.get(node) != 2:
                if state.get(node) == 1:
                    raise ReferralCycle(f"the imported bindings form a cycle through user {node}; "
                                        "each user's chain of inviters must end at someone nobody invited")
                state[node] = 1
                walk.append(node)
                node = parent[node]
                root = stored_root.get(node)
                if root is not None and root != node and root in parent:
                    node = root
            for member in walk:
                state[member] = 2

    def rebind(
        self, invitee_id: int, *, reason: str, inviter_id: int | None = None, code: str | None = None
    ) -> Binding:
        """Move ``invitee_id`` to another inviter, explicitly (an operator's
        correction, a dispute). ``reason`` is recorded in :meth:`history`. The
        new-user rule does not apply (the user was already bound); self-invites
        and cycles are still refused."""
        why = check_text(reason, "reason", max_length=200)
        if (code is None) == (inviter_id is None):
            raise ValidationError("rebind needs exactly one of code=... or inviter_id=...")
        now = self._uow.now()
        with self._uow.write() as tx:
            camp: str | None = None
            state: str | None = None
            used: str | None = None
            if code is not None:
                info = self._code(tx, code)
                inviter, camp, state, used = _owner(tx, info), info.campaign, info.channel_state, info.code
            else:
                inviter = check_user_id(inviter_id)
            invitee = require_user(tx, invitee_id)
            require_user(tx, inviter)
            if invitee == inviter:
                raise SelfInvite(f"user {invitee} cannot invite themselves")
            self._serialize(tx, invitee, inviter)
            existing = tx.referrals.binding(invitee)
            if existing is not None and existing.inviter_id == inviter:
                return existing
            self._check_cycle(tx, invitee, inviter)
            binding = Binding(invitee_id=invitee, inviter_id=inviter, campaign=camp, channel_state=state, code=used,
                              bound_at=now, via="rebind")
            return self._attach(tx, binding, previous=existing, reason=f"rebind: {why}", fraud=False)

    def unbind(self, invitee_id: int, *, reason: str) -> bool:
        """Remove the invitee's binding (recorded); ``False`` if there was none.
        The invitee keeps their own downline."""
        why = check_text(reason, "reason", max_length=200)
        now = self._uow.now()
        with self._uow.write() as tx:
            invitee = require_user(tx, invitee_id)
            self._serialize(tx, invitee)
            return self._detach(tx, invitee, f"unbind: {why}", now)

    def _serialize(self, tx: Transaction, *user_ids: int) -> None:
        # Row locks on the two users are not enough to keep a forest: A→B and C→D, then B→C and D→A in
        # two pairs of concurrent transactions would close a cycle. Graph writes are rare next to reads,
        # so they take the graph's one lock as well as the users' locks (nothing else waits for it).
        tx.serialize("referrals.graph")
        tx.meta.bump("referrals")
        for uid in sorted(set(user_ids)):
            tx.referrals.lock(uid)

    def _check_new(self, tx: Transaction, invitee: int) -> None:
        settings = self._settings(tx)
        if not settings.require_new:
            return
        why = self._customer_reason(tx, invitee, settings)
        if why:
            raise NotNewUser(
                f"user {invitee} is already a customer ({why}), and only new users can be bound as invitees; "
                "call ws.referrals.configure(require_new=False) to allow existing customers"
            )

    def _customer_reason(self, tx: Transaction, user_id: int, settings: ReferralSettings) -> str | None:
        if tx.referrals.customers([user_id]):
            return "has a recorded order"
        paid = _paid_orders(tx, user_id)
        if paid:
            return f"has {paid} paid order(s)"
        held = {f"{g}/{n}" for _, g, n in tx.tags.applied(user_id)}
        tags = sorted(held & set(settings.customer_tags))
        return f"holds tag {tags[0]}" if tags else None

    @staticmethod
    def _check_cycle(tx: Transaction, invitee: int, inviter: int) -> None:
        if invitee in tx.referrals.upline(inviter, None):
            raise ReferralCycle(
                f"user {inviter} is in user {invitee}'s downline, so binding {invitee} under {inviter} would "
                "make a cycle; a user can only be invited by someone outside their own downline"
            )

    def _attach(self, tx: Transaction, binding: Binding, *, previous: Binding | None, reason: str,
                fraud: bool = True) -> Binding:
        reasons = self.fraud._check_binding(tx, binding) if fraud else []
        if reasons:
            binding = Binding(**{**_fields(binding), "status": "held"})
        if previous is not None:
            tx.referrals.detach(binding.invitee_id)
            tx.emit(ReferralUnbound(at=binding.bound_at, invitee_id=binding.invitee_id,
                                    inviter_id=previous.inviter_id, reason=reason))
        tx.referrals.attach(binding)
        tx.referrals.log_change(BindingChange(
            invitee_id=binding.invitee_id, old_inviter_id=None if previous is None else previous.inviter_id,
            new_inviter_id=binding.inviter_id, at=binding.bound_at, reason=reason))
        tx.emit(ReferralBound(
            at=binding.bound_at, invitee_id=binding.invitee_id, inviter_id=binding.inviter_id,
            campaign=binding.campaign, channel_state=binding.channel_state, via=binding.via,
            previous_inviter_id=None if previous is None else previous.inviter_id, held=bool(reasons)))
        if reasons:
            self.fraud._hold(tx, "binding", binding.invitee_id, binding.inviter_id, reasons, binding.bound_at)
        user = tx.users.get(binding.invitee_id)
        if user is not None and user.source is None and user.source_campaign is None and user.source_state is None:
            attribute_source(tx, binding.invitee_id, source="referral", campaign=binding.campaign,
                             state=binding.channel_state, now=self._uow.now())
        if binding.status == "active":
            self.tasks._evaluate_for(tx, binding.inviter_id)
        result = tx.referrals.binding(binding.invitee_id)
        assert result is not None
        return result

    def _detach(self, tx: Transaction, invitee: int, reason: str, at: datetime) -> bool:
        existing = tx.referrals.binding(invitee)
        if existing is None:
            return False
        tx.referrals.detach(invitee)
        tx.referrals.log_change(BindingChange(invitee_id=invitee, old_inviter_id=existing.inviter_id,
                                              new_inviter_id=None, at=at, reason=reason))
        tx.emit(ReferralUnbound(at=at, invitee_id=invitee, inviter_id=existing.inviter_id, reason=reason))
        return True

    def _after_change(self, tx: Transaction, user_id: int) -> None:
        binding = tx.referrals.binding(user_id)
        if binding is not None and binding.status == "active":
            self.tasks._evaluate_for(tx, binding.inviter_id)

    # -- queries ----------------------------------------------------------------------------------
    def binding(self, user_id: int) -> Binding | None:
        """The binding of ``user_id`` to their inviter, or ``None``."""
        with self._uow.read() as tx:
            return tx.referrals.binding(require_user(tx, user_id, active=False))

    def inviter_of(self, user_id: int) -> int | None:
        """Who invited ``user_id`` (``None`` if nobody did)."""
        found = self.binding(user_id)
        return None if found is None else found.inviter_id

    def invitees(self, user_id: int, depth: int | None = 1) -> list[int]:
        """Users below ``user_id`` down to ``depth`` levels (1 = invited directly;
        ``None`` = the whole downline), ascending."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            if depth is None:
                return tx.referrals.downline(uid)
            return sorted(self._levels(tx, uid, check_int(depth, "depth", minimum=1)))

    @staticmethod
    def _levels(tx: Transaction, uid: int, depth: int) -> list[int]:
        found: list[int] = []
        level = [uid]
        for _ in range(depth):
            level = tx.referrals.children(level)
            if not level:
                break
            found.extend(level)
        return found

    def downline_size(self, user_id: int, depth: int | None = None) -> int:
        """How many users are below ``user_id`` (within ``depth`` levels if given).
        The unlimited count is one row read, whatever the tree's size."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            if depth is None:
                return tx.referrals.downline_size(uid)
            return len(self._levels(tx, uid, check_int(depth, "depth", minimum=1)))

    def upline(self, user_id: int, levels: int | None = 2) -> list[int]:
        """The inviter, the inviter's inviter ... nearest first, at most
        ``levels`` of them (``None``: up to the root)."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.referrals.upline(uid, None if levels is None else check_int(levels, "levels", minimum=1))

    def depth(self, user_id: int) -> int:
        """How many inviters are above the user (0 for a root or an unbound user)."""
        return len(self.upline(user_id, None))

    def leaderboard(self, campaign: str | None = None, *, top: int = 20) -> list[tuple[int, int]]:
        """``(inviter_id, invitees)`` with the most active invitees first (of one
        campaign, or overall); held bindings do not count."""
        camp = _opt(campaign, "campaign", 64)
        check_int(top, "top", minimum=1, maximum=10_000)
        with self._uow.read() as tx:
            return tx.referrals.leaderboard(camp, top, ["active"])

    def history(self, user_id: int) -> list[BindingChange]:
        """Every binding, rebinding and unbinding of the user, oldest first."""
        with self._uow.read() as tx:
            return tx.referrals.changes(require_user(tx, user_id, active=False))

    def downline_counts(self, *, use_numpy: bool | None = None) -> ForestCounts:
        """Every user in the graph at once: direct invitees, invitees within 2
        levels, total downline and depth, in one level-by-level pass over the
        whole forest (vectorised when numpy is installed — the ``fast`` extra).
        Look one user up with ``counts.of(user_id)``."""
        with self._uow.read() as tx:
            users, parents = tx.referrals.parents()
        return forest_counts_by_id(users, parents, use_numpy=use_numpy)

    def stats(self, campaign: str | None = None, *, top: int = 10) -> FissionStats:
        """Fission metrics: fission rate, K-factor, generations and depth,
        funnels per campaign and channel state, top inviters."""
        camp = _opt(campaign, "campaign", 64)
        check_int(top, "top", minimum=0, maximum=10_000)
        with self._uow.read() as tx:
            return compute_stats(tx, camp, top)

    # -- events from other domains ------------------------------------------------------------------
    #: The event classes the ``siyu.referrals`` consumer reads.
    event_types = (OrderRecorded, EventTracked, IdentityLinked, OrderRefunded)

    def on_events(self, events: Sequence[Event]) -> None:
        """The ``siyu.referrals`` event consumer: orders make customers (new-user rule, funnel),
        commissions and purchase-based invites; refunds undo them; tracked events and linked
        identities can make invites valid. Each event takes effect once: a redelivered one
        changes nothing."""
        with self._uow.write() as tx:
            # Users nobody invited (most buyers of a bulk import) in a few statements; the rest one by one.
            done = record_unbound(tx, events)
            for position, event in enumerate(events):
                if position not in done:
                    self._on_event(tx, event)

    def siyu_on_events(self, events: Sequence[Event], workspace: Workspace | None = None) -> None:
        """Handle events as the ``siyu.referrals`` consumer would (replays, tests)."""
        self.on_events(events)

    def siyu_on_event(self, event: Event) -> None:
        """Handle one event, as a delivery of just that event would (replays, tests)."""
        self.on_events([event])

    def _on_event(self, tx: Transaction, event: Event) -> None:
        if isinstance(event, OrderRecorded):
            if not tx.referrals.add_purchase(event.order_id, event.user_id, event.paid_at, event.total_fen):
                return  # delivered before: everything below already happened
            self._record_customer(tx, event.user_id, event.paid_at)
            self.commissions._on_order(tx, event)
            self._after_change(tx, event.user_id)
        elif isinstance(event, EventTracked):
            # A behaviour tracked with ws.events.track counts as a completed action for 任务宝 validity.
            if tx.referrals.add_action(event.user_id, event.kind, event.at):
                self._after_change(tx, event.user_id)
        elif isinstance(event, IdentityLinked):
            self._after_change(tx, event.user_id)  # e.g. the invitee added the WeCom account: tasks may count them
        elif isinstance(event, OrderRefunded):
            if not tx.fission.claim_event("refund", event.refund_id, event.at):
                return
            tx.referrals.refund_purchase(event.order_id, event.amount_fen)
            self.commissions._on_refund(tx, event)
            binding = tx.referrals.binding(event.user_id)
            if binding is not None:
                self.tasks._reconcile(tx, binding.inviter_id)

    def _record_customer(self, tx: Transaction, user_id: int, at: datetime) -> None:
        if tx.referrals.customers([user_id]):
            return
        tx.referrals.add_customer(user_id, at)

    # -- merge participant ----------------------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> ReferralsMoved:
        """``drop``'s invitees move under ``keep``; ``keep`` takes ``drop``'s
        inviter if it has none (and no cycle results). Commissions, 任务宝
        grants, 拼团 slots and holds follow as :mod:`.fission.merge` describes."""
        tx.meta.bump("referrals")
        record = ReferralsMoved(keep_binding=_dump_opt(tx.referrals.binding(keep)),
                                drop_binding=_dump_opt(tx.referrals.binding(drop)), moved=[])
        drop_binding = tx.referrals.binding(drop)
        if drop_binding is not None:
            tx.referrals.detach(drop)
        for child in tx.referrals.children([drop]):
            child_binding = tx.referrals.binding(child)
            assert child_binding is not None
            tx.referrals.detach(child)
            if child != keep and child not in tx.referrals.upline(keep, None):
                tx.referrals.attach(Binding(**{**_fields(child_binding), "inviter_id": keep}))
                record["moved"].append(_dump(child_binding))
            else:
                record["moved"].append({**_dump(child_binding), "dropped": True})
        if drop_binding is not None and tx.referrals.binding(keep) is None \
                and drop_binding.inviter_id != keep and keep not in tx.referrals.upline(drop_binding.inviter_id, None):
            tx.referrals.attach(Binding(**{**_fields(drop_binding), "invitee_id": keep, "via": "merge"}))
            record["keep_took_inviter"] = True
            # The review of drop's held binding now decides keep's, or it could never be released.
            held = [h.id for h in tx.referrals.holds("held", "binding") if h.subject_id == drop]
            tx.referrals.move_holds(held, subject_id=keep)
            record["binding_holds"] = held
        record["fission"] = merge_fission(tx, keep, drop)
        return record

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: ReferralsMoved, at: datetime) -> None:
        tx.meta.bump("referrals")
        if "fission" in record:  # merges recorded before fission data followed have none
            unmerge_fission(tx, keep, drop, record["fission"])
        tx.referrals.move_holds(record.get("binding_holds", []), subject_id=drop)
        drop_status: str | None = None
        restore_drop = True
        if record.get("keep_took_inviter"):
            taken = tx.referrals.binding(keep)
            if taken is not None and taken.via == "merge":
                drop_status = taken.status  # a review decided while merged stands
                tx.referrals.detach(keep)
            else:
                restore_drop = False  # rejected, unbound or rebound while merged: that decision stands
        for moved in record["moved"]:
            child = moved["invitee_id"]
            restored = _load(moved)
            if not moved.get("dropped"):
                current = tx.referrals.binding(child)
                if current is None or current.inviter_id != keep:
                    continue  # rebound since the merge: the later decision stands
                tx.referrals.detach(child)
                # A review decided while merged (a held binding released) stands too.
                restored = Binding(**{**_fields(restored), "status": current.status})
            if tx.referrals.binding(child) is None and drop not in tx.referrals.downline(child):
                tx.referrals.attach(restored)
        drop_binding = record["drop_binding"]
        if restore_drop and drop_binding is not None and tx.referrals.binding(drop) is None:
            restored = _load(drop_binding)
            if drop_status is not None:
                restored = Binding(**{**_fields(restored), "status": drop_status})
            if drop not in tx.referrals.upline(restored.inviter_id, None) and restored.inviter_id != drop:
                tx.referrals.attach(restored)


def _owner(tx: Transaction, info: InviteCode) -> int:
    """Who a code binds to now: a code printed for a user later merged away
    belongs to the user they were merged into (posters outlive merges)."""
    owner = info.inviter_id
    for _ in range(64):  # merges chain (a into b, b into c); a bound keeps a corrupt chain from spinning
        status, merged_into = tx.users.statuses([owner]).get(owner, ("active", None))
        if status != "merged" or merged_into is None:
            break
        owner = merged_into
    return owner


def _fields(binding: Binding) -> dict[str, Any]:
    return attrs.asdict(binding, recurse=False)


def _dump_opt(binding: Binding | None) -> dict[str, Any] | None:
    return None if binding is None else _dump(binding)


def _dump(binding: Binding) -> dict[str, Any]:
    data = _fields(binding)
    data["bound_at"] = binding.bound_at.isoformat()
    return data


def _load(data: dict[str, Any]) -> Binding:
    fields = {k: v for k, v in data.items() if k != "dropped"}
    fields["bound_at"] = datetime.fromisoformat(fields["bound_at"])
    return Binding(**fields)


def _paid_orders(tx: Transaction, user_id: int) -> int:
    """Paid orders from the commerce domain's store, when that domain is installed."""
    try:
        orders = tx.orders
    except (AttributeError, ImportError, NotImplementedError):
        return 0
    return int(orders.count_paid(user_id))

