"""siyu.aio through a real ASGI app: many concurrent requests, exact results, a free event loop.

The app is FastAPI served in-process by httpx's ASGITransport, so every request
runs on the test's event loop; siyu's calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import siyu
from siyu.aio import AsyncWorkspace
from siyu.errors import InsufficientPoints, NotFound, SiyuError, ValidationError
from siyu.testing import FakeClock

fastapi = pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi import FastAPI, Request  # noqa: E402  (after the skip: an optional dependency)
from fastapi.responses import JSONResponse  # noqa: E402

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
REQUESTS = 200

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(aws: AsyncWorkspace) -> Any:
    app = FastAPI()

    @app.exception_handler(SiyuError)
    async def siyu_error(request: Request, exc: SiyuError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 422 if isinstance(exc, ValidationError) else 409
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    @app.post("/users/{user_id}/earn/{key}")
    async def earn(user_id: int, key: str, request: Request) -> dict[str, Any]:
        async with aws.correlate(request.headers.get("x-request-id", key)):
            entry = await aws.points.earn(user_id, 1, reason="visit", key=key)
        return {"entry": entry.id}

    @app.post("/users/{user_id}/spend/{key}")
    async def spend(user_id: int, key: str) -> dict[str, Any]:
        entry = await aws.points.spend(user_id, 10, reason="redeem", key=key)
        return {"entry": entry.id}

    @app.get("/users/{user_id}/balance")
    async def balance(user_id: int) -> dict[str, int]:
        return {"balance": await aws.points.balance(user_id)}

    return app


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[AsyncWorkspace, Any, Path]]:
    db = tmp_path / "shop.db"
    aws = AsyncWorkspace(siyu.connect(f"sqlite:///{db}", clock=FakeClock(START)))
    transport = httpx.ASGITransport(app=make_app(aws))
    async with httpx.AsyncClient(transport=transport, base_url="http://mall.test") as client:
        yield aws, client, db
    await aws.aclose()


async def test_many_concurrent_requests_give_exact_results(shop: Any) -> None:
    aws, client, _ = shop
    earner = (await aws.users.add(phone="13900000001")).id
    spender = (await aws.users.add(phone="13900000002")).id
    await aws.points.earn(spender, 100, reason="seed", key="seed")

    # Every earn twice with the same key (a client retry), all at once.
    earns = [client.post(f"/users/{earner}/earn/k{n % (REQUESTS // 2)}", headers={"x-request-id": f"r{n}"})
             for n in range(REQUESTS)]
    spends = [client.post(f"/users/{spender}/spend/s{n}") for n in range(30)]
    reads = [client.get(f"/users/{spender}/balance") for _ in range(50)]
    responses = await asyncio.gather(*earns, *spends, *reads)

    earned = responses[:REQUESTS]
    assert all(r.status_code == 200 for r in earned), earned[0].text
    assert len({r.json()["entry"] for r in earned}) == REQUESTS // 2
    assert await aws.points.balance(earner) == REQUESTS // 2

    spent = responses[REQUESTS:REQUESTS + 30]
    assert sorted(r.status_code for r in spent) == [200] * 10 + [409] * 20
    refused = [r.json() for r in spent if r.status_code == 409]
    assert {r["error"] for r in refused} == {InsufficientPoints.__name__}
    assert await aws.points.balance(spender) == 0
    assert all(0 <= r.json()["balance"] <= 100 for r in responses[REQUESTS + 30:])

    # The same error types as the synchronous call, raised from the await.
    with pytest.raises(InsufficientPoints):
        await aws.points.spend(spender, 10, reason="redeem", key="late")
    with pytest.raises(ValidationError):
        await aws.points.earn(earner, -1, reason="bad", key="bad")

    # Each request's correlation id reached its own events, none leaked to another request.
    logged = await aws.event_log.read(types=["PointsEarned"], limit=10_000)
    correlations = {e.correlation_id for e in logged if e.user_id == earner}
    assert len(correlations) == REQUESTS // 2 and all(c.startswith("r") for c in correlations)


async def test_a_blocked_write_does_not_block_the_event_loop(shop: Any) -> None:
    """While another connection holds SQLite's write lock, an earn waits in its thread and the
    loop keeps answering; released, the earn completes."""

    aws, client, db = shop
    user = (await aws.users.add(phone="13900000003")).id
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    waiting = asyncio.ensure_future(client.post(f"/users/{user}/earn/blocked"))
    for _ in range(20):
        assert (await client.get("/ping")).json() == {"pong": "yes"}
    assert not waiting.done()
    holder.execute("COMMIT")
    holder.close()
    assert (await waiting).status_code == 200
    assert await aws.points.balance(user) == 1


async def test_transactions_run_whole_in_one_thread(shop: Any) -> None:
    aws, _, _ = shop
    user = (await aws.users.add(phone="13900000004")).id

    def earn_twice_then_fail(ws: siyu.Workspace) -> None:
        with ws.write():
            ws.points.earn(user, 5, reason="a", key="a")
            ws.points.earn(user, 5, reason="b", key="b")
            raise InsufficientPoints("refused on purpose")

    with pytest.raises(InsufficientPoints):
        await aws.run(earn_twice_then_fail, aws.sync)
    assert await aws.points.balance(user) == 0
    with pytest.raises(AttributeError, match=r"aws\.run"):
        aws.write()

