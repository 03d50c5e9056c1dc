"""Contract: stored value, gift cards and the points mall's stock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

import siyu
from siyu.errors import CapExceeded, InsufficientFunds, PolicyViolation

from .base import ContractBase


class WalletContract(ContractBase):
    def test_wallet_balances_move_only_by_conditional_updates(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add().id
        with ws.write() as tx:
            first = tx.wallet.apply(u, 10_000, 2_000, kind="recharge", ref="r", at=clock.now)
            assert first is not None and (first.principal_after_fen, first.bonus_after_fen) == (10_000, 2_000)
            assert tx.wallet.apply(u, -10_001, 0, kind="pay", ref="o", at=clock.now) is None
            assert tx.wallet.apply(u, 0, -2_001, kind="pay", ref="o", at=clock.now) is None
            paid = tx.wallet.apply(u, -5_000, -1_000, kind="pay", ref="o", at=clock.now, key="k")
            assert paid is not None and paid.principal_before_fen == 10_000
        with ws.read() as tx:
            assert tx.wallet.balance(u).total_fen == 6_000
            assert tx.wallet.ledger_totals() == (5_000, 1_000) == tx.wallet.totals()
            assert tx.wallet.entry_by_key("k") == paid
            assert [e.kind for e in tx.wallet.entries_by_ref("o")] == ["pay"]

    def test_wallet_recharge_is_settled_once(self, ws: siyu.Workspace) -> None:
        u = ws.users.add().id
        ws.wallet.add_plan("std", [(100, 20)])
        ws.wallet.recharge(u, 100, plan="std", payment_id="T1")
        assert {ws.wallet.confirm("T1").status for _ in range(3)} == {"paid"}
        assert ws.wallet.balance(u).total == Decimal("120.00")
        assert len(ws.wallet.history(u)) == 1

    def test_wallet_refund_pays_principal_only(self, ws: siyu.Workspace) -> None:
        u = ws.users.add().id
        ws.wallet.add_plan("std", [(100, 20)])
        ws.wallet.recharge(u, 100, plan="std", payment_id="T1")
        ws.wallet.confirm("T1")
        ws.wallet.pay(u, 60, ref="order:1", key="p1")
        refund = ws.wallet.refund(u, key="r1")
        assert (refund.paid_out, refund.forfeited) == (Decimal("50.00"), Decimal("10.00"))
        assert ws.wallet.balance(u).total_fen == 0
        assert sum(e.principal_fen + e.bonus_fen for e in ws.wallet.history(u)) == 0
        with pytest.raises(InsufficientFunds):
            ws.wallet.pay(u, 1, ref="order:2", key="p2")

    def test_wallet_gift_card_round_trip(self, ws: siyu.Workspace, clock: Any) -> None:
        a, b = ws.users.add().id, ws.users.add().id
        [card] = ws.gift_cards.issue(300, expires_at=clock.now + timedelta(days=4 * 365))
        assert card.code is not None
        with pytest.raises(PolicyViolation):
            ws.gift_cards.redeem(card.code, a)  # not sold yet
        ws.gift_cards.activate([card.code])
        ws.gift_cards.redeem(card.code, a, amount=100)
        with pytest.raises(PolicyViolation):
            ws.gift_cards.redeem(card.code, b, amount=1)
        assert ws.gift_cards.get(card.code).balance == Decimal("200.00")
        assert ws.wallet.balance(a).principal == Decimal("100.00")
        assert ws.wallet.liability().gift_cards_fen == 20_000

    def test_wallet_reward_stock_is_never_oversold(self, ws: siyu.Workspace) -> None:
        users = [ws.users.add().id for _ in range(3)]
        for u in users:
            ws.points.earn(u, 100, reason="x", key=f"e{u}")
        ws.points_mall.add_reward("mug", kind="gift", points=10, stock=2, terms="t", scope="s", validity="v")
        ws.points_mall.redeem(users[0], "mug", key="a")
        ws.points_mall.redeem(users[1], "mug", key="b")
        with pytest.raises(CapExceeded):
            ws.points_mall.redeem(users[2], "mug", key="c")
        assert ws.points.balance(users[2]) == 100
        assert ws.points_mall.reward("mug").left == 0

    def test_benefits_once_per_key_and_budgets_never_overspent(self, ws: siyu.Workspace, clock: Any) -> None:
        from datetime import date

        from siyu.storage.contracts.benefits import Grant, Sign

        u = ws.users.add().id
        day = date(2026, 11, 22)
        with ws.write() as tx:
            assert tx.benefits.add_sign(Sign(user_id=u, day=day, kind="sign", points=5, at=clock.now))
            assert not tx.benefits.add_sign(Sign(user_id=u, day=day, kind="makeup", points=5, at=clock.now))
            assert tx.benefits.use_budget("b", 60, 100) and not tx.benefits.use_budget("b", 41, 100)
            grant = Grant(id=0, user_id=u, benefit="birthday", period="2026", status="granted", amount=1,
                          at=clock.now, due_at=clock.now + timedelta(days=1))
            gid = tx.benefits.add_grant(grant)
            assert gid is not None and tx.benefits.add_grant(grant) is None
            assert tx.benefits.move_grant(gid, from_status=("granted",), to_status="void", ref="r")
            assert not tx.benefits.move_grant(gid, from_status=("granted",), to_status="void")
        with ws.read() as tx:
            assert [s.kind for s in tx.benefits.signs(u, day, day)] == ["sign"]
            assert tx.benefits.budget_used("b") == 60
            found = tx.benefits.grant(u, "birthday", "2026")
            assert found is not None and (found.status, found.ref) == ("void", "r")
            assert [g.id for g in tx.benefits.grants(due_before=clock.now + timedelta(days=2))] == [gid]

    def test_presale_units_and_transitions_move_once(self, ws: siyu.Workspace, clock: Any) -> None:
        from siyu.models.commerce import ProductRole
        from siyu.models.presale import PresaleOrder

        ws.products.add("BOX", "Box", price="100", cost="40", role=ProductRole.PROFIT)
        u = ws.users.add().id
        presale = ws.presales.create("p", sku="BOX", price=100, deposit=20, stock=2, starts_at=clock.now,
                                     ends_at=clock.now + timedelta(days=1), balance_from=clock.now,
                                     balance_until=clock.now + timedelta(days=2), deliver_days=1)
        with ws.write() as tx:
            assert tx.presales.take_units(presale.id, 2) and not tx.presales.take_units(presale.id, 1)
            order = PresaleOrder(id=0, presale_id=presale.id, user_id=u, qty=1, deposit_fen=2000,
                                 status="deposit_paid", key="k", at=clock.now)
            oid = tx.presales.add_order(order)
            assert oid is not None and tx.presales.add_order(order) is None
            assert tx.presales.move_order(oid, from_status=("deposit_paid",), to_status="expired", at=clock.now,
                                          refund_fen=0)
            assert not tx.presales.move_order(oid, from_status=("deposit_paid",), to_status="paid", at=clock.now)
            tx.presales.give_units(presale.id, 1)
        with ws.read() as tx:
            found = tx.presales.presale(presale.id)
            assert found is not None and found.held == 1
            assert [o.status for o in tx.presales.orders(presale_id=presale.id)] == ["expired"]
