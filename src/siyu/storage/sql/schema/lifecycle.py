"""Lifecycle stage history, orders seen by the stage machine, behaviour events, tag rules."""

COMPONENT = "lifecycle"
ORDER = 45
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE lifecycle_log (id {pk}, user_id {bigint} NOT NULL, from_stage {text}, "
            "to_stage {text} NOT NULL, at {bigint} NOT NULL, reason {text} NOT NULL)",
            "CREATE INDEX lifecycle_log_user ON lifecycle_log (user_id, id)",
            "CREATE TABLE lifecycle_orders (order_id {bigint} PRIMARY KEY, user_id {bigint} NOT NULL, "
            "at {bigint} NOT NULL)",
            "CREATE INDEX lifecycle_orders_user ON lifecycle_orders (user_id)",
            "CREATE TABLE user_events (id {pk}, user_id {bigint} NOT NULL, kind {text} NOT NULL, "
            "at {bigint} NOT NULL, key {text}, properties {text} NOT NULL)",
            "CREATE UNIQUE INDEX user_events_key ON user_events (key)",
            "CREATE INDEX user_events_user ON user_events (user_id, at)",
            "CREATE INDEX user_events_kind ON user_events (kind, at)",
            "CREATE TABLE tag_rules (id {pk}, tag {text} NOT NULL, expression {text} NOT NULL, "
            "group_exclusive {bigint} NOT NULL, created_at {bigint} NOT NULL, enabled {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX tag_rules_tag ON tag_rules (tag)",
        ],
    ),
]
