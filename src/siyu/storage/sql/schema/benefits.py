"""Member benefits: sign-ins, reward budgets, grants made once per period."""

COMPONENT = "benefits"
ORDER = 51
MIGRATIONS = [
    (
        1,
        [
            # One sign per member and business day, whatever races.
            "CREATE TABLE signins (user_id {bigint} NOT NULL, day {text} NOT NULL, kind {text} NOT NULL, "
            "points {bigint} NOT NULL, at {bigint} NOT NULL, PRIMARY KEY (user_id, day))",
            "CREATE TABLE reward_budgets (name {text} PRIMARY KEY, used {bigint} NOT NULL)",
            "CREATE TABLE benefit_grants (id {pk}, user_id {bigint} NOT NULL, benefit {text} NOT NULL, "
            "period {text} NOT NULL, status {text} NOT NULL, amount {bigint} NOT NULL, at {bigint} NOT NULL, "
            "due_at {bigint}, ref {text} NOT NULL)",
            "CREATE UNIQUE INDEX benefit_grants_once ON benefit_grants (user_id, benefit, period)",
            "CREATE INDEX benefit_grants_due ON benefit_grants (status, due_at)",
            "CREATE INDEX benefit_grants_ref ON benefit_grants (ref)",
        ],
    ),
    (
        2,
        [
            # Birthdays on the profile: month and day to find whose is today, the year only if given.
            "CREATE TABLE birthdays (user_id {bigint} PRIMARY KEY, month {bigint} NOT NULL, "
            "day {bigint} NOT NULL, year {bigint}, set_at {bigint} NOT NULL)",
            "CREATE INDEX birthdays_day ON birthdays (month, day)",
        ],
    ),
]
