"""siyu's background work as Celery tasks scheduled by Celery beat.

Two periodic tasks replace a long-running ``siyu worker``:

- ``siyu.deliver`` (every 5 seconds): deliver logged events to every consumer and
  relay them to brokers; the latency of reactions (tier upgrades, tag rules,
  relays) is this period.
- ``siyu.run_due`` (every minute): everything due because time passed --
  campaign rounds, expiries, settlement, sweeps (``siyu run-due``).

Run a worker with beat (or beat as its own process, once per deployment)::

    celery -A siyu_tasks worker --beat --loglevel=INFO

Web processes then connect with ``delivery="worker"`` (``SIYU_DELIVERY=worker``).
Several workers are safe: a delivery round claims its consumers, each due job
is claimed in the database, so a task that two workers run does the work once.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

import siyu
from siyu.eventlog.jobs import run_due as run_due_jobs
from siyu.eventlog.worker import Worker

BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
SIYU_URL = os.environ.get("SIYU_URL", "sqlite:///shop.db")
QUEUE = os.environ.get("SIYU_CELERY_QUEUE", "siyu")
#: Seconds between event deliveries (the latency of reactions) and between due-job passes.
EVENTS_EVERY = float(os.environ.get("SIYU_EVENTS_EVERY", "5"))
DUE_EVERY = float(os.environ.get("SIYU_DUE_EVERY", "60"))

app = Celery("siyu_tasks", broker=BROKER, backend=os.environ.get("CELERY_RESULT_BACKEND", BROKER))
app.conf.update(
    task_default_queue=QUEUE,
    # A pass that overran its period must not pile up behind the next: expire stale ones.
    beat_schedule={
        "siyu-deliver": {"task": "siyu.deliver", "schedule": EVENTS_EVERY, "options": {"expires": EVENTS_EVERY}},
        "siyu-run-due": {"task": "siyu.run_due", "schedule": DUE_EVERY, "options": {"expires": DUE_EVERY}},
    },
    task_acks_late=False,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)

_ws: siyu.Workspace | None = None


def workspace() -> siyu.Workspace:
    """The workspace of this worker process, opened after the fork (never in the parent)."""
    global _ws
    if _ws is None:
        _ws = siyu.connect(SIYU_URL, delivery="worker")
    return _ws


@worker_process_init.connect
def _forget_parent_workspace(**_: Any) -> None:
    global _ws
    _ws = None  # a prefork child connects on its first task


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _ws is not None:
        _ws.close()


@app.task(name="siyu.deliver", ignore_result=True)
def deliver() -> int:
    """Deliver and relay what is pending (no due jobs: ``siyu.run_due`` has those)."""
    return Worker(workspace(), jobs=False).step()


@app.task(name="siyu.run_due")
def run_due() -> dict[str, Any]:
    """One pass of everything due; the summary is the task's result."""
    report = run_due_jobs(workspace())
    return {"delivered": report["delivered"], "relayed": report["relayed"],
            "jobs": {name: str(summary) for name, summary in report["jobs"].items()}}
