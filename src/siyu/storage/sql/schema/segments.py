"""Saved segments and audience snapshots (a serialized Roaring bitmap each)."""

COMPONENT = "segments"
ORDER = 40
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE segments (name {text} PRIMARY KEY, expression {text} NOT NULL, "
            "description {text} NOT NULL, created_at {bigint} NOT NULL, updated_at {bigint} NOT NULL)",
            "CREATE TABLE segment_snapshots (id {pk}, name {text} NOT NULL, expression {text} NOT NULL, "
            "resolved {text} NOT NULL, created_at {bigint} NOT NULL, user_count {bigint} NOT NULL, "
            "bitmap {blob} NOT NULL, key {text})",
            "CREATE INDEX segment_snapshots_name ON segment_snapshots (name, id)",
            "CREATE UNIQUE INDEX segment_snapshots_key ON segment_snapshots (key)",
        ],
    ),
    (
        2,
        [
            # The engine's tag bitmaps, written back so a cold process loads ~200
            # blobs instead of re-reading every membership row; the matching tag
            # history position lives in siyu_settings ("segments.bitmap_cache").
            "CREATE TABLE segment_bitmaps (tag_id {bigint} PRIMARY KEY, bitmap {blob} NOT NULL)",
        ],
    ),
]
