"""``manage.py siyu_run_due``: ``siyu run-due`` on the workspace of ``settings.SIYU``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from .....eventlog.jobs import run_due
from .....workspace import connect
from ... import connect_kwargs


class Command(BaseCommand):
    help = ("Deliver pending siyu events, run every due job once (campaign rounds, expiries, settlement, "
            "sweeps) and relay; for cron or a scheduler. Prints a JSON summary.")

    def handle(self, *args: Any, **options: Any) -> None:
        kwargs = connect_kwargs(delivery="worker")
        with connect(kwargs.pop("url"), **kwargs) as ws:
            self.stdout.write(json.dumps(run_due(ws), default=str, ensure_ascii=False))
