"""Lifecycle stage history, orders (and full refunds) seen by the stage machine, behaviour events, tag rules."""

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
    (
        2,
        [
            # When an order was refunded in full (NULL: it still counts), so refunds move stages back.
            "ALTER TABLE lifecycle_orders ADD COLUMN refunded_at {bigint}",
            # Orders refunded in full before this version stop counting too (a 0-yuan order always counts,
            # as in analytics); the stages they held up are left as they are.
            "UPDATE lifecycle_orders SET refunded_at = COALESCE((SELECT MAX(r.at) FROM order_refunds r "
            "WHERE r.order_id = lifecycle_orders.order_id), at) "
            "WHERE order_id IN (SELECT id FROM orders WHERE total > 0 AND refunded >= total)",
        ],
    ),
]
