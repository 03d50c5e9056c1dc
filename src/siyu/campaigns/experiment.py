"""A/B tests: the pilot (a seeded random split of part of the audience among the
variants and a holdout), per-variant results, and the stated decision."""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._validation import check_optional_text
from ..errors import AlreadyDecided, Conflict, InvalidTransition, ValidationError
from ..events import CampaignDecided, CampaignLaunched
from ..services._common import check_int
from ..storage.contracts.campaigns import NewDelivery
from .ab import judge
from .models import Decision, Results, RunReport, VariantResult
from .records import HOLDOUT, Stored, audience_of, find, save
from .state import CampaignStatus as S
from .state import Decided, Phase, PilotInfo, check_transition
from .stats import wilson_interval

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from .runner import CampaignRunner

__all__ = ["Experiments"]


class Experiments:
    """Pilots, results and decisions of ``ws.campaigns``."""

    def __init__(self, uow: UnitOfWork, *, runner: CampaignRunner) -> None:
        self._uow = uow
        self._runner = runner

    def pilot(
        self, campaign: int | str, *, fraction: float = 0.05, seed: int | None = None, holdout: bool = True,
        send: bool = True,
    ) -> RunReport:
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ValidationError(f"pilot fraction must be between 0 and 1 (exclusive), e.g. 0.05; got {fraction!r}")
        if seed is not None:
            check_int(seed, "seed")
        now = self._uow.now()
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            if current.config.triggered:
                raise ValidationError("a triggered campaign assigns variants per event; it has no pilot")
            if current.state.pilot is not None:
                raise Conflict(f"campaign {row.name!r} already ran its pilot; see ws.campaigns.results({row.id})")
            check_transition(current.status, S.PILOTING, campaign=row.name, campaign_id=row.id)
            if current.status not in (S.DRAFT, S.SCHEDULED) or current.state.launch is not None:
                # An armed scheduled send has its audience (and holdout) already.
                done = current.state.launch
                raise InvalidTransition(
                    f"campaign {row.name!r} "
                    + (f"is {current.status}" if done is None else f"was already launched ({done.phase})")
                    + "; a pilot must come before any send",
                    status=current.status, to=S.PILOTING,
                )
            used_seed = current.config.seed if seed is None else seed
            rows = _deal(current, fraction, used_seed, bool(holdout), now)
            tx.campaigns.add_deliveries(row.id, row.consent_channel, row.purpose, rows, now)
            pilot = PilotInfo(fraction=fraction, seed=used_seed, users=len(rows), holdout=bool(holdout), at=now)
            save(tx, current, status=S.PILOTING, state=attrs.evolve(current.state, pilot=pilot, phase=Phase.PILOT))
            tx.emit(CampaignLaunched(at=now, campaign_id=row.id, phase="pilot", occurrence="", users=len(rows)))
        if not send:
            return RunReport(campaign_id=row.id)
        return self._runner.run(row.id)

    def results(self, campaign: int | str, *, phase: str | None = "pilot") -> Results:
        check_optional_text(phase, "phase")
        with self._uow.read() as tx:
            row = find(tx, campaign).row
            counts = tx.campaigns.counts(row.id, phase)
            conversions = tx.campaigns.conversions(row.id, phase)
            reasons = tx.campaigns.reasons(row.id)
            receipts = tx.campaigns.receipt_counts(row.id, phase)
        names = [*row.variants, *([HOLDOUT] if any(v == HOLDOUT for v, _ in counts) else [])]
        out: dict[str, VariantResult] = {}
        for name in names:
            by_status = {s: n for (v, s), n in counts.items() if v == name}
            assigned = sum(by_status.values())
            sent = by_status.get("sent", 0) + by_status.get("undelivered", 0)
            conv, value = conversions.get(name, (0, 0))
            exposed = assigned if name == HOLDOUT else sent
            rate = conv / exposed if exposed else 0.0
            out[name] = VariantResult(
                variant=name, assigned=assigned, sent=sent, delivered=by_status.get("sent", 0),
                skipped=by_status.get("skipped", 0),
                failed=sum(by_status.get(s, 0) for s in ("failed", "rejected", "unavailable")),
                unknown=by_status.get("unknown", 0),
                conversions=conv, value_fen=value, rate=rate, interval=wilson_interval(conv, exposed),
                confirmed=receipts.get((name, "delivered"), 0), receipt_failed=receipts.get((name, "failed"), 0),
            )
        return Results(campaign_id=row.id, phase=phase, variants=out, skipped=reasons, at=self._uow.now())

    def decide(
        self, campaign: int | str, *, method: str = "z-test", alpha: float = 0.05, min_sample: int = 100,
        threshold: float = 0.95,
    ) -> Decision:
        if method not in ("z-test", "bayes"):
            raise ValidationError(f"method must be 'z-test' or 'bayes', got {method!r}")
        if not _fraction(alpha, 0, 1, closed=False) or not _fraction(threshold, 0.5, 1, closed=True):
            raise ValidationError("alpha must be in (0, 1) and threshold in [0.5, 1)")
        check_int(min_sample, "min_sample", minimum=1)
        with self._uow.read() as tx:
            current = find(tx, campaign)
        row = current.row
        if current.state.winner is not None:
            raise AlreadyDecided(
                f"campaign {row.name!r} already decided: winner {current.state.winner!r}; "
                f"roll it out with ws.campaigns.rollout({row.id})"
            )
        if current.state.pilot is None:
            raise ValidationError(f"campaign {row.name!r} has no pilot yet; run ws.campaigns.pilot({row.id}) first")
        res = self.results(row.id, phase="pilot")
        arms = {v: (r.conversions, r.sent) for v, r in res.variants.items() if v != HOLDOUT}
        now = self._uow.now()
        decision = judge(
            row.id, arms, method=method, alpha=alpha, min_sample=min_sample, threshold=threshold,
            seed=current.config.seed, now=now,
        )
        if decision.winner is None:
            return decision
        with self._uow.write() as tx:
            fresh = find(tx, row.id)
            if fresh.state.winner is not None:
                raise AlreadyDecided(f"campaign {row.name!r} was decided meanwhile: {fresh.state.winner!r}")
            state = attrs.evolve(fresh.state, winner=decision.winner,
                                 decision=Decided(test=decision.test, reason=decision.reason, at=now))
            # Only a pilot waiting for its results becomes decided; a send under way goes on.
            status = S.DECIDED if fresh.underlying is S.PILOTING else fresh.underlying
            save(tx, fresh, status=status, state=state, under_pause=True)
            tx.emit(CampaignDecided(at=now, campaign_id=row.id, winner=decision.winner, test=decision.test))
        return decision


def _fraction(value: object, low: float, high: float, *, closed: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (low <= value < high) if closed else (low < value < high)


def _deal(campaign: Stored, fraction: float, seed: int, holdout: bool, now: datetime) -> list[NewDelivery]:
    """The pilot's users, drawn with ``random.Random(seed)`` and dealt round-robin to
    the variants and the holdout, as delivery records in user order."""
    row = campaign.row
    audience = audience_of(row)
    assert audience is not None  # only triggered campaigns have none, and they have no pilot
    groups = [*row.variants, *([HOLDOUT] if holdout else [])]
    size = round(len(audience) * fraction)
    if size < len(groups):
        raise ValidationError(
            f"a {fraction:.1%} pilot of {len(audience):,} users is {size} users, fewer than the "
            f"{len(groups)} groups {groups}; raise the fraction"
        )
    picked = random.Random(seed).sample(list(audience), size)
    rows = []
    for index, uid in enumerate(picked):
        group = groups[index % len(groups)]
        if group == HOLDOUT:
            rows.append(NewDelivery(user_id=uid, variant=HOLDOUT, phase="pilot", status="holdout",
                                    claimed_at=now, reason="holdout"))
        else:
            rows.append(NewDelivery(user_id=uid, variant=group, phase="pilot", status="queued", due_at=now))
    rows.sort(key=lambda r: r.user_id)
    return rows
