"""Settling sends whose outcome is unknown by asking the provider.

A send answered with something that may mean "done" (a timeout, HTTP 5xx,
a garbled body, a "busy" code) leaves an ``unknown`` record. When the
channel can ask its provider (``Channel.reconciles``), the record has reason
``reconciling`` and a ``due_at``; each run asks the provider about the due
ones before it claims anything:

* found → ``sent`` (with the provider's id when it gives one);
* found but refused for the recipient → ``unavailable`` / ``rejected``;
* provably not created → ``queued`` again, due now: a real retry, counted
  against ``max_attempts`` like any other;
* still unknown → asked again after a while; once the send is older than
  :data:`RECONCILE_WINDOW`, reason ``outcome_unknown``: a person decides
  (``ws.campaigns.resolve``), and nothing is resent.

Records are marked (their ``due_at`` moved on) before the provider is asked,
so two processes running the same campaign do not ask twice; a process that
dies while asking leaves them due again later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..channels.base import NOT_CREATED, Status
from ..events import CampaignSent

if TYPE_CHECKING:
    from ..storage.contracts.campaigns import DeliveryRow
    from .delivery import Runner

__all__ = ["MIN_INTERVAL", "RECONCILE_WINDOW", "RECONCILING", "reconcile_due"]

#: The reason of an ``unknown`` record siyu will ask the provider about.
RECONCILING = "reconciling"
#: How long after the send siyu keeps asking before leaving the record to a person.
RECONCILE_WINDOW = timedelta(hours=1)
#: The least wait between two questions about one record.
MIN_INTERVAL = timedelta(minutes=5)


def reconcile_due(runner: Runner, totals: dict[str, Any]) -> None:
    """Ask the provider about every due ``reconciling`` record of the runner's campaign."""
    if not runner.channel.reconciles:
        return
    interval = max(timedelta(seconds=float(runner.channel.reconcile_after)), MIN_INTERVAL)
    ws = runner.ws
    while True:
        now = ws.now()
        with ws.write() as tx:
            due = tx.campaigns.due(runner.row.id, now, runner.batch, status="unknown", reason=RECONCILING)
            if not due:
                return
            tx.campaigns.set_status([(d.id, {"due_at": now + interval}) for d in due], only_from="unknown")
        _settle(runner, due, now, interval, totals)
        if len(due) < runner.batch:
            return


def _settle(
    runner: Runner, due: Sequence[DeliveryRow], now: datetime, interval: timedelta, totals: dict[str, Any]
) -> None:
    updates: list[tuple[int, dict[str, Any]]] = []
    asked = []
    for d, message in runner.messages_for(due):
        if message is None:
            updates.append((d.id, _to_person(d, "the template can no longer be filled for this user, so the "
                                             "provider cannot be asked")))
        else:
            asked.append((d, message))
    results = []
    if asked:
        since = min(d.claimed_at or now for d, _ in asked)
        results = runner.channel.reconcile([m for _, m in asked], since=since)
    by_variant: dict[str, list[int]] = {}
    for (d, _), result in zip(asked, results, strict=True):
        base = {"code": result.code, "detail": result.detail or None}
        if result.status is Status.SENT:
            updates.append((d.id, {**base, "status": "sent", "reason": None, "completed_at": now, "due_at": None,
                                   "provider_id": result.provider_id}))
            by_variant.setdefault(d.variant, []).append(d.user_id)
            totals["reconciled"] += 1
        elif result.code == NOT_CREATED:
            if d.attempts >= runner.max_attempts:
                updates.append((d.id, {**base, "status": "failed", "reason": "gave_up", "completed_at": now,
                                       "due_at": None}))
                totals["failed"] += 1
            else:
                updates.append((d.id, {**base, "status": "queued", "reason": "retry", "due_at": now}))
            totals["reconciled"] += 1
        elif result.status in (Status.UNAVAILABLE, Status.REJECTED):
            updates.append((d.id, {**base, "status": result.status.value, "reason": result.code,
                                   "completed_at": now, "due_at": None, "provider_id": result.provider_id}))
            totals["failed"] += 1
            totals["reconciled"] += 1
        elif d.claimed_at is None or now - d.claimed_at >= RECONCILE_WINDOW:
            updates.append((d.id, {**base, **_to_person(d, result.detail)}))
        else:
            updates.append((d.id, {**base, "due_at": now + interval}))
    with runner.ws.write() as tx:
        tx.campaigns.set_status(updates, only_from="unknown")
        for variant, users in by_variant.items():
            tx.emit(CampaignSent(at=now, campaign_id=runner.row.id, variant=variant, user_ids=tuple(users)))
    totals["sent"] += sum(len(users) for users in by_variant.values())


def _to_person(d: DeliveryRow, why: str) -> dict[str, Any]:
    return {
        "reason": "outcome_unknown", "due_at": None,
        "detail": f"{why}; the provider's records did not settle it: decide with "
        f"ws.campaigns.resolve({d.campaign_id}, [{d.id}], sent=True or False)",
    }
