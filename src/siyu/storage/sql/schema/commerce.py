"""Commerce: products, orders and refunds, coupons and activities, tiers."""

COMPONENT = "commerce"
ORDER = 40
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE products (sku {text} PRIMARY KEY, title {text} NOT NULL, price {bigint} NOT NULL, "
            "cost {bigint} NOT NULL, role {text} NOT NULL, category {text}, min_margin {text}, "
            "active {bigint} NOT NULL, member_prices {text} NOT NULL, tiers {text} NOT NULL, "
            "updated_at {bigint} NOT NULL)",
            "CREATE TABLE orders (id {pk}, user_id {bigint} NOT NULL, key {text}, fingerprint {text}, "
            "channel {text}, paid_at {bigint} NOT NULL, subtotal {bigint} NOT NULL, discount {bigint} NOT NULL, "
            "total {bigint} NOT NULL, refunded {bigint} NOT NULL, coupons {text} NOT NULL, "
            "points_entry_id {bigint}, points {bigint} NOT NULL, growth {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX orders_key ON orders (key)",
            "CREATE INDEX orders_user ON orders (user_id, paid_at)",
            "CREATE INDEX orders_paid_at ON orders (paid_at)",
            "CREATE TABLE order_lines (order_id {bigint} NOT NULL, line_no {bigint} NOT NULL, sku {text} NOT NULL, "
            "qty {bigint} NOT NULL, unit {bigint} NOT NULL, paid {bigint} NOT NULL, role {text} NOT NULL, "
            "category {text}, cost {bigint} NOT NULL, refunded {bigint} NOT NULL, refunded_qty {bigint} NOT NULL, "
            "PRIMARY KEY (order_id, line_no))",
            "CREATE TABLE order_refunds (id {pk}, order_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "key {text} NOT NULL, fingerprint {text} NOT NULL, at {bigint} NOT NULL, amount {bigint} NOT NULL, "
            "lines {text} NOT NULL, is_full {bigint} NOT NULL, points_reversed {bigint} NOT NULL, "
            "points_shortfall {bigint} NOT NULL, growth_reversed {bigint} NOT NULL, coupons_returned {text} NOT NULL)",
            "CREATE UNIQUE INDEX order_refunds_key ON order_refunds (key)",
            "CREATE INDEX order_refunds_order ON order_refunds (order_id)",
            "CREATE TABLE coupon_templates (id {pk}, name {text} NOT NULL, spec {text} NOT NULL, "
            "issued {bigint} NOT NULL, budget_used {bigint} NOT NULL, active {bigint} NOT NULL, "
            "created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX coupon_templates_name ON coupon_templates (name)",
            "CREATE TABLE coupons (id {pk}, code {text} NOT NULL, template_id {bigint} NOT NULL, "
            "user_id {bigint} NOT NULL, issued_at {bigint} NOT NULL, valid_from {bigint} NOT NULL, "
            "valid_until {bigint}, status {text} NOT NULL, order_id {bigint}, redeemed_at {bigint})",
            "CREATE UNIQUE INDEX coupons_code ON coupons (code)",
            "CREATE INDEX coupons_user ON coupons (user_id, status)",
            "CREATE INDEX coupons_template_user ON coupons (template_id, user_id)",
            "CREATE INDEX coupons_due ON coupons (valid_until) WHERE status = 'issued'",
            "CREATE TABLE activities (id {pk}, name {text} NOT NULL, spec {text} NOT NULL, "
            "budget_used {bigint} NOT NULL, active {bigint} NOT NULL)",
            "CREATE TABLE tiers (name {text} PRIMARY KEY, threshold {bigint} NOT NULL, rank {bigint} NOT NULL, "
            "benefits {text} NOT NULL)",
            "CREATE TABLE tier_growth (id {pk}, user_id {bigint} NOT NULL, amount {bigint} NOT NULL, "
            "at {bigint} NOT NULL, reason {text} NOT NULL, ref {text})",
            "CREATE INDEX tier_growth_user ON tier_growth (user_id, at)",
            "CREATE INDEX tier_growth_ref ON tier_growth (ref) WHERE ref IS NOT NULL",
            "CREATE INDEX tier_growth_at ON tier_growth (at)",
            "CREATE TABLE tier_current (user_id {bigint} PRIMARY KEY, tier {text} NOT NULL, since {bigint} NOT NULL)",
            "CREATE TABLE tier_history (id {pk}, user_id {bigint} NOT NULL, at {bigint} NOT NULL, old {text}, "
            "new {text}, growth {bigint} NOT NULL, reason {text} NOT NULL)",
            "CREATE INDEX tier_history_user ON tier_history (user_id, id)",
        ],
    ),
    # Loss-leader budget an order used, so a full refund can give it back.
    (2, ["ALTER TABLE orders ADD COLUMN budget {text}"]),
    # Points and growth each line earned, so a refund takes back the refunded lines' own, and what
    # each refund took back per line (JSON [[line_no, points, growth], ...]). NULL on lines of orders
    # from before: their refunds keep taking a share of the order's by money.
    (3, ["ALTER TABLE order_lines ADD COLUMN points {bigint}", "ALTER TABLE order_lines ADD COLUMN growth {bigint}",
         "ALTER TABLE order_refunds ADD COLUMN effects {text}"]),
    # A product's own loss budget (traffic and activity items priced below their floor) and what
    # orders used of it, per line, so refunds give it back.
    (4, ["ALTER TABLE products ADD COLUMN loss_budget {bigint}",
         "ALTER TABLE products ADD COLUMN loss_used {bigint} NOT NULL DEFAULT 0",
         "ALTER TABLE order_lines ADD COLUMN loss {bigint} NOT NULL DEFAULT 0"]),
]
