"""Metrics every workspace has: ``points``, ``last_active``, ``first_seen``.

They are registered through the same :meth:`Segments.register_metric` that
other domains use, so they double as its reference examples.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .metrics import MetricValues

if TYPE_CHECKING:
    from ..storage.base import Transaction
    from .service import Segments


def points(tx: Transaction, now: datetime) -> MetricValues:
    """Usable points balance; every active user has one (0 when they have none)."""
    values: dict[int, int] = dict.fromkeys(tx.segments.user_ids(), 0)
    for uid, balance in tx.points.balances(now).items():
        if uid in values:
            values[uid] = balance
    return values


def last_active(tx: Transaction, now: datetime) -> MetricValues:
    """When the user last did something (``ws.events.track``, an order); never active: no value."""
    return dict(tx.segments.user_times("last_active_at"))


def first_seen(tx: Transaction, now: datetime) -> MetricValues:
    """When the user was created (``created_at``)."""
    return dict(tx.segments.user_times("created_at"))


def register_builtin_metrics(segments: Segments) -> None:
    # Balances change with expiry and pending lots becoming available, not only
    # with ledger writes, hence time_dependent.
    segments.register_metric("points", points, counters=("points", "users"), time_dependent=True)
    segments.register_metric("last_active", last_active, counters=("activity", "users"))
    segments.register_metric("first_seen", first_seen, counters=("users",))
