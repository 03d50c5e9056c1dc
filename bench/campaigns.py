"""Campaign preview and send over 1,000,000 users through the outbox, vs raw inserts.

Builds 1,000,000 users (90% with marketing consent on the outbox, 1% lost),
then times

* ``ws.campaigns.preview`` over the whole audience (every gate counted with
  bitmaps; goal: under 2 s), and
* ``ws.campaigns.send`` through the ``outbox`` channel: claim, gate, write a
  delivery record per user, store each message in the outbox, complete the
  records (goal: at least 20% of the raw insert rate),

beside a raw ``sqlite3`` ``executemany`` of the same delivery rows into a
table with the same columns and indexes as ``campaign_deliveries``, with the
same pragmas and one transaction per batch. Answers are checked: every
eligible user has exactly one stored message and one ``sent`` record.

    .venv/bin/python bench/campaigns.py [--db URL] [--scale 0.1] [--batch 5000] [--profile out.pstats]
"""

from __future__ import annotations

import argparse
import cProfile
import random
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu._clock import to_us
from siyu.storage.contracts import NewUser
from siyu.testing import FakeClock

NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: outside quiet hours
BASELINE_DDL = [
    "CREATE TABLE campaign_deliveries (id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, "
    "user_id INTEGER NOT NULL, occurrence TEXT NOT NULL, variant TEXT NOT NULL, phase TEXT NOT NULL, "
    "status TEXT NOT NULL, reason TEXT, channel TEXT NOT NULL, purpose TEXT NOT NULL, due_at INTEGER, "
    "claimed_at INTEGER, completed_at INTEGER, attempts INTEGER NOT NULL, idem_key TEXT, recipient TEXT, "
    "provider_id TEXT, code TEXT, detail TEXT, created_at INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX campaign_deliveries_once ON campaign_deliveries (campaign_id, user_id, occurrence)",
    "CREATE INDEX campaign_deliveries_touch ON campaign_deliveries (user_id, claimed_at)",
    "CREATE INDEX campaign_deliveries_work ON campaign_deliveries (campaign_id, status, due_at)",
]
INSERT = (
    "INSERT INTO campaign_deliveries (campaign_id, user_id, occurrence, variant, phase, status, reason, channel, "
    "purpose, claimed_at, completed_at, attempts, idem_key, recipient, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=5000, help="records per claim transaction (default 5000)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the send to FILE")


def build(ws: siyu.Workspace, count: int) -> tuple[list[int], set[int]]:
    """Users, consents and lost tags, written in bulk."""
    rng = random.Random(11)
    ids: list[int] = []
    with ws.write() as tx:
        for start in range(0, count, 50_000):
            n = min(50_000, count - start)
            ids.extend(tx.users.create([NewUser(created_at=NOW)] * n))
        consenting = [uid for uid in ids if rng.random() < 0.9]
        stamp = to_us(NOW)
        tx.executemany(
            "INSERT INTO consents (user_id, purpose, channel, granted, at, source, notice_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(uid, "marketing", "outbox", 1, stamp, "bench", "v1") for uid in consenting],
        )
    lost = [uid for uid in ids if rng.random() < 0.01]
    ws.tags.apply_many(lost, "lifecycle/lost")
    return ids, set(consenting) - set(lost)


def baseline(path: Path, count: int, batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for ddl in BASELINE_DDL:
        conn.execute(ddl)
    stamp = to_us(NOW)
    with timed(count) as t:
        for start in range(1, count + 1, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                INSERT,
                [
                    (1, uid, "", "A", "send", "sent", None, "outbox", "marketing", stamp, stamp, 1,
                     f"campaign:1::{uid}", str(uid), stamp)
                    for uid in range(start, min(start + batch, count + 1))
                ],
            )
            conn.execute("COMMIT")
    (rows,) = conn.execute("SELECT COUNT(*) FROM campaign_deliveries").fetchone()
    conn.close()
    assert rows == count
    return t.seconds


def main(argv: list[str] | None = None) -> None:
    args = parse_args("campaign preview and send vs raw inserts", argv, extra_args)
    users = scaled(1_000_000, args.scale, minimum=200)
    with temp_dir() as tmp:
        url = workspace_url(args, tmp)
        with siyu.connect(url, clock=FakeClock(NOW)) as ws:
            ids, eligible = build(ws, users)
            ws.campaigns.configure(quiet_hours=None)
            c = ws.campaigns.create(
                "double11", audience=ids, channel="outbox", template="【小店】双11 ${offer}，回复TD退订",
                variants={"A": {"offer": "满300减50"}},
            )
            with timed(users) as preview_t:
                preview = ws.campaigns.preview(c.id)
            check_equal("preview reach", preview.reach, len(eligible))
            profiler = cProfile.Profile() if args.profile else None
            with timed(users) as send_t:
                if profiler is not None:
                    profiler.enable()
                report = ws.campaigns.send(c.id, batch=args.batch)
                if profiler is not None:
                    profiler.disable()
            if profiler is not None:
                profiler.dump_stats(args.profile)
            check_equal("sent", report.sent, len(eligible))
            outbox = ws.channels.get("outbox")
            stored = outbox.count()  # type: ignore[attr-defined]
            check_equal("outbox messages", stored, len(eligible))
            results = ws.campaigns.results(c.id, phase=None)
            check_equal("delivery records", results["A"].assigned, users)
        raw = Timing(users, baseline(tmp / "baseline.db", users, args.batch))
    print(f"preview: {users:,} users in {preview_t.seconds:.2f} s = {preview_t.rate:,.0f} users/s (goal: < 2 s)")
    print(f"send:    {users:,} users in {send_t.seconds:.2f} s = {send_t.rate:,.0f} users/s")
    print(f"raw insert of the same delivery rows: {raw.rate:,.0f} rows/s")
    print(ratio_line("campaign send", send_t, raw, note="goal >= 0.20x"))
    print(ratio_line("campaign preview", preview_t, raw, note="gates over bitmaps"))


if __name__ == "__main__":
    main()
