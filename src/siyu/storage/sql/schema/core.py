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
    (
        # Change counters in shards, so that parallel writers never queue on one row.
        2,
        [
            "CREATE TABLE siyu_counter_shards (name {text} NOT NULL, shard {bigint} NOT NULL, "
            "value {bigint} NOT NULL, PRIMARY KEY (name, shard))",
        ],
    ),
    (
        # Claim-holder leases (siyu.storage.holders.LeaseHolders), for PostgreSQL behind PgBouncer.
        3,
        ["CREATE TABLE siyu_holders (token {text} PRIMARY KEY, expires_at {bigint} NOT NULL)"],
    ),
]
