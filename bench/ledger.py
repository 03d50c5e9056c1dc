"""Points ledger throughput on SQLite: siyu against raw sqlite3 inserts.

100,000 earns and 50,000 spends through ``ws.points.earn_many`` /
``spend_many`` in batches, then a smaller number one call at a time
(extrapolated), beside a raw ``sqlite3`` ``executemany`` of the same rows
into a table with the same columns and indexes as siyu's ``points_entries``,
with the same pragmas (WAL, synchronous=NORMAL) and one transaction per
batch. The goal of issue 2: batched earn at no less than 25% of the raw rate.

    .venv/bin/python bench/ledger.py [--db URL] [--scale 0.1] [--batch 5000] [--profile out.pstats]
"""

from __future__ import annotations

import argparse
import cProfile
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu._clock import to_us
from siyu.testing import FakeClock

GOAL = 0.25
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

# The same shape as siyu's points_entries (storage/sql/schema/points.py), so the
# baseline pays for the same indexes and only siyu's own work makes the difference.
BASELINE_DDL = [
    "CREATE TABLE points_entries (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, kind TEXT NOT NULL, "
    "amount INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL, key TEXT, fingerprint TEXT, "
    "ref_entry_id INTEGER, remaining INTEGER, available_at INTEGER, expires_at INTEGER)",
    "CREATE UNIQUE INDEX points_entries_key ON points_entries (key)",
    "CREATE INDEX points_entries_user ON points_entries (user_id, id)",
    "CREATE INDEX points_lots_open ON points_entries (user_id, expires_at) WHERE remaining > 0",
    "CREATE INDEX points_lots_expiry ON points_entries (expires_at) WHERE remaining > 0",
    "CREATE INDEX points_entries_ref ON points_entries (ref_entry_id) WHERE ref_entry_id IS NOT NULL",
]
INSERT = (
    "INSERT INTO points_entries (user_id, kind, amount, reason, at, key, fingerprint, ref_entry_id, remaining, "
    "available_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=5000, help="rows per earn_many/spend_many call (default 5000)")
    parser.add_argument(
        "--profile", metavar="PREFIX", help="write cProfiles of the batched phases to PREFIX-earn/-spend.pstats"
    )


def earn_rows(count: int, users: int, prefix: str) -> list[dict[str, Any]]:
    expires = START + timedelta(days=365)
    return [
        {
            "user_id": i % users + 1,
            "amount": 20 + (i * 7919) % 80,
            "reason": "purchase",
            "key": f"{prefix}{i}",
            "expires_at": expires,
        }
        for i in range(count)
    ]


def spend_rows(count: int, users: int, prefix: str) -> list[dict[str, Any]]:
    # Each user spends 10 at a time, far less than the 200+ every user earned.
    return [{"user_id": i % users + 1, "amount": 10, "reason": "redeem", "key": f"{prefix}{i}"} for i in range(count)]


def baseline(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], batch: int) -> Timing:
    with timed(len(rows)) as timing:
        for start in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT, rows[start : start + batch])
            conn.execute("COMMIT")
    return timing


def raw_earn(row: dict[str, Any]) -> tuple[Any, ...]:
    at = to_us(START)
    return (
        row["user_id"],
        "earn",
        row["amount"],
        row["reason"],
        at,
        row["key"],
        f"earn|{row['user_id']}|{row['amount']}|{row['reason']}||{row['expires_at'].isoformat()}",
        None,
        row["amount"],
        at,
        to_us(row["expires_at"]),
    )


def raw_spend(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["user_id"],
        "spend",
        -row["amount"],
        row["reason"],
        to_us(START),
        row["key"],
        f"spend|{row['user_id']}|{row['amount']}|{row['reason']}",
        None,
        None,
        None,
        None,
    )


def profiled(prefix: str | None, phase: str, run: Callable[[], Timing]) -> Timing:
    """Run one phase, under cProfile if ``--profile`` was given (the figures then include its overhead)."""
    if not prefix:
        return run()
    profiler = cProfile.Profile()
    timing = profiler.runcall(run)
    profiler.dump_stats(f"{prefix}-{phase}.pstats")
    return timing


def in_batches(call: Any, rows: list[dict[str, Any]], batch: int) -> Timing:
    with timed(len(rows)) as timing:
        for start in range(0, len(rows), batch):
            call(rows[start : start + batch])
    return timing


def main(argv: list[str] | None = None) -> int:
    args = parse_args("siyu points ledger vs raw sqlite3 inserts", argv, extra_args)
    users = scaled(10_000, args.scale, minimum=5)
    n_earn, n_spend = scaled(100_000, args.scale, 10), scaled(50_000, args.scale, 5)
    n_earn_one, n_spend_one = scaled(2_000, args.scale, 10), scaled(1_000, args.scale, 5)
    batch = max(1, args.batch)
    print(
        f"ledger bench: {users:,} users, {n_earn:,} earns and {n_spend:,} spends in batches of {batch:,}; "
        f"one by one: {n_earn_one:,} earns, {n_spend_one:,} spends"
    )

    with temp_dir() as tmp:
        url = workspace_url(args, tmp)
        clock = FakeClock(START)
        conn = sqlite3.connect(tmp / "baseline.db", isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
            conn.execute(f"PRAGMA {pragma}")
        for ddl in BASELINE_DDL:
            conn.execute(ddl)

        with siyu.connect(url, clock=clock) as ws:
            if ws.users.count():
                print(f"{url} already holds users; point --db at an empty database", file=sys.stderr)
                return 2
            ws.users.add_many([{"source": "bench", "wechat_unionid": f"obench{i:08d}"} for i in range(users)])
            first_user = min(ws.users.ids())
            earns = earn_rows(n_earn, users, "e")
            spends = spend_rows(n_spend, users, "s")
            for row in earns + spends:
                row["user_id"] += first_user - 1

            siyu_earn = profiled(args.profile, "earn", lambda: in_batches(ws.points.earn_many, earns, batch))
            base_earn = baseline(conn, [raw_earn(r) for r in earns], batch)
            siyu_spend = profiled(args.profile, "spend", lambda: in_batches(ws.points.spend_many, spends, batch))
            base_spend = baseline(conn, [raw_spend(r) for r in spends], batch)

            with ws.read():
                balances = {uid: ws.points.balance(uid) for uid in ws.users.ids()}
            raw = dict(conn.execute("SELECT user_id, SUM(amount) FROM points_entries GROUP BY user_id").fetchall())
            check_equal("total balance", sum(balances.values()), sum(raw.values()))
            check_equal("balance per user", balances, {uid: raw.get(uid, 0) for uid in balances})

            one_earns = earn_rows(n_earn_one, users, "oe")
            one_spends = spend_rows(n_spend_one, users, "os")
            for row in one_earns + one_spends:
                row["user_id"] += first_user - 1
            with timed(n_earn_one) as one_earn:
                for row in one_earns:
                    ws.points.earn(row.pop("user_id"), row.pop("amount"), **row)
            with timed(n_spend_one) as one_spend:
                for row in one_spends:
                    ws.points.spend(row.pop("user_id"), row.pop("amount"), **row)
        conn.close()

    print()
    print(ratio_line("earn batched", siyu_earn, base_earn))
    print(ratio_line("spend batched", siyu_spend, base_spend, "siyu also updates lots and allocations"))
    print(
        ratio_line(
            "earn one-by-one",
            one_earn,
            base_earn,
            f"{n_earn_one:,} calls measured; {n_earn:,} would take ~{n_earn / one_earn.rate:,.0f}s",
        )
    )
    print(
        ratio_line(
            "spend one-by-one",
            one_spend,
            base_spend,
            f"{n_spend_one:,} calls measured; {n_spend:,} would take ~{n_spend / one_spend.rate:,.0f}s",
        )
    )
    share = siyu_earn.rate / base_earn.rate
    verdict = "met" if share >= GOAL else "MISSED"
    print(f"goal (batched earn >= {GOAL:.0%} of raw insert rate): {verdict} at {share:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
