"""Due jobs: the work that happens because time passed, on schedules.

``siyu worker`` runs each job when it is due (claimed in the database, so
several workers run it once); ``siyu run-due`` runs every job once, for cron
or a scheduler a shop already has. Every job is safe to run again: it only
does what is due and not yet done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Job", "builtin_jobs", "run_due", "run_jobs"]

log = logging.getLogger("siyu.jobs")


@attrs.frozen(kw_only=True)
class Job:
    """``run()`` does what is due now and returns a short summary (a count, a dict)."""

    name: str
    every: timedelta
    run: Callable[[], Any]


def _count(value: Any) -> Any:
    return len(value) if isinstance(value, list) else value


def builtin_jobs(ws: Workspace) -> list[Job]:
    """The due jobs of every workspace, with how often a worker runs them."""
    minute, hour, day = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
    return [
        Job(name="campaigns.run_due", every=minute, run=lambda: _count(ws.campaigns.run_due())),
        Job(name="group_buys.expire", every=minute, run=lambda: _count(ws.referrals.group_buys.expire_due())),
        Job(name="points.expire", every=hour, run=lambda: _count(ws.points.expire_due())),
        Job(name="coupons.expire", every=hour, run=ws.coupons.expire_due),
        Job(name="commissions.settle", every=hour, run=lambda: _count(ws.referrals.commissions.settle_due())),
        Job(name="lifecycle.sweep", every=day, run=ws.lifecycle.sweep),
        # Rules reading the clock (days_since, spend_30d) change with time alone.
        Job(name="tag_rules.run", every=day,
            run=lambda: {tag: len(d.applied) + len(d.removed) for tag, d in ws.tags.rules.run().items()}),
        Job(name="event_log.prune", every=day, run=ws.event_log.prune),
        # The member wallet: each grants, settles or refunds what is due once, however often it runs.
        Job(name="birthdays.grant", every=hour, run=lambda: _count(ws.birthdays.grant_due())),
        Job(name="reviews.settle", every=hour, run=lambda: _count(ws.reviews.settle_due())),
        Job(name="presales.expire", every=minute, run=lambda: _count(ws.presales.expire_due())),
        Job(name="presales.overdue", every=hour, run=lambda: _count(ws.presales.overdue())),
    ]


def run_jobs(ws: Workspace, jobs: list[Job], *, only_due: bool) -> dict[str, Any]:
    """Run the jobs (only those due, claimed so that one worker runs each) and return
    ``{name: summary}``; a failing job is logged, reported as ``"error: ..."`` and
    retried at its next turn, and the others still run."""
    results: dict[str, Any] = {}
    for job in jobs:
        now = ws.now()
        if only_due:
            with ws.write() as tx:
                if not tx.event_log.claim_job(job.name, now, now + job.every):
                    continue
        try:
            summary = job.run()
        except Exception as exc:
            log.error("due job %s failed: %r", job.name, exc)
            summary = f"error: {type(exc).__name__}: {exc}"
        results[job.name] = summary
        with ws.write() as tx:
            tx.event_log.claim_job(job.name, now, now + job.every)  # creates the row for run-due
            tx.event_log.finish_job(job.name, ws.now(), str(summary)[:500])
    return results


def run_due(ws: Workspace) -> dict[str, Any]:
    """What ``siyu run-due`` does, for any scheduler (cron, Celery beat, a Django command):
    catch up on undelivered events, run every job once, deliver what the jobs emitted and
    relay. Returns ``{"delivered": n, "relayed": n, "jobs": {name: summary}}``."""
    delivered = ws.event_log.deliver(skip_locked=True)
    ran = run_jobs(ws, builtin_jobs(ws), only_due=False)
    delivered += ws.event_log.deliver(skip_locked=True)  # what the jobs themselves emitted
    relayed = ws.event_log.relay()
    return {"delivered": delivered, "relayed": relayed, "jobs": ran}
