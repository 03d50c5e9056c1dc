"""Segment metrics from orders: ``orders``, ``spend``, ``spend_30d``, ``last_order``.

Declared as :data:`ORDER_METRICS` and registered where the workspace is built,
through ``ws.segments.register_metric`` like any domain's metrics, so
expressions such as ``orders >= 2 and spend > 500`` or
``days_since(last_order) > 90`` work. Counts skip fully refunded orders and
spend is net of refunds, in yuan (``Decimal``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..money import to_yuan
from ..segments.metrics import MetricSpec

if TYPE_CHECKING:
    from ..segments.metrics import MetricValues
    from ..storage.base import Transaction

__all__ = ["ORDER_METRICS"]


def _everyone(tx: Transaction, zero: Any) -> dict[int, Any]:
    return dict.fromkeys(tx.segments.user_ids(), zero)


def orders(tx: Transaction, now: datetime) -> MetricValues:
    """Orders not fully refunded; 0 for users who never ordered."""
    values = _everyone(tx, 0)
    for uid, stats in tx.orders.stats().items():
        if uid in values:
            values[uid] = stats.orders
    return values


def spend(tx: Transaction, now: datetime) -> MetricValues:
    """Money paid, net of refunds, in yuan; 0 for users who never ordered."""
    values = _everyone(tx, to_yuan(0))
    for uid, stats in tx.orders.stats().items():
        if uid in values:
            values[uid] = to_yuan(stats.spend_fen)
    return values


def spend_30d(tx: Transaction, now: datetime) -> MetricValues:
    """Like ``spend``, over orders paid in the last 30 days."""
    values = _everyone(tx, to_yuan(0))
    for uid, stats in tx.orders.stats(since=now - timedelta(days=30)).items():
        if uid in values:
            values[uid] = to_yuan(stats.spend_fen)
    return values


def last_order(tx: Transaction, now: datetime) -> MetricValues:
    """When the user last paid an order (compare it as ``days_since(last_order)``)."""
    return {uid: stats.last_paid_at for uid, stats in tx.orders.stats().items()}


ORDER_METRICS = (
    MetricSpec(name="orders", values=orders, counters=("orders", "users")),
    MetricSpec(name="spend", values=spend, counters=("orders", "users")),
    MetricSpec(name="spend_30d", values=spend_30d, counters=("orders", "users"), time_dependent=True),
    MetricSpec(name="last_order", values=last_order, counters=("orders", "users")),
)
