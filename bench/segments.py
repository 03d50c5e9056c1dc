"""Segment evaluation on Roaring bitmaps against the best plain-SQL forms.

Builds 1,000,000 users and 200 tags (tag *i* is held by 1%..30% of users,
rising linearly, about 31M memberships) in a SQLite workspace, then
evaluates ``(A and B) or (C and not D) and E`` with ``ws.segments`` and with
SQL on the same tables: an ``INTERSECT``/``EXCEPT``/``UNION`` form and a
``GROUP BY ... HAVING`` form (the faster one is the baseline). Both must
return the same users. Goals (issue 3): ``count`` >= 300x the baseline,
``users`` >= 100x, and the first query on a cold file (bitmaps built from
the rows) under 10 s.

The data is written with direct SQL into siyu's own tables (``users``,
``tags``, ``user_tags``) because a million users through the public API
would take most of the run; the secondary ``(tag_id, user_id)`` index is
dropped during the load and re-created after, and the ``users``/``tags``
change counters are bumped as siyu's services do, so the engine knows the
data changed. The schema is exactly what siyu creates.

    .venv/bin/python bench/segments.py [--db sqlite:///path.db] [--scale 0.1] [--repeat 200]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, workspace_url

import siyu

USERS = 1_000_000
TAGS = 200
GOAL_COUNT, GOAL_USERS, GOAL_COLD = 300.0, 100.0, 10.0
#: Share of users holding A, B, C, D, E.
SHARES = {"A": 30, "B": 20, "C": 25, "D": 10, "E": 15}
EXPRESSION = "(tag:bench/{A} and tag:bench/{B}) or (tag:bench/{C} and not tag:bench/{D}) and tag:bench/{E}"
SET_SQL = (
    "SELECT user_id FROM (SELECT user_id FROM user_tags WHERE tag_id = ? "
    "INTERSECT SELECT user_id FROM user_tags WHERE tag_id = ?) "
    "UNION SELECT user_id FROM (SELECT user_id FROM user_tags WHERE tag_id = ? "
    "EXCEPT SELECT user_id FROM user_tags WHERE tag_id = ? "
    "INTERSECT SELECT user_id FROM user_tags WHERE tag_id = ?)"
)
GROUP_SQL = (
    "SELECT user_id FROM user_tags WHERE tag_id IN (?, ?, ?, ?, ?) GROUP BY user_id "
    "HAVING (MAX(tag_id = ?) = 1 AND MAX(tag_id = ?) = 1) "
    "OR (MAX(tag_id = ?) = 1 AND MAX(tag_id = ?) = 0 AND MAX(tag_id = ?) = 1)"
)


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=200, help="warm siyu evaluations to time (default 200)")
    parser.add_argument(
        "--reuse", action="store_true",
        help="with --db naming a file a previous run filled: keep its data (only the stored bitmaps are dropped)",
    )


def share(tag: int, tags: int) -> float:
    """Percent of users holding tag number ``tag`` (1-based): 1% .. 30%."""
    return 1 + 29 * (tag - 1) / max(1, tags - 1)


def pick(percent: float, tags: int) -> int:
    return min(range(1, tags + 1), key=lambda t: abs(share(t, tags) - percent))


def sqlite_path(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise SystemExit(f"bench/segments.py loads its data with SQLite SQL; use --db sqlite:///path.db (got {url})")
    return url[len("sqlite:///"):]


def load(path: str, users: int, tags: int) -> int:
    """Fill siyu's tables with direct SQL; return the number of memberships."""
    db = sqlite3.connect(path, isolation_level=None)
    # A bulk load into a fresh file: no journal, no fsync; siyu's WAL mode is restored after.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO users (id, created_at, attributes, status) SELECT i, 0, '{}', 'active' FROM n",
        (users,),
    )
    db.execute("INSERT INTO tag_groups (name, exclusive, description, created_at) VALUES ('bench', 0, '', 0)")
    db.executemany("INSERT INTO tags (id, group_name, name, created_at) VALUES (?, 'bench', ?, 0)",
                   [(t, f"t{t:03d}") for t in range(1, tags + 1)])
    db.execute("CREATE TEMP TABLE bench_share (tag_id INTEGER PRIMARY KEY, permille INTEGER NOT NULL)")
    db.executemany("INSERT INTO bench_share VALUES (?, ?)",
                   [(t, round(share(t, tags) * 10)) for t in range(1, tags + 1)])
    db.execute("DROP INDEX user_tags_tag")
    # A hash of (user, tag) decides membership: deterministic, and independent enough
    # between tags that intersections have the sizes the shares predict.
    db.execute(
        "INSERT INTO user_tags (user_id, tag_id, applied_at, applied_by) "
        "SELECT u.id, s.tag_id, 0, 'bench' FROM users u CROSS JOIN bench_share s "
        "WHERE ((((u.id * 2654435761) % 1000003 + s.tag_id * 40503) % 1000003) "
        "* ((s.tag_id * 2246822519) % 1000003 + 1)) % 1000003 % 1000 < s.permille"
    )
    db.execute("CREATE INDEX user_tags_tag ON user_tags (tag_id, user_id)")
    for counter in ("users", "tags"):
        db.execute("INSERT INTO siyu_counters (name, value) VALUES (?, 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = siyu_counters.value + 1", (counter,))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode = WAL")
    total = int(db.execute("SELECT COUNT(*) FROM user_tags").fetchone()[0])
    db.close()
    return total


def reusable(path: str) -> bool:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM tags WHERE group_name = 'bench'").fetchone()[0]) > 0
    finally:
        db.close()


def forget_bitmaps(path: str) -> tuple[int, int]:
    """Drop siyu's stored bitmaps so the next process builds from the rows; return the sizes."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DELETE FROM segment_bitmaps")
    db.execute("DELETE FROM siyu_settings WHERE name = 'segments.bitmap_cache'")
    users = int(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])
    memberships = int(db.execute("SELECT COUNT(*) FROM user_tags").fetchone()[0])
    db.close()
    return users, memberships


def best_of(runs: int, fn: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv, extra_args)
    users, tags = scaled(USERS, args.scale, 50), TAGS
    ids = {name: pick(pct, tags) for name, pct in SHARES.items()}
    expression = EXPRESSION.format(**{k: f"t{v:03d}" for k, v in ids.items()})
    params = [ids[k] for k in "ABCDE"]
    with temp_dir() as directory:
        url = workspace_url(args, directory, "segments.db")
        path = sqlite_path(url)
        siyu.connect(url).close()  # creates siyu's schema
        start = time.perf_counter()
        if args.reuse and reusable(path):
            users, memberships = forget_bitmaps(path)
            note = "reused"
        else:
            memberships = load(path, users, tags)
            note = f"direct SQL load {time.perf_counter() - start:.1f} s"
        print(f"data: {users:,} users, {tags} tags, {memberships:,} memberships ({note})")
        print(f"expression: {expression}")

        # -- siyu ------------------------------------------------------------------------
        with siyu.connect(url) as ws:
            start = time.perf_counter()
            cold_count = ws.segments.count(expression)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            ws.segments.preload()
            build_all = time.perf_counter() - start + cold
        with siyu.connect(url) as ws:
            start = time.perf_counter()
            ws.segments.count(expression)
            stored = time.perf_counter() - start
            repeat = max(20, args.repeat)
            counts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                ws.segments.count(expression)
                counts.append(time.perf_counter() - t0)
            listed = []
            for _ in range(max(10, repeat // 4)):
                t0 = time.perf_counter()
                siyu_users = ws.segments.users(expression)
                listed.append(time.perf_counter() - t0)
            siyu_count = ws.segments.count(expression)

        # -- SQL baseline ------------------------------------------------------------------
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA cache_size = -65536")
        group_params = params + params
        runs = 3
        forms = {
            "INTERSECT/EXCEPT": (SET_SQL, params),
            "GROUP BY": (GROUP_SQL, group_params),
        }
        sql_counts: dict[str, float] = {}
        sql_users: dict[str, float] = {}
        for name, (sql, bound) in forms.items():
            seconds, n = best_of(runs, lambda sql=sql, bound=bound: db.execute(
                f"SELECT COUNT(*) FROM ({sql})", bound).fetchone()[0])
            sql_counts[name] = seconds
            check_equal(f"count ({name})", siyu_count, n)
            seconds, rows = best_of(runs, lambda sql=sql, bound=bound: [r[0] for r in db.execute(
                f"SELECT user_id FROM ({sql}) ORDER BY user_id", bound)])
            sql_users[name] = seconds
            check_equal(f"users ({name})", siyu_users, rows)
            print(f"baseline {name}: count {sql_counts[name] * 1000:.1f} ms, users {sql_users[name] * 1000:.1f} ms")
        db.close()
        check_equal("cold count", cold_count, siyu_count)

        best_count_form = min(sql_counts, key=sql_counts.__getitem__)
        best_users_form = min(sql_users, key=sql_users.__getitem__)
        # The same statistic on both sides: the best run (the baseline is best of 3).
        best_count, best_users = min(counts), min(listed)
        median_count, median_users = statistics.median(counts), statistics.median(listed)
        count_ratio = sql_counts[best_count_form] / best_count
        users_ratio = sql_users[best_users_form] / best_users
        print(f"siyu count: best {best_count * 1000:.3f} ms, median {median_count * 1000:.3f} ms over {repeat} "
              f"(median-based ratio {sql_counts[best_count_form] / median_count:.0f}x)")
        print(f"siyu users: best {best_users * 1000:.3f} ms, median {median_users * 1000:.3f} ms for "
              f"{len(siyu_users):,} ids (median-based ratio {sql_users[best_users_form] / median_users:.0f}x)")
        print(ratio_line("count", Timing(1, best_count), Timing(1, sql_counts[best_count_form]),
                         f"baseline {best_count_form}; best of runs on both sides; goal {GOAL_COUNT:.0f}x "
                         f"{'met' if count_ratio >= GOAL_COUNT else 'NOT met'}"))
        print(ratio_line("users", Timing(1, best_users), Timing(1, sql_users[best_users_form]),
                         f"baseline {best_users_form}; best of runs on both sides; goal {GOAL_USERS:.0f}x "
                         f"{'met' if users_ratio >= GOAL_USERS else 'NOT met'}"))
        print(f"cold first query, its 5 tags read from the rows: {cold:.2f} s")
        print(f"cold build of all {tags} tag bitmaps from the rows (+ write-back): {build_all:.2f} s "
              f"(goal < {GOAL_COLD:.0f} s {'met' if build_all < GOAL_COLD else 'NOT met'})")
        print(f"cold first query in a new process, bitmaps from the stored copy: {stored:.2f} s "
              f"(goal < {GOAL_COLD:.0f} s {'met' if stored < GOAL_COLD else 'NOT met'})")


if __name__ == "__main__":
    main()
