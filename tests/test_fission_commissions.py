"""分销 commissions: legal guards, eligibility, settlement, refunds, exactly-once."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from fission_fixtures import *  # noqa: F403 (the clock and ws fixtures)
from fission_fixtures import START
from siyu.errors import PyramidSchemeRisk, ValidationError
from siyu.events import Event, OrderLineInfo, OrderRecorded, OrderRefunded
from siyu.services.line_effects import split
from siyu.testing import FakeClock


def chain(ws: siyu.Workspace, n: int) -> list[int]:
    """``n`` users, each invited by the previous one."""
    ids = ws.users.add_many([{} for _ in range(n)])
    for inviter, invitee in itertools.pairwise(ids):
        ws.referrals.bind(invitee, inviter_id=inviter)
    return ids


def order(ws: siyu.Workspace, order_id: int, user_id: int, *lines: tuple[str, int]) -> OrderRecorded:
    info = tuple(OrderLineInfo(sku=f"s{i}", qty=1, paid_fen=fen, role=role) for i, (role, fen) in enumerate(lines))
    event = OrderRecorded(at=ws.now(), order_id=order_id, user_id=user_id, total_fen=sum(f for _, f in lines),
                          lines=info, channel=None, paid_at=ws.now())
    ws.referrals.siyu_on_event(event)
    return event


def refund(ws: siyu.Workspace, event: OrderRecorded, refund_id: int, fen: int, *, full: bool = False) -> None:
    ws.referrals.siyu_on_event(OrderRefunded(
        at=ws.now(), order_id=event.order_id, refund_id=refund_id, user_id=event.user_id, amount_fen=fen,
        order_total_fen=event.total_fen, lines=(), full=full))


def test_two_levels_by_default_and_three_only_with_the_risk_override(ws: siyu.Workspace) -> None:
    assert ws.referrals.commissions.settings().rates == (Decimal("0.10"), Decimal("0.05"))
    with pytest.raises(PyramidSchemeRisk, match="传销"):
        ws.referrals.commissions.configure(rates=["0.10", "0.05", "0.02"])
    assert len(ws.referrals.commissions.settings().rates) == 2
    risky = ws.referrals.commissions.configure(rates=["0.10", "0.05", "0.02"], accept_pyramid_selling_risk=True)
    assert risky.pyramid_risk_accepted
    a, b, c, d = chain(ws, 4)
    order(ws, 1, d, ("profit", 10_000))
    assert [(e.distributor_id, e.level) for e in ws.referrals.commissions.of_order(1)] == [(c, 1), (b, 2), (a, 3)]
    safe = ws.referrals.commissions.configure(rates=["0.08"])
    assert safe.rates == (Decimal("0.08"),) and not safe.pyramid_risk_accepted


def test_rates_validate(ws: siyu.Workspace) -> None:
    for bad in (["0.1", "0.95"], [0.1], ["1.5"], ["abc"], ["0.0000001"]):
        with pytest.raises(ValidationError):
            ws.referrals.commissions.configure(rates=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ws.referrals.commissions.configure(return_window=timedelta(days=-1))


def test_only_real_purchases_of_eligible_products_pay(ws: siyu.Workspace) -> None:
    a, b, c = chain(ws, 3)
    assert ws.referrals.commissions.ledger(b) == []  # recruiting alone earns nothing
    order(ws, 1, c, ("profit", 10_000), ("traffic", 990))
    entries = ws.referrals.commissions.of_order(1)
    assert [(e.distributor_id, e.level, e.base, e.amount, e.status) for e in entries] == [
        (b, 1, Decimal("100.00"), Decimal("10.00"), "pending"), (a, 2, Decimal("100.00"), Decimal("5.00"), "pending")]
    order(ws, 2, c, ("traffic", 990))
    assert ws.referrals.commissions.of_order(2) == []
    order(ws, 3, a, ("profit", 10_000))  # a root buyer: nobody above
    assert ws.referrals.commissions.of_order(3) == []
    ws.referrals.commissions.configure(excluded_roles=[])
    order(ws, 4, c, ("traffic", 1_000))
    assert [e.amount for e in ws.referrals.commissions.of_order(4)] == [Decimal("1.00"), Decimal("0.50")]


def test_settle_after_the_return_window_and_refunds_reduce(ws: siyu.Workspace, clock: FakeClock) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    _a, b, c = chain(ws, 3)
    first = order(ws, 1, c, ("profit", 10_000))
    second = order(ws, 2, c, ("profit", 3_333))
    refund(ws, first, 11, 4_000)
    assert ws.referrals.commissions.ledger(b)[0].amount == Decimal("6.00")
    clock.advance(days=6)
    assert ws.referrals.commissions.settle_due() == []
    clock.advance(days=1)
    settled = ws.referrals.commissions.settle_due()
    assert len(settled) == 4 and {e.status for e in settled} == {"settled"}
    stored = [e for oid in (1, 2) for e in ws.referrals.commissions.of_order(oid)]
    assert sorted(settled, key=lambda e: e.id) == sorted(stored, key=lambda e: e.id)  # what it returns is what is kept
    assert ws.referrals.commissions.settle_due() == []
    assert ws.referrals.commissions.balance(b) == {
        "pending": Decimal("0.00"), "settled": Decimal("9.33"), "voided": Decimal("4.00")}
    refund(ws, second, 12, 3_333, full=True)  # after settlement: the commission is clawed back
    assert [e.status for e in ws.referrals.commissions.ledger(b)] == ["settled", "voided"]
    assert ws.referrals.commissions.ledger(b, status="voided")[0].amount == 0
    with pytest.raises(ValidationError):
        ws.referrals.commissions.ledger(b, status="paid")


def test_end_to_end_with_recorded_orders(ws: siyu.Workspace) -> None:
    ws.products.add("TEA", "tea", price="100", cost="30", role="profit")
    ws.products.add("SAMPLE", "sample", price="9.90", cost="5", role="traffic")
    a, b = chain(ws, 2)
    placed = ws.orders.record(b, [{"sku": "TEA", "qty": 1}, {"sku": "SAMPLE", "qty": 1}])
    [entry] = ws.referrals.commissions.of_order(placed.id)
    assert (entry.distributor_id, entry.amount) == (a, Decimal("10.00"))
    ws.orders.refund(placed.id, key="r1")
    assert ws.referrals.commissions.of_order(placed.id)[0].status == "voided"
    assert ws.observer_errors == []
    # a buyer is a customer now: the new-user rule refuses binding them
    c = ws.users.add().id
    ws.orders.record(c, [{"sku": "TEA", "qty": 1}])
    with pytest.raises(siyu.errors.NotNewUser):
        ws.referrals.bind(c, inviter_id=a)


@settings(max_examples=50, deadline=None)
@given(
    fen=st.integers(1, 1_000_000),
    refunds=st.lists(st.integers(1, 400_000), max_size=5),
    repeat=st.booleans(),
)
def test_commissions_once_and_fully_reversed(fen: int, refunds: list[int], repeat: bool) -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        _a, _b, c = chain(ws, 3)
        event = order(ws, 1, c, ("profit", fen))
        if repeat:
            ws.referrals.siyu_on_event(event)
        entries = ws.referrals.commissions.of_order(1)
        assert len(entries) == len({e.level for e in entries}) <= 2
        assert all(e.amount == e.base * e.rate // Decimal("0.01") * Decimal("0.01") for e in entries)
        left = fen
        for n, amount in enumerate(refunds, 1):
            take = min(amount, left)
            if take <= 0:
                break
            refund(ws, event, n, take)
            if repeat:
                refund(ws, event, n, take)
            left -= take
            for e in ws.referrals.commissions.of_order(1):
                assert 0 <= e.amount <= e.original
        refund(ws, event, 99, left, full=True)
        after = ws.referrals.commissions.of_order(1)
        assert all(e.amount == 0 and e.status == "voided" for e in after)


def _shop(ws: siyu.Workspace) -> None:
    ws.products.add("TEA", "tea", price="100", cost="30", role="profit")
    ws.products.add("SAMPLE", "sample", price="9.90", cost="5", role="traffic")
    ws.products.add("CUP", "cup", price="20", cost="8", role="activity")


def test_a_refund_reverses_with_the_roles_in_force_when_the_commission_was_earned(ws: siyu.Workspace) -> None:
    _shop(ws)
    a, b = chain(ws, 2)
    placed = ws.orders.record(b, [{"sku": "TEA", "qty": 1}, {"sku": "SAMPLE", "qty": 1}])
    [entry] = ws.referrals.commissions.of_order(placed.id)
    assert (entry.distributor_id, entry.base, entry.amount) == (a, Decimal("100.00"), Decimal("10.00"))
    ws.referrals.commissions.configure(excluded_roles=[])  # traffic items earn from now on
    ws.orders.refund(placed.id, [{"sku": "SAMPLE", "qty": 1}], key="r1")
    # Only the traffic line came back: the profit line that earned the commission was kept.
    [entry] = ws.referrals.commissions.of_order(placed.id)
    assert (entry.amount, entry.status) == (Decimal("10.00"), "pending")
    ws.referrals.commissions.configure(excluded_roles=["traffic", "profit"])
    ws.orders.refund(placed.id, [{"sku": "TEA", "qty": 1}], key="r2")
    [entry] = ws.referrals.commissions.of_order(placed.id)
    assert (entry.amount, entry.status) == (Decimal("0.00"), "voided")
    assert ws.observer_errors == []


_ROLES = ("profit", "traffic", "activity")
_SKUS = {"profit": "TEA", "traffic": "SAMPLE", "activity": "CUP"}
_step = st.one_of(
    st.tuples(st.just("configure"), st.sets(st.sampled_from(_ROLES))),
    st.tuples(st.just("lines"), st.sampled_from(_ROLES), st.integers(1, 3)),
    st.tuples(st.just("amount"), st.integers(1, 20_000)),
    st.tuples(st.just("all"), st.none()),
)


@settings(max_examples=60, deadline=None)
@given(
    excluded=st.sets(st.sampled_from(_ROLES)),
    qty=st.fixed_dictionaries({r: st.integers(0, 3) for r in _ROLES}),
    steps=st.lists(_step, max_size=8),
)
def test_what_is_left_is_the_rate_times_the_commissionable_part_not_refunded(
    excluded: set[str], qty: dict[str, int], steps: list[tuple[object, ...]]
) -> None:
    """Whatever the configuration does after the order, the commission left is
    computed with the roles in force when the order was recorded."""
    if not any(qty.values()):
        qty["profit"] = 1
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        _shop(ws)
        a, b, c = chain(ws, 3)
        ws.referrals.commissions.configure(excluded_roles=sorted(excluded))
        placed = ws.orders.record(c, [{"sku": _SKUS[r], "qty": n} for r, n in qty.items() if n])
        for n, step in enumerate(steps):
            kind = step[0]
            if kind == "configure":
                ws.referrals.commissions.configure(excluded_roles=sorted(step[1]))  # type: ignore[arg-type]
                continue
            left = ws.orders.get(placed.id)
            what: object = None
            if kind == "lines":
                line = next((ln for ln in left.lines if ln.role.value == step[1]), None)
                if line is None or line.qty == line.refunded_qty:
                    continue
                what = [{"sku": line.sku, "qty": min(int(step[2]), line.qty - line.refunded_qty)}]  # type: ignore[call-overload]
            elif kind == "amount":
                remaining = sum(ln.paid_fen - ln.refunded_fen for ln in left.lines)
                if remaining <= 0:
                    continue
                what = Decimal(min(int(step[1]), remaining)) / 100  # type: ignore[call-overload]
            if any(r.full for r in ws.orders.refunds(placed.id)):
                continue
            ws.orders.refund(placed.id, what, key=f"k{n}")
            after = ws.orders.get(placed.id)
            earning = [ln for ln in after.lines if ln.role.value not in excluded and ln.paid_fen > 0]
            entries = ws.referrals.commissions.of_order(placed.id)
            assert [(e.distributor_id, e.level) for e in entries] == [(b, 1), (a, 2)][:len(entries)]
            for e in entries:
                # Each line keeps its own part of the entry until refunded; then what is left of
                # it is the rate times the line's money not refunded, never more than its part.
                ppm = int(e.rate * 1_000_000)
                parts = split(int(e.original * 100), [ln.paid_fen for ln in earning])
                expected = Decimal(sum(
                    part if ln.refunded_fen == 0 else min(part, (ln.paid_fen - ln.refunded_fen) * ppm // 1_000_000)
                    for ln, part in zip(earning, parts, strict=True))) / 100
                assert e.amount == expected >= 0
                assert e.status == ("voided" if expected == 0 else "pending")
        assert ws.observer_errors == []


@pytest.mark.parametrize("configured", [True, False])
def test_entries_from_before_terms_were_recorded_keep_the_roles_of_the_upgrade(
    tmp_path: Path, configured: bool
) -> None:
    """Entries written before fission migration 2 are pinned to the configuration
    in force when the database is upgraded (the defaults if it was never set)."""
    path = tmp_path / "old.db"
    clock = FakeClock(START)
    with siyu.connect(f"sqlite:///{path}", clock=clock) as ws:
        _shop(ws)
        if configured:
            ws.referrals.commissions.configure(excluded_roles=["traffic", "activity"])
        _a, b = chain(ws, 2)
        placed = ws.orders.record(b, [{"sku": "TEA", "qty": 1}, {"sku": "SAMPLE", "qty": 1}, {"sku": "CUP", "qty": 1}])
    db = sqlite3.connect(path)  # as a siyu from before migration 2 left it
    db.execute("ALTER TABLE commission_entries DROP COLUMN terms")
    db.execute("ALTER TABLE commission_entries DROP COLUMN lines")
    db.execute("ALTER TABLE group_buys DROP COLUMN loss_fen")
    db.execute("UPDATE siyu_schema SET version = 1 WHERE component = 'fission'")
    db.commit()
    db.close()
    with siyu.connect(f"sqlite:///{path}", clock=clock) as ws:
        [entry] = ws.referrals.commissions.of_order(placed.id)
        assert entry.base == (Decimal("100.00") if configured else Decimal("120.00"))
        ws.referrals.commissions.configure(excluded_roles=["profit"])  # after the upgrade: must not matter
        ws.orders.refund(placed.id, [{"sku": "SAMPLE", "qty": 1}, {"sku": "CUP", "qty": 1}], key="r1")
        [entry] = ws.referrals.commissions.of_order(placed.id)
        assert entry.amount == Decimal("10.00")
        ws.orders.refund(placed.id, [{"sku": "TEA", "qty": 1}], key="r2")
        [entry] = ws.referrals.commissions.of_order(placed.id)
        assert (entry.amount, entry.status) == (Decimal("0.00"), "voided")
