"""``siyu worker``: deliver events for every process, relay them, run due jobs."""

from __future__ import annotations

import json
import logging
import signal
from typing import Any

import click

from ..eventlog.sinks import from_url
from ..eventlog.worker import Worker
from ._common import CliState, err_console, pass_state


@click.command("worker")
@click.option("--sink", "sinks", multiple=True, metavar="URL", envvar="SIYU_EVENT_SINKS",
              help="Also relay events to a broker: nats://…, redis://…, amqp://…, kafka://… (repeatable).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between polls when idle.")
@click.option("--no-jobs", is_flag=True, help="Only deliver and relay; leave due jobs to another process.")
@click.option("--idle-exit", type=float, default=None, metavar="SECONDS",
              help="Exit after this long with nothing to deliver (for tests and batch runs).")
@pass_state
def command(state: CliState, sinks: tuple[str, ...], poll: float, no_jobs: bool, idle_exit: float | None) -> None:
    """Deliver logged events to every consumer, relay them to brokers and run due jobs
    (campaign rounds, expiries, settlement, sweeps) on their schedules, until stopped.

    Run one or more next to web processes that connect with delivery="worker"
    (SIYU_DELIVERY=worker); copies share the work safely."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ws = state.workspace(delivery="worker")
    for url in sinks:
        ws.event_log.add_sink(from_url(url))
    worker = Worker(ws, poll=poll, jobs=not no_jobs)

    def stop(signum: int, frame: Any) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    err_console().print(f"siyu worker on {ws.url.masked()}: {len(ws.event_log.handlers())} consumers, "
                        f"{len(ws.event_log.sinks())} sinks{'' if no_jobs else ', due jobs'}")
    worker.run(idle_exit=idle_exit)
    click.echo(json.dumps({"stopped": True, "last": worker.last}, default=str))
