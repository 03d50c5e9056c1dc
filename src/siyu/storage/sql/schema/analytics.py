"""Indexes for the analytics reads (no tables of its own).

``user_events (kind, user_id, at)`` lets "who first did KIND, and when" be
answered from the index alone, in user order, without touching the table;
``orders (user_id, paid_at, total, refunded)`` does the same for every
per-buyer aggregate (first and second order, RFM, cohort activity): on a
million orders that is one sequential index pass instead of a million
random table reads.
"""

COMPONENT = "analytics"
ORDER = 90
MIGRATIONS = [
    (
        1,
        [
            "CREATE INDEX analytics_events_kind_user ON user_events (kind, user_id, at)",
        ],
    ),
    (
        2,
        [
            "CREATE INDEX analytics_orders_user ON orders (user_id, paid_at, total, refunded)",
        ],
    ),
]
