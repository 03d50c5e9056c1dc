"""Stored value and gift cards: the acceptance behaviours of the prepaid-card rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import (
    CapExceeded,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidMoney,
    NotFound,
    PolicyViolation,
    ValidationError,
)
from siyu.events import GiftCardChanged, RechargeRefused, WalletChanged
from siyu.testing import FakeClock
from siyu.wallet import PrepaidRules
from siyu.wallet.gift_cards import check_code, new_code
from siyu.wallet.rules import split_spend

START = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ws(clock: FakeClock) -> siyu.Workspace:
    workspace = siyu.connect("memory://", clock=clock)
    workspace.wallet.add_plan("std", [(100, 20), (500, 120)])
    return workspace


def _topped_up(ws: siyu.Workspace, amount: int = 100, payment: str = "T1") -> int:
    uid = ws.users.add().id
    ws.wallet.recharge(uid, amount, plan="std", payment_id=payment)
    ws.wallet.confirm(payment)
    return uid


# -- recharge -------------------------------------------------------------------------------
def test_a_plan_gives_the_bonus_of_the_highest_tier_reached(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    assert ws.wallet.recharge(uid, 99, plan="std", payment_id="a").bonus == Decimal("0.00")
    assert ws.wallet.recharge(uid, 100, plan="std", payment_id="b").bonus == Decimal("20.00")
    assert ws.wallet.recharge(uid, 800, plan="std", payment_id="c").bonus == Decimal("120.00")


def test_nothing_is_credited_before_the_payment_is_confirmed(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    pending = ws.wallet.recharge(uid, 100, plan="std", payment_id="T1")
    assert pending.status == "pending"
    assert ws.wallet.balance(uid).total_fen == 0
    assert ws.wallet.recharge(uid, 100, plan="std", payment_id="T1") == pending
    with pytest.raises(IdempotencyConflict):
        ws.wallet.recharge(uid, 200, plan="std", payment_id="T1")


def test_a_callback_delivered_five_times_credits_once(ws: siyu.Workspace) -> None:
    seen: list[WalletChanged] = []
    ws.subscribe(lambda e: seen.append(e) if isinstance(e, WalletChanged) else None)
    uid = ws.users.add().id
    ws.wallet.recharge(uid, 100, plan="std", payment_id="T1")
    results = [ws.wallet.confirm("T1") for _ in range(5)]
    assert {r.status for r in results} == {"paid"}
    balance = ws.wallet.balance(uid)
    assert (balance.principal, balance.bonus) == (Decimal("100.00"), Decimal("20.00"))
    assert len(seen) == 1 and (seen[0].principal_fen, seen[0].bonus_fen) == (10_000, 2_000)


def test_a_cancelled_recharge_is_never_credited(ws: siyu.Workspace) -> None:
    uid = ws.users.add().id
    ws.wallet.recharge(uid, 100, payment_id="T1")
    assert ws.wallet.cancel("T1").status == "cancelled"
    assert ws.wallet.confirm("T1").status == "cancelled"
    assert ws.wallet.balance(uid).total_fen == 0
    with pytest.raises(NotFound):
        ws.wallet.confirm("nope")


# -- spending ---------------------------------------------------------------------------------
def test_recharge_100_bonus_20_spend_60_refund_50_forfeit_10(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws)
    paid = ws.wallet.pay(uid, 60, ref="order:1", key="p1")
    assert (paid.principal_fen, paid.bonus_fen) == (-5_000, -1_000)
    balance = ws.wallet.balance(uid)
    assert (balance.principal, balance.bonus) == (Decimal("50.00"), Decimal("10.00"))
    refund = ws.wallet.refund(uid, key="r1")
    assert (refund.paid_out, refund.forfeited) == (Decimal("50.00"), Decimal("10.00"))
    assert ws.wallet.refund(uid, key="r1") == refund  # a retried refund pays nothing more
    history = ws.wallet.history(uid)
    assert [e.kind for e in history] == ["recharge", "pay", "refund_out", "forfeit"]
    assert sum(e.principal_fen for e in history) == sum(e.bonus_fen for e in history) == 0
    assert ws.wallet.balance(uid).total_fen == 0


@pytest.mark.parametrize(("rule", "left"), [("bonus_first", (3_600, 0)), ("principal_first", (1_600, 2_000)),
                                             ("proportional", (3_000, 600))])
def test_the_spending_rule_decides_which_bucket_pays(ws: siyu.Workspace, rule: str, left: tuple[int, int]) -> None:
    ws.wallet.configure(spend_rule=rule)
    uid = _topped_up(ws)
    ws.wallet.pay(uid, Decimal("84.00"), ref="order:1", key="p1")
    b = ws.wallet.balance(uid)
    assert (b.principal_fen, b.bonus_fen) == left
    # Whatever the rule, a refund pays back only the principal that is left.
    assert ws.wallet.refund(uid, key="r").paid_out_fen == left[0]


def test_a_partial_refund_forfeits_bonus_in_proportion(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws)
    refund = ws.wallet.refund(uid, 50, key="r1")
    assert (refund.paid_out_fen, refund.forfeited_fen) == (5_000, 1_000)
    with pytest.raises(InsufficientFunds):
        ws.wallet.refund(uid, 51, key="r2")
    assert ws.wallet.balance(uid).principal_fen == 5_000


def test_a_payment_larger_than_the_balance_changes_nothing(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws)
    with pytest.raises(InsufficientFunds) as info:
        ws.wallet.pay(uid, Decimal("120.01"), ref="order:1", key="p1")
    assert info.value.available_fen == 12_000
    assert len(ws.wallet.history(uid)) == 1
    with pytest.raises(InvalidMoney):
        ws.wallet.pay(uid, 1.5, ref="order:1", key="p1")  # type: ignore[arg-type]


def test_an_order_refund_returns_the_same_split(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws)
    ws.wallet.pay(uid, 60, ref="order:7", key="p1")
    back = ws.wallet.give_back("order:7", 30, key="g1")
    assert back is not None and (back.principal_fen, back.bonus_fen) == (2_500, 500)
    assert ws.wallet.give_back("order:7", key="g2") is not None
    assert ws.wallet.balance(uid).total_fen == 12_000
    with pytest.raises(ValidationError):
        ws.wallet.give_back("order:7", 1, key="g3")
    assert ws.wallet.give_back("order:8", key="g4") is None


# -- the prepaid-card rules ----------------------------------------------------------------------
def test_a_top_up_above_the_named_card_cap_is_refused(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws, 4_000)  # + the 120 bonus
    with pytest.raises(CapExceeded, match=r"5000\.00"):
        ws.wallet.recharge(uid, 900, payment_id="T2")
    ws.wallet.recharge(uid, 880, payment_id="T3")
    ws.wallet.configure(rules=PrepaidRules(named_max_fen=600_000, version="local-2026"))
    ws.wallet.recharge(uid, 900, payment_id="T4")


def test_a_confirm_that_would_break_the_cap_is_refused_and_reported(ws: siyu.Workspace) -> None:
    seen: list[RechargeRefused] = []
    ws.subscribe(lambda e: seen.append(e) if isinstance(e, RechargeRefused) else None)
    uid = ws.users.add().id
    ws.wallet.recharge(uid, 3_000, payment_id="A")
    ws.wallet.recharge(uid, 3_000, payment_id="B")  # each fits alone; both do not
    assert ws.wallet.confirm("A").status == "paid"
    refused = ws.wallet.confirm("B")
    assert refused.status == "refused" and "return the payment" in refused.note
    assert ws.wallet.balance(uid).principal_fen == 300_000
    assert [e.payment_id for e in seen] == ["B"]


def test_anonymous_cards_are_capped_and_valid_three_years(ws: siyu.Workspace, clock: FakeClock) -> None:
    with pytest.raises(CapExceeded):
        ws.gift_cards.issue(Decimal("1000.01"))
    with pytest.raises(PolicyViolation, match="3 years"):
        ws.gift_cards.issue(500, expires_at=clock.now + relativedelta(years=3) - timedelta(seconds=1))
    ws.gift_cards.issue(1_000, expires_at=clock.now + relativedelta(years=3))
    named = ws.gift_cards.issue(5_000, named=True)[0]
    assert named.expires_at is None
    with pytest.raises(ValidationError, match="no expiry"):
        ws.gift_cards.issue(100, named=True, expires_at=clock.now + relativedelta(years=5))
    with pytest.raises(CapExceeded):
        ws.gift_cards.issue(Decimal("5000.01"), named=True)


def test_big_purchases_need_a_real_name_and_a_bank_transfer(ws: siyu.Workspace) -> None:
    cards = ws.gift_cards.issue(1_000, count=10)
    codes = [c.code or "" for c in cards]
    with pytest.raises(PolicyViolation, match="real-name"):
        ws.gift_cards.activate(codes, method="bank_transfer")
    with pytest.raises(PolicyViolation, match="bank transfer"):
        ws.gift_cards.activate(codes[:5], buyer="organisation")
    assert all(c.status == "inactive" for c in (ws.gift_cards.get(code) for code in codes))
    ws.gift_cards.activate(codes[:5], buyer="organisation", method="bank_transfer")
    ws.gift_cards.activate(codes[5:], real_name="kyc-2026-0042")
    assert all(c.status == "active" for c in (ws.gift_cards.get(code) for code in codes))


def test_liability_equals_the_ledgers_and_escrow_follows_last_quarter(ws: siyu.Workspace,
                                                                      clock: FakeClock) -> None:
    a = _topped_up(ws, 500, "A")  # 500 + 120 bonus, in the second quarter
    [card] = ws.gift_cards.issue(300)
    ws.gift_cards.activate([card.code or ""])
    ws.wallet.configure(issuer_tier="brand")
    now = ws.wallet.liability()
    assert (now.principal_fen, now.bonus_fen, now.gift_cards_fen) == (50_000, 12_000, 30_000)
    assert now.base_fen == 0 and now.escrow_fen == 0  # nothing was owed at the end of the first quarter
    clock.advance(timedelta(days=60))  # into the third quarter (July)
    ws.wallet.pay(a, 62, ref="order:1", key="p")
    later = ws.wallet.liability()
    assert later.quarter_start.month == 7
    assert later.base_fen == 50_000 + 30_000
    assert later.escrow_ratio == Decimal("0.40") and later.escrow_fen == 32_000
    with ws.read() as tx:
        principal, bonus = tx.wallet.ledger_totals()
    assert (principal, bonus) == (later.principal_fen, later.bonus_fen)


def test_points_and_stored_value_never_mix(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws)
    ws.points.earn(uid, 500, reason="x", key="e")
    ws.points_mall.add_reward("mug", kind="gift", points=100, terms="t", scope="s", validity="v")
    ws.points_mall.redeem(uid, "mug", key="m")
    assert ws.wallet.balance(uid).total_fen == 12_000  # a points redemption creates no stored value
    ws.wallet.refund(uid, key="r")
    assert ws.points.balance(uid) == 400  # a stored-value refund pays out no points
    assert [e.kind for e in ws.points.history(uid)] == ["earn", "spend"]


# -- gift cards --------------------------------------------------------------------------------------
def test_codes_are_checksummed_and_typos_refused() -> None:
    code = new_code()
    assert check_code(code.lower()) == code.replace("-", "")
    for i, ch in enumerate(code.replace("-", "")):
        for other in "0123456789ABCDEFGHJKMNPQRSTVWXYZ":
            if other != ch:
                typo = code.replace("-", "")[:i] + other + code.replace("-", "")[i + 1:]
                with pytest.raises(ValidationError):
                    check_code(typo)
    assert len({new_code() for _ in range(1000)}) == 1000


def test_a_card_belongs_to_its_first_user(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b = ws.users.add().id, ws.users.add().id
    seen: list[GiftCardChanged] = []
    ws.subscribe(lambda e: seen.append(e) if isinstance(e, GiftCardChanged) else None)
    [card] = ws.gift_cards.issue(200, expires_at=clock.now + relativedelta(years=3))
    code = card.code or ""
    assert ws.gift_cards.get(code).code is None  # the full code is shown once
    ws.gift_cards.activate(code)
    first = ws.gift_cards.redeem(code, a, amount=50, key="k")
    assert ws.gift_cards.redeem(code, a, amount=50, key="k") == first
    with pytest.raises(PolicyViolation, match="another member"):
        ws.gift_cards.redeem(code, b)
    ws.gift_cards.redeem(code, a, order_id=9)
    with pytest.raises(InsufficientFunds):
        ws.gift_cards.redeem(code, a, amount=1)
    entries = ws.gift_cards.history(code)
    assert [(e.balance_before_fen, e.balance_after_fen) for e in entries] == [(0, 20_000), (20_000, 15_000),
                                                                             (15_000, 0)]
    assert ws.wallet.balance(a).principal_fen == 5_000
    assert [e.kind for e in seen] == ["issued", "sold", "redeemed", "redeemed"]
    assert [c.id for c in ws.gift_cards.of(a)] == [card.id]


def test_expired_and_unsold_cards_are_refused(ws: siyu.Workspace, clock: FakeClock) -> None:
    uid = ws.users.add().id
    [card] = ws.gift_cards.issue(100, expires_at=clock.now + relativedelta(years=3))
    with pytest.raises(PolicyViolation, match="inactive"):
        ws.gift_cards.redeem(card.code or "", uid)
    ws.gift_cards.activate(card.code or "")
    clock.advance(timedelta(days=3 * 366))
    with pytest.raises(PolicyViolation, match="expired"):
        ws.gift_cards.redeem(card.code or "", uid)
    with pytest.raises(NotFound):
        ws.gift_cards.get(new_code())


def test_a_card_redeemed_into_the_wallet_respects_its_cap(ws: siyu.Workspace) -> None:
    uid = _topped_up(ws, 4_500)
    [card] = ws.gift_cards.issue(1_000)
    ws.gift_cards.activate(card.code or "")
    with pytest.raises(CapExceeded):
        ws.gift_cards.redeem(card.code or "", uid)
    assert ws.gift_cards.get(card.code or "").balance_fen == 100_000
    ws.gift_cards.redeem(card.code or "", uid, amount=380)


# -- properties ------------------------------------------------------------------------------------------
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("recharge"), st.integers(1, 800)),
        st.tuples(st.just("pay"), st.integers(1, 300)),
        st.tuples(st.just("give_back"), st.integers(0, 5)),
        st.tuples(st.just("refund"), st.integers(0, 200)),
        st.tuples(st.just("rule"), st.sampled_from(["proportional", "bonus_first", "principal_first"])),
    ),
    max_size=25,
)


@settings(deadline=None)
@given(ops=_ops)
def test_the_ledger_always_sums_to_the_balance(ops: list[tuple[str, object]]) -> None:
    ws = siyu.connect("memory://", clock=FakeClock(START))
    ws.wallet.add_plan("std", [(100, 20), (500, 120)])
    uid = ws.users.add().id
    cash_in = cash_out = 0
    for n, (op, arg) in enumerate(ops):
        before = ws.wallet.balance(uid)
        try:
            if op == "recharge":
                ws.wallet.recharge(uid, arg, plan="std", payment_id=f"T{n}")
                ws.wallet.confirm(f"T{n}")
                cash_in += ws.wallet.recharges(uid)[-1].principal_fen
            elif op == "pay":
                ws.wallet.pay(uid, arg, ref=f"order:{n}", key=f"p{n}")
            elif op == "give_back":
                ws.wallet.give_back(f"order:{arg}", key=f"g{n}")
            elif op == "refund":
                refund = ws.wallet.refund(uid, arg or None, key=f"r{n}")
                cash_out += refund.paid_out_fen
                # A refund never pays out bonus: only principal that was there.
                assert refund.paid_out_fen <= before.principal_fen
            else:
                ws.wallet.configure(spend_rule=str(arg))
        except (CapExceeded, InsufficientFunds, ValidationError):
            assert ws.wallet.balance(uid) == before  # a refused call changes nothing
        balance = ws.wallet.balance(uid)
        history = ws.wallet.history(uid)
        assert balance.principal_fen >= 0 and balance.bonus_fen >= 0
        assert sum(e.principal_fen for e in history) == balance.principal_fen
        assert sum(e.bonus_fen for e in history) == balance.bonus_fen
        if history:
            assert (history[-1].principal_after_fen, history[-1].bonus_after_fen) == (balance.principal_fen,
                                                                                      balance.bonus_fen)
        assert cash_out <= cash_in
    ws.close()


@given(principal=st.integers(0, 10**7), bonus=st.integers(0, 10**7), data=st.data(),
       rule=st.sampled_from(["proportional", "bonus_first", "principal_first"]))
def test_a_split_never_overdraws_a_bucket(principal: int, bonus: int, data: st.DataObject, rule: str) -> None:
    amount = data.draw(st.integers(0, principal + bonus))
    p, b = split_spend(principal, bonus, amount, rule)
    assert p + b == amount and 0 <= p <= principal and 0 <= b <= bonus


# -- orders paid from the wallet ---------------------------------------------------------------------
def _shop(ws: siyu.Workspace) -> None:
    from siyu.models.commerce import ProductRole

    ws.products.add("TEA", "Oolong", price="60", cost="20", role=ProductRole.PROFIT)


def test_an_order_paid_partly_from_the_wallet_and_refunded(ws: siyu.Workspace) -> None:
    _shop(ws)
    uid = _topped_up(ws)
    order = ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], wallet=60, key="o1")
    assert order.total == Decimal("120.00")
    assert ws.wallet.balance(uid).total_fen == 6_000
    assert ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], wallet=60, key="o1").id == order.id  # a retry
    assert ws.wallet.balance(uid).total_fen == 6_000
    ws.orders.refund(order.id, 60, key="r1")  # half the order: half of the wallet's 60 comes back
    balance = ws.wallet.balance(uid)
    assert (balance.principal_fen, balance.bonus_fen) == (7_500, 1_500)
    ws.orders.refund(order.id, key="r2")  # the rest: all the wallet paid
    balance = ws.wallet.balance(uid)
    assert (balance.principal_fen, balance.bonus_fen) == (10_000, 2_000)


def test_an_order_the_wallet_cannot_pay_is_not_recorded(ws: siyu.Workspace) -> None:
    _shop(ws)
    uid = _topped_up(ws)
    with pytest.raises(InsufficientFunds):
        ws.orders.record(uid, [{"sku": "TEA", "qty": 3}], wallet="all")
    assert ws.orders.of(uid) == []
    with pytest.raises(ValidationError, match="more than the order"):
        ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], wallet=61)
    paid = ws.orders.record(uid, [{"sku": "TEA", "qty": 2}], wallet="all")
    assert ws.wallet.balance(uid).total_fen == 0 and paid.total_fen == 12_000


# -- the command line ----------------------------------------------------------------------------------
def test_the_wallet_commands(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from siyu.cli import cli

    db = f"sqlite:///{Path(str(tmp_path)) / 'shop.db'}"
    with siyu.connect(db) as ws:
        uid = ws.users.add().id
        ws.wallet.recharge(uid, 100, payment_id="WX-9")
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cli, ["--db", db, "wallet", "confirm", "WX-9"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["status"] == "paid"
    shown = json.loads(runner.invoke(cli, ["--db", db, "wallet", "balance", str(uid)]).output)
    assert (shown["principal"], shown["total"]) == ("100.00", "100.00")
    owed = json.loads(runner.invoke(cli, ["--db", db, "wallet", "liability"]).output)
    assert owed["principal_fen"] == 10_000
    points = json.loads(runner.invoke(cli, ["--db", db, "wallet", "points"]).output)
    assert points["points"]["outstanding"] == 0 and points["rewards"] == []
    missing = runner.invoke(cli, ["--db", db, "wallet", "confirm", "nope"])
    assert missing.exit_code == 1


def test_a_merge_combines_wallets_and_cards_and_an_unmerge_gives_them_back(ws: siyu.Workspace) -> None:
    keep, drop = _topped_up(ws, 100, "A"), _topped_up(ws, 500, "B")
    [card] = ws.gift_cards.issue(50)
    ws.gift_cards.activate(card.code or "")
    ws.gift_cards.redeem(card.code or "", drop, amount=10)
    record = ws.users.merge(keep=keep, drop=drop)
    balance = ws.wallet.balance(keep)
    assert (balance.principal_fen, balance.bonus_fen) == (10_000 + 50_000 + 1_000, 2_000 + 12_000)
    assert ws.wallet.balance(drop).total_fen == 0
    assert ws.gift_cards.get(card.code or "").owner_id == keep
    ws.wallet.pay(keep, 600, ref="order:1", key="p")  # spends part of what came from drop
    ws.users.unmerge(record.id)
    back = ws.wallet.balance(drop)
    assert (back.principal_fen, back.bonus_fen) == (12_200, 2_800)  # what keep still held of the 51,000 + 12,000
    assert ws.wallet.balance(keep).total_fen == 0  # keep had spent into drop's share: what was left went back
    assert ws.gift_cards.get(card.code or "").owner_id == drop
    for uid in (keep, drop):
        history = ws.wallet.history(uid)
        assert sum(e.principal_fen for e in history) == ws.wallet.balance(uid).principal_fen


def test_a_confirmed_top_up_can_earn_points_on_its_cash_only(ws: siyu.Workspace) -> None:
    ws.wallet.configure(recharge_points=True)
    uid = _topped_up(ws, 500)  # 500 paid, 120 bonus
    ws.wallet.confirm("T1")
    assert ws.points.balance(uid) == 500  # 1 point a yuan of cash; the bonus earns none; once
    ws.wallet.refund(uid, 100, key="r1")  # a fifth of the cash back: a fifth of its points back
    assert ws.points.balance(uid) == 400
    ws.points.spend(uid, 350, reason="x", key="s")
    ws.wallet.refund(uid, key="r2")  # the rest: takes what is left, never below zero
    assert ws.points.balance(uid) == 0
    assert ws.wallet.balance(uid).total_fen == 0
    assert ws.wallet.settings().recharge_points
