"""The event log: events appended with the change that caused them, consumer checkpoints, due jobs.

``events.position`` orders the log. On SQLite writers are serialized, so the
position is gap-free and in commit order (``AUTOINCREMENT``: never reused, even
after old events are deleted). On PostgreSQL it comes from the identity
sequence inside a commit fence; see ``siyu.storage.postgresql``.
"""

COMPONENT = "event_log"
ORDER = 5
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE events (position {pk_log}, type {text} NOT NULL, schema_version {bigint} NOT NULL, "
            "occurred_at {bigint} NOT NULL, recorded_at {bigint} NOT NULL, user_id {bigint}, "
            "correlation_id {text} NOT NULL, payload {text} NOT NULL, redacted {bigint} NOT NULL DEFAULT 0)",
            "CREATE INDEX events_user ON events (user_id) WHERE user_id IS NOT NULL",
            "CREATE TABLE event_consumers (name {text} PRIMARY KEY, kind {text} NOT NULL, "
            "position {bigint} NOT NULL, attempts {bigint} NOT NULL DEFAULT 0, error {text}, "
            "failed_position {bigint}, parked {bigint} NOT NULL DEFAULT 0, lease_owner {text}, "
            "lease_until {bigint}, updated_at {bigint} NOT NULL)",
            "CREATE TABLE siyu_jobs (name {text} PRIMARY KEY, next_due {bigint} NOT NULL, "
            "last_run_at {bigint}, last_result {text})",
        ],
    ),
    (
        # A row holds a run of events (see siyu.storage.sql.event_log); a version 1 row is a run of one.
        2,
        [
            "ALTER TABLE events ADD COLUMN run_length {bigint} NOT NULL DEFAULT 1",
            "ALTER TABLE events ADD COLUMN users {text}",
            "ALTER TABLE events ADD COLUMN redacted_lines {text}",
            "CREATE TABLE event_users (user_id {bigint} NOT NULL, position {bigint} NOT NULL, "
            "PRIMARY KEY (user_id, position))",
        ],
    ),
]
