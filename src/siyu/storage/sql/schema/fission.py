"""任务宝 tasks and reward grants, 拼团 group buys, 分销 commission ledger."""

COMPONENT = "fission"
ORDER = 61
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE invite_tasks (id {pk}, name {text} NOT NULL, campaign {text} NOT NULL, "
            "spec {text} NOT NULL, starts_at {bigint} NOT NULL, deadline {bigint} NOT NULL, "
            "created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX invite_tasks_name ON invite_tasks (name)",
            "CREATE TABLE invite_rewards (id {pk}, task_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "stage {bigint} NOT NULL, reward {text} NOT NULL, status {text} NOT NULL, at {bigint} NOT NULL, "
            "points_entry_id {bigint})",
            # The unique index is what makes a stage reward exactly-once, whatever retries or races.
            "CREATE UNIQUE INDEX invite_rewards_once ON invite_rewards (task_id, user_id, stage)",
            "CREATE TABLE group_buys (id {pk}, leader_id {bigint} NOT NULL, sku {text} NOT NULL, "
            "size {bigint} NOT NULL, price_fen {bigint} NOT NULL, status {text} NOT NULL, "
            "opened_at {bigint} NOT NULL, expires_at {bigint} NOT NULL, closed_at {bigint})",
            "CREATE INDEX group_buys_due ON group_buys (status, expires_at)",
            "CREATE TABLE group_members (group_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "joined_at {bigint} NOT NULL, order_id {bigint}, paid_fen {bigint} NOT NULL, "
            "PRIMARY KEY (group_id, user_id))",
            "CREATE INDEX group_members_user ON group_members (user_id)",
            "CREATE TABLE commission_entries (id {pk}, distributor_id {bigint} NOT NULL, "
            "order_id {bigint} NOT NULL, buyer_id {bigint} NOT NULL, level {bigint} NOT NULL, "
            "base_fen {bigint} NOT NULL, rate_ppm {bigint} NOT NULL, original_fen {bigint} NOT NULL, "
            "amount_fen {bigint} NOT NULL, refunded_base_fen {bigint} NOT NULL, status {text} NOT NULL, "
            "created_at {bigint} NOT NULL, settle_after {bigint} NOT NULL, settled_at {bigint})",
            "CREATE UNIQUE INDEX commission_entries_once ON commission_entries (order_id, level)",
            "CREATE INDEX commission_entries_distributor ON commission_entries (distributor_id, id)",
            "CREATE INDEX commission_entries_due ON commission_entries (status, settle_after)",
            "CREATE TABLE commission_adjustments (refund_id {bigint} NOT NULL, entry_id {bigint} NOT NULL, "
            "delta_fen {bigint} NOT NULL, at {bigint} NOT NULL, PRIMARY KEY (refund_id, entry_id))",
            "CREATE TABLE fission_processed (kind {text} NOT NULL, ref {bigint} NOT NULL, at {bigint} NOT NULL, "
            "PRIMARY KEY (kind, ref))",
        ],
    ),
    (
        2,
        [
            # The terms an entry was earned under (JSON, at least {"excluded_roles": [...]}), so a refund
            # reverses it with those and not with whatever the configuration says at refund time.
            "ALTER TABLE commission_entries ADD COLUMN terms {text}",
            # Entries from before this step did not record theirs: the configuration in force at the upgrade
            # is the best record left (NULL when never configured, i.e. the defaults applied).
            "UPDATE commission_entries SET terms = (SELECT value FROM siyu_settings "
            "WHERE name = 'referrals.commissions') WHERE terms IS NULL",
        ],
    ),
    # Each entry's basis per order line (JSON [[line_no, base_fen, amount_fen, refunded_fen], ...]), so a
    # refund takes back what the refunded lines earned. NULL for entries from before: refunds reverse
    # those over the whole entry, as they did.
    (3, ["ALTER TABLE commission_entries ADD COLUMN lines {text}"]),
    # The product loss budget a group priced below the floor reserved when it opened (given back if it fails).
    (4, ["ALTER TABLE group_buys ADD COLUMN loss_fen {bigint} NOT NULL DEFAULT 0"]),
]
