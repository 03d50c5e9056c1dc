"""Customer groups (客户群), members, their join/quit log, join ways (群活码)."""

COMPONENT = "community"
ORDER = 61
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE chats (chat_id {text} PRIMARY KEY, name {text} NOT NULL, owner {text} NOT NULL, "
            "notice {text} NOT NULL, admins {text} NOT NULL, created_at {bigint}, status {text} NOT NULL, "
            "purpose {text}, member_version {text} NOT NULL, updated_at {bigint} NOT NULL)",
            "CREATE INDEX chats_owner ON chats (owner)",
            "CREATE TABLE chat_members (chat_id {text} NOT NULL, member_id {text} NOT NULL, type {bigint} NOT NULL, "
            "user_id {bigint}, joined_at {bigint}, join_scene {bigint}, invitor {text}, state {text}, "
            "nickname {text} NOT NULL, active {bigint} NOT NULL, quit_scene {bigint}, left_at {bigint}, role {text}, "
            "PRIMARY KEY (chat_id, member_id))",
            "CREATE INDEX chat_members_user ON chat_members (user_id)",
            "CREATE TABLE chat_member_log (id {pk}, chat_id {text} NOT NULL, member_id {text} NOT NULL, "
            "action {text} NOT NULL, at {bigint} NOT NULL)",
            "CREATE INDEX chat_member_log_at ON chat_member_log (at)",
            "CREATE TABLE join_ways (config_id {text} PRIMARY KEY, scene {bigint} NOT NULL, chat_ids {text} NOT NULL, "
            "state {text}, remark {text} NOT NULL, auto_create_room {bigint} NOT NULL, room_base_name {text}, "
            "room_base_id {bigint}, qr_code {text})",
            "CREATE INDEX join_ways_state ON join_ways (state)",
        ],
    ),
    # Group mass messages: a delivery per (send, group), claimed before the call.
    (
        2,
        [
            "CREATE TABLE chat_sends (id {pk}, send_key {text} NOT NULL, text {text} NOT NULL, "
            "attachments {text} NOT NULL, created_at {bigint} NOT NULL)",
            "CREATE UNIQUE INDEX chat_sends_key ON chat_sends (send_key)",
            "CREATE TABLE chat_deliveries (send_id {bigint} NOT NULL, chat_id {text} NOT NULL, owner {text} NOT NULL, "
            "status {text} NOT NULL, msgid {text}, updated_at {bigint} NOT NULL, PRIMARY KEY (send_id, chat_id))",
            "CREATE INDEX chat_deliveries_chat ON chat_deliveries (chat_id, updated_at)",
            "CREATE TABLE chat_send_reminders (id {pk}, msgid {text} NOT NULL, at {bigint} NOT NULL)",
            "CREATE INDEX chat_send_reminders_msgid ON chat_send_reminders (msgid, at)",
        ],
    ),
]
