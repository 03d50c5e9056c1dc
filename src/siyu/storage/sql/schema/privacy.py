"""Privacy: the append-only audit log, legal holds, erasure tombstones."""

COMPONENT = "privacy"
ORDER = 90
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE audit_log (id {pk}, at {bigint} NOT NULL, actor {text} NOT NULL, "
            "action {text} NOT NULL, user_id {bigint}, details {text} NOT NULL, before_value {text}, "
            "after_value {text})",
            "CREATE INDEX audit_log_user ON audit_log (user_id, id)",
            "CREATE INDEX audit_log_at ON audit_log (at)",
            "CREATE TABLE privacy_holds (id {pk}, user_id {bigint} NOT NULL, reason {text} NOT NULL, "
            "placed_at {bigint} NOT NULL, placed_by {text} NOT NULL, released_at {bigint}, released_by {text})",
            "CREATE INDEX privacy_holds_user ON privacy_holds (user_id)",
            "CREATE TABLE privacy_tombstones (user_id {bigint} PRIMARY KEY, pseudonym {text} NOT NULL, "
            "erased_at {bigint} NOT NULL, erased_by {text} NOT NULL, reason {text} NOT NULL)",
        ],
    ),
]
