"""Users, identities, consents, merges."""

COMPONENT = "users"
ORDER = 10
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE users (id {pk}, created_at {bigint} NOT NULL, source {text}, "
            "source_campaign {text}, source_state {text}, attributes {text} NOT NULL DEFAULT '{{}}', "
            "status {text} NOT NULL DEFAULT 'active', merged_into {bigint}, last_active_at {bigint})",
            "CREATE INDEX users_source ON users (source)",
            "CREATE TABLE identities (id {pk}, user_id {bigint} NOT NULL, kind {text} NOT NULL, "
            "scope {text} NOT NULL, value {text} NOT NULL, linked_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX identities_unique ON identities (kind, scope, value)",
            "CREATE INDEX identities_user ON identities (user_id)",
            "CREATE TABLE consents (id {pk}, user_id {bigint} NOT NULL, purpose {text} NOT NULL, "
            "channel {text} NOT NULL, granted {bigint} NOT NULL, at {bigint} NOT NULL, "
            "source {text} NOT NULL, notice_version {text} NOT NULL)",
            "CREATE INDEX consents_user ON consents (user_id)",
            "CREATE TABLE user_merges (id {pk}, keep_id {bigint} NOT NULL, drop_id {bigint} NOT NULL, "
            "at {bigint} NOT NULL, payload {text} NOT NULL, undone_at {bigint})",
        ],
    ),
    # Privacy: sealed personal data next to the clear columns. With a workspace key,
    # identities.value holds a blind index and identities.sealed the AES-GCM ciphertext;
    # users.sealed holds the personal attributes.
    (
        2,
        [
            "ALTER TABLE identities ADD COLUMN sealed {text}",
            "ALTER TABLE users ADD COLUMN sealed {text}",
        ],
    ),
]
