"""DuckDB and Polars baselines for bench/analytics.py: the same reports on the same rows,
each engine holding the rows in its own format (DuckDB native tables, Polars frames in memory).

Rows are read from siyu's SQLite tables once (column by column) and handed to both
engines; the load time is printed as what an engine pays to get the rows out of the
database. Every function returns the answer in the engine's own form, so the timings
include no Python objects per row.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import duckdb
import numpy as np
import polars as pl

COUNTED_SQL = "(refunded < total OR total = 0)"
WECOM = "wecom_external_userid"


def read_frames(path: str) -> dict[str, pl.DataFrame]:
    """The tables the reports read, as Polars frames."""
    db = sqlite3.connect(path)

    def frame(sql: str, names: list[str]) -> pl.DataFrame:
        rows = db.execute(sql).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pl.DataFrame({n: list(c) for n, c in zip(names, columns, strict=True)})

    frames = {
        "users": frame("SELECT id, created_at, status = 'merged' FROM users", ["id", "created_at", "merged"]),
        "identities": frame(f"SELECT user_id, linked_at FROM identities WHERE kind = '{WECOM}'",
                            ["user_id", "linked_at"]),
        "events": frame("SELECT user_id, kind, at FROM user_events", ["user_id", "kind", "at"]),
        "orders": frame("SELECT id, user_id, paid_at, total, refunded, channel FROM orders",
                        ["id", "user_id", "paid_at", "total", "refunded", "channel"]),
        "referrals": frame("SELECT inviter_id, bound_at, status FROM referral_nodes WHERE inviter_id IS NOT NULL",
                           ["inviter_id", "bound_at", "status"]),
    }
    db.close()
    frames["events"] = frames["events"].with_columns(pl.col("kind").cast(pl.Categorical))
    frames["users"] = frames["users"].with_columns(pl.col("merged").cast(pl.Boolean))
    return frames


def duck_tables(frames: dict[str, pl.DataFrame]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, frame in frames.items():
        con.register("incoming", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
        con.unregister("incoming")
    return con


# -- funnel: first_seen -> added_wecom -> first_order -> second_order -> invited_friend ------------------
DUCK_FUNNEL = f"""
WITH u AS (SELECT id FROM users WHERE NOT merged AND created_at < $until),
w AS (SELECT user_id FROM identities WHERE linked_at < $until
      UNION SELECT user_id FROM events WHERE kind = 'added_wecom' AND "at" < $until),
o AS (SELECT user_id, COUNT(*) AS n FROM orders WHERE paid_at < $until AND {COUNTED_SQL} GROUP BY user_id),
i AS (SELECT DISTINCT inviter_id AS user_id FROM referrals WHERE status = 'active' AND bound_at < $until)
SELECT COUNT(*), COUNT(w.user_id), COUNT(CASE WHEN w.user_id IS NOT NULL AND o.n >= 1 THEN 1 END),
       COUNT(CASE WHEN w.user_id IS NOT NULL AND o.n >= 2 THEN 1 END),
       COUNT(CASE WHEN w.user_id IS NOT NULL AND o.n >= 2 AND i.user_id IS NOT NULL THEN 1 END)
FROM u LEFT JOIN w ON w.user_id = u.id LEFT JOIN o ON o.user_id = u.id LEFT JOIN i ON i.user_id = u.id
"""


def duck_funnel(con: duckdb.DuckDBPyConnection, until: int) -> tuple[int, ...]:
    row = con.execute(DUCK_FUNNEL, {"until": until}).fetchone()
    assert row is not None
    return tuple(int(v) for v in row)


def polars_funnel(f: dict[str, pl.DataFrame], until: int) -> tuple[int, ...]:
    users = f["users"].lazy().filter(~pl.col("merged") & (pl.col("created_at") < until)).select(pl.col("id"))
    wecom = pl.concat([
        f["identities"].lazy().filter(pl.col("linked_at") < until).select(pl.col("user_id")),
        f["events"].lazy().filter((pl.col("kind") == "added_wecom") & (pl.col("at") < until)).select("user_id"),
    ]).unique().with_columns(pl.lit(True).alias("w"))
    counted = (pl.col("refunded") < pl.col("total")) | (pl.col("total") == 0)
    orders = (f["orders"].lazy().filter((pl.col("paid_at") < until) & counted)
              .group_by("user_id").agg(pl.len().alias("n")))
    invited = (f["referrals"].lazy().filter((pl.col("status") == "active") & (pl.col("bound_at") < until))
               .select(pl.col("inviter_id").alias("user_id")).unique().with_columns(pl.lit(True).alias("i")))
    joined = (users.join(wecom, left_on="id", right_on="user_id", how="left")
              .join(orders, left_on="id", right_on="user_id", how="left")
              .join(invited, left_on="id", right_on="user_id", how="left")
              .select(pl.len().alias("a"), pl.col("w").fill_null(False).sum().alias("b"),
                      (pl.col("w").fill_null(False) & (pl.col("n") >= 1)).sum().alias("c"),
                      (pl.col("w").fill_null(False) & (pl.col("n") >= 2)).sum().alias("d"),
                      (pl.col("w").fill_null(False) & (pl.col("n") >= 2) & pl.col("i").fill_null(False))
                      .sum().alias("e"))).collect()
    return tuple(int(v) for v in joined.row(0))


# -- RFM (5 quantiles): ceil(5 * rank / n), RANK() ties sharing the lowest place -------------------------
DUCK_RFM = f"""
WITH b AS (SELECT user_id, MAX(paid_at) AS r, COUNT(*) AS f, SUM(total - refunded) AS m FROM orders
           WHERE paid_at < $until AND {COUNTED_SQL} GROUP BY user_id),
s AS (SELECT user_id, RANK() OVER (ORDER BY r) AS cr, RANK() OVER (ORDER BY f) AS cf,
             RANK() OVER (ORDER BY m) AS cm, COUNT(*) OVER () AS n FROM b)
SELECT user_id, (5 * cr + n - 1) // n AS r, (5 * cf + n - 1) // n AS f, (5 * cm + n - 1) // n AS m
FROM s ORDER BY user_id
"""


def duck_rfm(con: duckdb.DuckDBPyConnection, until: int) -> dict[str, Any]:
    return con.execute(DUCK_RFM, {"until": until}).fetchnumpy()


def polars_rfm(f: dict[str, pl.DataFrame], until: int) -> pl.DataFrame:
    counted = (pl.col("refunded") < pl.col("total")) | (pl.col("total") == 0)
    buyers = (f["orders"].lazy().filter((pl.col("paid_at") < until) & counted).group_by("user_id")
              .agg(pl.col("paid_at").max().alias("r"), pl.len().alias("f"),
                   (pl.col("total") - pl.col("refunded")).sum().alias("m")))
    n = pl.len()
    return (buyers.select(
        "user_id",
        *(((5 * pl.col(c).rank("min") + n - 1) // n).alias(c) for c in ("r", "f", "m")),
    ).sort("user_id").collect())


def rfm_columns(answer: dict[str, Any] | pl.DataFrame) -> list[np.ndarray]:
    """An engine's RFM answer as four integer columns, for comparing."""
    return [np.asarray(answer[c], dtype=np.int64) for c in ("user_id", "r", "f", "m")]


# -- the other reports ------------------------------------------------------------------------------------
LOCAL = 8 * 3_600_000_000  # Asia/Shanghai, no DST
WEEK_US = 7 * 86_400_000_000
MONDAY = 4 * 86_400_000_000  # 1970-01-01 was a Thursday: shift so weeks start on Monday


def _counted() -> pl.Expr:
    return (pl.col("refunded") < pl.col("total")) | (pl.col("total") == 0)


def _week(column: str) -> str:
    return f'("{column}" + {LOCAL} - {MONDAY}) // {WEEK_US}'


def _pl_week(column: str) -> pl.Expr:
    return (pl.col(column) + LOCAL - MONDAY) // WEEK_US


DUCK_COHORTS = f"""
WITH c AS (SELECT id, {_week("created_at")} AS cw FROM users
           WHERE NOT merged AND created_at >= $since AND created_at < $until),
a AS (SELECT user_id, {_week("at")} AS aw FROM events WHERE "at" >= $since AND "at" < $until
      UNION SELECT user_id, {_week("paid_at")} FROM orders WHERE paid_at >= $since AND paid_at < $until
      AND {COUNTED_SQL})
SELECT cw, aw, COUNT(*) AS n FROM a JOIN c ON c.id = a.user_id WHERE aw >= cw GROUP BY cw, aw
"""


def duck_cohorts(con: duckdb.DuckDBPyConnection, since: int, until: int) -> dict[str, Any]:
    return con.execute(DUCK_COHORTS, {"since": since, "until": until}).fetchnumpy()


def polars_cohorts(f: dict[str, pl.DataFrame], since: int, until: int) -> pl.DataFrame:
    users = (f["users"].lazy().filter(~pl.col("merged") & (pl.col("created_at") >= since)
                                      & (pl.col("created_at") < until))
             .select(pl.col("id").alias("user_id"), _pl_week("created_at").alias("cw")))
    active = pl.concat([
        f["events"].lazy().filter((pl.col("at") >= since) & (pl.col("at") < until))
        .select("user_id", _pl_week("at").alias("aw")),
        f["orders"].lazy().filter((pl.col("paid_at") >= since) & (pl.col("paid_at") < until) & _counted())
        .select("user_id", _pl_week("paid_at").alias("aw")),
    ]).unique()
    return (active.join(users, on="user_id").filter(pl.col("aw") >= pl.col("cw"))
            .group_by("cw", "aw").agg(pl.len().alias("n")).collect())


def cohort_cells(answer: dict[str, Any] | pl.DataFrame, first_week: int) -> dict[tuple[int, int], int]:
    """An engine's cohort answer as ``{(cohort index, weeks later): users}``."""
    cw, aw, n = (np.asarray(answer[c], dtype=np.int64).tolist() for c in ("cw", "aw", "n"))
    return {(c - first_week, a - c): k for c, a, k in zip(cw, aw, n, strict=True)}


DUCK_REPURCHASE = f"""
WITH c AS (SELECT user_id, paid_at, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY paid_at) AS rn FROM orders
           WHERE paid_at < $until AND {COUNTED_SQL}),
f AS (SELECT user_id, MIN(CASE WHEN rn = 1 THEN paid_at END) AS first, MIN(CASE WHEN rn = 2 THEN paid_at END) AS second
      FROM c WHERE rn <= 2 GROUP BY user_id)
SELECT strftime(make_timestamp(first + {LOCAL}), '%Y-%m') AS m, COUNT(*) AS buyers,
       COUNT(CASE WHEN second - first <= $window THEN 1 END) AS again FROM f GROUP BY m ORDER BY m
"""


def duck_repurchase(con: duckdb.DuckDBPyConnection, until: int, window: int) -> list[tuple[Any, ...]]:
    return con.execute(DUCK_REPURCHASE, {"until": until, "window": window}).fetchall()


def polars_repurchase(f: dict[str, pl.DataFrame], until: int, window: int) -> pl.DataFrame:
    buyers = (f["orders"].lazy().filter((pl.col("paid_at") < until) & _counted()).group_by("user_id")
              .agg(pl.col("paid_at").min().alias("first"), pl.len().alias("n"),
                   pl.col("paid_at").bottom_k(2).max().alias("second")))
    return (buyers.with_columns(pl.from_epoch(pl.col("first") + LOCAL, "us").dt.strftime("%Y-%m").alias("m"))
            .group_by("m").agg(pl.len().alias("buyers"),
                               ((pl.col("n") >= 2) & (pl.col("second") - pl.col("first") <= window)).sum()
                               .alias("again"))
            .sort("m").collect())


DUCK_AOV = f"""
SELECT channel, COUNT(*), COUNT(DISTINCT user_id), SUM(total - refunded) FROM orders
WHERE paid_at < $until AND {COUNTED_SQL} GROUP BY channel
"""


def duck_aov(con: duckdb.DuckDBPyConnection, until: int) -> list[tuple[Any, ...]]:
    return con.execute(DUCK_AOV, {"until": until}).fetchall()


def polars_aov(f: dict[str, pl.DataFrame], until: int) -> pl.DataFrame:
    return (f["orders"].lazy().filter((pl.col("paid_at") < until) & _counted()).group_by("channel")
            .agg(pl.len().alias("orders"), pl.col("user_id").n_unique().alias("buyers"),
                 (pl.col("total") - pl.col("refunded")).sum().alias("fen")).collect())


DUCK_PV = f"""
SELECT strftime(make_timestamp("at" + {LOCAL}), '%Y-%m-%d') AS d, COUNT(*), COUNT(DISTINCT user_id) FROM events
WHERE kind = 'page_view' AND "at" >= $since AND "at" < $until GROUP BY d ORDER BY d
"""


def duck_pv_uv(con: duckdb.DuckDBPyConnection, since: int, until: int) -> list[tuple[Any, ...]]:
    return con.execute(DUCK_PV, {"since": since, "until": until}).fetchall()


def polars_pv_uv(f: dict[str, pl.DataFrame], since: int, until: int) -> pl.DataFrame:
    return (f["events"].lazy().filter((pl.col("kind") == "page_view") & (pl.col("at") >= since)
                                      & (pl.col("at") < until))
            .group_by(pl.from_epoch(pl.col("at") + LOCAL, "us").dt.strftime("%Y-%m-%d").alias("d"))
            .agg(pl.len().alias("pv"), pl.col("user_id").n_unique().alias("uv")).sort("d").collect())
