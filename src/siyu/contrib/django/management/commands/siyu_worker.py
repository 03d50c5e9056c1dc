"""``manage.py siyu_worker``: ``siyu worker`` on the workspace of ``settings.SIYU``."""

from __future__ import annotations

import json
import signal
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from .....eventlog.sinks import from_url
from .....eventlog.worker import Worker
from .....workspace import connect
from ... import connect_kwargs


class Command(BaseCommand):
    help = ("Deliver siyu's logged events to every consumer, relay them to brokers and run due jobs on their "
            "schedules until stopped (SIGTERM or Ctrl-C). Several copies share the work safely.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sink", action="append", default=[], metavar="URL",
                            help="Also relay events to a broker: nats://…, redis://…, amqp://…, kafka://…")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between polls when idle (1).")
        parser.add_argument("--no-jobs", action="store_true", help="Only deliver and relay.")
        parser.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                            help="Exit after this long with nothing to deliver (tests, batch runs).")

    def handle(self, *args: Any, **options: Any) -> None:
        kwargs = connect_kwargs(delivery="worker")
        with connect(kwargs.pop("url"), **kwargs) as ws:
            for url in options["sink"]:
                ws.event_log.add_sink(from_url(url))
            worker = Worker(ws, poll=options["poll"], jobs=not options["no_jobs"])

            def stop(signum: int, frame: Any) -> None:
                worker.stop.set()

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            worker.run(idle_exit=options["idle_exit"])
            self.stdout.write(json.dumps({"stopped": True, "last": worker.last}, default=str))
