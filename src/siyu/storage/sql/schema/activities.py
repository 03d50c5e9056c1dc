"""Activities: 秒杀 flash sales (stock, reservations, per-user quotas), 砍价 bargains, 抽奖 / 盲盒 draws."""

COMPONENT = "activities"
ORDER = 65
MIGRATIONS = [
    (
        1,
        [
            # stock + reserved + sold is the sale's total at every commit: units only ever move
            # between the three columns, each move guarded by `column >= qty`.
            "CREATE TABLE flash_sales (id {pk}, name {text} NOT NULL, sku {text} NOT NULL, "
            "price {bigint} NOT NULL, stock {bigint} NOT NULL, reserved {bigint} NOT NULL, "
            "sold {bigint} NOT NULL, starts_at {bigint} NOT NULL, ends_at {bigint} NOT NULL, "
            "hold_us {bigint} NOT NULL, per_user {bigint}, per_user_day {bigint}, base_price {bigint}, "
            "base_label {text}, clearance {text}, loss {bigint} NOT NULL, active {bigint} NOT NULL, "
            "created_at {bigint} NOT NULL, "
            "CHECK (stock >= 0 AND reserved >= 0 AND sold >= 0))",
            "CREATE INDEX flash_sales_sku ON flash_sales (sku)",
            "CREATE TABLE flash_reservations (id {pk}, sale_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "qty {bigint} NOT NULL, status {text} NOT NULL, key {text} NOT NULL, day {bigint} NOT NULL, "
            "created_at {bigint} NOT NULL, expires_at {bigint} NOT NULL, order_id {bigint}, closed_at {bigint})",
            # A retried reserve (same key) finds the first reservation instead of making a second.
            "CREATE UNIQUE INDEX flash_reservations_key ON flash_reservations (key)",
            "CREATE INDEX flash_reservations_due ON flash_reservations (status, expires_at)",
            "CREATE INDEX flash_reservations_user ON flash_reservations (user_id)",
            "CREATE INDEX flash_reservations_order ON flash_reservations (order_id)",
            # Units a user holds or bought: day 0 counts the whole sale, yyyymmdd one business day.
            "CREATE TABLE flash_quotas (sale_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "day {bigint} NOT NULL, held {bigint} NOT NULL, PRIMARY KEY (sale_id, user_id, day), "
            "CHECK (held >= 0))",
        ],
    ),
    (
        2,
        [
            "CREATE TABLE bargains (id {pk}, name {text} NOT NULL, sku {text} NOT NULL, price {bigint} NOT NULL, "
            "floor {bigint} NOT NULL, helpers {bigint} NOT NULL, stock {bigint} NOT NULL, sold {bigint} NOT NULL, "
            "starts_at {bigint} NOT NULL, ends_at {bigint} NOT NULL, attempt_ttl_us {bigint} NOT NULL, "
            "attempts_per_user {bigint} NOT NULL, helps_per_helper {bigint} NOT NULL, external_links {text} NOT NULL, "
            "loss {bigint} NOT NULL, active {bigint} NOT NULL, created_at {bigint} NOT NULL, "
            "CHECK (stock >= 0 AND sold >= 0))",
            # The rules an attempt started under are columns of the attempt, not looked up from the activity.
            "CREATE TABLE bargain_attempts (id {pk}, bargain_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "status {text} NOT NULL, price {bigint} NOT NULL, floor {bigint} NOT NULL, helpers {bigint} NOT NULL, "
            "deadline {bigint} NOT NULL, seed {text} NOT NULL, cut {bigint} NOT NULL, helps {bigint} NOT NULL, "
            "created_at {bigint} NOT NULL, order_id {bigint}, closed_at {bigint}, "
            "CHECK (helps <= helpers AND cut <= price - floor))",
            "CREATE INDEX bargain_attempts_user ON bargain_attempts (user_id)",
            "CREATE INDEX bargain_attempts_due ON bargain_attempts (status, deadline)",
            # One help per helper per attempt, and one row per position in the cut sequence.
            "CREATE TABLE bargain_helps (attempt_id {bigint} NOT NULL, helper_id {bigint} NOT NULL, "
            "seq {bigint} NOT NULL, cut {bigint} NOT NULL, at {bigint} NOT NULL, flagged {bigint} NOT NULL, "
            "PRIMARY KEY (attempt_id, helper_id))",
            "CREATE UNIQUE INDEX bargain_helps_seq ON bargain_helps (attempt_id, seq)",
            "CREATE TABLE bargain_counts (bargain_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "kind {text} NOT NULL, n {bigint} NOT NULL, PRIMARY KEY (bargain_id, user_id, kind))",
        ],
    ),
    (
        3,
        [
            # spec: the prize table and published rules (JSON), frozen once published.
            "CREATE TABLE draws (id {pk}, name {text} NOT NULL, status {text} NOT NULL, spec {text} NOT NULL, "
            "seed {text} NOT NULL, commitment {text}, starts_at {bigint} NOT NULL, ends_at {bigint} NOT NULL, "
            "created_at {bigint} NOT NULL)",
            "CREATE TABLE draw_prizes (draw_id {bigint} NOT NULL, idx {bigint} NOT NULL, units_left {bigint}, "
            "awarded {bigint} NOT NULL, PRIMARY KEY (draw_id, idx), CHECK (units_left IS NULL OR units_left >= 0))",
            "CREATE TABLE draw_players (draw_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "draws {bigint} NOT NULL, misses {bigint} NOT NULL, day {bigint} NOT NULL, day_count {bigint} NOT NULL, "
            "PRIMARY KEY (draw_id, user_id))",
            "CREATE TABLE draw_records (id {pk}, draw_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "seq {bigint} NOT NULL, key {text} NOT NULL, rolled {bigint} NOT NULL, prize {bigint} NOT NULL, "
            "reason {text} NOT NULL, eligible {text} NOT NULL, at {bigint} NOT NULL, order_id {bigint}, "
            "cost_points {bigint} NOT NULL)",
            # A retried draw finds its record by key; a user's draws are numbered without gaps or repeats.
            "CREATE UNIQUE INDEX draw_records_key ON draw_records (key)",
            "CREATE UNIQUE INDEX draw_records_seq ON draw_records (draw_id, user_id, seq)",
            "CREATE UNIQUE INDEX draw_records_order ON draw_records (draw_id, order_id) WHERE order_id IS NOT NULL",
        ],
    ),
]
