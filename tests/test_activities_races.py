"""Activities raced by real processes on one database (SQLite file and PostgreSQL).

Each test lines N processes up on a barrier and lets them all call the same
activity at once, then checks the stored counts exactly. PostgreSQL runs
fewer processes than SQLite: every process holds its own server connection,
and the test server's ``max_connections`` (100) is shared with other suites.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import siyu
from siyu.errors import SiyuError
from siyu.models.activities import ReservationStatus
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow


def processes(url: str, sqlite: int) -> int:
    """How many processes race: ``sqlite`` on SQLite, at most 40 on PostgreSQL (connections)."""
    return sqlite if url.startswith("sqlite") else min(sqlite, 40)


def _worker(url: str, task: str, index: int, args: Any, barrier: Any, results: Any) -> None:
    outcomes: list[tuple[str, Any]] = []
    try:
        if url.startswith("postgresql"):
            url += ("&" if "?" in url else "?") + "pool_min=1&pool_max=1"
        with siyu.connect(url, clock=FakeClock(START)) as ws:
            barrier.wait(timeout=300)
            for call in TASKS[task](ws, index, args):
                try:
                    outcomes.append(("ok", call()))
                except SiyuError as exc:
                    outcomes.append(("error", type(exc).__name__))
                except Exception:
                    outcomes.append(("crash", traceback.format_exc()))
    except BaseException:
        outcomes.append(("crash", traceback.format_exc()))
        barrier.abort()
    results.put((index, outcomes))


def race(url: str, task: str, args: Any, count: int) -> list[tuple[str, Any]]:
    """Run ``TASKS[task]`` in ``count`` processes at once; every outcome, crashes refused."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx: Any = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["siyu"])
    else:
        ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, task, i, args, barrier, results)) for i in range(count)]
    for w in workers:
        w.start()
    collected = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    outcomes = [o for _, batch in sorted(collected) for o in batch]
    crashes = [o[1] for o in outcomes if o[0] == "crash"]
    assert not crashes, "a worker failed with a non-siyu error:\n" + "\n".join(crashes)
    return outcomes


# -- tasks: each yields calls to make, in order --------------------------------------------------
def _reserve_one(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    sale_id, users = args
    yield lambda: ws.flash_sales.reserve(sale_id, users[index], key=f"buyer-{index}").id


def _same_user_many_keys(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    sale_id, user_id = args
    yield lambda: ws.flash_sales.reserve(sale_id, user_id, key=f"tap-{index}").id


def _pay_or_release(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    reservation_ids, paid_at = args
    ws.clock = FakeClock(paid_at)  # type: ignore[assignment]
    if index % 2:
        yield lambda: ws.flash_sales.release_due()
    else:
        for rid in reservation_ids:
            yield lambda rid=rid: ws.flash_sales.pay(rid).id


def _pay_same(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    yield lambda: ws.flash_sales.pay(args).id


def _cancel_twice(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    for rid in args:
        yield lambda rid=rid: ws.flash_sales.cancel(rid).status.value


def _help(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    attempt_ids, helpers = args
    turn = index % len(attempt_ids)
    for attempt_id in [*attempt_ids[turn:], *attempt_ids[:turn]]:
        yield lambda attempt_id=attempt_id: ws.bargains.help(attempt_id, helpers[index % len(helpers)]).cut_fen


def _draw_many(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Callable[[], Any]]:
    draw_id, users, per_process, same_key = args
    for n in range(per_process):
        key = same_key or f"p{index}-{n}"
        yield lambda key=key: ws.draws.draw(draw_id, users[index % len(users)], key=key).prize


TASKS: dict[str, Callable[[siyu.Workspace, int, Any], Iterator[Callable[[], Any]]]] = {
    "reserve_one": _reserve_one,
    "same_user_many_keys": _same_user_many_keys,
    "pay_or_release": _pay_or_release,
    "cancel_twice": _cancel_twice,
    "pay_same": _pay_same,
    "help": _help,
    "draw_many": _draw_many,
}


# -- flash sales -----------------------------------------------------------------------------------
def _shop(ws: siyu.Workspace, buyers: int, stock: int, **options: Any) -> tuple[int, list[int]]:
    ws.products.add("TEA", "Oolong", price="128", cost="52", role="activity")
    users = [ws.users.add(phone=f"1390000{i:04d}").id for i in range(buyers)]
    sale = ws.flash_sales.create(sku="TEA", price="69", stock=stock, starts_at=START,
                                 ends_at=START + timedelta(hours=1), **options)
    return sale.id, users


def _counts(ws: siyu.Workspace, sale_id: int) -> tuple[int, int, int]:
    sale = ws.flash_sales.get(sale_id)
    return sale.stock, sale.reserved, sale.sold


def test_many_processes_racing_for_ten_units_reserve_exactly_ten(url: str) -> None:
    count = processes(url, 100)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        sale_id, users = _shop(ws, count, 10)
    outcomes = race(url, "reserve_one", (sale_id, users), count)
    assert sum(1 for o in outcomes if o[0] == "ok") == 10
    assert {o[1] for o in outcomes if o[0] == "error"} == {"SoldOut"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert _counts(ws, sale_id) == (0, 10, 0)
        assert len(ws.flash_sales.reservations(sale_id=sale_id)) == 10


def test_one_user_tapping_from_twenty_processes_gets_one_reservation(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        sale_id, [user, other] = _shop(ws, 2, 10, per_user=1)
    outcomes = race(url, "same_user_many_keys", (sale_id, user), processes(url, 20))
    assert sum(1 for o in outcomes if o[0] == "ok") == 1
    assert {o[1] for o in outcomes if o[0] == "error"} == {"QuotaExceeded"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert _counts(ws, sale_id) == (9, 1, 0)
        assert ws.flash_sales.used(sale_id, user) == 1
        ws.flash_sales.reserve(sale_id, other, key="the-other-user")  # unaffected


def test_release_job_racing_late_payments_moves_each_unit_once(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        sale_id, users = _shop(ws, 12, 12, hold=timedelta(minutes=10))
        held = [ws.flash_sales.reserve(sale_id, uid, key=f"h{uid}").id for uid in users]
    # At the instant the holds end: payers are refused, the release jobs release each once.
    outcomes = race(url, "pay_or_release", (held, START + timedelta(minutes=10)), processes(url, 6))
    # Only the release jobs succeed, and their counts add up to the 12 holds: none released twice.
    assert sum(o[1] for o in outcomes if o[0] == "ok") == 12
    assert {o[1] for o in outcomes if o[0] == "error"} == {"ReservationClosed"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert _counts(ws, sale_id) == (12, 0, 0)
        assert {r.status for r in ws.flash_sales.reservations(sale_id=sale_id)} == {ReservationStatus.RELEASED}
        assert all(ws.orders.of(uid) == [] for uid in users)


def test_payments_racing_the_release_job_before_the_end_either_pay_or_release(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        sale_id, users = _shop(ws, 12, 12, hold=timedelta(minutes=10))
        held = [ws.flash_sales.reserve(sale_id, uid, key=f"h{uid}").id for uid in users]
    outcomes = race(url, "pay_or_release", (held, START + timedelta(minutes=9)), processes(url, 6))
    with siyu.connect(url, clock=FakeClock(START + timedelta(minutes=30))) as ws:
        ws.flash_sales.release_due()
        stock, reserved, sold = _counts(ws, sale_id)
        paid = {r.id for r in ws.flash_sales.reservations(sale_id=sale_id) if r.status is ReservationStatus.PAID}
        assert (stock, reserved, sold) == (0, 0, 12) and len(paid) == 12
        assert len({o.id for uid in users for o in ws.orders.of(uid)}) == 12  # one order per reservation
    assert {o[1] for o in outcomes if o[0] == "error"} <= {"ReservationClosed"}


def test_one_payment_callback_delivered_by_many_processes_records_one_order(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        sale_id, [user] = _shop(ws, 1, 3)
        rid = ws.flash_sales.reserve(sale_id, user, key="once").id
    outcomes = race(url, "pay_same", rid, processes(url, 6))
    assert all(o[0] == "ok" for o in outcomes) and len({o[1] for o in outcomes}) == 1
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert len(ws.orders.of(user)) == 1 and _counts(ws, sale_id) == (2, 0, 1)


def test_cancelling_from_many_processes_restores_once(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        sale_id, users = _shop(ws, 6, 6)
        ids = [ws.flash_sales.reserve(sale_id, uid, key=f"c{uid}").id for uid in users]
        for rid in ids[:3]:
            ws.flash_sales.pay(rid)
    race(url, "cancel_twice", ids, processes(url, 6))
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert _counts(ws, sale_id) == (6, 0, 0)
        assert all(ws.flash_sales.used(sale_id, uid) == 0 for uid in users)
        assert sum(len(ws.orders.refunds(ws.flash_sales.reservation(rid).order_id or 0)) for rid in ids[:3]) == 3


# -- bargains ----------------------------------------------------------------------------------------
def _bargain_shop(ws: siyu.Workspace, people: int, **options: Any) -> tuple[int, list[int]]:
    ws.products.add("POT", "Clay teapot", price="199", cost="60", role="activity")
    users = [ws.users.add(phone=f"1360000{i:04d}").id for i in range(people)]
    bargain = ws.bargains.create(sku="POT", floor="99", stock=50, starts_at=START,
                                 ends_at=START + timedelta(days=1), **options)
    return bargain.id, users


def test_thirty_helpers_at_once_never_pass_n_helps_or_lose_a_cut(url: str) -> None:
    count = processes(url, 30)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        bid, [owner, *helpers] = _bargain_shop(ws, count + 1, helpers=5)
        attempt = ws.bargains.start(bid, owner)
    outcomes = race(url, "help", ([attempt.id], helpers), count)
    assert sum(1 for o in outcomes if o[0] == "ok") == 5
    assert {o[1] for o in outcomes if o[0] == "error"} == {"BargainClosed"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        done = ws.bargains.attempt(attempt.id)
        helps = ws.bargains.helps(attempt.id)
        assert done.status.value == "succeeded" and done.helps == len(helps) == 5
        assert done.cut_fen == sum(h.cut_fen for h in helps) == 10_000 and done.current_fen == 9_900
        assert [h.seq for h in helps] == [1, 2, 3, 4, 5] and ws.bargains.check_sequence(done, helps)


def test_one_helper_from_many_processes_helps_once_per_attempt_and_within_the_limit(url: str) -> None:
    count = processes(url, 12)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        bid, users = _bargain_shop(ws, 6, helpers=3, helps_per_helper=2)
        helper, owners = users[0], users[1:]
        attempts = [ws.bargains.start(bid, uid).id for uid in owners]
    # Every process asks the same helper to help every attempt, in a different order.
    outcomes = race(url, "help", (attempts, [helper]), count)
    assert sum(1 for o in outcomes if o[0] == "ok") == 2
    assert {o[1] for o in outcomes if o[0] == "error"} <= {"AlreadyHelped", "QuotaExceeded"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        rows = [h for a in attempts for h in ws.bargains.helps(a)]
        assert len(rows) == 2 and {h.helper_id for h in rows} == {helper}
        assert len({h.attempt_id for h in rows}) == 2


# -- draws -------------------------------------------------------------------------------------------
RULES = {"organizer": "Leaf & Cup", "contact": "400-000-0000", "participation": "members", "claim": "at once",
         "delivery": "to the account", "forfeit": "none", "terms": "points never expire"}


def _draw_shop(ws: siyu.Workspace, people: int, first: int = 0, **options: Any) -> tuple[int, list[int]]:
    users = [ws.users.add(phone=f"1350000{i:04d}").id for i in range(first, first + people)]
    prizes = [{"name": "未中奖", "kind": "miss", "weight": 50},
              {"name": "Top", "kind": "points", "weight": 50, "points": 100, "value": "1", "stock": 5}]
    draw = ws.draws.create("race", prizes=prizes, starts_at=START, ends_at=START + timedelta(days=1), rules=RULES,
                           **options)
    ws.draws.publish(draw.id)
    return draw.id, users


def test_a_thousand_concurrent_draws_award_a_stock_five_prize_exactly_five_times(url: str) -> None:
    count = processes(url, 20)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        draw_id, users = _draw_shop(ws, count)
    outcomes = race(url, "draw_many", (draw_id, users, 1000 // count, None), count)
    assert len(outcomes) == 1000 and all(o[0] == "ok" for o in outcomes)
    assert sum(1 for o in outcomes if o[1] == 1) == 5
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.draws.prizes_left(draw_id)["Top"] == 0
        records = ws.draws.records(draw_id)
        assert len(records) == 1000 and sum(1 for r in records if r.prize == 1) == 5
        assert all(r.reason == "exhausted" for r in records if r.prize == 0 and r.rolled == 1)
        assert sum(ws.points.balance(uid) for uid in users) == 500
        for uid in users:  # every user's draws numbered 1..n without gaps under the races
            assert [r.seq for r in ws.draws.records(draw_id, user_id=uid)] == list(range(1, 1000 // count + 1))


def test_a_daily_limit_and_a_reused_key_hold_across_processes(url: str) -> None:
    count = processes(url, 10)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        draw_id, [user] = _draw_shop(ws, 1, per_user_day=3, cost_points=10)
        ws.points.earn(user, 1000, reason="gift", key="gift")
    outcomes = race(url, "draw_many", (draw_id, [user], 2, None), count)
    assert sum(1 for o in outcomes if o[0] == "ok") == 3
    assert {o[1] for o in outcomes if o[0] == "error"} == {"QuotaExceeded"}
    with siyu.connect(url, clock=FakeClock(START + timedelta(days=1))) as ws:
        assert len(ws.draws.records(draw_id)) == 3
        won = sum(100 for r in ws.draws.records(draw_id) if r.prize == 1)
        assert ws.points.balance(user) == 1000 - 30 + won
    # The same request id from every process: one record, charged once.
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        draw_id, [buyer] = _draw_shop(ws, 1, first=1, cost_points=10)
        ws.points.earn(buyer, 100, reason="gift", key="gift-2")
    outcomes = race(url, "draw_many", (draw_id, [buyer], 1, "the-one-tap"), count)
    assert all(o[0] == "ok" for o in outcomes) and len({o[1] for o in outcomes}) == 1
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert len(ws.draws.records(draw_id)) == 1
        won = 100 if ws.draws.records(draw_id)[0].prize == 1 else 0
        assert ws.points.balance(buyer) == 100 - 10 + won
