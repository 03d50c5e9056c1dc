"""The points ledger against a simple model (hypothesis stateful test).

The model keeps lots as plain lists; after every step the balance, the
pending points and every lot's remaining points must agree with siyu's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import siyu
from siyu.errors import InsufficientPoints, ValidationError
from siyu.testing import FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)
NEVER = datetime.max.replace(tzinfo=UTC)


class Lot:
    def __init__(self, entry_id: int, amount: int, available: datetime, expires: datetime | None) -> None:
        self.entry_id = entry_id
        self.remaining = amount
        self.available = available
        self.expires = expires

    def usable(self, now: datetime) -> bool:
        return self.remaining > 0 and self.available <= now and (self.expires is None or self.expires > now)

    def order(self) -> tuple[datetime, datetime, int]:
        return (self.expires or NEVER, self.available, self.entry_id)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(START)
        self.ws = siyu.connect("memory://", clock=self.clock)
        self.user = self.ws.users.add().id
        self.lots: dict[int, Lot] = {}
        self.spends: dict[int, dict[int, int]] = {}  # spend id -> lot id -> still reversible
        self.earns: dict[int, int] = {}  # earn id -> still reversible
        self.keys: dict[str, tuple[str, int]] = {}
        self.counter = 0

    def teardown(self) -> None:
        self.ws.close()

    def _key(self) -> str:
        self.counter += 1
        return f"k{self.counter}"

    def _take(self, lots: list[Lot], amount: int) -> dict[int, int]:
        taken: dict[int, int] = {}
        for lot in lots:
            if amount == 0:
                break
            part = min(lot.remaining, amount)
            if part:
                lot.remaining -= part
                amount -= part
                taken[lot.entry_id] = part
        return taken

    def _usable(self) -> list[Lot]:
        return sorted((lot for lot in self.lots.values() if lot.usable(self.clock.now)), key=Lot.order)

    @rule(
        amount=st.integers(1, 500),
        expires_in=st.one_of(st.none(), st.integers(1, 400)),
        pending_for=st.one_of(st.none(), st.integers(1, 100)),
    )
    def earn(self, amount: int, expires_in: int | None, pending_for: int | None) -> None:
        now = self.clock.now
        available = now + timedelta(hours=pending_for) if pending_for else None
        expires = (available or now) + timedelta(hours=expires_in) if expires_in else None
        key = self._key()
        entry = self.ws.points.earn(
            self.user, amount, reason="test", key=key, expires_at=expires, available_at=available
        )
        self.lots[entry.id] = Lot(entry.id, amount, available or now, expires)
        self.earns[entry.id] = amount
        self.keys[key] = ("earn", entry.id)
        # Idempotency: the same call again changes nothing and returns the first entry.
        assert self.ws.points.earn(
            self.user, amount, reason="test", key=key, expires_at=expires, available_at=available
        ) == entry

    @rule(amount=st.integers(1, 800))
    def spend(self, amount: int) -> None:
        usable = self._usable()
        available = sum(lot.remaining for lot in usable)
        key = self._key()
        if amount > available:
            try:
                self.ws.points.spend(self.user, amount, reason="test", key=key)
            except InsufficientPoints as exc:
                assert exc.available == available
            else:
                raise AssertionError("overspend was allowed")
            return
        entry = self.ws.points.spend(self.user, amount, reason="test", key=key)
        self.spends[entry.id] = self._take(usable, amount)

    @precondition(lambda self: self.spends)
    @rule(data=st.data())
    def reverse_spend(self, data: st.DataObject) -> None:
        spend_id = data.draw(st.sampled_from(sorted(self.spends)))
        left = sum(self.spends[spend_id].values())
        if left == 0:
            try:
                self.ws.points.reverse(spend_id, key=self._key())
            except ValidationError:
                return
            raise AssertionError("reversing a fully reversed spend was allowed")
        amount = data.draw(st.integers(1, left))
        self.ws.points.reverse(spend_id, key=self._key(), amount=amount)
        for lot_id in sorted(self.spends[spend_id], reverse=True):
            give = min(self.spends[spend_id][lot_id], amount)
            self.spends[spend_id][lot_id] -= give
            self.lots[lot_id].remaining += give
            amount -= give

    @precondition(lambda self: self.earns)
    @rule(data=st.data())
    def reverse_earn(self, data: st.DataObject) -> None:
        earn_id = data.draw(st.sampled_from(sorted(self.earns)))
        left = self.earns[earn_id]
        if left == 0:
            return
        amount = data.draw(st.integers(1, left))
        own = self.lots[earn_id]
        candidates = ([own] if own.remaining > 0 else []) + [lot for lot in self._usable() if lot is not own]
        reachable = sum(lot.remaining for lot in candidates)
        if amount > reachable:
            try:
                self.ws.points.reverse(earn_id, key=self._key(), amount=amount)
            except InsufficientPoints:
                return
            raise AssertionError("reversal beyond the balance was allowed")
        self.ws.points.reverse(earn_id, key=self._key(), amount=amount)
        self._take(candidates, amount)
        self.earns[earn_id] -= amount

    @rule(hours=st.integers(1, 200))
    def advance(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule()
    def expire_due(self) -> None:
        swept = self.ws.points.expire_due()
        expected = {
            lot.entry_id: lot.remaining
            for lot in self.lots.values()
            if lot.remaining > 0 and lot.expires is not None and lot.expires <= self.clock.now
        }
        assert {e.ref_entry_id: -e.amount for e in swept} == expected
        for lot_id in expected:
            self.lots[lot_id].remaining = 0

    @invariant()
    def balances_agree(self) -> None:
        now = self.clock.now
        balance = self.ws.points.balance(self.user)
        assert balance >= 0
        assert balance == sum(lot.remaining for lot in self.lots.values() if lot.usable(now))
        pending = sum(
            lot.remaining for lot in self.lots.values()
            if lot.remaining > 0 and lot.available > now and (lot.expires is None or lot.expires > now)
        )
        assert self.ws.points.pending(self.user) == pending

    @invariant()
    def lots_agree(self) -> None:
        stored = {lot.entry_id: lot.remaining for lot in self.ws.points.lots(self.user)}
        assert stored == {i: lot.remaining for i, lot in self.lots.items() if lot.remaining > 0}


LedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLedger = LedgerMachine.TestCase
