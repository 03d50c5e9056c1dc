"""``siyu run-due``: deliver what is pending and run every due job once (for cron)."""

from __future__ import annotations

import json

import click

from ..eventlog.jobs import run_due
from ._common import CliState, pass_state


@click.command("run-due")
@pass_state
def command(state: CliState) -> None:
    """Catch up on undelivered events, relay them, and run every due job once:
    campaign rounds and deferred sends, group-buy expiry, points and coupon expiry,
    commission settlement, the lifecycle sweep, clock-based tag rules, log retention.

    For cron, Celery beat, APScheduler, systemd timers or a Kubernetes CronJob:
    every job only does what is due, so running it often is safe."""
    report = run_due(state.workspace(delivery="worker"))
    click.echo(json.dumps(report, default=str, ensure_ascii=False))
