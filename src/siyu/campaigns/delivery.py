"""Exactly-once delivery: claim, send, complete.

Every message has a delivery record keyed ``(campaign, user, occurrence)``
(a unique index, so a second record cannot exist). One batch goes through
three steps:

1. **claim** -- in ONE write transaction: pick due ``queued`` records and/or
   the next audience users after the campaign's cursor, run the gates, and
   write each record as ``pending`` (to be sent, with ``claimed_at`` and an
   idempotency key), ``skipped`` (with the gate's reason) or ``queued`` with
   a later ``due_at`` (quiet hours). Write transactions are serialized
   (SQLite ``BEGIN IMMEDIATE``, PostgreSQL's per-schema writer lock), so two
   processes running the same campaign never claim the same user, and the
   contact budget they check already counts every other claimed record.
2. **send** -- outside any transaction, through the channel.
3. **complete** -- in one write transaction: each ``pending`` record becomes
   ``sent``, ``failed``, ``rejected``, ``unavailable``, ``unknown`` or goes
   back to ``queued`` (rate limit, transient failure) with its ``due_at``.

Each claim notes its *holder*: the run that wrote it, in a process whose
liveness the storage can prove (:mod:`siyu.storage.holders`: a file lock on
SQLite, an advisory lock on PostgreSQL, released by the operating system or
the server when the process dies, even by ``kill -9``). A crash between 1 and
3 leaves ``pending`` records whose outcome is unknown; ``resume`` (and any
run) takes over only the records whose holder is provably gone -- a live
sender's claims are never touched, however slow it is -- and recovers them
per channel:

* channels that accept an idempotency key and de-duplicate on it
  (``outbox``, ``webhook``; a plugin says so with the class attribute
  ``accepts_idempotency_key = True``) are sent again with the *same* key, so
  the provider stores or delivers them once;
* every other channel (SMS, WeCom, console ...) marks them ``unknown``,
  like a send whose answer may mean "done" (see below); they are never
  resent blindly, and they count against the contact budget.

An ``unknown`` record on a channel that can ask its provider
(``Channel.reconciles``: WeCom, Alibaba and Tencent SMS) has reason
``reconciling`` and a ``due_at`` once the provider's records have settled
(``Channel.reconcile_after``); every run then asks the provider
(:mod:`siyu.campaigns.reconcile`): found → ``sent``; provably not created →
``queued`` again (a real retry, within ``max_attempts``); still unknown →
asked again later, and after :data:`~siyu.campaigns.reconcile.RECONCILE_WINDOW`
left with reason ``outcome_unknown`` for a person, who settles it with
``ws.campaigns.resolve``. On other channels ``unknown`` records go to a person
at once.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
from pyroaring import BitMap

from ..channels.base import Channel, DeliveryResult, Message, Status
from ..errors import ChannelError
from ..events import CampaignPaused, CampaignSent, DeliverySkipped
from ..identities import mask
from ..storage.contracts.campaigns import CampaignRow, DeliveryRow, NewDelivery
from .gates import (
    ADDRESS_KIND,
    over_limit,
    user_zones,
    window_start,
    without_credit,
)
from .reconcile import reconcile_due
from .records import find, save
from .state import CampaignStatus, Pause, allowed
from .templates import MissingVariable, Renderer
from .variables import UserVariables

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from ..storage.holders import Holders
    from .policy import ContactPolicy
    from .settings import GateConfig

__all__ = ["Runner", "accepts_idempotency_key"]

log = logging.getLogger("siyu.campaigns")

#: How long a transient failure waits before the next attempt, per attempt.
RETRY_BACKOFF = timedelta(seconds=30)
#: Claims written by a siyu that did not note their holder are taken over once this old
#: (the lease that siyu gave its own runs).
LEGACY_LEASE = timedelta(minutes=10)
DEFAULT_RETRY_AFTER = timedelta(seconds=60)


def accepts_idempotency_key(channel: Channel) -> bool:
    """Whether resending a message with the same key cannot deliver it twice
    (the channel class declares it; subclasses inherit the declaration)."""
    return bool(getattr(channel, "accepts_idempotency_key", False))


class _Claim:
    """One claimed batch: records to send with their messages."""

    def __init__(self) -> None:
        self.records: list[tuple[int, int, str, Message]] = []  # (delivery id, user, variant, message)
        self.skipped: dict[str, list[int]] = {}
        self.deferred = 0
        self.attempts: dict[int, int] = {}


@attrs.frozen(kw_only=True)
class _Outcome:
    """What the gates and the renderer made of one batch of users."""

    messages: dict[int, Message]
    skipped: dict[int, str]
    deferred: dict[int, datetime]


class Runner:
    """Runs one campaign occurrence until nothing is due (or a pause)."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        holders: Holders,
        policy: ContactPolicy,
        row: CampaignRow,
        channel: Channel,
        renderer: Renderer,
        gates: GateConfig,
        batch: int = 5_000,
        max_attempts: int = 3,
        variables: UserVariables | None = None,
    ) -> None:
        self.ws = uow
        self.variables = variables if variables is not None else UserVariables()
        self.holders = holders
        #: The contact policy: the consent and suppressed gates.
        self.policy = policy
        self.row = row
        self.channel = channel
        self.renderer = renderer
        self.gates = gates
        self.batch = batch
        self.max_attempts = max_attempts
        self.idempotent = accepts_idempotency_key(channel)
        self.medium = row.consent_channel
        self.kind = ADDRESS_KIND.get(self.medium)
        self._zones: dict[int, Any] | None = None
        #: The holder id written on this run's claims (set while :meth:`run` runs).
        self.holder: str | None = None

    # -- the loop ------------------------------------------------------------------------
    def run(
        self,
        *,
        occurrence: str = "",
        rest: tuple[BitMap, str, str] | None = None,
        recover_after: timedelta | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Recover pending records whose holder is gone (claimed at least
        ``recover_after`` ago), then send due records and (with
        ``rest=(users, variant, phase)``) the users after the cursor.
        Returns counters for a :class:`RunReport`."""
        with self.holders.run() as holder:
            self.holder = holder
            try:
                return self._run(occurrence=occurrence, rest=rest, recover_after=recover_after, limit=limit)
            finally:
                self.holder = None

    def _run(
        self, *, occurrence: str, rest: tuple[BitMap, str, str] | None, recover_after: timedelta | None,
        limit: int | None,
    ) -> dict[str, Any]:
        totals: dict[str, Any] = {
            "claimed": 0, "sent": 0, "failed": 0, "skipped": 0, "deferred": 0, "unknown": 0, "retried": 0,
            "reconciled": 0, "paused_until": None, "skipped_by": {},
        }
        if recover_after is not None:
            self._recover(recover_after, totals)
        reconcile_due(self, totals)
        todo: list[int] = []
        if rest is not None:
            with self.ws.read() as tx:
                done = BitMap(tx.campaigns.existing_users(self.row.id, occurrence))
            todo = list(rest[0] - done)
        handled = 0
        while limit is None or handled < limit:
            size = self.batch if limit is None else min(self.batch, limit - handled)
            claim, more = self._claim(occurrence, todo, rest, size)
            if claim is None:
                break
            handled += len(claim.records) + sum(len(v) for v in claim.skipped.values())
            totals["claimed"] += len(claim.records)
            totals["deferred"] += claim.deferred
            for reason, users in claim.skipped.items():
                totals["skipped"] += len(users)
                totals["skipped_by"][reason] = totals["skipped_by"].get(reason, 0) + len(users)
            pause = self._send(claim, totals)
            if pause is not None:
                totals["paused_until"] = pause
                break
            if not more:
                break
        return totals

    # -- recovery ------------------------------------------------------------------------
    def _orphans(self, rows: Sequence[DeliveryRow], now: datetime, recover_after: timedelta) -> list[DeliveryRow]:
        """The pending records whose holder is provably gone."""
        holders = {d.holder for d in rows if d.holder is not None}
        gone = self.holders.gone(holders) if holders else set()
        legacy = now - max(recover_after, LEGACY_LEASE)
        return [
            d for d in rows
            if (d.holder in gone if d.holder is not None else d.claimed_at is not None and d.claimed_at <= legacy)
        ]

    def _recover(self, recover_after: timedelta, totals: dict[str, Any]) -> None:
        now = self.ws.now()
        with self.ws.read() as tx:
            stale = self._orphans(tx.campaigns.pending(self.row.id, claimed_before=now - recover_after), now,
                                  recover_after)
        if not stale:
            return
        orphaned = {d.id: d.holder for d in stale}
        with self.ws.write() as tx:
            # Re-read inside the write: the holder may have completed some meanwhile, or another
            # process taken them over (they then carry its holder, not the dead one).
            stale = [
                d for d in tx.campaigns.pending(self.row.id, claimed_before=now - recover_after)
                if d.id in orphaned and d.holder == orphaned[d.id]
            ]
            if not self.idempotent:
                tx.campaigns.set_status(
                    [
                        (
                            d.id,
                            {
                                **self.unknown_fields(now),
                                "detail": f"claimed at {d.claimed_at} by a sender that stopped before completing "
                                f"it (its process died); channel {self.channel.name!r} cannot de-duplicate, so "
                                "it is not resent blindly",
                            },
                        )
                        for d in stale
                    ],
                    only_from="pending",
                )
            else:
                # This run holds them now, so nobody else resends them meanwhile.
                tx.campaigns.set_status([(d.id, {"holder": self.holder}) for d in stale], only_from="pending")
        if not self.idempotent:
            totals["unknown"] += len(stale)
            return
        # The channel de-duplicates on the key: send again with the same key.
        for start in range(0, len(stale), self.batch):
            chunk = stale[start : start + self.batch]
            claim = _Claim()
            for d, message in self.messages_for(chunk):
                if message is not None:
                    claim.records.append((d.id, d.user_id, d.variant, message))
            totals["retried"] += len(claim.records)
            pause = self._send(claim, totals)
            if pause is not None:
                totals["paused_until"] = pause
                return

    def unknown_fields(self, now: datetime) -> dict[str, Any]:
        """The fields of a record whose outcome is unknown: due for a provider check when the
        channel can ask, else for a person at once."""
        if self.channel.reconciles:
            return {"status": "unknown", "reason": "reconciling", "completed_at": now,
                    "due_at": now + timedelta(seconds=float(self.channel.reconcile_after))}
        return {"status": "unknown", "reason": "outcome_unknown", "completed_at": now, "due_at": None}

    def messages_for(self, rows: Sequence[DeliveryRow]) -> list[tuple[DeliveryRow, Message | None]]:
        """Each record's message again, with the key it was claimed with (``None``
        when the template can no longer be filled for that user)."""
        with self.ws.read() as tx:
            attributes = self._attributes(tx, [d.user_id for d in rows])
            addresses = self._addresses(tx, [d.user_id for d in rows])
        out: list[tuple[DeliveryRow, Message | None]] = []
        for d in rows:
            recipient = addresses.get(d.user_id, d.recipient or str(d.user_id))
            try:
                message: Message | None = self.renderer.message(
                    d.variant, d.user_id, recipient, attributes.get(d.user_id, {}), d.idem_key
                )
            except MissingVariable:
                message = None
            out.append((d, message))
        return out

    # -- claim ---------------------------------------------------------------------------------
    def _claim(
        self, occurrence: str, todo: list[int], rest: tuple[BitMap, str, str] | None, size: int
    ) -> tuple[_Claim | None, bool]:
        now = self.ws.now()
        with self.ws.write() as tx:
            # find() holds the campaign: one claimer at a time reads and moves the cursor.
            current = find(tx, self.row.id)
            if current.status is CampaignStatus.CANCELLED:
                return None, False
            throttle_left = self._throttle_left(tx, now)
            if throttle_left is not None:
                size = min(size, throttle_left)
                if size <= 0:
                    self._pause(tx, now + timedelta(seconds=60 - now.second % 60 or 60), "throttle")
                    return None, False
            due = tx.campaigns.due(self.row.id, now, size)
            new_users: list[int] = []
            if rest is not None and len(due) < size:
                cursor = current.state.cursors.get(occurrence, 0)
                start = bisect.bisect_right(todo, cursor)
                new_users = todo[start : start + size - len(due)]
            if not due and not new_users:
                return None, False
            variant_of = {d.user_id: d.variant for d in due}
            rest_variant, rest_phase = (rest[1], rest[2]) if rest is not None else ("", "")
            eligible, skipped, deferred, recipients = self._gate(
                tx, [d.user_id for d in due] + new_users, now, lambda uid: variant_of.get(uid, rest_variant)
            )
            outcome = _Outcome(messages=self._render(tx, occurrence, eligible, recipients, skipped,
                                                     lambda uid: variant_of.get(uid, rest_variant)),
                               skipped=skipped, deferred=deferred)
            claim = _Claim()
            self._claim_due(tx, claim, due, outcome, now)
            self._claim_new(tx, claim, new_users, outcome, occurrence, rest_variant, rest_phase, now)
            if new_users:
                save(tx, current, state=current.state.with_cursor(occurrence, new_users[-1]))
            for reason, users_ in claim.skipped.items():
                tx.emit(DeliverySkipped(at=now, campaign_id=self.row.id, reason=reason, user_ids=tuple(users_)))
        return claim, bool(due) or bool(new_users)

    def _render(
        self, tx: Transaction, occurrence: str, eligible: Sequence[int], recipients: dict[int, str],
        skipped: dict[int, str], variant_of: Callable[[int], str],
    ) -> dict[int, Message]:
        """Each eligible user's message; a user the template cannot be filled for is skipped."""
        attributes = self._attributes(tx, eligible)
        messages: dict[int, Message] = {}
        for uid in eligible:
            key = f"campaign:{self.row.id}:{occurrence}:{uid}"
            try:
                messages[uid] = self.renderer.message(
                    variant_of(uid), uid, recipients.get(uid, str(uid)), attributes.get(uid, {}), key
                )
            except MissingVariable:
                skipped[uid] = "missing_variable"
        return messages

    def _claim_due(
        self, tx: Transaction, claim: _Claim, due: Sequence[DeliveryRow], outcome: _Outcome, now: datetime
    ) -> None:
        """Claim, defer or skip the records already due (queued ones, retries)."""
        updates: list[tuple[int, dict[str, Any]]] = []
        for d in due:
            uid = d.user_id
            msg = outcome.messages.get(uid)
            if msg is not None:
                updates.append(
                    (d.id, {"status": "pending", "claimed_at": now, "attempts": d.attempts + 1,
                            "recipient": self._stored_recipient(msg.recipient), "idem_key": msg.key,
                            "reason": None, "holder": self.holder})
                )
                claim.records.append((d.id, uid, d.variant, msg))
                claim.attempts[d.id] = d.attempts + 1
            elif uid in outcome.deferred:
                updates.append((d.id, {"due_at": outcome.deferred[uid], "reason": "quiet_hours"}))
                claim.deferred += 1
            else:
                reason = outcome.skipped.get(uid, "gate")
                updates.append((d.id, {"status": "skipped", "reason": reason, "completed_at": now}))
                claim.skipped.setdefault(reason, []).append(uid)
        tx.campaigns.set_status(updates)

    def _claim_new(
        self, tx: Transaction, claim: _Claim, new_users: Sequence[int], outcome: _Outcome, occurrence: str,
        variant: str, phase: str, now: datetime,
    ) -> None:
        """Write a record for each audience user taken after the cursor: pending, deferred or skipped."""
        fresh: list[tuple[int, str, str | None, str | None]] = []
        fresh_messages: list[Message] = []
        to_insert: list[NewDelivery] = []
        for uid in new_users:
            ready = outcome.messages.get(uid)
            if ready is not None:
                fresh.append((uid, variant, ready.key, self._stored_recipient(ready.recipient)))
                fresh_messages.append(ready)
            elif uid in outcome.deferred:
                to_insert.append(
                    NewDelivery(user_id=uid, variant=variant, phase=phase, status="queued",
                                occurrence=occurrence, due_at=outcome.deferred[uid], reason="quiet_hours")
                )
                claim.deferred += 1
            else:
                reason = outcome.skipped.get(uid, "gate")
                to_insert.append(
                    NewDelivery(user_id=uid, variant=variant, phase=phase, status="skipped",
                                occurrence=occurrence, reason=reason, completed_at=now)
                )
                claim.skipped.setdefault(reason, []).append(uid)
        tx.campaigns.add_deliveries(self.row.id, self.medium, self.row.purpose, to_insert, now)
        ids = tx.campaigns.add_pending(
            self.row.id, self.medium, self.row.purpose, phase, occurrence, fresh, now, holder=self.holder
        )
        for rid, (uid, _, _, _), message in zip(ids, fresh, fresh_messages, strict=True):
            claim.records.append((rid, uid, variant, message))

    def _throttle_left(self, tx: Transaction, now: datetime) -> int | None:
        per_minute = self.gates.throttle
        if per_minute is None:
            return None
        minute = now.replace(second=0, microsecond=0)
        used = sum(1 for _, _, ch in tx.campaigns.touches(minute, purpose=None) if ch == self.medium)
        return per_minute - used

    def _gate(
        self, tx: Transaction, users: Sequence[int], now: datetime, variant_of: Callable[[int], str]
    ) -> tuple[list[int], dict[int, str], dict[int, datetime], dict[int, str]]:
        """Split ``users`` into eligible (ascending), skipped (reason) and deferred (due
        time); ``variant_of`` says which variant each user would get."""
        cfg = self.gates
        skipped: dict[int, str] = {}
        remaining = BitMap(users)

        def drop(blocked: BitMap, reason: str) -> None:
            nonlocal remaining
            hit = remaining & blocked
            for uid in hit:
                skipped[uid] = reason
            remaining = remaining - hit

        drop(remaining - BitMap(tx.campaigns.active_users(remaining)), "inactive")
        if cfg.needs_consent and remaining:
            drop(self.policy.without_consent(tx, self.row.purpose, self.medium, remaining), "consent")
        if remaining:
            drop(self.policy.unreachable(tx, self.medium), "suppressed")
        recipients: dict[int, str] = {}
        if self.kind is not None and remaining:
            recipients = self._addresses(tx, remaining)
            drop(remaining - BitMap(recipients), "no_address")
        if (cfg.budget or cfg.caps) and cfg.counts_toward_budget and remaining:
            periods = [p for p, _ in cfg.budget] + [c["period"] for c in cfg.caps if c.get("period")]
            since = min(window_start(p, now, self.ws.tz) for p in periods)
            touches = tx.campaigns.touches(since, user_ids=remaining)
            if cfg.budget:
                drop(over_limit(touches, cfg.budget, now, self.ws.tz, candidates=remaining), "budget")
            rules = [(c["period"], c["limit"]) for c in cfg.caps if c.get("period")]
            if rules and remaining:
                drop(over_limit(touches, rules, now, self.ws.tz, medium=self.medium, candidates=remaining),
                     "platform_cap")
        if cfg.credits and remaining:
            # A credit is per (recipient, template), and variants may use different templates.
            templates = self.renderer.templates
            name = self.channel.name
            if self.kind is not None:
                need: dict[str, BitMap] = {}
                for uid in remaining:
                    need.setdefault(templates[variant_of(uid)], BitMap()).add(uid)
                broke = without_credit(tx, name, self.kind, need)
            else:  # a plugin medium without an identity kind: credits keyed by user id
                broke = BitMap(
                    uid for uid in remaining
                    if tx.channels.credits(name, recipients.get(uid, str(uid)), templates[variant_of(uid)]) <= 0
                )
            drop(broke, "platform_cap")
        deferred: dict[int, datetime] = {}
        if cfg.quiet is not None and remaining:
            zones = self._user_zones(tx)
            for uid in list(remaining):
                local = now.astimezone(zones.get(uid, self.ws.tz))
                if cfg.quiet.contains(local):
                    deferred[uid] = cfg.quiet.next_open(local)
            remaining = remaining - BitMap(deferred)
        return list(remaining), skipped, deferred, recipients

    def _addresses(self, tx: Transaction, users: Iterable[int]) -> dict[int, str]:
        """Each user's address on this medium (empty for media that address users by id)."""
        found: dict[int, str] = {}
        if self.kind is None:
            return found
        for uid in users:
            for ident in tx.users.identities(uid):
                if ident.kind == self.kind:
                    found[uid] = ident.value
                    break
        return found

    def _stored_recipient(self, recipient: str) -> str:
        # Records keep a masked address: the identities table holds (and may encrypt) the real one.
        return recipient if self.kind is None else mask(self.kind, recipient)

    def _user_zones(self, tx: Transaction) -> dict[int, Any]:
        if self._zones is None:
            self._zones = user_zones(tx.campaigns.attribute_values(self.gates.tz_attribute), self.ws.tz)
        return self._zones

    def _attributes(self, tx: Transaction, users: Sequence[int]) -> dict[int, dict[str, Any]]:
        names = self.renderer.all_user_variables()
        if not users or not names:
            return {}
        stored = [n for n in names if not self.variables.provides(n)]
        attributes = tx.campaigns.attributes(users) if stored else {}
        return self.variables.fill(tx, users, names, attributes)

    def _pause(self, tx: Transaction, until: datetime, reason: str) -> None:
        current = find(tx, self.row.id)
        if current.status is CampaignStatus.PAUSED:
            # Paused again before the pause ended: it still gives back what it interrupted.
            resume_to = None if current.state.pause is None else current.state.pause.resume_to
        elif allowed(current.status, CampaignStatus.PAUSED):
            resume_to = current.status
        else:
            return  # cancelled or finished meanwhile: the records keep their due times, nothing is paused
        pause = Pause(until=until, reason=reason, resume_to=resume_to)
        save(tx, current, status=CampaignStatus.PAUSED, state=attrs.evolve(current.state, pause=pause))
        tx.emit(CampaignPaused(at=self.ws.now(), campaign_id=self.row.id, until=until, reason=reason))

    # -- send and complete ------------------------------------------------------------------------
    def _send(self, claim: _Claim, totals: dict[str, Any]) -> datetime | None:
        if not claim.records:
            return None
        messages = [m for _, _, _, m in claim.records]
        try:
            results = self.channel.send(messages)
        except Exception as exc:
            self._crashed(claim, exc)
            raise ChannelError(
                f"channel {self.channel.name!r} raised {type(exc).__name__}: {exc}; the {len(messages)} records of "
                f"this batch are kept ({'pending, resent with the same key' if self.idempotent else 'unknown'}) "
                f"-- fix the channel and call ws.campaigns.resume({self.row.id})",
                retryable=self.idempotent,
            ) from exc
        return self._complete(claim, results, totals)

    def _crashed(self, claim: _Claim, exc: BaseException) -> None:
        if self.idempotent:
            return  # still pending: resume resends them with the same key
        now = self.ws.now()
        with self.ws.write() as tx:
            tx.campaigns.set_status(
                [(did, {**self.unknown_fields(now), "detail": f"channel raised {type(exc).__name__}: {exc}"})
                 for did, _, _, _ in claim.records],
                only_from="pending",
            )

    def _complete(
        self, claim: _Claim, results: Sequence[DeliveryResult], totals: dict[str, Any]
    ) -> datetime | None:
        now = self.ws.now()
        pause: datetime | None = None
        updates: list[tuple[int, dict[str, Any]]] = []
        sent_rows: list[tuple[int, str | None]] = []
        sent_users: list[int] = []
        by_variant: dict[str, list[int]] = {}
        refused: dict[str, list[int]] = {}
        for (did, uid, variant, _), result in zip(claim.records, results, strict=True):
            status = result.status
            if status is Status.SENT:
                sent_rows.append((did, result.provider_id))
                sent_users.append(uid)
                by_variant.setdefault(variant, []).append(uid)
                continue
            base: dict[str, Any] = {"code": result.code, "detail": result.detail or None,
                                    "provider_id": result.provider_id}
            if status is Status.RATE_LIMITED:
                wait = timedelta(seconds=result.retry_after) if result.retry_after else DEFAULT_RETRY_AFTER
                due = now + wait
                pause = due if pause is None else max(pause, due)
                updates.append((did, {**base, "status": "queued", "due_at": due, "reason": "rate_limited"}))
            elif status is Status.FAILED_RETRYABLE:
                attempts = claim.attempts.get(did, 1)
                if attempts < self.max_attempts:
                    updates.append((did, {**base, "status": "queued", "due_at": now + RETRY_BACKOFF * attempts,
                                          "reason": "retry"}))
                else:
                    updates.append((did, {**base, "status": "failed", "completed_at": now, "reason": "gave_up"}))
                    totals["failed"] += 1
            elif result.unknown:
                updates.append((did, {**base, **self.unknown_fields(now)}))
                totals["unknown"] += 1
            elif result.code in ("consent_required", "suppressed"):
                # The channel's own last-moment check (consent withdrawn or user suppressed after the claim).
                reason = "consent" if result.code == "consent_required" else "suppressed"
                updates.append((did, {**base, "status": "skipped", "reason": reason, "completed_at": now}))
                refused.setdefault(reason, []).append(uid)
            else:
                final = {Status.REJECTED: "rejected", Status.UNAVAILABLE: "unavailable"}.get(status, "failed")
                updates.append((did, {**base, "status": final, "completed_at": now, "reason": result.code}))
                totals["failed"] += 1
        with self.ws.write() as tx:
            tx.campaigns.mark_sent(sent_rows, now)
            tx.campaigns.set_status(updates, only_from="pending")
            if sent_users:
                for variant, users in by_variant.items():
                    tx.emit(CampaignSent(at=now, campaign_id=self.row.id, variant=variant, user_ids=tuple(users)))
            for reason, users in refused.items():
                tx.emit(DeliverySkipped(at=now, campaign_id=self.row.id, reason=reason, user_ids=tuple(users)))
            if pause is not None:
                self._pause(tx, pause, "rate_limited")
        totals["sent"] += len(sent_users)
        for reason, users in refused.items():
            totals["skipped"] += len(users)
            totals["skipped_by"][reason] = totals["skipped_by"].get(reason, 0) + len(users)
        return pause
