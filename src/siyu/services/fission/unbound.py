"""The referral observer's common case in bulk: events of users nobody invited.

For a buyer without a binding an order only records the purchase, the first
purchase makes them a customer, and the order is marked processed for
commissions (which it cannot earn: there is no upline). A tracked event only
records the action (no inviter has a task to re-evaluate). None of that reads
what another event of the delivery writes, so a ``record_many`` of thousands
of such orders costs a few statements instead of several per order, with
the same rows as one event at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ...events import Event, EventTracked, OrderRecorded, OrderRefunded

if TYPE_CHECKING:
    from ...storage.base import Transaction

__all__ = ["record_unbound"]


def record_unbound(tx: Transaction, events: Sequence[Event]) -> set[int]:
    """Apply the events of unbound users; return the positions (in ``events``)
    of those it handled. The others are left for the per-event path."""
    users = sorted({e.user_id for e in events if isinstance(e, OrderRecorded | EventTracked)})
    if not users:
        return set()
    bound = tx.referrals.bound(users)
    # A refund delivered before its own order (not something ws.orders produces) must still find no
    # purchase to reduce, as it would one event at a time: such an order takes the per-event path.
    first_record: dict[int, int] = {}
    early_refunds: set[int] = set()
    for position, event in enumerate(events):
        if isinstance(event, OrderRecorded):
            first_record.setdefault(event.order_id, position)
        elif isinstance(event, OrderRefunded) and event.order_id not in first_record:
            early_refunds.add(event.order_id)
    orders: list[tuple[int, OrderRecorded]] = []
    actions: list[tuple[int, EventTracked]] = []
    for position, event in enumerate(events):
        if isinstance(event, OrderRecorded) and event.user_id not in bound and event.order_id not in early_refunds:
            orders.append((position, event))
        elif isinstance(event, EventTracked) and event.user_id not in bound:
            actions.append((position, event))
    _orders(tx, [e for _, e in orders])
    if actions:
        tx.referrals.add_actions([(e.user_id, e.kind, e.at) for _, e in actions])
    return {p for p, _ in orders} | {p for p, _ in actions}


def _orders(tx: Transaction, orders: list[OrderRecorded]) -> None:
    if not orders:
        return
    new = set(tx.referrals.add_purchases([(e.order_id, e.user_id, e.paid_at, e.total_fen) for e in orders]))
    fresh: list[OrderRecorded] = []
    for event in orders:
        if event.order_id in new:
            new.discard(event.order_id)  # the same order twice in one delivery: the repeat changes nothing
            fresh.append(event)
    known = tx.referrals.customers([e.user_id for e in fresh])
    customers: dict[int, datetime] = {}
    for event in fresh:
        if event.user_id not in known:
            customers.setdefault(event.user_id, event.paid_at)  # the first purchase delivered makes the customer
    if customers:
        tx.referrals.add_customers(list(customers.items()))
    tx.fission.claim_events("order", [(e.order_id, e.at) for e in fresh])
