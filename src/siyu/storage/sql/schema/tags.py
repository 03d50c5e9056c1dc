"""Tag groups, tags, current applications and their log."""

COMPONENT = "tags"
ORDER = 20
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE tag_groups (name {text} PRIMARY KEY, exclusive {bigint} NOT NULL, "
            "description {text} NOT NULL, created_at {bigint} NOT NULL)",
            "CREATE TABLE tags (id {pk}, group_name {text} NOT NULL, name {text} NOT NULL, "
            "created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX tags_unique ON tags (group_name, name)",
            "CREATE TABLE user_tags (user_id {bigint} NOT NULL, tag_id {bigint} NOT NULL, "
            "applied_at {bigint} NOT NULL, applied_by {text} NOT NULL, PRIMARY KEY (user_id, tag_id))",
            "CREATE INDEX user_tags_tag ON user_tags (tag_id, user_id)",
            "CREATE TABLE tag_log (id {pk}, user_id {bigint} NOT NULL, tag_id {bigint} NOT NULL, "
            "action {text} NOT NULL, at {bigint} NOT NULL, by_what {text} NOT NULL)",
            "CREATE INDEX tag_log_user ON tag_log (user_id, id)",
        ],
    ),
]
