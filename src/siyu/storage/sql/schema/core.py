"""Workspace-wide tables: counters, settings, idempotency records."""

COMPONENT = "core"
ORDER = 0
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE siyu_counters (name {text} PRIMARY KEY, value {bigint} NOT NULL)",
            "CREATE TABLE siyu_settings (name {text} PRIMARY KEY, value {text} NOT NULL)",
            "CREATE TABLE siyu_idempotency (scope {text} NOT NULL, key {text} NOT NULL, "
            "fingerprint {text} NOT NULL, result {text} NOT NULL, PRIMARY KEY (scope, key))",
        ],
    ),
]
