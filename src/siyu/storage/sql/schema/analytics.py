"""Indexes for the analytics reads (no tables of its own).

``user_events (kind, user_id, at)`` lets "who first did KIND, and when" be
answered from the index alone, in user order, without touching the table.
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
]
