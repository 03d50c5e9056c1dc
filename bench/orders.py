"""Orders throughput on SQLite, and quote latency.

Records 200,000 orders (1-3 lines each) through ``ws.orders.record_many`` in
batches -- pricing, purchase points (the ``purchase`` rule), tier growth and
immediate upgrades, events -- beside a raw ``sqlite3`` ``executemany`` of
the same rows (orders, lines, points entries, growth entries, computed in
plain Python) into tables of the same shape, one transaction per batch.
Then times ``ws.promotions.quote`` on a 20-line cart with 10 candidate coupons
(the issue's goal: median under 1 ms).

    .venv/bin/python bench/orders.py [--db URL] [--scale 0.1] [--batch 2000] [--quotes 500]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu._clock import to_us
from siyu.testing import FakeClock

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ROLES = ["profit", "traffic", "activity", "relationship", "fission"]

BASELINE_DDL = [
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, key TEXT, fingerprint TEXT, "
    "channel TEXT, paid_at INTEGER NOT NULL, subtotal INTEGER NOT NULL, discount INTEGER NOT NULL, "
    "total INTEGER NOT NULL, refunded INTEGER NOT NULL, coupons TEXT NOT NULL, points_entry_id INTEGER, "
    "points INTEGER NOT NULL, growth INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX orders_key ON orders (key)",
    "CREATE INDEX orders_user ON orders (user_id, paid_at)",
    "CREATE INDEX orders_paid_at ON orders (paid_at)",
    "CREATE TABLE order_lines (order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, sku TEXT NOT NULL, "
    "qty INTEGER NOT NULL, unit INTEGER NOT NULL, paid INTEGER NOT NULL, role TEXT NOT NULL, category TEXT, "
    "cost INTEGER NOT NULL, refunded INTEGER NOT NULL, refunded_qty INTEGER NOT NULL, "
    "PRIMARY KEY (order_id, line_no))",
    "CREATE TABLE points_entries (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, kind TEXT NOT NULL, "
    "amount INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL, key TEXT, remaining INTEGER)",
    "CREATE UNIQUE INDEX points_entries_key ON points_entries (key)",
    "CREATE INDEX points_entries_user ON points_entries (user_id, id)",
    "CREATE TABLE tier_growth (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, amount INTEGER NOT NULL, "
    "at INTEGER NOT NULL, reason TEXT NOT NULL, ref TEXT)",
    "CREATE INDEX tier_growth_user ON tier_growth (user_id, at)",
]


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=2000, help="orders per record_many call (default 2000)")
    parser.add_argument("--quotes", type=int, default=500, help="quotes to time (default 500)")
    parser.add_argument("--no-observers", action="store_true",
                        help="leave other domains' event consumers (lifecycle, referrals ...) undelivered "
                             "(delivery='worker') to time what commerce itself costs")


def catalogue(ws: siyu.Workspace, count: int) -> dict[str, tuple[int, int, str, str]]:
    products = {}
    for i in range(count):
        price = 990 + (i * 7919) % 30_000
        cost = price * (30 + i % 30) // 100
        role = ROLES[i % len(ROLES)]
        category = f"cat{i % 5}"
        ws.products.add(f"SKU{i:03d}", f"product {i}", price=Decimal(price) / 100, cost=Decimal(cost) / 100, role=role,
                        category=category)
        products[f"SKU{i:03d}"] = (price, cost, role, category)
    return products


def order_rows(count: int, users: list[int], skus: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        lines = [{"sku": skus[(i * 31 + n * 17) % len(skus)], "qty": 1 + (i + n) % 3} for n in range(1 + i % 3)]
        rows.append({"user_id": users[(i * 7) % len(users)], "lines": lines, "channel": "miniprogram",
                     "paid_at": START + timedelta(seconds=i), "key": f"o{i}"})
    return rows


def raw_batches(rows: list[dict[str, Any]], products: dict[str, tuple[int, int, str, str]]) -> list[
        tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """The rows as the raw inserts need them: prices, points and growth computed here."""
    out = []
    for order_id, row in enumerate(rows, start=1):
        lines = []
        total = 0
        earning = 0
        for n, line in enumerate(row["lines"]):
            price, cost, role, category = products[line["sku"]]
            paid = price * line["qty"]
            total += paid
            if role != "traffic":
                earning += paid
            lines.append((order_id, n, line["sku"], line["qty"], price, paid, role, category, cost * line["qty"], 0, 0))
        points = earning // 100
        growth = total // 100
        at = to_us(row["paid_at"])
        order = (order_id, row["user_id"], row["key"], "fp", row["channel"], at, total, 0, total, 0, "[]", None,
                 points, growth)
        earn = [(row["user_id"], "earn", points, "purchase", at, f"order:{order_id}:points", points)] if points else []
        grow = [(row["user_id"], growth, at, "order", f"order:{order_id}")] if growth else []
        out.append(([order], lines, earn, grow))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args("siyu orders vs raw sqlite3 inserts; quote latency", argv, extra_args)
    n_users = scaled(20_000, args.scale, minimum=5)
    n_orders = scaled(200_000, args.scale, minimum=10)
    n_quotes = max(5, scaled(args.quotes, min(1.0, args.scale * 10), minimum=5))
    batch = max(1, args.batch)
    print(f"orders bench: {n_users:,} users, {n_orders:,} orders in batches of {batch:,}; {n_quotes:,} quotes")

    with temp_dir() as tmp:
        clock = FakeClock(START + timedelta(days=30))
        delivery = "worker" if args.no_observers else "inline"
        with siyu.connect(workspace_url(args, tmp), clock=clock, delivery=delivery) as ws:
            products = catalogue(ws, 50)
            ws.tiers.define("silver", 500)
            ws.tiers.define("gold", 5_000)
            users = ws.users.add_many([{"source": "bench"} for _ in range(n_users)])
            rows = order_rows(n_orders, users, sorted(products))

            with timed(n_orders) as siyu_time:
                for start in range(0, n_orders, batch):
                    ws.orders.record_many(rows[start : start + batch])

            conn = sqlite3.connect(tmp / "baseline.db", isolation_level=None)
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
                conn.execute(f"PRAGMA {pragma}")
            for ddl in BASELINE_DDL:
                conn.execute(ddl)
            prepared = raw_batches(rows, products)
            with timed(n_orders) as base_time:
                for start in range(0, n_orders, batch):
                    chunk = prepared[start : start + batch]
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     [o for c in chunk for o in c[0]])
                    conn.executemany("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     [ln for c in chunk for ln in c[1]])
                    conn.executemany("INSERT INTO points_entries (user_id, kind, amount, reason, at, key, remaining) "
                                     "VALUES (?, ?, ?, ?, ?, ?, ?)", [e for c in chunk for e in c[2]])
                    conn.executemany("INSERT INTO tier_growth (user_id, amount, at, reason, ref) "
                                     "VALUES (?, ?, ?, ?, ?)", [g for c in chunk for g in c[3]])
                    conn.execute("COMMIT")

            raw_spend = dict(conn.execute("SELECT user_id, SUM(total) FROM orders GROUP BY user_id").fetchall())
            raw_points = dict(conn.execute("SELECT user_id, SUM(amount) FROM points_entries GROUP BY user_id"))
            raw_growth = dict(conn.execute("SELECT user_id, SUM(amount) FROM tier_growth GROUP BY user_id"))
            conn.close()
            with ws.read() as tx:
                stats = tx.orders.stats()
                balances = tx.points.balances(clock.now)
                growth = tx.tiers.growth_since(None)
            check_equal("spend per user", {u: s.spend_fen for u, s in stats.items()}, raw_spend)
            check_equal("points per user", {u: p for u, p in balances.items() if p}, raw_points)
            check_equal("growth per user", growth, raw_growth)
            golds = sum(1 for u in users[: min(len(users), 200)] if (t := ws.tiers.of(u)) and t.name == "gold")
            print(f"tiers: {golds} of the first {min(len(users), 200)} users reached gold")

            # quote: a 20-line cart, 10 candidate coupons plus a live activity, default stacking rules
            # (activity prices stack with one coupon)
            shopper = ws.users.add().id
            skus = sorted(products)
            ws.promotions.activity("weekly", {s: Decimal(products[s][0] * 95 // 100) / 100
                                              for s in skus[:10] if products[s][2] != "traffic"})
            made = 0
            for i in range(40):
                if made == 10:
                    break
                kind = ("amount_off", "percent_off")[i % 2]
                options: dict[str, Any] = {"categories": [f"cat{i % 5}"]}
                if kind == "amount_off":
                    options.update(amount=5 + i, threshold=200 + 20 * i)
                else:
                    options.update(percent=3 + i % 5, cap=30)
                try:
                    ws.coupons.create(f"q{i}", kind=kind, **options)
                except siyu.errors.MarginViolation:
                    continue
                ws.coupons.issue(f"q{i}", shopper)
                made += 1
            cart = [{"sku": skus[(n * 3) % len(skus)], "qty": 1 + n % 2} for n in range(20)]
            quote = ws.promotions.quote(shopper, cart)
            times = []
            for _ in range(n_quotes):
                began = time.perf_counter()
                again = ws.promotions.quote(shopper, cart)
                times.append(time.perf_counter() - began)
            check_equal("quote is stable", again.total_fen, quote.total_fen)
            print(f"quote: {made} coupons, {len(quote.applied)} offers applied, total {quote.total} "
                  f"(saved {quote.discount})")

    print()
    what = "without other domains' observers" if args.no_observers else "with every observer (lifecycle, referrals)"
    print(ratio_line("orders record_many", siyu_time, base_time,
                     f"siyu prices, earns points, adds growth, settles tiers, emits events; {what}"))
    median = statistics.median(times) * 1000
    p95 = sorted(times)[int(len(times) * 0.95) - 1] * 1000
    print(f"quote 20 lines x {made} coupons: median {median:.3f} ms, p95 {p95:.3f} ms "
          f"(goal: median < 1 ms) over {len(times):,} quotes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
