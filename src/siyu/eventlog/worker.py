"""``siyu worker``: deliver the log for every process and run due jobs on their schedules.

Safe as several copies on one database: a delivery round claims consumers
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite's ``BEGIN IMMEDIATE``
serializes rounds anyway), relays hold a lease, and each due job is claimed
by moving its next due time in one conditional update.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from .jobs import builtin_jobs, run_jobs

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Worker"]

log = logging.getLogger("siyu.worker")


class Worker:
    """Delivers, relays and runs due jobs in a loop until stopped."""

    def __init__(self, ws: Workspace, *, poll: float = 1.0, jobs: bool = True) -> None:
        self.ws = ws
        self.poll = poll
        self.jobs = jobs
        self.stop = threading.Event()
        #: What the last step did: ``{"delivered": n, "relayed": n, "jobs": {...}}``.
        self.last: dict[str, Any] = {}

    def step(self) -> int:
        """One pass: deliver pending events, relay them, run the jobs that are due.
        Returns how much was delivered and relayed (0: nothing to do)."""
        delivered = self.ws.event_log.deliver(skip_locked=True)
        relayed = self.ws.event_log.relay()
        ran = run_jobs(self.ws, builtin_jobs(self.ws), only_due=True) if self.jobs else {}
        self.last = {"delivered": delivered, "relayed": relayed, "jobs": ran}
        return delivered + relayed

    def run(self, *, idle_exit: float | None = None) -> None:
        """Loop until :attr:`stop` is set (or, with ``idle_exit``, after that many seconds
        with nothing to deliver). A failing step (the database restarting) is logged and
        retried after ``poll`` seconds; the worker never exits on its own error."""
        idle_since = time.monotonic()
        while not self.stop.is_set():
            try:
                busy = self.step() > 0
            except Exception as exc:
                log.error("worker step failed, retrying in %.1fs: %r", self.poll, exc)
                busy = False
            if busy:
                idle_since = time.monotonic()
                continue
            if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                return
            self.stop.wait(self.poll)
