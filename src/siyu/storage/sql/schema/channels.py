"""Channels: the outbox, processed callbacks, subscription credits, channel state."""

COMPONENT = "channels"
ORDER = 60
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE channel_outbox (id {pk}, channel {text} NOT NULL, recipient {text} NOT NULL, "
            "user_id {bigint}, body {text} NOT NULL, template {text}, variables {text} NOT NULL, "
            "purpose {text} NOT NULL, idem_key {text}, created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX channel_outbox_key ON channel_outbox (channel, idem_key)",
            "CREATE TABLE channel_callbacks (source {text} NOT NULL, callback_id {text} NOT NULL, "
            "processed_at {bigint} NOT NULL, PRIMARY KEY (source, callback_id))",
            "CREATE TABLE channel_credits (channel {text} NOT NULL, recipient {text} NOT NULL, "
            "template {text} NOT NULL, credits {bigint} NOT NULL, updated_at {bigint} NOT NULL, "
            "PRIMARY KEY (channel, recipient, template))",
            "CREATE TABLE channel_state (channel {text} NOT NULL, name {text} NOT NULL, value {text} NOT NULL, "
            "PRIMARY KEY (channel, name))",
        ],
    ),
]
