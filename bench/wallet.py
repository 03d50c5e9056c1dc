"""Points-mall redemptions and wallet payments per second from 8 processes.

Each of 8 processes redeems a points-mall reward (``ws.points_mall.redeem``)
and pays from stored value (``ws.wallet.pay``) for its own members, all at
once on one database. The baseline is a hand-written transaction doing the
same debits on a database of its own in the same run: a conditional update of
the points balance, of the reward's stock and of the wallet's principal and
bonus, plus one ledger row each, in one transaction per operation (SQLite
``BEGIN IMMEDIATE`` / PostgreSQL read committed with the row locks the updates
take). The final balances must agree. Goal: at least 0.5x the baseline.

siyu's writers run as in production (``delivery="worker"``): each operation
commits its change together with its events in the event log, and the event
consumers (lifecycle, rollups, plugins) run in a ``siyu worker``, not here.

    .venv/bin/python bench/wallet.py [--db URL] [--scale 0.1] [--processes 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, workspace_url

import siyu
from siyu.testing import FakeClock

GOAL = 0.5
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
COST, PRICE_FEN, POINTS, CASH_FEN, BONUS_FEN = 10, 1_000, 1_000_000, 400_000, 20_000

BASELINE_DDL = [
    "CREATE TABLE balances (user_id BIGINT PRIMARY KEY, points BIGINT NOT NULL, principal BIGINT NOT NULL, "
    "bonus BIGINT NOT NULL)",
    "CREATE TABLE stock (id BIGINT PRIMARY KEY, redeemed BIGINT NOT NULL, total BIGINT NOT NULL)",
    "CREATE TABLE ledger (id {pk}, user_id BIGINT NOT NULL, kind TEXT NOT NULL, amount BIGINT NOT NULL, "
    "bonus BIGINT NOT NULL)",
]


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, default=8, help="writer processes (default 8)")


# -- siyu --------------------------------------------------------------------------------------------
def _siyu_worker(url: str, users: list[int], ops: int, barrier: Any, queue: Any) -> None:
    with siyu.connect(url, clock=FakeClock(START), delivery="worker") as ws:
        barrier.wait()
        start = time.perf_counter()
        for n in range(ops):
            uid = users[n % len(users)]
            ws.points_mall.redeem(uid, "voucher", key=f"r-{uid}-{n}")
            ws.wallet.pay(uid, "10.00", ref=f"order:{uid}-{n}", key=f"p-{uid}-{n}")
        queue.put(time.perf_counter() - start)


def run_siyu(url: str, processes: int, per_process: int, ops: int) -> tuple[float, tuple[int, int, int]]:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.wallet.add_plan("bench", [(1000, 200)])
        ids = ws.users.add_many([{} for _ in range(processes * per_process)])
        ws.points.earn_many([{"user_id": u, "amount": POINTS, "reason": "bench", "key": f"e{u}"} for u in ids])
        for u in ids:
            ws.wallet.recharge(u, CASH_FEN // 100, plan="bench", payment_id=f"pay-{u}")
            ws.wallet.confirm(f"pay-{u}")
        ws.points_mall.add_reward("voucher", kind="gift", points=COST, stock=10**9, terms="bench", scope="bench",
                                  validity="bench")
    groups = [ids[i * per_process:(i + 1) * per_process] for i in range(processes)]
    seconds = _race(_siyu_worker, url, groups, ops)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        points = sum(ws.points.balance(u) for u in ids)
        wallets = [ws.wallet.balance(u) for u in ids]
    return seconds, (points, sum(b.principal_fen for b in wallets), sum(b.bonus_fen for b in wallets))


# -- the baseline ------------------------------------------------------------------------------------------
def _connect(target: str) -> Any:
    if target.startswith("postgresql://"):
        import psycopg

        base, _, schema = target.partition("#")
        conn = psycopg.connect(base, autocommit=True)
        conn.execute(f'SET search_path TO "{schema}"')
        return conn
    conn = sqlite3.connect(target, isolation_level=None, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _sql(conn: Any, statement: str) -> str:
    return statement if isinstance(conn, sqlite3.Connection) else statement.replace("?", "%s")


def _debit(conn: Any, uid: int) -> None:
    """One redemption and one payment, each in its own transaction, as siyu does them."""
    sqlite = isinstance(conn, sqlite3.Connection)
    for kind in ("redeem", "pay"):
        conn.execute("BEGIN IMMEDIATE" if sqlite else "BEGIN")
        if kind == "redeem":
            ok = conn.execute(_sql(conn, "UPDATE balances SET points = points - ? WHERE user_id = ? AND points >= ? "
                                         "RETURNING points"), (COST, uid, COST)).fetchone()
            ok = ok and conn.execute(_sql(conn, "UPDATE stock SET redeemed = redeemed + 1 WHERE id = 1 AND "
                                                "redeemed < total RETURNING id")).fetchone()
            amount, bonus = COST, 0
        else:
            row = conn.execute(_sql(conn, "SELECT principal, bonus FROM balances WHERE user_id = ?"
                                    + ("" if sqlite else " FOR UPDATE")), (uid,)).fetchone()
            total = row[0] + row[1]  # siyu's proportional split, rounded the same way
            amount = max(PRICE_FEN - row[1], min(row[0], (2 * PRICE_FEN * row[0] + total) // (2 * total)))
            bonus = PRICE_FEN - amount
            ok = conn.execute(_sql(conn, "UPDATE balances SET principal = principal - ?, bonus = bonus - ? "
                                         "WHERE user_id = ? AND principal >= ? AND bonus >= ? RETURNING principal"),
                              (amount, bonus, uid, amount, bonus)).fetchone()
        if not ok:
            conn.execute("ROLLBACK")
            raise SystemExit(f"baseline {kind} refused for user {uid}")
        conn.execute(_sql(conn, "INSERT INTO ledger (user_id, kind, amount, bonus) VALUES (?, ?, ?, ?)"),
                     (uid, kind, amount, bonus))
        conn.execute("COMMIT")


def _baseline_worker(target: str, users: list[int], ops: int, barrier: Any, queue: Any) -> None:
    conn = _connect(target)
    barrier.wait()
    start = time.perf_counter()
    for n in range(ops):
        _debit(conn, users[n % len(users)])
    queue.put(time.perf_counter() - start)
    conn.close()


def run_baseline(target: str, processes: int, per_process: int, ops: int) -> tuple[float, tuple[int, int, int]]:
    conn = _connect(target)
    pk = "INTEGER PRIMARY KEY" if isinstance(conn, sqlite3.Connection) else "BIGSERIAL PRIMARY KEY"
    for ddl in BASELINE_DDL:
        conn.execute(ddl.replace("{pk}", pk))
    ids = list(range(1, processes * per_process + 1))
    # What siyu's members hold after a 4000-yuan recharge on a 充1000送200 plan.
    for uid in ids:
        conn.execute(_sql(conn, "INSERT INTO balances VALUES (?, ?, ?, ?)"), (uid, POINTS, CASH_FEN, BONUS_FEN))
    conn.execute("INSERT INTO stock VALUES (1, 0, 1000000000)")
    groups = [ids[i * per_process:(i + 1) * per_process] for i in range(processes)]
    seconds = _race(_baseline_worker, target, groups, ops)
    row = conn.execute("SELECT SUM(points), SUM(principal), SUM(bonus) FROM balances").fetchone()
    conn.close()
    return seconds, (int(row[0]), int(row[1]), int(row[2]))


def _race(target: Any, where: str, groups: list[list[int]], ops: int) -> float:
    """Run ``target`` in one process per group, lined up on a barrier; the slowest one's seconds."""
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(len(groups)), context.Queue()
    procs = [context.Process(target=target, args=(where, group, ops, barrier, queue)) for group in groups]
    for p in procs:
        p.start()
    times = [queue.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a worker failed with exit code {p.exitcode}")
    return max(times)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv, extra_args)
    # The suite's tiny-scale run checks that the script works; two processes are enough for that.
    processes = max(1, args.processes if args.scale >= 0.01 else min(args.processes, 2))
    per_process = scaled(25, args.scale, minimum=2)
    ops = scaled(200, args.scale, minimum=2)
    total = processes * ops * 2
    with temp_dir() as directory:
        url = workspace_url(args, directory)
        if url.startswith("postgresql"):
            from siyu.testing.postgres import drop_schema, with_schema

            schema = f"bench_{uuid.uuid4().hex[:12]}"
            url = with_schema(url, schema)
            base = str(args.db).split("?")[0]
            target = f"{base}#{schema}_base"
            import psycopg

            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}_base"')
        else:
            target = str(directory / "baseline.db")
        try:
            siyu_seconds, siyu_totals = run_siyu(url, processes, per_process, ops)
            base_seconds, base_totals = run_baseline(target, processes, per_process, ops)
        finally:
            if url.startswith("postgresql"):
                drop_schema(url)
                with psycopg.connect(base, autocommit=True) as admin:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}_base" CASCADE')
    check_equal("points, principal and bonus left", siyu_totals, base_totals)
    print(ratio_line(f"redemptions + wallet payments, {processes} processes", Timing(total, siyu_seconds),
                     Timing(total, base_seconds), note=f"goal >= {GOAL}x"))


if __name__ == "__main__":
    main()
