"""Contract: the points ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import siyu
from siyu.errors import IdempotencyConflict, InsufficientPoints, NotFound, ValidationError

from .base import ContractBase


class PointsContract(ContractBase):
    def test_earn_spend_balance(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        ws.points.earn(u.id, 100, reason="sign_in", key="e1")
        ws.points.spend(u.id, 30, reason="redeem", key="s1")
        assert ws.points.balance(u.id) == 70
        assert [e.kind for e in ws.points.history(u.id)] == ["earn", "spend"]

    def test_never_negative(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        ws.points.earn(u.id, 10, reason="x", key="e1")
        with pytest.raises(InsufficientPoints) as info:
            ws.points.spend(u.id, 11, reason="redeem", key="s1")
        assert info.value.available == 10
        assert ws.points.balance(u.id) == 10
        assert len(ws.points.history(u.id)) == 1

    def test_idempotency(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        first = ws.points.earn(u.id, 10, reason="x", key="k")
        again = ws.points.earn(u.id, 10, reason="x", key="k")
        assert first == again and ws.points.balance(u.id) == 10
        with pytest.raises(IdempotencyConflict):
            ws.points.earn(u.id, 11, reason="x", key="k")
        with pytest.raises(IdempotencyConflict):
            ws.points.spend(u.id, 1, reason="x", key="k")

    def test_earliest_expiry_first(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add()
        never = ws.points.earn(u.id, 50, reason="a", key="never")
        late = ws.points.earn(u.id, 50, reason="b", key="late", expires_at=clock.now + timedelta(days=30))
        soon = ws.points.earn(u.id, 50, reason="c", key="soon", expires_at=clock.now + timedelta(days=3))
        ws.points.spend(u.id, 70, reason="redeem", key="s")
        left = {lot.entry_id: lot.remaining for lot in ws.points.lots(u.id)}
        assert left == {late.id: 30, never.id: 50}
        assert soon.id not in left

    def test_expiry_at_the_instant(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add()
        expires = clock.now + timedelta(days=1)
        ws.points.earn(u.id, 10, reason="x", key="e", expires_at=expires)
        clock.set(expires - timedelta(microseconds=1))
        assert ws.points.balance(u.id) == 10
        clock.set(expires)
        assert ws.points.balance(u.id) == 0
        swept = ws.points.expire_due()
        assert [(e.kind, e.amount) for e in swept] == [("expire", -10)]
        assert ws.points.expire_due() == []

    def test_pending_until(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add()
        ws.points.earn(u.id, 10, reason="order", key="e", available_at=clock.now + timedelta(days=7))
        assert ws.points.balance(u.id) == 0 and ws.points.pending(u.id) == 10
        with pytest.raises(InsufficientPoints):
            ws.points.spend(u.id, 1, reason="x", key="s")
        clock.advance(days=7)
        assert ws.points.balance(u.id) == 10

    def test_reverse_spend_restores_lots(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add()
        ws.points.earn(u.id, 100, reason="x", key="e", expires_at=clock.now + timedelta(days=10))
        spend = ws.points.spend(u.id, 60, reason="redeem", key="s")
        ws.points.reverse(spend.id, key="r1", amount=20)
        ws.points.reverse(spend.id, key="r2")
        assert ws.points.balance(u.id) == 100
        with pytest.raises(ValidationError):
            ws.points.reverse(spend.id, key="r3")
        clock.advance(days=10)
        assert ws.points.balance(u.id) == 0  # restored points keep their lot's expiry

    def test_reverse_earn(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        earn = ws.points.earn(u.id, 100, reason="order", key="e")
        ws.points.earn(u.id, 10, reason="bonus", key="e2")
        ws.points.spend(u.id, 95, reason="redeem", key="s")
        with pytest.raises(InsufficientPoints):
            ws.points.reverse(earn.id, key="r")
        assert ws.points.balance(u.id) == 15
        ws.points.reverse(earn.id, key="r", amount=15)
        assert ws.points.balance(u.id) == 0

    def test_bad_input_changes_nothing(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        calls: list[Callable[[], object]] = [
            lambda: ws.points.earn(u.id, 0, reason="x", key="a"),
            lambda: ws.points.earn(u.id, -5, reason="x", key="a"),
            lambda: ws.points.earn(u.id, 1.5, reason="x", key="a"),  # type: ignore[arg-type]
            lambda: ws.points.earn(u.id, 5, reason="x", key=""),
            lambda: ws.points.earn(999, 5, reason="x", key="a"),
            lambda: ws.points.reverse(12345, key="r"),
        ]
        for call in calls:
            with pytest.raises((ValidationError, NotFound)):
                call()
        assert ws.points.history(u.id) == []

    def test_earn_many_and_spend_many(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{} for _ in range(3)])
        rows = [{"user_id": uid, "amount": 10, "reason": "bulk", "key": f"b{uid}"} for uid in ids]
        entry_ids = ws.points.earn_many(rows)
        assert ws.points.earn_many(rows) == entry_ids
        assert [ws.points.balance(uid) for uid in ids] == [10, 10, 10]
        with pytest.raises(InsufficientPoints):
            ws.points.spend_many([(ids[0], 5, "x", "s1"), (ids[1], 50, "x", "s2")])
        assert ws.points.balance(ids[0]) == 10
        ws.points.spend_many([(ids[0], 5, "x", "s1"), (ids[0], 5, "x", "s2")])
        assert ws.points.balance(ids[0]) == 0

    def test_expiring(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add()
        ws.points.earn(u.id, 5, reason="x", key="a", expires_at=clock.now + timedelta(days=3))
        ws.points.earn(u.id, 5, reason="x", key="b", expires_at=clock.now + timedelta(days=30))
        assert [lot.remaining for lot in ws.points.expiring(within=timedelta(days=7))] == [5]
