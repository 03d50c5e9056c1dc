"""``ws.recommendations`` on a synthetic shop: build time, ``similar`` and ``for_user`` latency, hit rate.

The shop (full scale: 1,000,000 users, 10,000 SKUs, 5,000,000 order lines,
20,000,000 product views over 180 days; ``--scale`` multiplies them) has
planted structure: SKUs come in categories of 20, every user has a home
category, and 80% of what they buy or view is from it (popular SKUs more
often within a category). Rows are bulk-loaded into siyu's own tables in
one SQLite transaction (millions through the public API would take most of
the run); the products go through ``ws.products.add``.

Timed in the same run:

- the first call, which builds the per-user facts and the model from the rows;
- ``similar`` on random SKUs (each SKU's first call: nothing cached) against
  the straightforward SQL answer, a self-join of ``order_lines`` through the
  buyers counting distinct co-buyers per SKU; the co-buyer counts siyu
  reports in its reasons must equal the SQL's;
- ``for_user`` p50 / p99 on random users (goal: p99 under 5 ms);
- hit rate @10: for a sample of users one more purchase is drawn the way
  their others were and not loaded; a hit is that product in the user's top
  10, against the 10 most popular products the user has not bought (the
  popularity baseline). Draws of a product the user already bought are left
  out (siyu does not recommend what a user bought).

    .venv/bin/python bench/recommendations.py [--db sqlite:///path.db] [--scale 0.02]
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, workspace_url

import siyu
from siyu._clock import to_us
from siyu.recommendations import ReasonKind

USERS, SKUS, LINES, VIEWS = 1_000_000, 10_000, 5_000_000, 20_000_000
CATEGORY = 20
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_US = to_us(END) - to_us(END - timedelta(days=180))
HELD_OUT = 500
QUERIES = 200


def pick(rng: random.Random, home: int, skus: int) -> int:
    """A SKU for a user of category ``home``: 80% from it (skewed to its first SKUs), else any."""
    if rng.random() < 0.8:
        base = home * CATEGORY
        return min(skus - 1, base + int(CATEGORY * rng.random() ** 2))
    return rng.randrange(skus)


def load(path: str, users: int, skus: int, lines: int, views: int) -> dict[int, int]:
    """Fill the tables; returns the held-out item of each test user."""
    rng = random.Random(22)
    categories = max(1, skus // CATEGORY)
    home = [rng.randrange(categories) for _ in range(users + 1)]
    end = to_us(END)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO users (id, created_at, attributes, status) VALUES (?, ?, '{}', 'active')",
                   ((u, end - SPAN_US) for u in range(1, users + 1)))
    orders, order_lines = [], []
    oid = 0
    while len(order_lines) < lines:
        oid += 1
        user = rng.randrange(1, users + 1)
        orders.append((oid, user, end - rng.randrange(SPAN_US)))
        for sku in {pick(rng, home[user], skus) for _ in range(rng.randint(1, 3))}:
            order_lines.append((oid, len(order_lines), f"S{sku:05d}"))
    held = {user: pick(rng, home[user], skus) for user in rng.sample(range(1, users + 1), min(HELD_OUT, users))}
    db.executemany("INSERT INTO orders (id, user_id, paid_at, subtotal, discount, total, refunded, coupons, points, "
                   "growth) VALUES (?, ?, ?, 1000, 0, 1000, 0, '[]', 0, 0)", orders)
    db.executemany("INSERT INTO order_lines (order_id, line_no, sku, qty, unit, paid, role, cost, refunded, "
                   "refunded_qty) VALUES (?, ?, ?, 1, 1000, 1000, 'profit', 200, 0, 0)", order_lines)

    def view_rows():  # type: ignore[no-untyped-def]
        for _ in range(views):
            user = rng.randrange(1, users + 1)
            sku = pick(rng, home[user], skus)
            yield user, end - rng.randrange(SPAN_US), json.dumps({"sku": f"S{sku:05d}"})

    db.executemany("INSERT INTO user_events (user_id, kind, at, properties) VALUES (?, 'product_view', ?, ?)",
                   view_rows())
    for counter in ("users", "orders", "activity"):
        db.execute("INSERT INTO siyu_counters (name, value) VALUES (?, 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = siyu_counters.value + 1", (counter,))
    db.execute("COMMIT")
    db.execute("CREATE INDEX IF NOT EXISTS bench_lines_sku ON order_lines (sku)")
    db.close()
    return held


CO_BUYERS = """
SELECT l2.sku, COUNT(DISTINCT o2.user_id) FROM order_lines l1
JOIN orders o1 ON o1.id = l1.order_id JOIN orders o2 ON o2.user_id = o1.user_id
JOIN order_lines l2 ON l2.order_id = o2.id
WHERE l1.sku = ? AND l2.sku != ? GROUP BY l2.sku ORDER BY 2 DESC, 1 LIMIT ?
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    users, skus = scaled(USERS, args.scale, 200), scaled(SKUS, args.scale, 40)
    lines, views = scaled(LINES, args.scale, 1000), scaled(VIEWS, args.scale, 4000)
    with temp_dir() as directory:
        url = workspace_url(args, directory, "recommendations.db")
        if not url.startswith("sqlite:///"):
            raise SystemExit("bench/recommendations.py loads its rows with SQLite SQL; use --db sqlite:///path.db")
        path = url[len("sqlite:///"):]
        ws = siyu.connect(url, clock=lambda: END)
        if ws.products.all():
            raise SystemExit(f"{url} is not empty; give the bench a new database")
        for sku in range(skus):
            ws.products.add(f"S{sku:05d}", f"Product {sku}", price="10", cost="2", role="profit",
                            category=f"C{sku // CATEGORY:03d}")
        started = time.perf_counter()
        held = load(path, users, skus, lines, views)
        print(f"data: {users:,} users, {skus:,} SKUs, {lines:,}+ order lines, {views:,} views "
              f"(loaded in {time.perf_counter() - started:.1f} s)")
        ws.close()
        ws = siyu.connect(url, clock=lambda: END)
        started = time.perf_counter()
        ws.recommendations.similar("S00000")
        print(f"first call (facts and model built from the rows): {time.perf_counter() - started:.2f} s")

        rng = random.Random(7)
        queried = rng.sample([f"S{s:05d}" for s in range(skus)], min(QUERIES, skus))
        db = sqlite3.connect(path)
        siyu_times, sql_times = [], []
        for sku in queried:
            started = time.perf_counter()
            found = ws.recommendations.similar(sku, k=10)
            siyu_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            counts = dict(db.execute(CO_BUYERS, (sku, sku, 10_000)).fetchall())
            sql_times.append(time.perf_counter() - started)
            reported = {r.sku: x.users for r in found for x in r.reasons if x.kind is ReasonKind.CO_BOUGHT}
            check_equal(f"co-buyers of {sku}", reported, {s: counts[s] for s in reported})
        print(f"similar: p50 {statistics.median(siyu_times) * 1e3:.2f} ms, p99 "
              f"{percentile(siyu_times, 0.99) * 1e3:.2f} ms (first call per SKU); SQL self-join p50 "
              f"{statistics.median(sql_times) * 1e3:.2f} ms")
        print(ratio_line("similar vs SQL co-buyers", Timing(len(siyu_times), sum(siyu_times)),
                         Timing(len(sql_times), sum(sql_times))))

        sample = rng.sample(range(1, users + 1), min(1000, users))
        for label in ("first pass", "again, neighbours cached"):
            times = []
            for user in sample:
                started = time.perf_counter()
                ws.recommendations.for_user(user, k=10)
                times.append(time.perf_counter() - started)
            print(f"for_user ({label}): p50 {statistics.median(times) * 1e3:.2f} ms, p99 "
                  f"{percentile(times, 0.99) * 1e3:.2f} ms over {len(times):,} users (goal: p99 under 5 ms)")

        popular = [sku for sku, in db.execute("SELECT sku FROM order_lines GROUP BY sku ORDER BY COUNT(*) DESC, sku")]
        hits = base_hits = tried = 0
        for user, sku in held.items():
            target = f"S{sku:05d}"
            bought = {s for s, in db.execute("SELECT l.sku FROM order_lines l JOIN orders o ON o.id = l.order_id "
                                             "WHERE o.user_id = ?", (user,))}
            if target in bought:
                continue
            tried += 1
            hits += target in {r.sku for r in ws.recommendations.for_user(user, k=10)}
            base_hits += target in [s for s in popular if s not in bought][:10]
        print(f"hit rate @10 over {tried:,} held-out purchases: siyu {hits / max(tried, 1):.3f}, popularity "
              f"{base_hits / max(tried, 1):.3f}")
        db.close()
        ws.close()


if __name__ == "__main__":
    main()
