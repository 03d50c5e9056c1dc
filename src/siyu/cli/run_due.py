"""``siyu run-due``: deliver what is pending and run every due job once (for cron)."""

from __future__ import annotations

import json

import click

from ..eventlog.jobs import builtin_jobs, run_jobs
from ._common import CliState, pass_state


@click.command("run-due")
@pass_state
def command(state: CliState) -> None:
    """Catch up on undelivered events, relay them, and run every due job once:
    campaign rounds and deferred sends, group-buy expiry, points and coupon expiry,
    commission settlement, the lifecycle sweep, clock-based tag rules, log retention.

    For cron, Celery beat, APScheduler, systemd timers or a Kubernetes CronJob:
    every job only does what is due, so running it often is safe."""
    ws = state.workspace(delivery="worker")
    delivered = ws.event_log.deliver(skip_locked=True)
    ran = run_jobs(ws, builtin_jobs(ws), only_due=False)
    delivered += ws.event_log.deliver(skip_locked=True)  # what the jobs themselves emitted
    relayed = ws.event_log.relay()
    click.echo(json.dumps({"delivered": delivered, "relayed": relayed, "jobs": ran}, default=str, ensure_ascii=False))
