"""The member wallet under real concurrency: several processes on one SQLite file or
PostgreSQL schema, lined up on a barrier, racing for the same balance, stock or day.

Each test checks the final state exactly and that every refused attempt raised a
:class:`~siyu.errors.SiyuError`.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import siyu
from siyu.errors import SiyuError
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow


Outcome = tuple[str, Any]


def _attempt(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except SiyuError as exc:
        return ("error", type(exc).__name__)
    except Exception as exc:  # anything else is a bug the test must report
        return ("crash", f"{type(exc).__name__}: {exc}")


def _confirm(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    yield _attempt(lambda: ws.wallet.confirm(args).status)


def _pay(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    uid, amount = args
    yield _attempt(lambda: ws.wallet.pay(uid, amount, ref=f"order:{index}", key=f"pay-{index}").id)


def _pay_or_refund(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    uid = args
    if index % 2:
        yield _attempt(lambda: ws.wallet.refund(uid, key=f"refund-{index}").paid_out_fen)
    else:
        yield _attempt(lambda: ws.wallet.pay(uid, 50, ref=f"order:{index}", key=f"pay-{index}").id)


def _redeem(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    users, reward, processes = args
    for n, uid in enumerate(users[index::processes]):
        yield _attempt(lambda uid=uid, n=n: ws.points_mall.redeem(uid, reward, key=f"r-{index}-{n}").id)


def _sign_in(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    uid, tries = args
    for _ in range(tries):
        yield _attempt(lambda: ws.points_rules.sign_in(uid)[0])


def _redeem_card(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    code, users = args
    yield _attempt(lambda: ws.gift_cards.redeem(code, users[index], amount=10).id)


def _birthday_job(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    yield _attempt(lambda: len(ws.birthdays.grant_due()))


def _review(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    uid, lines = args
    order_id, line_no = lines[index]
    yield _attempt(lambda: getattr(ws.reviews.review(uid, order_id, line_no, stars=1 + index % 5), "id", None))


def _deposit(ws: siyu.Workspace, index: int, args: Any) -> Iterator[Outcome]:
    presale_id, users, processes = args
    for uid in users[index::processes]:
        yield _attempt(lambda uid=uid: ws.presales.reserve(presale_id, uid, key=f"dep-{uid}").id)


TASKS: dict[str, Callable[[siyu.Workspace, int, Any], Iterator[Outcome]]] = {
    "confirm": _confirm,
    "pay": _pay,
    "pay_or_refund": _pay_or_refund,
    "redeem": _redeem,
    "sign_in": _sign_in,
    "redeem_card": _redeem_card,
    "birthday_job": _birthday_job,
    "review": _review,
    "deposit": _deposit,
}


def _worker(url: str, task: str, index: int, args: Any, barrier: Any, results: Any) -> None:
    outcomes: list[Outcome] = []
    try:
        with siyu.connect(url, clock=FakeClock(START)) as ws:
            barrier.wait(timeout=120)
            outcomes.extend(TASKS[task](ws, index, args))
    except BaseException:
        outcomes.append(("crash", traceback.format_exc()))
        barrier.abort()
    results.put((index, outcomes))


def race(url: str, task: str, args: Any, processes: int) -> list[Outcome]:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx: Any = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["siyu"])
    else:
        ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, task, i, args, barrier, results)) for i in range(processes)]
    for w in workers:
        w.start()
    collected = [results.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    outcomes = [o for _, batch in sorted(collected) for o in batch]
    crashes = [str(o[1]) for o in outcomes if o[0] == "crash"]
    assert not crashes, "a worker failed with a non-siyu error:\n" + "\n".join(crashes)
    return outcomes


# -- stored value ---------------------------------------------------------------------------------
def test_five_deliveries_of_one_payment_callback_credit_once(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
        ws.wallet.add_plan("std", [(100, 20)])
        ws.wallet.recharge(uid, 100, plan="std", payment_id="WX-1")
    outcomes = race(url, "confirm", "WX-1", processes=5)
    assert outcomes == [("ok", "paid")] * 5
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.wallet.balance(uid).total_fen == 12_000
        assert [e.kind for e in ws.wallet.history(uid)] == ["recharge"]


def test_two_spends_of_70_on_120_one_fails(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
        ws.wallet.add_plan("std", [(100, 20)])
        ws.wallet.recharge(uid, 100, plan="std", payment_id="WX-1")
        ws.wallet.confirm("WX-1")
    outcomes = race(url, "pay", (uid, 70), processes=2)
    assert sorted(kind for kind, _ in outcomes) == ["error", "ok"]
    assert ("error", "InsufficientFunds") in outcomes
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        balance = ws.wallet.balance(uid)
        assert balance.total_fen == 5_000 and balance.principal_fen >= 0 and balance.bonus_fen >= 0


def test_a_refund_racing_spends_never_pays_out_spent_money(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
        ws.wallet.recharge(uid, 200, payment_id="WX-1")
        ws.wallet.confirm("WX-1")
    outcomes = race(url, "pay_or_refund", uid, processes=4)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        history = ws.wallet.history(uid)
        paid_out = -sum(e.principal_fen for e in history if e.kind == "refund_out")
        spent = -sum(e.principal_fen for e in history if e.kind == "pay")
        assert paid_out + spent == 20_000 - ws.wallet.balance(uid).principal_fen
        assert ws.wallet.balance(uid).principal_fen >= 0
        assert sum(e.principal_fen for e in history) == ws.wallet.balance(uid).principal_fen
    assert all(kind in ("ok", "error") for kind, _ in outcomes)


def test_a_gift_card_gets_one_owner(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = [ws.users.add().id for _ in range(4)]
        [card] = ws.gift_cards.issue(100)
        ws.gift_cards.activate(card.code or "")
    outcomes = race(url, "redeem_card", (card.code, users), processes=4)
    assert [kind for kind, _ in outcomes].count("ok") == 1
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        owner = ws.gift_cards.get(card.code or "").owner_id
        assert owner is not None and ws.wallet.balance(owner).principal_fen == 1_000
        assert sum(ws.wallet.balance(u).principal_fen for u in users) == 1_000


# -- points mall ------------------------------------------------------------------------------------
def test_two_redemptions_of_80_on_100_points_one_succeeds(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
        ws.points.earn(uid, 100, reason="x", key="e")
        ws.points_mall.add_reward("mug", kind="gift", points=80, terms="t", scope="s", validity="v")
    outcomes = race(url, "redeem", ([uid, uid], "mug", 2), processes=2)
    assert sorted(kind for kind, _ in outcomes) == ["error", "ok"]
    assert ("error", "InsufficientPoints") in outcomes
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points.balance(uid) == 20
        assert len(ws.points_mall.redemptions(user_id=uid)) == 1


def test_stock_3_and_50_redemptions_issue_exactly_3(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        users = [ws.users.add().id for _ in range(50)]
        ws.points.earn_many([{"user_id": u, "amount": 100, "reason": "x", "key": f"e{u}"} for u in users])
        ws.points_mall.add_reward("mug", kind="gift", points=10, stock=3, terms="t", scope="s", validity="v")
    outcomes = race(url, "redeem", (users, "mug", 5), processes=5)
    assert [kind for kind, _ in outcomes].count("ok") == 3
    assert {o for o in outcomes if o[0] == "error"} == {("error", "CapExceeded")}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points_mall.reward("mug").left == 0
        assert len(ws.points_mall.redemptions()) == 3
        assert sum(ws.points.balance(u) for u in users) == 50 * 100 - 3 * 10


def test_the_per_member_limit_holds_across_processes(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
        ws.points.earn(uid, 1_000, reason="x", key="e")
        ws.points_mall.add_reward("mug", kind="gift", points=10, per_member=2, terms="t", scope="s", validity="v")
    outcomes = race(url, "redeem", ([uid] * 6, "mug", 6), processes=6)
    assert [kind for kind, _ in outcomes].count("ok") == 2
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.points.balance(uid) == 980


# -- sign-in ----------------------------------------------------------------------------------------
def test_twenty_concurrent_sign_ins_credit_once(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid = ws.users.add().id
    outcomes = race(url, "sign_in", (uid, 4), processes=5)
    assert len(outcomes) == 20 and set(outcomes) == {("ok", 1)}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert [e.kind for e in ws.points.history(uid)] == ["earn"]


# -- birthdays ---------------------------------------------------------------------------------------
def test_the_birthday_job_on_four_workers_grants_once_per_member(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.birthdays.configure(points=88)
        users = [ws.users.add().id for _ in range(10)]
        for uid in users:
            ws.birthdays.set(uid, 11, 22)
            ws.users.consent(uid, purpose="birthday", channel="*", granted=True)
    outcomes = race(url, "birthday_job", None, processes=4)
    assert sum(count for _, count in outcomes) == 10
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert [ws.points.balance(u) for u in users] == [88] * 10


# -- reviews -------------------------------------------------------------------------------------------
def _reviewer(ws: siyu.Workspace, lines: int) -> tuple[int, int]:
    from siyu.models.commerce import ProductRole

    ws.products.add("TEA", "Oolong", price="100", cost="40", role=ProductRole.PROFIT)
    uid = ws.users.add().id
    order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}] * lines)
    return uid, order.id


def test_concurrent_reviews_of_one_line_yield_one_reward(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid, oid = _reviewer(ws, 1)
    outcomes = race(url, "review", (uid, [(oid, 0)] * 4), processes=4)
    assert len({result for _, result in outcomes}) == 1
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert len(ws.reviews.rewards(uid)) == 1


def test_the_review_daily_cap_holds_across_processes(url: str) -> None:
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        uid, oid = _reviewer(ws, 6)
        ws.reviews.configure(daily_cap=2)
    outcomes = race(url, "review", (uid, [(oid, n) for n in range(6)]), processes=6)
    assert sum(1 for kind, result in outcomes if kind == "ok" and result is not None) == 2
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert len(ws.reviews.rewards(uid)) == 2


# -- presale -------------------------------------------------------------------------------------------
def test_100_deposits_for_10_units_hold_10(url: str) -> None:
    from datetime import timedelta

    from siyu.models.commerce import ProductRole

    with siyu.connect(url, clock=FakeClock(START)) as ws:
        ws.products.add("BOX", "Mooncake box", price="300", cost="120", role=ProductRole.PROFIT)
        users = [ws.users.add().id for _ in range(100)]
        presale = ws.presales.create("mid-autumn", sku="BOX", price=300, deposit=50, stock=10, starts_at=START,
                                     ends_at=START + timedelta(days=3), balance_from=START + timedelta(days=3),
                                     balance_until=START + timedelta(days=5), deliver_days=3)
    outcomes = race(url, "deposit", (presale.id, users, 5), processes=5)
    assert [kind for kind, _ in outcomes].count("ok") == 10
    assert {o for o in outcomes if o[0] == "error"} == {("error", "CapExceeded")}
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        assert ws.presales.get(presale.id).held == 10
        assert len(ws.presales.orders(presale.id)) == 10
