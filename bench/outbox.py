"""Outbox throughput: a campaign "sent" through the outbox channel vs raw sqlite3.

200,000 keyed messages (the shape of a campaign dry run: one message per user,
idempotency key ``campaign:user``) through ``ws.channels.get("outbox").send``
in one call, beside a raw ``sqlite3`` ``executemany`` of the same rows into a
table with the same columns and unique index, one transaction per 10,000
rows. Then the same send again (a rerun after a crash): siyu must store
nothing new; the baseline uses ``INSERT ... ON CONFLICT DO NOTHING``.

    .venv/bin/python bench/outbox.py [--db URL] [--scale 0.1]
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu._clock import to_us
from siyu.channels import Message

BATCH = 10_000
DDL = [
    "CREATE TABLE channel_outbox (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, recipient TEXT NOT NULL, "
    "user_id INTEGER, body TEXT NOT NULL, template TEXT, variables TEXT NOT NULL, purpose TEXT NOT NULL, "
    "idem_key TEXT, created_at INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX channel_outbox_key ON channel_outbox (channel, idem_key)",
]
INSERT = (
    "INSERT INTO channel_outbox (channel, recipient, user_id, body, template, variables, purpose, idem_key, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, idem_key) DO NOTHING"
)


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    count = scaled(200_000, args.scale, minimum=50)
    template = "${name}会员您好，双11全场五折，拒收请回复R"
    messages = [
        Message(f"+86138{i:08d}", template=template, variables={"name": f"会员{i}"}, key=f"c11:{i}",
                user_id=i + 1, purpose="marketing")
        for i in range(count)
    ]
    with temp_dir() as tmp:
        with siyu.connect(workspace_url(args, tmp)) as ws:
            outbox = ws.channels.get("outbox", check_consent=False)
            with timed(count) as siyu_first:
                results = outbox.send(messages)
            with timed(count) as siyu_rerun:
                rerun = outbox.send(messages)
            siyu_rows = outbox.count()
            siyu_sent = sum(r.ok for r in results)
            siyu_same_ids = all(a.provider_id == b.provider_id for a, b in zip(results, rerun, strict=True))
            stamp = to_us(ws.now())

        conn = sqlite3.connect(tmp / "baseline.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in DDL:
            conn.execute(statement)

        def baseline_pass() -> None:
            for start in range(0, count, BATCH):
                rows = [
                    ("outbox", m.recipient, m.user_id, template.replace("${name}", m.variables["name"]), template,
                     json.dumps(dict(m.variables), ensure_ascii=False, sort_keys=True), m.purpose, m.key, stamp)
                    for m in messages[start : start + BATCH]
                ]
                conn.execute("BEGIN")
                conn.executemany(INSERT, rows)
                conn.execute("COMMIT")

        with timed(count) as base_first:
            baseline_pass()
        with timed(count) as base_rerun:
            baseline_pass()
        base_rows = conn.execute("SELECT COUNT(*) FROM channel_outbox").fetchone()[0]
        conn.close()

    check_equal("rows stored", siyu_rows, base_rows)
    check_equal("all sent", siyu_sent, count)
    check_equal("rerun returns the first ids", siyu_same_ids, True)
    print(ratio_line("outbox send", siyu_first, base_first, "validate + render + store, per-message results"))
    print(ratio_line("outbox rerun (all duplicates)", siyu_rerun, base_rerun))


if __name__ == "__main__":
    main()
