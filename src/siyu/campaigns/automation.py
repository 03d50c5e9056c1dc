"""Campaigns that run by themselves: schedules (``run_due``), event triggers,
and goal attribution from ``OrderRecorded`` / ``EventTracked`` events."""

from __future__ import annotations

import builtins
import hashlib
import logging
import time as _time
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from ..events import CampaignLaunched, Event, EventTracked, OrderRecorded
from ..storage.contracts.campaigns import NewDelivery
from .models import RunReport, Trigger
from .records import Stored, audience_of, find, save, stored
from .schedule import Schedule
from .state import CampaignStatus as S

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .attribution import Conversions
    from .runner import CampaignRunner

__all__ = ["TriggerAutomation"]

log = logging.getLogger("siyu.campaigns")

#: How long an in-process cache of trigger/goal campaigns is trusted (other processes' changes).
_CACHE_SECONDS = 5.0
#: Statuses ``run_due`` leaves alone: nothing of theirs is due by itself.
_IDLE = frozenset({S.DONE, S.CANCELLED, S.DRAFT, S.DECIDED})
_ID_FIELDS = ("order_id", "event_id", "entry_id", "coupon_id", "group_id", "task_id", "merge_id")


def _listening(campaign: Stored) -> bool:
    return campaign.underlying is S.ACTIVE


class _Observer:
    """The campaigns' event consumer (``siyu.campaigns``): attribution and triggers,
    one event per call."""

    def __init__(self, automation: TriggerAutomation) -> None:
        self.automation = automation

    def handle(self, events: Sequence[Event]) -> None:
        for event in events:
            self.automation.on_event(event)


class TriggerAutomation:
    """Runs campaigns by themselves: scheduled starts and rounds (``run_due``), event
    triggers, and goal attribution from the events siyu sees."""

    def __init__(self, uow: UnitOfWork, *, runner: CampaignRunner, conversions: Conversions) -> None:
        self._uow = uow
        self._runner = runner
        self._conversions = conversions
        self._cache: tuple[float, builtins.list[Stored]] | None = None
        #: Triggered campaigns to send once a transaction commits.
        self._runs_after: weakref.WeakKeyDictionary[Transaction, set[int]] = weakref.WeakKeyDictionary()
        #: The event consumer the workspace declares (``siyu.eventlog.builtin``).
        self.observer = _Observer(self)

    def forget(self) -> None:
        """Drop the cached trigger and goal campaigns (one was created or cancelled)."""
        self._cache = None

    # -- schedules and triggers ------------------------------------------------------------------------------
    def run_due(self) -> builtins.list[RunReport]:
        """Send everything that is due now: scheduled and recurring campaigns whose
        time has come, campaigns whose pause or quiet hours ended, queued
        triggered messages, and ``points_expiring`` reminders. Call it from a
        scheduler (cron, a loop); it is safe to run in several processes."""
        now = self._uow.now()
        reports: builtins.list[RunReport] = []
        with self._uow.read() as tx:
            found = [stored(r) for r in tx.campaigns.all()]
        for campaign in found:
            if campaign.status in _IDLE:
                continue
            row, state = campaign.row, campaign.state
            trig = campaign.config.trigger_model()
            if trig is not None and trig.event == "points_expiring":
                self._enqueue_expiring(campaign, trig, now)
            sched = campaign.config.schedule_in(self._uow.tz)
            if sched is not None and sched.recurring and state.armed:
                self._start_occurrences(campaign, sched, now)
            elif sched is not None and campaign.status is S.SCHEDULED:
                if not state.armed or (state.next_run_at is not None and state.next_run_at > now):
                    continue
                with self._uow.write() as tx:
                    fresh = find(tx, row.id)
                    if fresh.status is S.SCHEDULED:  # not started or cancelled by another process meanwhile
                        save(tx, fresh, status=S.RUNNING, state=attrs.evolve(fresh.state, next_run_at=None))
            reports.append(self._runner.run(row.id))
        return reports

    def _start_occurrences(self, campaign: Stored, sched: Schedule, now: datetime) -> None:
        """Open the latest due occurrence of a recurring campaign (missed ones are not replayed)."""
        nxt = campaign.state.next_run_at or sched.first()
        if nxt is None or nxt > now:
            return
        latest = nxt
        while True:
            after = sched.after(latest)
            if after is None or after > now:
                break
            latest = after
        with self._uow.write() as tx:
            fresh = find(tx, campaign.id)
            launch = fresh.state.launch
            if launch is None or fresh.status in (S.CANCELLED, S.DONE):
                return
            following = sched.after(latest)
            state = attrs.evolve(fresh.state, next_run_at=following,
                                 launch=attrs.evolve(launch, occurrence=latest.isoformat()))
            save(tx, fresh, status=S.ACTIVE if following is not None else S.RUNNING, state=state, under_pause=True)
            audience = audience_of(fresh.row)
            tx.emit(CampaignLaunched(at=now, campaign_id=fresh.id, phase="schedule", occurrence=latest.isoformat(),
                                     users=0 if audience is None else len(audience)))

    def _variant_for(self, campaign: Stored, user_id: int) -> str:
        if campaign.state.winner is not None:
            return campaign.state.winner
        row = campaign.row
        names = sorted(row.variants)
        digest = hashlib.blake2b(f"{campaign.config.seed}:{user_id}".encode(), digest_size=8).digest()
        return names[int.from_bytes(digest, "big") % len(names)]

    def _enqueue(self, campaign: Stored, items: builtins.list[tuple[int, str]], now: datetime) -> int:
        row = campaign.row
        audience = audience_of(row)
        with self._uow.write() as tx:
            fresh = find(tx, row.id)
            if fresh.status in (S.CANCELLED, S.DONE):
                return 0
            rows = []
            for uid, occurrence in items:
                if audience is not None and uid not in audience:
                    continue
                if tx.campaigns.has_delivery(row.id, uid, occurrence):
                    continue
                rows.append(NewDelivery(user_id=uid, variant=self._variant_for(fresh, uid), phase="trigger",
                                        status="queued", occurrence=occurrence, due_at=now))
            tx.campaigns.add_deliveries(row.id, row.consent_channel, row.purpose, rows, now)
            for r in rows:
                tx.emit(CampaignLaunched(at=now, campaign_id=row.id, phase="trigger", occurrence=r.occurrence, users=1))
        return len(rows)

    def _enqueue_expiring(self, campaign: Stored, trig: Trigger, now: datetime) -> None:
        assert trig.within is not None
        with self._uow.read() as tx:
            lots = tx.points.expiring(now, now + trig.within)
        self._enqueue(campaign, [(lot.user_id, f"points_expiring:{lot.entry_id}") for lot in lots], now)

    # -- events: triggers and attribution ------------------------------------------------------------------------
    def _live(self) -> builtins.list[Stored]:
        cached = self._cache
        if cached is not None and _time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
        with self._uow.read() as tx:
            found = [stored(r) for r in tx.campaigns.all()]
        # A paused triggered campaign still listens: what it queues goes out when the pause ends.
        live = [c for c in found if c.row.goal is not None or (c.config.triggered and _listening(c))]
        self._cache = (_time.monotonic(), live)
        return live

    def on_event(self, event: Event) -> None:
        name = type(event).__name__
        if name.startswith("Campaign") or name in ("DeliverySkipped", "ConversionAttributed"):
            return
        live = self._live()
        if not live:
            return
        if isinstance(event, OrderRecorded):
            self._attribute(event.user_id, "order", event.paid_at, str(event.order_id), event.total_fen, live)
        elif isinstance(event, EventTracked):
            self._attribute(event.user_id, event.kind, event.at, str(event.event_id), 0, live)
        user_id = getattr(event, "user_id", None)
        if not isinstance(user_id, int):
            return
        for campaign in live:
            trig = campaign.config.trigger_model()
            if trig is None or trig.event != name or not _listening(campaign):
                continue
            if any(getattr(event, k, None) != v for k, v in trig.where.items()):
                continue
            ident = next((getattr(event, f) for f in _ID_FIELDS if hasattr(event, f)), None)
            occurrence = f"{name}:{ident}" if ident is not None else name
            if self._enqueue(campaign, [(user_id, occurrence)], self._uow.now()):
                self._send_after_commit(campaign.id)

    def _send_after_commit(self, campaign_id: int) -> None:
        """Send a triggered campaign's queue once the enqueueing transaction commits.

        Never inside it: a message must not go out for a queue entry that could
        still roll back. If the process dies in between, the entry waits,
        due, for the next ``run_due()`` (``siyu worker`` / ``siyu run-due``)."""
        with self._uow.write() as tx:
            pending = self._runs_after.setdefault(tx, set())
            if not pending:
                tx.after_commit(lambda: self._send_queued(pending))
            pending.add(campaign_id)

    def _send_queued(self, campaign_ids: set[int]) -> None:
        for campaign_id in sorted(campaign_ids):
            try:
                self._runner.run(campaign_id)
            except Exception as exc:  # the queue entry stays due; run_due() sends it later
                log.error("sending triggered campaign %d failed; run_due() retries: %r", campaign_id, exc)

    def _attribute(
        self, user_id: int, goal: str, at: datetime, ref: str | None, value: int, live: builtins.list[Stored]
    ) -> None:
        if not any(c.row.goal == goal for c in live):
            return
        self._conversions.convert(user_id, goal, at=at, ref=ref, value_fen=value)

