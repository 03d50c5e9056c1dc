"""Flash-sale reservations and draws per second, against hand-written SQL at the same concurrency.

1. One hot SKU: 8 processes reserve units of one flash sale, one unit per
   call, until the planned number is reserved. Baseline: the same processes
   run a bare ``UPDATE stock SET n = n - 1 WHERE id = ? AND n >= 1`` plus an
   ``INSERT`` of the reservation row, one transaction per unit, on the same
   kind of database.
2. 1,000 SKUs: the same, spread over 1,000 sales / stock rows at random.
3. Draws (one process): ``ws.draws.draw`` against a bare weighted
   ``random.choices`` plus an ``INSERT`` of the result, one transaction each.

Both sides reserve exactly the planned units (checked). siyu does more per
call than the baseline: idempotency key, per-user quota, a held reservation
with its expiry, the event-log row, all in one transaction. Its workspaces run
with ``delivery="worker"`` (events delivered by ``siyu worker``, as in
production), so the timings are the reservations themselves. Goals of issue 19:
reservations ≥ 0.5x and draws ≥ 0.5x of the baseline.

    .venv/bin/python bench/activities.py [--db URL] [--scale 0.1] [--processes 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, workspace_url

import siyu
from siyu.testing import FakeClock

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = {k: "stated" for k in ("organizer", "contact", "participation", "claim", "delivery", "forfeit", "terms")}


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, default=8, help="concurrent writer processes (default 8)")


# -- siyu side ---------------------------------------------------------------------------------------
def _siyu_worker(url: str, sales: list[int], user: int, calls: int, index: int, barrier: Any, out: Any) -> None:
    processes = barrier.parties
    with siyu.connect(url, clock=FakeClock(START), delivery="worker") as ws:
        barrier.wait()
        began = time.perf_counter()
        done = 0
        for n in range(calls):
            # Round robin over the sales: no sale gets more calls than it has units.
            sale = sales[(n * processes + index) % len(sales)]
            ws.flash_sales.reserve(sale, user, key=f"w{index}-{n}-{uuid.uuid4().hex[:6]}")
            done += 1
        out.put((began, time.perf_counter(), done))


def _run(target: Any, args_of: Any, processes: int) -> tuple[float, int]:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args_of(i), i, barrier, out)) for i in range(processes)]
    for w in workers:
        w.start()
    results = [out.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join()
    return max(r[1] for r in results) - min(r[0] for r in results), sum(r[2] for r in results)


def siyu_reservations(url: str, skus: int, units: int, processes: int) -> tuple[Timing, int]:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.products.add("TEA", "Oolong", price="128", cost="52", role="activity")
        per_sale = -(-units // skus)
        sales = [ws.flash_sales.create(sku="TEA", price="69", stock=per_sale, starts_at=START, per_user=None,
                                       ends_at=START + timedelta(hours=1)).id for _ in range(skus)]
        users = [ws.users.add().id for _ in range(processes)]
    calls = units // processes
    seconds, done = _run(_siyu_worker, lambda i: (url, sales, users[i], calls), processes)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        reserved = sum(ws.flash_sales.get(s).reserved for s in sales)
    return Timing(count=done, seconds=seconds), reserved


# -- baseline side -----------------------------------------------------------------------------------
def _connect(url: str) -> Any:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=600, isolation_level=None)
        # The settings siyu's SQLite backend uses, so both sides pay the same for a commit.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), autocommit=True)


def _baseline_worker(url: str, table: str, stock_ids: list[int], user: int, calls: int, index: int, barrier: Any,
                     out: Any) -> None:
    processes = barrier.parties
    conn = _connect(url)
    mark = "?" if url.startswith("sqlite") else "%s"
    begin = "BEGIN IMMEDIATE" if url.startswith("sqlite") else "BEGIN"
    barrier.wait()
    began = time.perf_counter()
    done = 0
    for n in range(calls):
        conn.execute(begin)
        cursor = conn.execute(f"UPDATE {table} SET n = n - 1 WHERE id = {mark} AND n >= 1",
                              (stock_ids[(n * processes + index) % len(stock_ids)],))
        if cursor.rowcount == 1:
            conn.execute(f"INSERT INTO {table}_res (user_id, key) VALUES ({mark}, {mark})", (user, f"w{index}-{n}"))
            done += 1
        conn.execute("COMMIT")
    conn.close()
    out.put((began, time.perf_counter(), done))


def baseline_reservations(url: str, skus: int, units: int, processes: int) -> tuple[Timing, int]:
    table = f"bench_stock_{uuid.uuid4().hex[:8]}"
    conn = _connect(url)
    per_sale = -(-units // skus)
    conn.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
    conn.execute(f"CREATE TABLE {table}_res (user_id BIGINT NOT NULL, key TEXT NOT NULL UNIQUE)")
    mark = "?" if url.startswith("sqlite") else "%s"
    for i in range(skus):
        conn.execute(f"INSERT INTO {table} (id, n) VALUES ({mark}, {mark})", (i + 1, per_sale))
    calls = units // processes
    seconds, done = _run(_baseline_worker, lambda i: (url, table, list(range(1, skus + 1)), i, calls), processes)
    reserved = skus * per_sale - int(conn.execute(f"SELECT SUM(n) FROM {table}").fetchone()[0])
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"DROP TABLE {table}_res")
    conn.close()
    return Timing(count=done, seconds=seconds), reserved


# -- draws ---------------------------------------------------------------------------------------------
PRIZES = [{"name": "miss", "kind": "miss", "weight": 90},
          {"name": "p", "kind": "points", "weight": 10, "points": 1, "value": "0.01"}]


def siyu_draws(url: str, count: int) -> tuple[Timing, int]:
    with siyu.connect(url, clock=FakeClock(START), delivery="worker") as ws:
        draw = ws.draws.create("bench", prizes=PRIZES, starts_at=START, ends_at=START + timedelta(days=1),
                               rules=RULES)
        ws.draws.publish(draw.id)
        uid = ws.users.add().id
        began = time.perf_counter()
        for n in range(count):
            ws.draws.draw(draw.id, uid, key=f"d{draw.id}-{n}")
        seconds = time.perf_counter() - began
        return Timing(count=count, seconds=seconds), len(ws.draws.records(draw.id))


def baseline_draws(url: str, count: int) -> tuple[Timing, int]:
    table = f"bench_draws_{uuid.uuid4().hex[:8]}"
    conn = _connect(url)
    mark = "?" if url.startswith("sqlite") else "%s"
    conn.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, prize BIGINT NOT NULL)")
    rng = random.Random(1)
    weights = [p["weight"] for p in PRIZES]
    began = time.perf_counter()
    for n in range(count):
        conn.execute("BEGIN")
        prize = rng.choices(range(len(weights)), weights)[0]
        conn.execute(f"INSERT INTO {table} (id, user_id, prize) VALUES ({mark}, {mark}, {mark})", (n + 1, 1, prize))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - began
    stored = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    conn.execute(f"DROP TABLE {table}")
    conn.close()
    return Timing(count=count, seconds=seconds), stored


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv, extra_args)
    processes = max(1, args.processes)
    units = scaled(4000, args.scale, minimum=processes * 4)
    many = scaled(1000, args.scale, minimum=2)
    draws = scaled(2000, args.scale, minimum=20)
    with temp_dir() as directory:
        url = workspace_url(args, directory)
        base_url = url if url.startswith("postgresql") else f"sqlite:///{directory / 'baseline.db'}"
        siyu.connect(url).close()  # migrate once, outside the timings
        for name, skus in (("reservations, one hot SKU", 1), (f"reservations, {many:,} SKUs", many)):
            ours, ours_reserved = siyu_reservations(url, skus, units, processes)
            theirs, their_reserved = baseline_reservations(base_url, skus, units, processes)
            check_equal(f"{name}: units reserved", ours_reserved, their_reserved)
            print(ratio_line(f"{name} ({processes} processes)", ours, theirs,
                             "baseline: UPDATE ... WHERE n >= 1 + INSERT per unit"))
        ours, stored = siyu_draws(url, draws)
        theirs, their_stored = baseline_draws(base_url, draws)
        check_equal("draws recorded", stored, their_stored)
        print(ratio_line("draws (1 process)", ours, theirs, "baseline: random.choices + INSERT per draw"))


if __name__ == "__main__":
    main()
