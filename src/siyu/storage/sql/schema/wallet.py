"""The member wallet: stored value, recharges, gift cards; the points mall."""

COMPONENT = "wallet"
ORDER = 50
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE wallet_plans (id {pk}, name {text} NOT NULL, tiers {text} NOT NULL, "
            "active {bigint} NOT NULL, created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX wallet_plans_name ON wallet_plans (name)",
            # One row per member: the balances every debit updates conditionally.
            "CREATE TABLE wallet_accounts (user_id {bigint} PRIMARY KEY, principal {bigint} NOT NULL, "
            "bonus {bigint} NOT NULL, updated_at {bigint} NOT NULL)",
            "CREATE TABLE wallet_entries (id {pk}, user_id {bigint} NOT NULL, kind {text} NOT NULL, "
            "principal {bigint} NOT NULL, bonus {bigint} NOT NULL, principal_after {bigint} NOT NULL, "
            "bonus_after {bigint} NOT NULL, ref {text} NOT NULL, at {bigint} NOT NULL, key {text})",
            "CREATE UNIQUE INDEX wallet_entries_key ON wallet_entries (key)",
            "CREATE INDEX wallet_entries_user ON wallet_entries (user_id, id)",
            "CREATE INDEX wallet_entries_ref ON wallet_entries (ref)",
            "CREATE INDEX wallet_entries_at ON wallet_entries (at)",
            "CREATE TABLE wallet_recharges (id {pk}, user_id {bigint} NOT NULL, payment_id {text} NOT NULL, "
            "plan {text}, principal {bigint} NOT NULL, bonus {bigint} NOT NULL, status {text} NOT NULL, "
            "method {text} NOT NULL, created_at {bigint} NOT NULL, paid_at {bigint}, note {text} NOT NULL)",
            # The payment provider's trade number: a callback delivered twice finds the same row.
            "CREATE UNIQUE INDEX wallet_recharges_payment ON wallet_recharges (payment_id)",
            "CREATE INDEX wallet_recharges_user ON wallet_recharges (user_id, id)",
            "CREATE TABLE gift_cards (id {pk}, code_hash {text} NOT NULL, last4 {text} NOT NULL, "
            "value {bigint} NOT NULL, balance {bigint} NOT NULL, named {bigint} NOT NULL, status {text} NOT NULL, "
            "owner_id {bigint}, expires_at {bigint}, created_at {bigint} NOT NULL, sold_at {bigint}, "
            "batch {text} NOT NULL)",
            "CREATE UNIQUE INDEX gift_cards_code ON gift_cards (code_hash)",
            "CREATE INDEX gift_cards_batch ON gift_cards (batch)",
            "CREATE INDEX gift_cards_owner ON gift_cards (owner_id)",
            "CREATE TABLE gift_card_entries (id {pk}, card_id {bigint} NOT NULL, kind {text} NOT NULL, "
            "amount {bigint} NOT NULL, balance_before {bigint} NOT NULL, balance_after {bigint} NOT NULL, "
            "user_id {bigint}, ref {text} NOT NULL, at {bigint} NOT NULL)",
            "CREATE INDEX gift_card_entries_card ON gift_card_entries (card_id, id)",
            "CREATE TABLE mall_rewards (id {pk}, name {text} NOT NULL, spec {text} NOT NULL, stock {bigint}, "
            "redeemed {bigint} NOT NULL, active {bigint} NOT NULL, created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX mall_rewards_name ON mall_rewards (name)",
            "CREATE TABLE mall_redemptions (id {pk}, reward_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "qty {bigint} NOT NULL, points {bigint} NOT NULL, status {text} NOT NULL, key {text} NOT NULL, "
            "at {bigint} NOT NULL, spend_entry_id {bigint}, refund_entry_id {bigint}, coupons {text} NOT NULL, "
            "note {text} NOT NULL, updated_at {bigint})",
            "CREATE UNIQUE INDEX mall_redemptions_key ON mall_redemptions (key)",
            "CREATE INDEX mall_redemptions_user ON mall_redemptions (user_id, reward_id, at)",
            "CREATE INDEX mall_redemptions_reward ON mall_redemptions (reward_id)",
        ],
    ),
]
