"""Indexes for the analytics reads, and the activity rollup.

``user_events (kind, user_id, at)`` lets "who first did KIND, and when" be
answered from the index alone, in user order, without touching the table;
``orders (user_id, paid_at, total, refunded)`` does the same for every
per-buyer aggregate (first and second order, RFM): on a million orders that
is one sequential index pass instead of a million random table reads.

``analytics_slots`` is the activity rollup behind cohort retention (see
``siyu.storage.sql.activity_slots``): one Roaring bitmap of user ids per
source (``"e"`` events, ``"o"`` counted orders) and 15-minute slot.
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
    (
        3,
        [
            "CREATE TABLE analytics_slots (source {text} NOT NULL, slot {bigint} NOT NULL, "
            "users {blob} NOT NULL, PRIMARY KEY (source, slot))",
            # Rows already there were written without the rollup: reports read the raw
            # rows until `ws.analytics.reindex()` builds it.
            "INSERT INTO siyu_settings (name, value) SELECT 'analytics.activity_slots_stale', "
            "'rows written before the rollup existed' "
            "WHERE EXISTS (SELECT 1 FROM user_events) OR EXISTS (SELECT 1 FROM orders)",
        ],
    ),
]
