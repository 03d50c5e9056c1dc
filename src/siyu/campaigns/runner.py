"""Launching and running campaigns: send, roll-out, resume, and the run that
claims, sends and completes delivery records until nothing is due
(:mod:`siyu.campaigns.delivery`), then settles the campaign's status."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
from pyroaring import BitMap

from .._validation import check_batch, check_int, check_optional_text
from ..errors import Conflict, ValidationError
from ..events import CampaignLaunched
from ..storage.contracts.campaigns import NewDelivery
from .delivery import Runner
from .models import RunReport
from .reconcile import RECONCILING
from .records import HOLDOUT, Stored, audience_of, find, rest_audience, save
from .settings import channel_for, gates_for, renderer_for
from .state import CampaignStatus as S
from .state import HoldoutInfo, Launch, Phase, check_transition
from .variables import UserVariables

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.service import ChannelService
    from ..storage.base import Transaction
    from ..storage.holders import Holders
    from .policy import ContactPolicy

__all__ = ["CampaignRunner"]


class CampaignRunner:
    """Sends campaigns: launches (send, roll-out), runs and resumes them."""

    def __init__(self, uow: UnitOfWork, *, channels: ChannelService, policy: ContactPolicy, holders: Holders,
                 variables: UserVariables | None = None) -> None:
        self._uow = uow
        self._channels = channels
        self._policy = policy
        self._holders = holders
        self._variables = variables if variables is not None else UserVariables()

    # -- launching ----------------------------------------------------------------------------------------------
    def rollout(self, campaign: int | str, *, variant: str | None = None, batch: int = 5_000) -> RunReport:
        # Checked before the launch commits: a refused call must leave the campaign unlaunched.
        check_batch(batch)
        check_optional_text(variant, "variant")
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            chosen = variant or current.state.winner
            if chosen is None:
                if len(row.variants) == 1:
                    chosen = next(iter(row.variants))
                else:
                    raise ValidationError(
                        f"campaign {row.name!r} has no winner yet; call ws.campaigns.decide({row.id}) or pass variant="
                    )
            self._launch(tx, current, chosen, Phase.ROLLOUT)
        return self.run(row.id, batch=batch)

    def send(
        self, campaign: int | str, *, variant: str | None = None, batch: int = 5_000, holdout: float = 0.0,
        seed: int | None = None,
    ) -> RunReport:
        if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 1:
            raise ValidationError(f"holdout must be a fraction in [0, 1), e.g. 0.1; got {holdout!r}")
        if seed is not None:
            check_int(seed, "seed")
        check_batch(batch)
        check_optional_text(variant, "variant")
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            if variant is None:
                if len(row.variants) > 1:
                    raise ValidationError(
                        f"campaign {row.name!r} has variants {list(row.variants)}; pilot them "
                        f"(ws.campaigns.pilot) or pass variant="
                    )
                variant = next(iter(row.variants))
            self._launch(tx, current, variant, Phase.SEND, holdout=holdout, seed=seed)
        return self.run(row.id, batch=batch)

    def _launch(
        self, tx: Transaction, current: Stored, variant: str, phase: Phase, *, holdout: float = 0.0,
        seed: int | None = None,
    ) -> None:
        row = current.row
        if variant not in row.variants:
            raise ValidationError(f"campaign {row.name!r} has no variant {variant!r}; it has {list(row.variants)}")
        if current.config.triggered:
            raise ValidationError("a triggered campaign sends when its event happens; it cannot be sent by hand")
        if current.state.launch is not None:
            raise Conflict(
                f"campaign {row.name!r} was already launched ({current.state.launch.phase}); "
                f"continue it with ws.campaigns.resume({row.id})"
            )
        now = self._uow.now()
        sched = current.config.schedule_in(self._uow.tz)
        launch = Launch(variant=variant, phase=phase, occurrence="")
        status = S.RUNNING
        if sched is not None:
            status = S.SCHEDULED
            if sched.recurring:
                # Each occurrence opens its own round (run_due); until then nothing is open.
                status = S.ACTIVE
                launch = Launch(variant=variant, phase=phase, occurrence=None)
        check_transition(current.underlying, status, campaign=row.name, campaign_id=row.id)
        state = attrs.evolve(current.state, launch=launch, phase=phase, armed=sched is not None)
        if holdout:
            state = attrs.evolve(state, holdout=self._hold_out(tx, current, phase, holdout, seed, now))
        save(tx, current, status=status, state=state, under_pause=True)
        audience = audience_of(row)
        tx.emit(CampaignLaunched(at=now, campaign_id=row.id, phase=phase.value, occurrence="",
                                 users=0 if audience is None else len(audience)))

    @staticmethod
    def _hold_out(
        tx: Transaction, current: Stored, phase: Phase, fraction: float, seed: int | None, now: datetime
    ) -> HoldoutInfo:
        row = current.row
        pool = (audience_of(row) or BitMap()) - BitMap(tx.campaigns.existing_users(row.id, ""))
        size = round(len(pool) * fraction)
        if size < 1:
            raise ValidationError(
                f"a {fraction:.1%} holdout of {len(pool):,} users is no one; raise the fraction or drop holdout="
            )
        used_seed = current.config.seed if seed is None else seed
        picked = sorted(random.Random(used_seed).sample(list(pool), size))
        tx.campaigns.add_deliveries(row.id, row.consent_channel, row.purpose, [
            NewDelivery(user_id=uid, variant=HOLDOUT, phase=phase.value, status="holdout", claimed_at=now,
                        reason="holdout")
            for uid in picked
        ], now)
        return HoldoutInfo(fraction=fraction, seed=used_seed, users=size, at=now)

    # -- running ------------------------------------------------------------------------------------------------
    def resume(
        self, campaign: int | str, *, recover_after: timedelta = timedelta(0), limit: int | None = None,
        batch: int = 5_000,
    ) -> RunReport:
        if not isinstance(recover_after, timedelta) or recover_after < timedelta(0):
            raise ValidationError("recover_after must be a timedelta >= 0")
        if limit is not None:
            check_int(limit, "limit", minimum=1)
        check_batch(batch)
        with self._uow.read() as tx:
            found = find(tx, campaign)
        return self.run(found.id, recover_after=recover_after, limit=limit, batch=batch)

    def run(
        self, campaign_id: int, *, recover_after: timedelta | None = timedelta(0), limit: int | None = None,
        batch: int = 5_000,
    ) -> RunReport:
        """Send what is due for the campaign now (unless it is paused or not started)."""
        check_batch(batch)
        now = self._uow.now()
        with self._uow.write() as tx:
            current = find(tx, campaign_id)
            row = current.row
            if current.status is S.CANCELLED:
                return RunReport(campaign_id=row.id, done=True)
            pause, start = current.state.pause, current.state.next_run_at
            if pause is not None and pause.until > now:
                return RunReport(campaign_id=row.id, paused_until=pause.until)
            if current.status is S.SCHEDULED and start is not None and start > now:
                return RunReport(campaign_id=row.id, paused_until=start)
            if pause is not None or current.status is S.PAUSED:
                # The pause is over: the campaign is again what the pause interrupted.
                current = save(tx, current, status=current.underlying, state=attrs.evolve(current.state, pause=None))
            cfg = gates_for(tx, current)
            launch = current.state.launch
            rest = None
            if launch is not None and launch.occurrence is not None:
                audience = rest_audience(tx, current)
                if audience is not None:
                    rest = (audience, launch.variant, launch.phase.value)
        channel = channel_for(self._channels, row.channel)
        runner = Runner(self._uow, holders=self._holders, policy=self._policy, row=row, channel=channel,
                        renderer=renderer_for(current, channel), gates=cfg, batch=batch, variables=self._variables)
        occurrence = "" if launch is None or launch.occurrence is None else launch.occurrence
        totals = runner.run(occurrence=occurrence, rest=rest, recover_after=recover_after, limit=limit)
        return self._finish(row.id, totals)

    def _finish(self, campaign_id: int, totals: Mapping[str, Any]) -> RunReport:
        with self._uow.write() as tx:
            current = find(tx, campaign_id)
            pending = tx.campaigns.pending(current.id)
            due_at = [tx.campaigns.next_due(current.id), tx.campaigns.next_due(current.id, "unknown", RECONCILING)]
            next_due = min((d for d in due_at if d is not None), default=None)
            paused_until = totals.get("paused_until")
            done = current.status is S.DONE
            idle = not pending and next_due is None and not paused_until
            launch, state = current.state.launch, current.state
            if current.status in (S.RUNNING, S.PAUSED) and idle:
                if launch is not None and launch.occurrence is not None:
                    audience = rest_audience(tx, current)
                    todo = (audience or BitMap()) - BitMap(tx.campaigns.existing_users(current.id, launch.occurrence))
                    if not todo:
                        save(tx, current, status=S.DONE)
                        done = True
                elif launch is None and state.phase is Phase.PILOT:
                    save(tx, current, status=S.PILOTING if state.winner is None else S.DECIDED)
                elif current.config.triggered and current.status is S.RUNNING:
                    # Left running by a pause of an earlier siyu: listen for the trigger again.
                    save(tx, current, status=S.ACTIVE)
            elif next_due is not None and paused_until is None and current.status not in (S.ACTIVE, S.CANCELLED):
                paused_until = next_due
        return RunReport(
            campaign_id=campaign_id, claimed=totals["claimed"], sent=totals["sent"], failed=totals["failed"],
            skipped=totals["skipped"], deferred=totals["deferred"], unknown=totals["unknown"],
            retried=totals["retried"], reconciled=totals["reconciled"], paused_until=paused_until, done=done,
            skipped_by=dict(totals["skipped_by"]),
        )
