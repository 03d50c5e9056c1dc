"""Campaigns: definitions, per-(campaign, user, occurrence) delivery records,
attributed conversions, provider delivery receipts, the campaign suppression
list and settings."""

COMPONENT = "campaigns"
ORDER = 80
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE campaigns (id {pk}, name {text} NOT NULL, channel {text} NOT NULL, "
            "consent_channel {text} NOT NULL, template {text} NOT NULL, variants {text} NOT NULL, "
            "goal {text}, attribution_us {bigint} NOT NULL, purpose {text} NOT NULL, "
            "non_personalized {bigint} NOT NULL, status {text} NOT NULL, config {text} NOT NULL, "
            "audience {blob}, audience_count {bigint} NOT NULL, created_at {bigint} NOT NULL, "
            "state {text} NOT NULL)",
            "CREATE UNIQUE INDEX campaigns_name ON campaigns (name)",
            "CREATE TABLE campaign_deliveries (id {pk}, campaign_id {bigint} NOT NULL, user_id {bigint} NOT NULL, "
            "occurrence {text} NOT NULL, variant {text} NOT NULL, phase {text} NOT NULL, status {text} NOT NULL, "
            "reason {text}, channel {text} NOT NULL, purpose {text} NOT NULL, due_at {bigint}, "
            "claimed_at {bigint}, completed_at {bigint}, attempts {bigint} NOT NULL, idem_key {text}, "
            "recipient {text}, provider_id {text}, code {text}, detail {text}, created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX campaign_deliveries_once ON campaign_deliveries (campaign_id, user_id, occurrence)",
            # Contact budget, platform caps and last-touch attribution read a user's recent touches.
            "CREATE INDEX campaign_deliveries_touch ON campaign_deliveries (user_id, claimed_at)",
            "CREATE INDEX campaign_deliveries_work ON campaign_deliveries (campaign_id, status, due_at)",
            "CREATE TABLE campaign_conversions (delivery_id {bigint} PRIMARY KEY, campaign_id {bigint} NOT NULL, "
            "user_id {bigint} NOT NULL, variant {text} NOT NULL, goal {text} NOT NULL, ref {text}, "
            "value {bigint} NOT NULL, at {bigint} NOT NULL)",
            "CREATE INDEX campaign_conversions_campaign ON campaign_conversions (campaign_id, variant)",
            "CREATE TABLE campaign_suppressions (user_id {bigint} NOT NULL, channel {text} NOT NULL, "
            "reason {text} NOT NULL, at {bigint} NOT NULL, PRIMARY KEY (user_id, channel))",
            "CREATE TABLE campaign_settings (name {text} PRIMARY KEY, value {text} NOT NULL)",
        ],
    ),
    (
        2,
        [
            # Provider delivery receipts (SMS status reports ...), at most one per delivery record.
            "CREATE TABLE campaign_receipts (delivery_id {bigint} PRIMARY KEY, campaign_id {bigint} NOT NULL, "
            "status {text} NOT NULL, code {text}, detail {text}, reported_at {bigint}, "
            "recorded_at {bigint} NOT NULL)",
            "CREATE INDEX campaign_receipts_campaign ON campaign_receipts (campaign_id, status)",
            # Receipts find their record by the provider's message id.
            "CREATE INDEX campaign_deliveries_provider ON campaign_deliveries (provider_id) "
            "WHERE provider_id IS NOT NULL",
        ],
    ),
    (
        3,
        [
            # Who holds a pending claim (siyu.storage.holders): taken over only once it is gone.
            "ALTER TABLE campaign_deliveries ADD COLUMN holder {text}",
        ],
    ),
]
