"""The async face: siyu.aio against plain asyncio.to_thread / anyio.to_thread wrapping.

Awaits ``points.balance`` and ``points.earn`` N times from 64 concurrent
tasks, four ways: called directly inside the coroutines (what an ``async
def`` endpoint does if it forgets: fast, but it stalls the loop),
``asyncio.to_thread``, ``anyio.to_thread.run_sync`` and ``siyu.aio``.
Besides calls/s it measures the event loop's worst stall: a ticker task
asks to wake every millisecond and records how late it woke. The baseline
for the ratio is ``asyncio.to_thread``, the plain way to do it by hand.

    .venv/bin/python bench/aio.py [--db URL] [--scale 0.1]
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio.to_thread
from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, workspace_url

import siyu
from siyu.aio import AsyncWorkspace
from siyu.testing import FakeClock

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TASKS = 64

Call = Callable[..., Awaitable[Any]]


async def measure(name: str, calls: int, call: Callable[[int], Awaitable[Any]]) -> tuple[Timing, float]:
    """Run ``call(n)`` for n < calls from TASKS tasks; (timing, worst loop stall in ms)."""
    stall = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal stall
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            stall = max(stall, (time.perf_counter() - before - 0.001) * 1000)

    async def worker(start: int) -> None:
        for n in range(start, calls, TASKS):
            await call(n)

    tick = asyncio.create_task(ticker())
    begin = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(TASKS)))
    timing = Timing(calls, time.perf_counter() - begin)
    done.set()
    await tick
    print(f"  {name}: {timing.rate:,.0f} calls/s, worst event-loop stall {stall:.1f} ms")
    return timing, stall


async def main() -> None:
    args = parse_args(__doc__ or "", None)
    calls = scaled(4000, args.scale, minimum=TASKS)
    with temp_dir() as directory:
        ws = siyu.connect(workspace_url(args, directory), clock=FakeClock(START))
        aws = AsyncWorkspace(ws)
        user = ws.users.add(phone="13900000001").id
        ways: dict[str, Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]] = {
            "direct (blocks the loop)": lambda f: _direct(f),
            "asyncio.to_thread": lambda f: functools.partial(asyncio.to_thread, f),
            "anyio.to_thread": lambda f: lambda *a, **k: anyio.to_thread.run_sync(functools.partial(f, *a, **k)),
        }
        results: dict[str, Timing] = {}
        for op in ("balance", "earn"):
            print(f"{op} x {calls} from {TASKS} tasks on {ws.backend.describe()}")
            for way, wrap in ways.items():
                f = wrap(getattr(ws.points, op))
                results[f"{op} {way}"] = (await measure(way, calls, _op(op, f, user, way)))[0]
            results[f"{op} siyu.aio"] = (await measure("siyu.aio", calls,
                                                       _op(op, getattr(aws.points, op), user, "aio")))[0]
        check_equal("points earned (each way's earns, once each)", ws.points.balance(user), 4 * calls)
        for op in ("balance", "earn"):
            print(ratio_line(f"{op} siyu.aio", results[f"{op} siyu.aio"], results[f"{op} asyncio.to_thread"],
                             "baseline asyncio.to_thread"))
        ws.close()


def _direct(f: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return call


def _op(op: str, f: Callable[..., Awaitable[Any]], user: int, way: str) -> Callable[[int], Awaitable[Any]]:
    if op == "balance":
        return lambda n: f(user)
    return lambda n: f(user, 1, reason="bench", key=f"{way}:{n}")


if __name__ == "__main__":
    asyncio.run(main())
