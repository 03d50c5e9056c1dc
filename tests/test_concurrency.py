"""Several real processes on one database: nothing is spent, sent or bound twice.

Each test opens the same database from N processes (``multiprocessing``
with the forkserver or spawn start method, so every worker has its own
connections), lines them up on a barrier, lets them race, and then checks
the final state exactly and that every refused attempt raised a clear
:class:`~siyu.errors.SiyuError`. They run on SQLite, and on PostgreSQL when
``SIYU_TEST_POSTGRES_URL`` is set.
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
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
PROCESSES = 8

pytestmark = pytest.mark.slow


# -- the harness ---------------------------------------------------------------------------------
Outcome = tuple[str, Any]  # ("ok", result) | ("error", (class name, message, is SiyuError))


def _worker(url: str, task: str, index: int, args: Any, barrier: Any, results: Any) -> None:
    outcomes: list[Outcome] = []
    try:
        with siyu.connect(url, clock=FakeClock(START)) as ws:
            barrier.wait(timeout=120)
            for item in TASKS[task](ws, index, args):
                outcomes.append(item)
    except BaseException:
        outcomes.append(("crash", traceback.format_exc()))
        barrier.abort()  # release the others at once instead of after the timeout
    results.put((index, outcomes))


def _attempt(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except SiyuError as exc:
        return ("error", (type(exc).__name__, str(exc)))
    except Exception as exc:  # anything else is a bug the test must report
        return ("crash", f"{type(exc).__name__}: {exc}")


def _context() -> Any:
    # forkserver: workers are forked from a clean server process that has imported siyu
    # once (fast, and no inherited connections or threads); spawn where it is missing.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["siyu"])
        return ctx
    return multiprocessing.get_context("spawn")


def race(url: str, task: str, args: Any, processes: int = PROCESSES) -> list[Outcome]:
    """Run ``TASKS[task](ws, index, args)`` in ``processes`` processes at once; all outcomes."""
    ctx = _context()
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(url, task, i, args, barrier, results)) for i in range(processes)
    ]
    for w in workers:
        w.start()
    collected = [results.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    outcomes = [o for _, batch in sorted(collected) for o in batch]
    crashes = [o[1] for o in outcomes if o[0] == "crash"]
    assert not crashes, "a worker failed with a non-siyu error:\n" + "\n".join(crashes)
    return outcomes


def _spend(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    user_id, amount, tries = args
    for n in range(tries):
        yield _attempt(lambda n=n: ws.points.spend(user_id, amount, reason="race", key=f"spend-{index}-{n}").id)


def _earn_same_key(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    user_id, keys = args
    for key in keys:
        yield _attempt(lambda key=key: ws.points.earn(user_id, 10, reason="signin", key=key).id)


def _earn_conflicting_key(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    # Same key, different amounts: one wins, the others are refused, none double-credits.
    user_id = args
    yield _attempt(lambda: ws.points.earn(user_id, 10 + index, reason="bonus", key="bonus-once").amount)


def _add_same_phone(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    yield _attempt(lambda: ws.users.add(phone=args, source=f"p{index}").id)


def _issue_limited(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    template, users = args
    for uid in users[index::PROCESSES]:
        yield _attempt(lambda uid=uid: ws.coupons.issue(template, uid)[0].code)


def _redeem_one_coupon(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    user_id, code = args
    lines = [{"sku": "TEA-1", "qty": 1}]
    yield _attempt(lambda: ws.orders.record(user_id, lines, coupon=code, key=f"order-{index}").id)


def _bind_same_invitee(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    from siyu.errors import AlreadyBound

    invitee, inviters = args
    try:
        yield ("ok", ws.referrals.bind(invitee, inviter_id=inviters[index]).inviter_id)
    except AlreadyBound as exc:
        yield ("bound", exc.inviter_id)
    except Exception as exc:  # anything else is a bug the test must report
        yield ("crash", f"{type(exc).__name__}: {exc}")


def _join_group(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    group_id, joiners = args
    yield _attempt(lambda: len(ws.referrals.group_buys.join(group_id, joiners[index]).members))


def _run_campaign(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    from siyu.errors import Conflict

    campaign_id = args
    try:
        yield ("ok", ws.campaigns.send(campaign_id).sent)
    except Conflict:
        # Someone else launched it: help finish it, as a second worker process would. Claims
        # younger than recover_after belong to a live sender and are left to it.
        yield _attempt(lambda: ws.campaigns.resume(campaign_id, recover_after=timedelta(minutes=10)).sent)


def _tag_users(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    users = args
    for uid in users[index::2]:
        yield _attempt(lambda uid=uid: ws.tags.apply(uid, "interest/running"))


def _transfer_customers(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    # Every process hands the same customers from "a" to its own member: each customer moves once.
    users = args
    yield _attempt(lambda: [(t.user_id, str(t.status)) for t in ws.staff.transfer(users, from_="a", to=f"t{index}")])
def _earn_and_spend(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    # Each process earns for its own customers and spends from one customer everyone shares.
    own, shared, rounds = args
    for n in range(rounds):
        yield _attempt(lambda n=n: ("earn", ws.points.earn(own[index], 5, reason="buy", key=f"e-{index}-{n}").amount))
        yield _attempt(lambda n=n: ("spend", -ws.points.spend(shared, 3, reason="use", key=f"s-{index}-{n}").amount))


def _opposite_orders(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    # Half the processes name the customers in one order, half in the reverse order, so a
    # writer locking them as named would wait in a circle with one locking them the other way.
    users, rounds = args
    order = users if index % 2 else users[::-1]
    for n in range(rounds):
        yield _attempt(lambda n=n: len(ws.points.earn_many(
            [{"user_id": u, "amount": 1, "reason": "x", "key": f"d-{index}-{n}-{u}"} for u in order])))
        yield _attempt(lambda n=n: len(ws.points.spend_many(
            [{"user_id": u, "amount": 1, "reason": "x", "key": f"ds-{index}-{n}-{u}"} for u in order])))
        yield _attempt(lambda n=n: ws.tags.apply_many(order, f"round/r{n % 3}"))


def _track_same_keys(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    users, keys = args
    for key in keys:
        yield _attempt(lambda key=key: ws.events.track(users[hash(key) % len(users)], "view", key=key))


TASKS: dict[str, Callable[[siyu.Workspace, int, Any], Iterator[Outcome]]] = {
    "earn_and_spend": _earn_and_spend,
    "opposite_orders": _opposite_orders,
    "track_same_keys": _track_same_keys,
    "spend": _spend,
    "earn_same_key": _earn_same_key,
    "earn_conflicting_key": _earn_conflicting_key,
    "add_same_phone": _add_same_phone,
    "issue_limited": _issue_limited,
    "redeem_one_coupon": _redeem_one_coupon,
    "bind_same_invitee": _bind_same_invitee,
    "join_group": _join_group,
    "run_campaign": _run_campaign,
    "tag_users": _tag_users,
    "transfer_customers": _transfer_customers,
}


# -- points --------------------------------------------------------------------------------------
def test_many_processes_spending_one_account_never_overspend(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add(phone="13800138000").id
        ws.points.earn(uid, 100, reason="seed", key="seed")
    outcomes = race(url, "spend", (uid, 7, 5))
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o for o in outcomes if o[0] == "error"]
    assert len(ok) == 100 // 7
    assert len(ok) + len(refused) == PROCESSES * 5
    assert {name for name, _ in (o[1] for o in refused)} == {"InsufficientPoints"}
    assert all("balance" in message or "points" in message for _, message in (o[1] for o in refused))
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points.balance(uid) == 100 - 7 * len(ok)
        spends = [e for e in ws.points.history(uid) if e.kind == "spend"]
        assert len(spends) == len(ok)
        assert len({e.id for e in spends}) == len(ok)


def test_earns_and_spends_from_eight_processes_add_up_exactly(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        own = ws.users.add_many([{} for _ in range(PROCESSES)])
        shared = ws.users.add().id
        ws.points.earn(shared, 60, reason="seed", key="seed")
    rounds = 4
    outcomes = race(url, "earn_and_spend", (own, shared, rounds))
    assert [o[0] for o in outcomes if o[0] != "ok"] == ["error"] * (PROCESSES * rounds - 20)
    assert {o[1][0] for o in outcomes if o[0] == "error"} == {"InsufficientPoints"}
    spent = sum(o[1][1] for o in outcomes if o[0] == "ok" and o[1][0] == "spend")
    assert spent == 60  # 20 spends of 3 fit into 60 points; every other one was refused
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points.balance(shared) == 0
        assert [ws.points.balance(u) for u in own] == [5 * rounds] * PROCESSES
        assert sum(1 for e in ws.points.history(shared) if e.kind == "spend") == 20


def test_writers_naming_customers_in_opposite_orders_never_deadlock(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = ws.users.add_many([{} for _ in range(6)])
    rounds = 5
    outcomes = race(url, "opposite_orders", (users, rounds))
    failed = [o for o in outcomes if o[0] != "ok"]
    assert not failed, failed[:3]
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        # Every earn_many added one point per customer, every spend_many took it back.
        assert [ws.points.balance(u) for u in users] == [0] * len(users)
        assert [len(ws.points.history(u)) for u in users] == [2 * PROCESSES * rounds] * len(users)
        assert ws.segments.count("tag:round/r0") == len(users)


def test_a_tracked_key_is_stored_once_across_processes(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = ws.users.add_many([{} for _ in range(3)])
    keys = [f"view-{n}" for n in range(10)]
    outcomes = race(url, "track_same_keys", (users, keys))
    assert all(o[0] == "ok" for o in outcomes), [o for o in outcomes if o[0] != "ok"][:3]
    assert sum(1 for o in outcomes if o[1]) == len(keys)  # each key was new for exactly one process
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert sum(len(ws.events.of(u)) for u in users) == len(keys)


def test_idempotency_keys_hold_across_processes(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
    keys = [f"signin:{day}" for day in range(8)]
    outcomes = race(url, "earn_same_key", (uid, keys))
    assert all(o[0] == "ok" for o in outcomes)
    # Every process got the same entry for the same key.
    by_key: dict[str, set[int]] = {}
    for i, outcome in enumerate(outcomes):
        by_key.setdefault(keys[i % len(keys)], set()).add(outcome[1])
    assert all(len(ids) == 1 for ids in by_key.values())
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points.balance(uid) == 10 * len(keys)
        assert len(ws.points.history(uid)) == len(keys)


def test_one_key_with_different_arguments_is_refused_in_the_losers(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
    outcomes = race(url, "earn_conflicting_key", uid)
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o[1] for o in outcomes if o[0] == "error"]
    assert len(ok) == 1
    assert len(refused) == PROCESSES - 1
    assert {name for name, _ in refused} == {"IdempotencyConflict"}
    assert all("new key" in message for _, message in refused)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points.balance(uid) == ok[0][1]


# -- users ---------------------------------------------------------------------------------------
def test_one_phone_becomes_one_user(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)):
        pass  # migrate before the race
    outcomes = race(url, "add_same_phone", "13800138000")
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o[1] for o in outcomes if o[0] == "error"]
    assert len(ok) == 1
    assert {name for name, _ in refused} == {"IdentityConflict"}
    assert all("138****8000" in message and "13800138000" not in message for _, message in refused)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.users.count() == 1
        found = ws.users.find(phone="13800138000")
        assert found is not None and found.id == ok[0][1]


# -- commerce ------------------------------------------------------------------------------------
def test_coupon_total_limit_is_never_exceeded(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = ws.users.add_many([{} for _ in range(12)])
        ws.coupons.create("first5", amount=10, threshold=50, per_user_limit=1, total_limit=5)
    outcomes = race(url, "issue_limited", ("first5", users))
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o[1] for o in outcomes if o[0] == "error"]
    assert len(ok) == 5 and len(refused) == 7
    assert {name for name, _ in refused} == {"CapExceeded"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert sum(len(ws.coupons.of(uid)) for uid in users) == 5


def test_one_coupon_is_redeemed_once(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.products.add("TEA-1", "tea", price="39.90", cost="10")
        uid = ws.users.add().id
        ws.coupons.create("c5", amount=5, threshold=0, per_user_limit=1)
        code = ws.coupons.issue("c5", uid)[0].code
    outcomes = race(url, "redeem_one_coupon", (uid, code))
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o[1] for o in outcomes if o[0] == "error"]
    assert len(ok) == 1 and len(refused) == PROCESSES - 1
    assert all(code in message and "cannot be used again" in message for _, message in refused)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        coupon = ws.coupons.get(code)
        assert coupon.status == "redeemed" and coupon.order_id == ok[0][1]


# -- referrals -----------------------------------------------------------------------------------
def test_one_invitee_gets_one_inviter(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        inviters = ws.users.add_many([{} for _ in range(PROCESSES)])
        invitee = ws.users.add().id
    outcomes = race(url, "bind_same_invitee", (invitee, inviters))
    # First valid binding wins; every later attempt is refused with the inviter in force.
    assert sorted(o[0] for o in outcomes) == ["bound"] * (PROCESSES - 1) + ["ok"]
    assert len({o[1] for o in outcomes}) == 1
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.referrals.inviter_of(invitee) == outcomes[0][1]
        assert len(ws.referrals.history(invitee)) == 1
        assert sum(len(ws.referrals.invitees(i)) for i in inviters) == 1


def test_a_group_buy_never_overfills(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.products.add("TEA-1", "tea", price="39.90", cost="10")
        leader = ws.users.add().id
        joiners = ws.users.add_many([{} for _ in range(PROCESSES)])
        group = ws.referrals.group_buys.open(leader, sku="TEA-1", size=3, price="19.90")
    outcomes = race(url, "join_group", (group.id, joiners))
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o[1] for o in outcomes if o[0] == "error"]
    assert len(ok) == 2 and len(refused) == PROCESSES - 2
    assert {name for name, _ in refused} <= {"GroupBuyFull", "GroupBuyClosed"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        final = ws.referrals.group_buys.get(group.id)
        assert len(final.members) == 3 and final.status == "completed"


# -- campaigns -----------------------------------------------------------------------------------
def test_a_campaign_run_from_many_processes_sends_once_per_person(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        audience = ws.users.add_many([{} for _ in range(40)])
        for uid in audience:
            ws.users.consent(uid, purpose="marketing", channel="outbox")
        campaign = ws.campaigns.create("double11", audience=audience, channel="outbox", template="双11 来了")
    outcomes = race(url, "run_campaign", campaign.id)
    refused = [o[1] for o in outcomes if o[0] == "error"]
    assert all(name == "Conflict" for name, _ in refused), refused
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        deliveries = ws.campaigns.deliveries(campaign.id, limit=1000)
        assert sorted(d.user_id for d in deliveries) == sorted(audience)
        assert {d.status for d in deliveries} == {"sent"}
        messages = ws.channels.get("outbox").messages(limit=1000)
        assert sorted(m.user_id for m in messages) == sorted(audience)
    # Each process reports what its own call sent; together they cover the audience once.
    reported = [o[1] for o in outcomes if o[0] == "ok"]
    assert sum(reported) == len(audience), reported


# -- segments ------------------------------------------------------------------------------------
def test_segment_results_see_other_processes_changes(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = ws.users.add_many([{} for _ in range(10)])
        ws.tags.apply(users[0], "interest/running")
        expression = "tag:interest/running"
        assert ws.segments.count(expression) == 1  # built and cached in this process
        race(url, "tag_users", users[1:7], processes=2)
        # The cache is keyed by change counters stored in the database, so it notices.
        assert ws.segments.users(expression) == sorted(users[:7])


# -- staff ---------------------------------------------------------------------------------------
def test_a_customer_is_handed_over_once_when_processes_race(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = ws.users.add_many([{} for _ in range(30)])
        for i in range(PROCESSES):
            ws.staff.add(f"t{i}")
        for uid in users:
            ws.staff.follow(uid, "a")
    outcomes = race(url, "transfer_customers", users)
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    done = sorted(uid for _, results in outcomes for uid, status in results if status == "done")
    refused = {status for _, results in outcomes for _, status in results if status != "done"}
    assert done == sorted(users)  # each customer exactly once
    assert refused <= {"not_followed"}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        for uid in users:
            active = ws.staff.relations(uid, active=True)
            assert len(active) == 1
            assert ws.staff.owner(uid) == active[0].staff
            assert [t.status for t in ws.staff.transfers.of(uid)].count("done") == 1
