"""Funnel, weekly cohort matrix and RFM with ``ws.analytics`` against straightforward SQL.

Builds 1,000,000 users (40% on WeCom, 5% invited by an earlier user),
about 5,000,000 tracked events and 1,000,000 orders (3% fully and 2% partly
refunded) over 52 weeks in a SQLite workspace, then times, on the same
tables in the same run:

- the AARRR funnel ``first_seen → added_wecom → first_order → second_order
  → invited_friend``; baseline: one query with a correlated ``EXISTS`` /
  ``COUNT`` per step per user;
- the weekly cohort retention matrix (metric ``active``: an event or a
  counted order); baseline: ``date(..., 'weekday 0', '-6 days')`` week
  starts for users and activity, ``UNION``, join, ``GROUP BY``;
- RFM scores (5 quantiles); baseline: per-user aggregates and
  ``RANK()`` window functions.

Answers must agree exactly. Goals: each at least as fast as its SQL
baseline and under 5 s; and, against DuckDB (native tables) and Polars (frames
in memory) holding the same rows, the funnel and RFM under 100 ms and at least
3x faster than the better of the two (a table of medians; siyu's per-user facts
current). Then what keeping the facts current costs: the funnel right after
batches of tracked events (writes themselves do no extra work for the facts).

The cohort matrix reads siyu's activity rollup (15-minute slots of Roaring
bitmaps, kept up to date by every siyu write). Rows loaded around siyu, as
here, are not in it, so the bench builds it once with
``ws.analytics.reindex()`` and prints that time on its own line; the same
cohort matrix read from the raw rows (what a stale rollup falls back to) is
printed too. Last, the rollup's upkeep cost on writes: ``track_many`` of
events spread over a year, with the upkeep against without it.

The data is bulk-loaded directly into siyu's own tables (``users``,
``identities``, ``user_events``, ``orders``, ``referral_nodes``) with
``executemany`` from generators, inside ONE transaction, because millions
of rows through the public API would take most of the run; the change
counters are bumped as siyu's services do. The schema (and its indexes) is
exactly what siyu creates (its secondary indexes are dropped during the
load and re-created after). A ``--db`` this bench already filled at the same
``--scale`` is reused without loading again. Times are in Asia/Shanghai (no DST), which the
baseline's fixed +8 h offset relies on.

    .venv/bin/python bench/analytics.py [--db sqlite:///path.db] [--scale 0.1]
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _columnar import (
    cohort_cells,
    duck_aov,
    duck_cohorts,
    duck_funnel,
    duck_pv_uv,
    duck_repurchase,
    duck_rfm,
    duck_tables,
    polars_aov,
    polars_cohorts,
    polars_funnel,
    polars_pv_uv,
    polars_repurchase,
    polars_rfm,
    read_frames,
    rfm_columns,
)
from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu._clock import to_us
from siyu.storage.sql.activity_slots import STALE_KEY, ActivitySlots

USERS, EVENTS, ORDERS = 1_000_000, 5_000_000, 1_000_000
GOAL_SECONDS = 5.0
TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 2, tzinfo=TZ)  # a Monday
START = END - timedelta(weeks=52)
HOUR = 3_600_000_000
SOURCES = ["douyin_live", "taobao_parcel_card", "offline_store", "wecom_qr", "sms", "ads"]
CHANNELS = ["mini_program", "taobao", "douyin_shop", "offline_store"]
KINDS = ["page_view"] * 12 + ["product_view"] * 5 + ["added_to_cart"] * 2 + ["added_wecom"]
COUNTED = "(o.refunded < o.total OR o.total = 0)"


def sqlite_path(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise SystemExit(f"bench/analytics.py loads its data with SQLite SQL; use --db sqlite:///path.db (got {url})")
    return url[len("sqlite:///"):]


def load(path: str, users: int, events: int, orders: int) -> dict[str, int]:
    """Fill siyu's tables in one transaction; return row counts."""
    rng = random.Random(8)
    start_us, end_us = to_us(START), to_us(END)
    span = end_us - start_us
    # Users arrive at a steady pace, so ids ascend with created_at.
    created = [start_us + span * i // users + rng.randrange(HOUR) for i in range(users)]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -524288")
    db.execute("BEGIN IMMEDIATE")
    # siyu's own secondary indexes are dropped for the load and re-created, unchanged, at the end.
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
        "('users', 'identities', 'user_events', 'orders', 'referral_nodes')"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    db.executemany(
        "INSERT INTO users (id, created_at, source, attributes, status) VALUES (?, ?, ?, '{}', 'active')",
        ((i + 1, created[i], SOURCES[i % 6]) for i in range(users)),
    )
    wecom = [(i + 1, f"wm{i + 1}", min(end_us - 1, created[i] + rng.randrange(72 * HOUR)))
             for i in range(users) if rng.random() < 0.4]
    db.executemany(
        "INSERT INTO identities (user_id, kind, scope, value, linked_at) VALUES (?, 'wecom_external_userid', '', ?, ?)",
        wecom,
    )
    per_user = events / users

    def event_rows():  # type: ignore[no-untyped-def]
        for i in range(users):
            n = int(rng.expovariate(1 / per_user) + 0.5)
            left = end_us - created[i]
            for _ in range(n):
                # Most activity soon after joining, a long tail after.
                at = created[i] + min(left - 1, int(rng.expovariate(1 / (14 * 24 * HOUR))))
                yield i + 1, KINDS[rng.randrange(len(KINDS))], at

    db.executemany("INSERT INTO user_events (user_id, kind, at, properties) VALUES (?, ?, ?, '{}')", event_rows())

    def order_rows():  # type: ignore[no-untyped-def]
        for oid in range(1, orders + 1):
            # Buyers skew to a third of the users; some buy again and again.
            i = int(users * rng.random() ** 1.5 / 3) if rng.random() < 0.7 else rng.randrange(users)
            paid = created[i] + int(rng.random() ** 2 * (end_us - created[i] - 1))
            total = rng.randrange(990, 59_900)
            luck = rng.random()
            refunded = total if luck < 0.03 else rng.randrange(1, total) if luck < 0.05 else 0
            yield oid, i + 1, CHANNELS[rng.randrange(4)], paid, total, total, refunded

    db.executemany(
        "INSERT INTO orders (id, user_id, channel, paid_at, subtotal, discount, total, refunded, coupons, points, "
        "growth) VALUES (?, ?, ?, ?, ?, 0, ?, ?, '[]', 0, 0)",
        order_rows(),
    )
    # One level of invitations is all the analytics read (inviter, status, bound_at).
    invited = [(i + 1, rng.randrange(1, i + 1), created[i]) for i in range(1, users) if rng.random() < 0.05]
    db.executemany(
        "INSERT INTO referral_nodes (user_id, inviter_id, path, depth, downline, bound_at, via, status) "
        "VALUES (?, ?, '', 1, 0, ?, 'direct', 'active')",
        invited,
    )
    for _, sql in indexes:
        db.execute(sql)
    for counter in ("users", "orders", "activity", "referrals"):
        db.execute("INSERT INTO siyu_counters (name, value) VALUES (?, 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = siyu_counters.value + 1", (counter,))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    counts = {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
              for t in ("users", "identities", "user_events", "orders", "referral_nodes")}
    db.close()
    return counts


def existing(path: str) -> dict[str, int]:
    db = sqlite3.connect(path)
    counts = {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
              for t in ("users", "identities", "user_events", "orders", "referral_nodes")}
    db.close()
    return counts


FUNNEL_SQL = f"""
SELECT COUNT(*), SUM(w), SUM(w * o1), SUM(w * o1 * o2), SUM(w * o1 * o2 * inv) FROM (
  SELECT
    (EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.kind = 'wecom_external_userid'
             AND i.linked_at < :until)
     OR EXISTS (SELECT 1 FROM user_events e WHERE e.user_id = u.id AND e.kind = 'added_wecom'
                AND e.at < :until)) AS w,
    (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id AND o.paid_at < :until AND {COUNTED}) >= 1 AS o1,
    (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id AND o.paid_at < :until AND {COUNTED}) >= 2 AS o2,
    EXISTS (SELECT 1 FROM referral_nodes r WHERE r.inviter_id = u.id AND r.status = 'active'
            AND r.bound_at < :until) AS inv
  FROM users u WHERE u.status <> 'merged' AND u.created_at < :until
)
"""

WEEK = "date({col} / 1000000 + 28800, 'unixepoch', 'weekday 0', '-6 days')"
COHORT_SQL = f"""
WITH c AS (
  SELECT id, {WEEK.format(col="created_at")} AS cw FROM users
  WHERE status <> 'merged' AND created_at >= :since AND created_at < :until
), a AS (
  SELECT user_id, {WEEK.format(col="at")} AS aw FROM user_events WHERE at >= :since AND at < :until
  UNION
  SELECT o.user_id, {WEEK.format(col="o.paid_at")} FROM orders o
  WHERE o.paid_at >= :since AND o.paid_at < :until AND {COUNTED}
)
SELECT c.cw, a.aw, COUNT(*) FROM a JOIN c ON c.id = a.user_id WHERE a.aw >= c.cw GROUP BY c.cw, a.aw
"""
COHORT_SIZES_SQL = f"""
SELECT {WEEK.format(col="created_at")} AS cw, COUNT(*) FROM users
WHERE status <> 'merged' AND created_at >= :since AND created_at < :until GROUP BY cw
"""

RFM_SQL = f"""
WITH b AS (
  SELECT o.user_id, MAX(o.paid_at) AS r, COUNT(*) AS f, SUM(o.total - o.refunded) AS m FROM orders o
  WHERE o.paid_at < :until AND {COUNTED} GROUP BY o.user_id
), s AS (
  SELECT user_id, RANK() OVER (ORDER BY r) AS cr, RANK() OVER (ORDER BY f) AS cf,
         RANK() OVER (ORDER BY m) AS cm, COUNT(*) OVER () AS n FROM b
)
-- ceil(5 * rank / n) in integers: RANK() is 1 + the buyers strictly below, ties sharing the lowest place.
SELECT user_id, (5 * cr + n - 1) / n, (5 * cf + n - 1) / n, (5 * cm + n - 1) / n FROM s ORDER BY user_id
"""


def timed_call(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    users, events, orders = (scaled(USERS, args.scale, 200), scaled(EVENTS, args.scale, 1000),
                             scaled(ORDERS, args.scale, 200))
    with temp_dir() as directory:
        url = workspace_url(args, directory, "analytics.db")
        path = sqlite_path(url)
        siyu.connect(url).close()  # creates siyu's schema
        start = time.perf_counter()
        counts = existing(path)
        if counts["users"] == 0:
            counts = load(path, users, events, orders)
        elif counts["users"] != users:
            raise SystemExit(f"{url} already holds {counts['users']:,} users; use an empty database, or one this "
                             f"bench filled at the same --scale (it is then reused as is)")
        print(f"data: {counts['users']:,} users, {counts['identities']:,} WeCom identities, "
              f"{counts['user_events']:,} events, {counts['orders']:,} orders, {counts['referral_nodes']:,} "
              f"invitations (ready in {time.perf_counter() - start:.1f} s)")
        params = {"since": to_us(START), "until": to_us(END)}
        results: list[tuple[str, float, float]] = []

        # Rows loaded around siyu are not in the activity rollup: say so, as siyu's migration
        # does for a database that already holds rows, so reports read the raw rows until reindex().
        with sqlite3.connect(path) as db:
            db.execute(f"INSERT INTO siyu_settings (name, value) VALUES ('{STALE_KEY}', 'bench load') "
                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        ws = siyu.connect(url, tz="Asia/Shanghai", clock=lambda: END)
        raw_time, raw_cohorts = timed_call(lambda: ws.analytics.cohorts("week", "active", since=START, until=END))
        reindex_time, _ = timed_call(ws.analytics.reindex)
        print(f"activity rollup built from the raw rows in {reindex_time:.1f} s (once, after a load around siyu)")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA cache_size = -65536")

        # -- funnel -----------------------------------------------------------------------
        s_time, report = timed_call(lambda: ws.analytics.funnel(until=END))
        b_time, row = timed_call(lambda: db.execute(FUNNEL_SQL, params).fetchone())
        check_equal("funnel", report.totals(), tuple(int(v or 0) for v in row))
        results.append(("funnel", s_time, b_time))

        # -- weekly cohorts ---------------------------------------------------------------------
        s_time, cohorts = timed_call(lambda: ws.analytics.cohorts("week", "active", since=START, until=END))
        b_time, (cells, sizes) = timed_call(lambda: (db.execute(COHORT_SQL, params).fetchall(),
                                                     db.execute(COHORT_SIZES_SQL, params).fetchall()))
        mine = {(c, c_index + k): n for c_index, c in enumerate(cohorts.cohorts)
                for k, n in enumerate(cohorts.retained[c_index]) if n}
        weeks = {w: i for i, w in enumerate(cohorts.cohorts)}
        theirs = {(cw, weeks[aw]): n for cw, aw, n in cells}
        check_equal("cohort matrix", mine, theirs)
        check_equal("cohort sizes", {c: n for c, n in zip(cohorts.cohorts, cohorts.sizes, strict=True) if n},
                    dict(sizes))
        results.append(("weekly cohorts", s_time, b_time))
        check_equal("cohorts from raw rows", raw_cohorts.rows, cohorts.rows)
        results.append(("weekly cohorts, raw rows", raw_time, b_time))

        # -- RFM ------------------------------------------------------------------------------------
        s_time, rfm = timed_call(lambda: ws.analytics.rfm(5, until=END))
        b_time, rows = timed_call(lambda: db.execute(RFM_SQL, params).fetchall())
        check_equal("rfm scores", [r[:4] for r in rfm.rows], [tuple(r) for r in rows])
        results.append(("rfm", s_time, b_time))
        db.close()

        columnar(path, ws, params["until"])
        catch_up(ws)
        ws.close()

        for name, s_time, b_time in results:
            ok = s_time <= b_time and s_time < GOAL_SECONDS
            verdict = "met" if ok else "NOT met"
            goal = "" if "raw" in name else f"; goal <= baseline and < {GOAL_SECONDS:.0f} s {verdict}"
            print(ratio_line(name, Timing(1, s_time), Timing(1, b_time),
                             f"siyu {s_time:.2f} s, baseline {b_time:.2f} s{goal}"))
        upkeep(directory, scaled(50_000, args.scale, 500))


REPS = 7
#: Goals (issue 24): each report under this many seconds and this many times faster than the best engine.
FAST_SECONDS, FAST_RATIO = 0.100, 3.0


def median_time(fn, reps: int = REPS):  # type: ignore[no-untyped-def]
    """Median seconds of ``reps`` calls, and the last answer."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), answer


def columnar(path: str, ws: siyu.Workspace, until: int) -> None:
    """siyu (facts current) against DuckDB (native tables) and Polars (frames in memory) on the same rows."""
    start = time.perf_counter()
    frames = read_frames(path)
    read_time = time.perf_counter() - start
    start = time.perf_counter()
    con = duck_tables(frames)
    duck_time = time.perf_counter() - start
    start = time.perf_counter()
    ws.analytics.reindex()
    reindex_time = time.perf_counter() - start
    print(f"rows read out of SQLite into Polars frames: {read_time:.2f} s; into DuckDB tables: +{duck_time:.2f} s; "
          f"ws.analytics.reindex() (rollup and facts from the raw rows): {reindex_time:.2f} s "
          f"({'at least as fast as' if reindex_time <= read_time + duck_time else 'slower than'} DuckDB's load)")
    end = datetime.fromtimestamp(until / 1e6, TZ)
    table = []
    s_time, funnel = median_time(lambda: ws.analytics.funnel(until=end))
    d_time, d_funnel = median_time(lambda: duck_funnel(con, until))
    p_time, p_funnel = median_time(lambda: polars_funnel(frames, until))
    check_equal("funnel vs DuckDB", funnel.totals(), d_funnel)
    check_equal("funnel vs Polars", funnel.totals(), p_funnel)
    table.append(("funnel (5 steps)", s_time, d_time, p_time))

    s_time, rfm = median_time(lambda: ws.analytics.rfm(5, until=end))
    d_time, d_rfm = median_time(lambda: duck_rfm(con, until))
    p_time, p_rfm = median_time(lambda: polars_rfm(frames, until))
    mine = [np.array([row[i] for row in rfm.rows], dtype=np.int64) for i in range(4)]
    for engine, answer in (("DuckDB", d_rfm), ("Polars", p_rfm)):
        theirs = rfm_columns(answer)
        if not all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True)):
            raise SystemExit(f"rfm: siyu and {engine} disagree")
    table.append((f"RFM ({len(rfm.rows):,} buyers)", s_time, d_time, p_time))

    since = to_us(START)
    s_time, cohorts = median_time(lambda: ws.analytics.cohorts("week", "active", since=START, until=end))
    d_time, d_cells = median_time(lambda: duck_cohorts(con, since, until))
    p_time, p_cells = median_time(lambda: polars_cohorts(frames, since, until))
    mine_cells = {(i, k): n for i, row in enumerate(cohorts.retained) for k, n in enumerate(row) if n}
    first_week = (since + 8 * HOUR - 4 * 24 * HOUR) // (7 * 24 * HOUR)
    check_equal("weekly cohorts vs DuckDB", mine_cells, cohort_cells(d_cells, first_week))
    check_equal("weekly cohorts vs Polars", mine_cells, cohort_cells(p_cells, first_week))
    table.append(("weekly cohorts (52 x 52)", s_time, d_time, p_time))

    window = timedelta(days=90)
    s_time, rep = median_time(lambda: ws.analytics.repurchase(window, until=end))
    d_time, d_rep = median_time(lambda: duck_repurchase(con, until, window // timedelta(microseconds=1)))
    p_time, p_rep = median_time(lambda: polars_repurchase(frames, until, window // timedelta(microseconds=1)))
    mine_rep = [(r[0], r[1], r[2]) for r in rep.rows[:-1]]
    check_equal("repurchase vs DuckDB", mine_rep, [tuple(r) for r in d_rep])
    check_equal("repurchase vs Polars", mine_rep, [tuple(r) for r in p_rep.iter_rows()])
    table.append(("repurchase (90 days, by month)", s_time, d_time, p_time))

    s_time, aov = median_time(lambda: ws.analytics.aov(by="channel", until=end))
    d_time, d_aov = median_time(lambda: duck_aov(con, until))
    p_time, p_aov = median_time(lambda: polars_aov(frames, until))
    mine_aov = sorted((r[0], r[1], r[2], int(r[3] * 100)) for r in aov.rows[:-1])
    check_equal("AOV vs DuckDB", mine_aov, sorted(tuple(int(v) if i else v for i, v in enumerate(r)) for r in d_aov))
    check_equal("AOV vs Polars", mine_aov, sorted(p_aov.iter_rows()))
    table.append(("AOV by channel", s_time, d_time, p_time))

    days = end - timedelta(days=12)
    ws.analytics.pv_uv("page_view", "day", since=days, until=end)  # loads the event columns once
    s_time, pv = median_time(lambda: ws.analytics.pv_uv("page_view", "day", since=days, until=end))
    d_time, d_pv = median_time(lambda: duck_pv_uv(con, to_us(days), until))
    p_time, p_pv = median_time(lambda: polars_pv_uv(frames, to_us(days), until))
    mine_pv = [tuple(r[:3]) for r in pv.rows[:-1] if r[1]]
    check_equal("PV/UV vs DuckDB", mine_pv, [tuple(r) for r in d_pv])
    check_equal("PV/UV vs Polars", mine_pv, [tuple(r) for r in p_pv.iter_rows()])
    table.append(("PV/UV per day (12 days)", s_time, d_time, p_time))
    con.close()

    print(f"\n| report | siyu | DuckDB | Polars | best ÷ siyu | < {FAST_SECONDS * 1000:.0f} ms | >= {FAST_RATIO:g}x |")
    print("|---|---|---|---|---|---|---|")
    for name, mine_s, duck_s, polars_s in table:
        ratio = min(duck_s, polars_s) / mine_s
        print(f"| {name} | {mine_s * 1000:.1f} ms | {duck_s * 1000:.1f} ms | {polars_s * 1000:.1f} ms | "
              f"{ratio:.1f}x | {'met' if mine_s < FAST_SECONDS else 'NOT met'} | "
              f"{'met' if ratio >= FAST_RATIO else 'NOT met'} |")
    print(f"(medians of {REPS} runs each; answers checked equal; siyu with its facts current)\n")


def catch_up(ws: siyu.Workspace) -> None:
    """What keeping the facts current costs: writes pay nothing extra (the facts read the event log
    those writes already append), the next report re-derives the users the log names."""
    rng = random.Random(5)
    n_users = ws.analytics.funnel(until=END).totals()[0]
    ws.analytics.funnel(until=END)
    warm, _ = median_time(lambda: ws.analytics.funnel(until=END), 3)
    for batch in (100, 1_000, 10_000):
        rows = [{"user_id": rng.randrange(1, n_users), "kind": "page_view",
                 "at": END - timedelta(seconds=rng.randrange(1, 86_400))} for _ in range(batch)]
        ws.events.track_many(rows)
        start = time.perf_counter()
        ws.analytics.funnel(until=END)
        after = time.perf_counter() - start
        print(f"funnel right after {batch:,} tracked events: {after * 1000:.1f} ms "
              f"(catch-up {max(0.0, after - warm) * 1000:.1f} ms over the warm {warm * 1000:.1f} ms)")


def upkeep(directory: Path, count: int) -> None:
    """``track_many`` with the rollup's upkeep against the same writes with it switched off."""
    rng = random.Random(3)
    rows = [{"user_id": rng.randrange(1, 2_001), "kind": "page_view",
             "at": END - timedelta(seconds=rng.randrange(365 * 86_400))} for _ in range(count)]
    real_add = ActivitySlots.add
    timings = {}
    for upkept in (True, False):
        with siyu.connect(f"sqlite:///{directory}/upkeep-{upkept}.db", clock=lambda: END) as ws:
            ws.users.add_many([{"created_at": START} for _ in range(2_000)])
            ActivitySlots.add = real_add if upkept else lambda self, source, pairs: None  # type: ignore[method-assign]
            try:
                with timed(count) as timing:
                    for start in range(0, count, 5_000):
                        ws.events.track_many(rows[start:start + 5_000])
            finally:
                ActivitySlots.add = real_add  # type: ignore[method-assign]
            timings[upkept] = timing
    print(ratio_line("track_many, rollup upkeep on vs off", timings[True], timings[False],
                     f"{count:,} events spread over a year, batches of 5,000"))


if __name__ == "__main__":
    main()
