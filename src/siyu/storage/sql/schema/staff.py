"""Staff members, (staff, customer) relations, owners and transfers."""

COMPONENT = "staff"
ORDER = 60
MIGRATIONS = [
    (
        1,
        [
            "CREATE TABLE staff (userid {text} PRIMARY KEY, name {text} NOT NULL, department {text}, "
            "store {text}, role {text} NOT NULL, status {text} NOT NULL, since {bigint} NOT NULL, "
            "resigned_at {bigint})",
            "CREATE TABLE staff_relations (user_id {bigint} NOT NULL, staff {text} NOT NULL, "
            "status {text} NOT NULL, remark {text} NOT NULL, description {text} NOT NULL, tags {text} NOT NULL, "
            "add_way {bigint}, state {text}, oper_userid {text}, since {bigint} NOT NULL, "
            "changed_at {bigint} NOT NULL, ended_at {bigint}, PRIMARY KEY (user_id, staff))",
            "CREATE INDEX staff_relations_staff ON staff_relations (staff, status, user_id)",
            "CREATE TABLE staff_owners (user_id {bigint} PRIMARY KEY, staff {text} NOT NULL, "
            "since {bigint} NOT NULL)",
            "CREATE INDEX staff_owners_staff ON staff_owners (staff, user_id)",
            "CREATE TABLE staff_owner_log (id {pk}, user_id {bigint} NOT NULL, staff {text}, "
            "at {bigint} NOT NULL, reason {text} NOT NULL)",
            "CREATE INDEX staff_owner_log_user ON staff_owner_log (user_id, id)",
            "CREATE TABLE staff_transfers (id {pk}, user_id {bigint} NOT NULL, from_staff {text} NOT NULL, "
            "to_staff {text} NOT NULL, kind {text} NOT NULL, status {text} NOT NULL, started_at {bigint} NOT NULL, "
            "takeover_at {bigint}, finished_at {bigint}, errcode {bigint}, raw_status {bigint})",
            "CREATE INDEX staff_transfers_user ON staff_transfers (user_id, started_at)",
            "CREATE INDEX staff_transfers_status ON staff_transfers (status, id)",
        ],
    ),
    # Follow-up tasks (SOPs); task_key makes each cause produce its task once.
    (
        2,
        [
            "CREATE TABLE staff_tasks (id {pk}, rule {text} NOT NULL, user_id {bigint} NOT NULL, "
            "staff {text} NOT NULL, title {text} NOT NULL, created_at {bigint} NOT NULL, due_at {bigint} NOT NULL, "
            "status {text} NOT NULL, completed_at {bigint}, task_key {text} NOT NULL)",
            "CREATE UNIQUE INDEX staff_tasks_key ON staff_tasks (task_key)",
            "CREATE INDEX staff_tasks_open ON staff_tasks (status, staff, due_at)",
            "CREATE INDEX staff_tasks_user ON staff_tasks (user_id, rule)",
        ],
    ),
]
