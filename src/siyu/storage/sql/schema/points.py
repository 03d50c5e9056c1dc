"""The points ledger. An earn-like entry row doubles as its lot."""

COMPONENT = "points"
ORDER = 30
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE points_entries (id {pk}, user_id {bigint} NOT NULL, kind {text} NOT NULL, "
            "amount {bigint} NOT NULL, reason {text} NOT NULL, at {bigint} NOT NULL, key {text}, "
            "fingerprint {text}, ref_entry_id {bigint}, remaining {bigint}, available_at {bigint}, "
            "expires_at {bigint})",
            "CREATE UNIQUE INDEX points_entries_key ON points_entries (key)",
            "CREATE INDEX points_entries_user ON points_entries (user_id, id)",
            # Only lots with points left are searched, so a partial index stays small.
            "CREATE INDEX points_lots_open ON points_entries (user_id, expires_at) WHERE remaining > 0",
            "CREATE INDEX points_lots_expiry ON points_entries (expires_at) WHERE remaining > 0",
            "CREATE INDEX points_entries_ref ON points_entries (ref_entry_id) WHERE ref_entry_id IS NOT NULL",
            "CREATE TABLE points_allocations (entry_id {bigint} NOT NULL, lot_id {bigint} NOT NULL, "
            "amount {bigint} NOT NULL)",
            "CREATE INDEX points_allocations_entry ON points_allocations (entry_id)",
        ],
    ),
]
