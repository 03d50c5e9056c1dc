"""The referral graph (materialized ancestor paths + downline counters), codes,
campaigns, binding history, and the facts the binding rules and fraud guards read."""

COMPONENT = "referrals"
ORDER = 60
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE referral_campaigns (name {text} PRIMARY KEY, starts_at {bigint}, ends_at {bigint}, "
            "created_at {bigint} NOT NULL)",
            "CREATE TABLE referral_codes (code {text} PRIMARY KEY, inviter_id {bigint} NOT NULL, "
            "campaign {text} NOT NULL, channel_state {text} NOT NULL, created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX referral_codes_owner ON referral_codes (inviter_id, campaign, channel_state)",
            # One row per user in the graph. `path` is the ancestor chain root-first, each id followed by
            # '/', ending with the user's own id, so a downline is one index range scan; `downline` is kept
            # up to date on every attach/detach so a downline size is one row read.
            "CREATE TABLE referral_nodes (user_id {pk}, inviter_id {bigint}, path {text} NOT NULL, "
            "depth {bigint} NOT NULL, downline {bigint} NOT NULL, campaign {text}, channel_state {text}, "
            "code {text}, bound_at {bigint}, via {text}, status {text}, device {text})",
            "CREATE INDEX referral_nodes_inviter ON referral_nodes (inviter_id)",
            "CREATE INDEX referral_nodes_path ON referral_nodes (path)",
            "CREATE INDEX referral_nodes_campaign ON referral_nodes (campaign, inviter_id)",
            "CREATE INDEX referral_nodes_bound ON referral_nodes (inviter_id, bound_at)",
            "CREATE TABLE referral_log (id {pk}, invitee_id {bigint} NOT NULL, old_inviter_id {bigint}, "
            "new_inviter_id {bigint}, at {bigint} NOT NULL, reason {text} NOT NULL)",
            "CREATE INDEX referral_log_invitee ON referral_log (invitee_id, id)",
            "CREATE TABLE referral_actions (user_id {bigint} NOT NULL, action {text} NOT NULL, "
            "at {bigint} NOT NULL, PRIMARY KEY (user_id, action))",
            "CREATE TABLE referral_leaves (user_id {bigint} PRIMARY KEY, at {bigint} NOT NULL)",
            "CREATE TABLE referral_customers (user_id {bigint} PRIMARY KEY, at {bigint} NOT NULL)",
            "CREATE TABLE referral_funnel (campaign {text} NOT NULL, channel_state {text} NOT NULL, "
            "stage {text} NOT NULL, n {bigint} NOT NULL, PRIMARY KEY (campaign, channel_state, stage))",
            "CREATE TABLE referral_holds (id {pk}, kind {text} NOT NULL, subject_id {bigint} NOT NULL, "
            "user_id {bigint} NOT NULL, reasons {text} NOT NULL, status {text} NOT NULL, "
            "created_at {bigint} NOT NULL, decided_at {bigint}, decided_by {text})",
            "CREATE INDEX referral_holds_status ON referral_holds (status, id)",
        ],
    ),
    (
        2,
        [
            # Purchases seen in OrderRecorded / OrderRefunded, so "the invitee bought (and kept it)"
            # can be judged without depending on how orders are stored.
            "CREATE TABLE referral_purchases (order_id {bigint} PRIMARY KEY, user_id {bigint} NOT NULL, "
            "paid_at {bigint} NOT NULL, total_fen {bigint} NOT NULL, refunded_fen {bigint} NOT NULL)",
            "CREATE INDEX referral_purchases_user ON referral_purchases (user_id)",
        ],
    ),
    (
        3,
        [
            # Who recorded shares, so the K-factor divides by users who actually shared and not by
            # everyone who once fetched a code.
            "CREATE TABLE referral_shares (campaign {text} NOT NULL, channel_state {text} NOT NULL, "
            "user_id {bigint} NOT NULL, n {bigint} NOT NULL, PRIMARY KEY (campaign, user_id, channel_state))",
        ],
    ),
]
