"""Presales: the activity, and deposit orders holding its units."""

COMPONENT = "presale"
ORDER = 52
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE presales (id {pk}, name {text} NOT NULL, sku {text} NOT NULL, spec {text} NOT NULL, "
            "stock {bigint} NOT NULL, held {bigint} NOT NULL, status {text} NOT NULL, created_at {bigint} NOT NULL)",
            "CREATE INDEX presales_sku ON presales (sku)",
            "CREATE TABLE presale_orders (id {pk}, presale_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "qty {bigint} NOT NULL, deposit {bigint} NOT NULL, status {text} NOT NULL, key {text} NOT NULL, "
            "at {bigint} NOT NULL, updated_at {bigint}, order_id {bigint}, ship_by {bigint}, refund {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX presale_orders_key ON presale_orders (key)",
            "CREATE INDEX presale_orders_presale ON presale_orders (presale_id, status)",
            "CREATE INDEX presale_orders_user ON presale_orders (user_id)",
        ],
    ),
]
