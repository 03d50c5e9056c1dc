"""The FastAPI mall's checkout endpoint under load, against hand-written SQL.

Serves ``examples/fastapi_mall`` with uvicorn (1 and 4 worker processes) on
127.0.0.1 and drives ``POST /checkout`` from an httpx load loop (32
concurrent connections, each member paying with their own coupon on the
first order, every request a new order key). The baseline is the same app
shape with the siyu calls replaced by one hand-written SQL transaction of
the same writes (bench/_web_baseline.py). Reports requests/s and p99
latency for both; the goal is siyu >= 0.5x the baseline's requests/s.
Afterwards each side's orders are counted: one per successful request.

    .venv/bin/python bench/web.py [--db URL] [--scale 0.2] [--workers 1,4] [--delivery worker]

``--db`` takes a ``sqlite:///`` file or a ``postgresql://`` URL (the run
uses two fresh schemas there and drops them). The load generator shares the
machine with the servers, so on a small machine it eats into both sides alike.
"""

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, temp_dir
from _web_baseline import Database, token

import siyu

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fastapi_mall"
sys.path.insert(0, str(EXAMPLE))

from mall_app import stock_the_shop  # noqa: E402

SECRET = "bench-session-secret"
APPID = "wxbench"
MEMBERS = 400
CONNECTIONS = 32
CART = [{"sku": "TEA-1", "qty": 1}, {"sku": "CUP-2", "qty": 1}]


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", default="1,4", help="uvicorn worker counts to measure (default 1,4)")
    parser.add_argument("--seconds", type=float, default=None, help="load per measurement (default 8 x scale)")
    parser.add_argument("--delivery", choices=["inline", "worker"], default="inline",
                        help="siyu's event delivery: inline (default) or worker (a `siyu worker` runs beside the app)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_siyu(url: str) -> None:
    with siyu.connect(url) as ws:
        stock_the_shop(ws)
        ids = ws.users.add_many([{"wechat_openid": f"o{n:06d}", "app": APPID} for n in range(MEMBERS)])
        ws.coupons.issue("新人满99减15", ids)


def prepare_baseline(db: Database) -> None:
    db.create()
    with db.transaction() as run:
        run("INSERT INTO products (sku, price, cost) VALUES ('TEA-1', 6800, 2500), ('CUP-2', 3900, 1200)")
        for n in range(1, MEMBERS + 1):
            run("INSERT INTO users (id, openid) VALUES (?, ?)", (n, f"o{n:06d}"))
            run("INSERT INTO coupons (code, user_id, amount, threshold, status) VALUES (?, ?, 1500, 9900, 'issued')",
                (f"C{n}", n))


def serve(app: str, app_dir: Path, workers: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", app, "--app-dir", str(app_dir), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def ready(base: str, process: subprocess.Popen[bytes], path: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the server exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                if (await client.get(path)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"the server at {base} did not come up within 60 s")


async def load(base: str, seconds: float, run_id: str) -> tuple[Timing, float, int]:
    """(timing of the successful requests, p99 ms, failures) over ``seconds`` of load."""
    import httpx

    latencies: list[float] = []
    failures = 0
    counter = iter(range(10**9))
    end = time.monotonic() + seconds

    async def connection(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while time.monotonic() < end:
            n = next(counter)
            user = n % MEMBERS + 1
            body = {"lines": CART, "key": f"{run_id}-{n}"}
            start = time.perf_counter()
            headers = {"authorization": f"Bearer {token(SECRET, user)}"}
            response = await client.post("/checkout", json=body, headers=headers)
            if response.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                failures += 1

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        begin = time.perf_counter()
        await asyncio.gather(*(connection(client) for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - begin
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) >= 2 else float("nan")
    return Timing(len(latencies), elapsed), p99, failures


def main() -> None:
    args = parse_args(__doc__ or "", None, extra_args)
    seconds = args.seconds if args.seconds is not None else max(0.5, 8 * args.scale)
    worker_counts = [int(w) for w in args.workers.split(",")]
    postgres = bool(args.db and args.db.startswith("postgresql://"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(Path(__file__).resolve().parent),
                                                        os.environ.get("PYTHONPATH", "")]),
           "MALL_APPID": APPID, "MALL_APP_SECRET": "unused", "MALL_SESSION_SECRET": SECRET}
    with temp_dir() as directory:
        if postgres:
            from siyu.testing.postgres import drop_schema, with_schema

            run = uuid.uuid4().hex[:8]
            siyu_url = with_schema(args.db, f"bench_web_siyu_{run}")
            base_schema = f"bench_web_base_{run}"
            base_url = f"{args.db}{'&' if '?' in args.db else '?'}options=-csearch_path%3D{base_schema}"
            import psycopg

            with psycopg.connect(args.db, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {base_schema}")
        else:
            siyu_url = args.db or f"sqlite:///{directory / 'mall.db'}"
            base_url = f"sqlite:///{directory / 'baseline.db'}"
        try:
            prepare_siyu(siyu_url)
            baseline_db = Database(base_url)
            prepare_baseline(baseline_db)
            asyncio.run(measure_all(siyu_url, base_url, baseline_db, {**env, "SIYU_DELIVERY": args.delivery},
                                    worker_counts, seconds))
            baseline_db.close()
        finally:
            if postgres:
                drop_schema(siyu_url)
                with psycopg.connect(args.db, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {base_schema} CASCADE")


async def measure_all(siyu_url: str, base_url: str, baseline_db: Database, env: dict[str, str],
                      worker_counts: list[int], seconds: float) -> None:
    served = {"siyu": 0, "baseline": 0}
    lines: list[str] = []
    for workers in worker_counts:
        results: dict[str, tuple[Timing, float, int]] = {}
        for side, app, app_dir, health in (
            ("siyu", "mall_app:app_from_env", EXAMPLE, "/mall/rewards"),
            ("baseline", "_web_baseline:app_from_env", Path(__file__).resolve().parent, "/health"),
        ):
            process, base = serve(app, app_dir, workers, {**env, "MALL_DB": siyu_url, "BASE_DB": base_url})
            deliverer = None
            if side == "siyu" and env.get("SIYU_DELIVERY") == "worker":  # does the consumers' work meanwhile
                deliverer = subprocess.Popen([sys.executable, "-c", "from siyu.cli import main; main()", "--db",
                                              siyu_url, "worker", "--no-jobs", "--poll", "0.05"],
                                             env=env, stdout=subprocess.DEVNULL, start_new_session=True)
            try:
                await ready(base, process, health)
                results[side] = await load(base, seconds, f"{side}-{workers}")
            finally:
                stop(process)
                if deliverer is not None:
                    stop(deliverer)
            timing, p99, failures = results[side]
            served[side] += timing.count
            print(f"  {workers} worker(s), {side}: {timing.rate:,.0f} req/s, p99 {p99:.0f} ms, "
                  f"{timing.count} orders, {failures} failed")
        (s, s_p99, _), (b, b_p99, _) = results["siyu"], results["baseline"]
        lines.append(ratio_line(f"checkout, {workers} uvicorn worker(s)", s, b,
                                f"p99 siyu {s_p99:.0f} ms vs baseline {b_p99:.0f} ms; hand-written SQL transaction"))
        ratio = s.rate / b.rate if b.rate else 0.0
        lines.append(f"goal checkout {workers} worker(s) >= 0.5x: {'met' if ratio >= 0.5 else 'MISSED'} ({ratio:.2f}x)")
    with siyu.connect(siyu_url) as ws, ws.read() as tx:
        orders = int(tx.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    with baseline_db.transaction() as run:
        base_orders = int(run("SELECT COUNT(*) FROM orders").fetchone()[0])
    check_equal("siyu orders recorded = its successful requests", orders, served["siyu"])
    check_equal("baseline orders recorded = its successful requests", base_orders, served["baseline"])
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
