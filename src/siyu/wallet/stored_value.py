"""Stored value (储值 / 充值): recharge plans, a wallet per member, payments, refunds.

Each wallet keeps two balances: *principal*, the cash the member paid in,
and *bonus*, what a recharge plan added (充100送20: principal 100, bonus 20).
A payment takes from both by the shop's spending rule; a refund pays back
unspent principal only and forfeits the bonus that goes with it. A top-up is
credited when its payment is confirmed, exactly once however many times the
provider's callback arrives. Points and stored value never mix: nothing here
reads or writes the points ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import attrs

from .._validation import check_int, check_key, check_text
from ..errors import IdempotencyConflict, InsufficientFunds, InsufficientPoints, NotFound, ValidationError
from ..events import RechargeRefused, WalletChanged
from ..models.wallet import Liability, Recharge, RechargePlan, RechargeTier, WalletBalance, WalletEntry, WalletRefund
from ..money import Money, to_fen, to_yuan
from ..services._common import require_user
from .rules import ISSUER_TIERS, SPEND_RULES, PrepaidRules, check_cap, check_purchase, split_spend

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.points import Points
    from ..services.points_rules import PointsRules
    from ..storage.base import Transaction

__all__ = ["Wallet", "WalletSettings"]

_SETTINGS = "wallet.settings"


@attrs.frozen(kw_only=True)
class WalletSettings:
    """The shop's stored-value policy: how payments split principal and bonus
    (``spend_rule``), its issuer tier for the escrow ratio, and the prepaid rules."""

    spend_rule: str = "proportional"
    issuer_tier: str = "scale"
    rules: PrepaidRules = attrs.field(factory=PrepaidRules)
    #: Award the ``recharge`` points rule (充值送积分) on the principal of each confirmed top-up.
    recharge_points: bool = False


class Wallet:
    """``ws.wallet``: recharge plans, top-ups, balances, payments, refunds, liability."""

    name = "wallet"

    def __init__(self, uow: UnitOfWork, *, points_rules: PointsRules | None = None,
                 points: Points | None = None) -> None:
        self._uow = uow
        self._rules = points_rules
        self._points = points

    # -- settings ---------------------------------------------------------------------
    def settings(self) -> WalletSettings:
        with self._uow.read() as tx:
            return self._settings(tx)

    @staticmethod
    def _settings(tx: Transaction) -> WalletSettings:
        return _parse_settings(tx.meta.get(_SETTINGS))

    def configure(self, *, spend_rule: str | None = None, issuer_tier: str | None = None,
                  rules: PrepaidRules | None = None, recharge_points: bool | None = None) -> WalletSettings:
        """Set the spending rule (``proportional``, ``bonus_first``, ``principal_first``;
        publish it to members: it decides what a refund pays back), the issuer tier
        (``scale``, ``group``, ``brand``: 规模 / 集团 / 品牌发卡企业), the prepaid rules, and
        whether a confirmed top-up earns points by the ``recharge`` rule (on the cash
        paid, never on the bonus; a refund of principal takes back the points that cash
        earned, in proportion, and never pays anything out in points)."""
        if spend_rule is not None and spend_rule not in SPEND_RULES:
            raise ValidationError(f"spend_rule={spend_rule!r} is not one of {', '.join(SPEND_RULES)}")
        if issuer_tier is not None and issuer_tier not in ISSUER_TIERS:
            raise ValidationError(f"issuer_tier={issuer_tier!r} is not one of {', '.join(ISSUER_TIERS)}")
        if rules is not None and not isinstance(rules, PrepaidRules):
            raise ValidationError("rules must be a siyu.wallet.PrepaidRules")
        with self._uow.write() as tx:
            current = self._settings(tx)
            new = WalletSettings(spend_rule=spend_rule or current.spend_rule,
                                 issuer_tier=issuer_tier or current.issuer_tier, rules=rules or current.rules,
                                 recharge_points=current.recharge_points if recharge_points is None
                                 else bool(recharge_points))
            tx.meta.set(_SETTINGS, json.dumps({"spend_rule": new.spend_rule, "issuer_tier": new.issuer_tier,
                                               "rules": new.rules.to_dict(),
                                               "recharge_points": new.recharge_points}))
        return new

    # -- plans ------------------------------------------------------------------------
    def add_plan(self, name: str, tiers: Iterable[tuple[Money, Money]]) -> RechargePlan:
        """A recharge plan: ``tiers`` of ``(pay, bonus)`` in yuan, e.g.
        ``[(100, 20), (500, 120)]`` for 充100送20 and 充500送120. A recharge gets the
        bonus of the highest tier it reaches. A plan's name cannot be reused."""
        name = check_text(name, "name", max_length=64)
        parsed = sorted((RechargeTier(pay_fen=to_fen(p, name="pay"), bonus_fen=to_fen(b, name="bonus"))
                         for p, b in _pairs(tiers)), key=lambda t: t.pay_fen)
        if not parsed:
            raise ValidationError("a recharge plan needs at least one (pay, bonus) tier")
        if any(t.pay_fen <= 0 for t in parsed) or len({t.pay_fen for t in parsed}) != len(parsed):
            raise ValidationError("each tier needs a different pay amount above 0")
        plan = RechargePlan(id=0, name=name, tiers=tuple(parsed), created_at=self._uow.now())
        with self._uow.write() as tx:
            if tx.wallet.plan(name) is not None:
                raise ValidationError(f"a recharge plan named {name!r} exists; pick another name")
            plan = attrs.evolve(plan, id=tx.wallet.save_plan(plan))
        return plan

    def plans(self) -> list[RechargePlan]:
        with self._uow.read() as tx:
            return tx.wallet.plans()

    # -- recharge ---------------------------------------------------------------------
    def recharge(self, user_id: int, amount: Money, *, payment_id: str, plan: str | None = None,
                 method: str = "online") -> Recharge:
        """Start a top-up of ``amount`` yuan, waiting for payment ``payment_id`` (the
        provider's trade number). Nothing is credited until :meth:`confirm`.

        The plan's bonus is fixed now. The member's wallet is a named (记名) card:
        a top-up that would take it above the legal maximum is refused
        (:class:`~siyu.errors.CapExceeded`). Calling again with the same
        ``payment_id`` and arguments returns the same recharge."""
        pay_fen = to_fen(amount, name="amount")
        if pay_fen <= 0:
            raise ValidationError("amount must be more than 0")
        payment_id = check_key(payment_id, "payment_id")
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            settings = self._settings(tx)
            found = None
            if plan is not None:
                found = tx.wallet.plan(check_text(plan, "plan", max_length=64))
                if found is None or not found.active:
                    raise NotFound(f"no active recharge plan {plan!r}; create it with ws.wallet.add_plan(...)")
            bonus = found.bonus_for(pay_fen) if found is not None else 0
            existing = tx.wallet.recharge(payment_id)
            if existing is not None:
                if (existing.user_id, existing.principal_fen, existing.plan, existing.method) != (
                        uid, pay_fen, plan, method):
                    raise IdempotencyConflict(f"payment_id {payment_id!r} belongs to another recharge")
                return existing
            check_purchase(settings.rules, total_fen=pay_fen, named=True, buyer="person", method=method,
                           real_name="member")
            balance = tx.wallet.balance(uid)
            check_cap(settings.rules, named=True, balance_fen=balance.total_fen, adding_fen=pay_fen + bonus,
                      what=f"a recharge of {to_yuan(pay_fen)} (+{to_yuan(bonus)} bonus)")
            record = Recharge(id=0, user_id=uid, payment_id=payment_id, plan=plan, principal_fen=pay_fen,
                              bonus_fen=bonus, status="pending", method=method, created_at=now)
            rid = tx.wallet.add_recharge(record)
            if rid is None:  # another process inserted it between our read and write
                again = tx.wallet.recharge(payment_id)
                assert again is not None
                return again
            return attrs.evolve(record, id=rid)

    def confirm(self, payment_id: str) -> Recharge:
        """The payment of a recharge succeeded: credit principal and bonus, once.

        Safe to call for every delivery of the provider's callback, at the same
        time from several processes: only the first moves the recharge from
        ``pending`` to ``paid`` and credits the wallet, in one transaction. If the
        credit would now break the wallet's legal cap (another top-up landed
        first), the recharge ends ``refused`` with a :class:`~siyu.events.RechargeRefused`
        event and the payment must be returned."""
        payment_id = check_key(payment_id, "payment_id")
        now = self._uow.now()
        with self._uow.write() as tx:
            found = tx.wallet.recharge(payment_id)
            if found is None:
                raise NotFound(f"no recharge with payment_id {payment_id!r}; start one with ws.wallet.recharge(...)")
            if found.status != "pending":
                return found
            balance = tx.wallet.balance(found.user_id, lock=True)
            rules = self._settings(tx).rules
            if balance.total_fen + found.principal_fen + found.bonus_fen > rules.named_max_fen:
                note = (f"crediting {to_yuan(found.principal_fen + found.bonus_fen)} would take the wallet above "
                        f"{to_yuan(rules.named_max_fen)} yuan ({rules.version}); return the payment")
                if tx.wallet.settle_recharge(payment_id, status="refused", at=now, note=note):
                    tx.emit(RechargeRefused(at=now, user_id=found.user_id, recharge_id=found.id,
                                            payment_id=payment_id, amount_fen=found.principal_fen, reason=note))
            elif tx.wallet.settle_recharge(payment_id, status="paid", at=now):
                entry = tx.wallet.apply(found.user_id, found.principal_fen, found.bonus_fen, kind="recharge",
                                        ref=f"recharge:{payment_id}", at=now)
                assert entry is not None  # credits cannot go negative
                self._emit(tx, entry)
                if self._rules is not None and self._settings(tx).recharge_points:
                    self._rules.award("recharge", found.user_id, key=f"recharge:{payment_id}",
                                      amount=to_yuan(found.principal_fen))
            settled = tx.wallet.recharge(payment_id)
        assert settled is not None
        return settled

    def cancel(self, payment_id: str) -> Recharge:
        """Give up a pending recharge whose payment will not come (a later callback for
        it then credits nothing)."""
        payment_id = check_key(payment_id, "payment_id")
        with self._uow.write() as tx:
            found = tx.wallet.recharge(payment_id)
            if found is None:
                raise NotFound(f"no recharge with payment_id {payment_id!r}")
            tx.wallet.settle_recharge(payment_id, status="cancelled", at=self._uow.now())
            settled = tx.wallet.recharge(payment_id)
        assert settled is not None
        return settled

    def recharges(self, user_id: int) -> list[Recharge]:
        with self._uow.read() as tx:
            return tx.wallet.recharges(require_user(tx, user_id, active=False))

    # -- read -------------------------------------------------------------------------
    def balance(self, user_id: int) -> WalletBalance:
        """The member's principal and bonus."""
        with self._uow.read() as tx:
            return tx.wallet.balance(require_user(tx, user_id, active=False))

    def history(self, user_id: int) -> list[WalletEntry]:
        """The member's wallet ledger, oldest first; each entry shows the balances after it."""
        with self._uow.read() as tx:
            return tx.wallet.entries(require_user(tx, user_id, active=False))

    # -- pay and give back --------------------------------------------------------------
    def pay(self, user_id: int, amount: Money, *, ref: str, key: str) -> WalletEntry:
        """Pay ``amount`` yuan from the wallet for ``ref`` (e.g. ``"order:42"``), split
        between principal and bonus by the spending rule. Raises
        :class:`~siyu.errors.InsufficientFunds` (nothing changes) if the balance is
        smaller. ``key`` makes it idempotent."""
        fen = to_fen(amount, name="amount")
        if fen <= 0:
            raise ValidationError("amount must be more than 0")
        ref = check_text(ref, "ref", max_length=128)
        key = check_key(key)
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            return self.pay_in(tx, uid, fen, ref=ref, key=key, now=self._uow.now())

    def pay_in(self, tx: Transaction, user_id: int, fen: int, *, ref: str, key: str, now: datetime) -> WalletEntry:
        """:meth:`pay` with validated values inside ``tx`` (an order's transaction)."""
        done = tx.wallet.entry_by_key(key)
        if done is not None:
            if (done.user_id, done.kind, -(done.principal_fen + done.bonus_fen), done.ref) != (user_id, "pay", fen,
                                                                                               ref):
                raise IdempotencyConflict(f"key {key!r} was already used for a different wallet write")
            return done
        balance = tx.wallet.balance(user_id, lock=True)
        if balance.total_fen < fen:
            raise InsufficientFunds(
                f"user {user_id} has {balance.total} yuan of stored value, {to_yuan(fen)} is needed; "
                "check ws.wallet.balance() or pay the rest another way",
                requested_fen=fen, available_fen=balance.total_fen)
        principal, bonus = split_spend(balance.principal_fen, balance.bonus_fen, fen, self._settings(tx).spend_rule)
        entry = tx.wallet.apply(user_id, -principal, -bonus, kind="pay", ref=ref, at=now, key=key)
        if entry is None:  # the row moved under us: only possible without the row lock
            raise InsufficientFunds(f"user {user_id}'s stored value changed during the payment; try again",
                                    requested_fen=fen, available_fen=0)
        self._emit(tx, entry)
        return entry

    def give_back(self, ref: str, amount: Money | None = None, *, key: str) -> WalletEntry | None:
        """Return to the wallet what was paid from it for ``ref`` (all, or ``amount``
        yuan of it), in the same principal/bonus split as the payments, e.g. when
        the order is refunded. Returns ``None`` if nothing was paid from it."""
        ref = check_text(ref, "ref", max_length=128)
        key = check_key(key)
        fen = None if amount is None else to_fen(amount, name="amount")
        with self._uow.write() as tx:
            return self.give_back_in(tx, ref, fen, key=key, now=self._uow.now())

    @staticmethod
    def paid_for(tx: Transaction, ref: str) -> int:
        """Fen paid from wallets for ``ref`` and not given back yet."""
        return -sum(e.principal_fen + e.bonus_fen for e in tx.wallet.entries_by_ref(ref)
                    if e.kind in ("pay", "refund_in"))

    def give_back_in(self, tx: Transaction, ref: str, fen: int | None, *, key: str,
                     now: datetime) -> WalletEntry | None:
        """:meth:`give_back` with validated values inside ``tx`` (a refund's transaction)."""
        done = tx.wallet.entry_by_key(key)
        if done is not None:
            return done
        entries = tx.wallet.entries_by_ref(ref)
        paid_p = -sum(e.principal_fen for e in entries if e.kind in ("pay", "refund_in"))
        paid_b = -sum(e.bonus_fen for e in entries if e.kind in ("pay", "refund_in"))
        left = paid_p + paid_b
        if left <= 0:
            if fen:
                raise ValidationError(f"nothing paid from the wallet for {ref!r} is left to give back")
            return None
        want = left if fen is None else fen
        if want > left:
            raise ValidationError(f"only {to_yuan(left)} yuan paid from the wallet for {ref!r} is left to give back, "
                                  f"not {to_yuan(want)}")
        # The same split as what was paid and not yet given back: principal stays principal.
        principal = split_spend(paid_p, paid_b, want, "proportional")[0]
        users = {e.user_id for e in entries}
        assert len(users) == 1
        uid = users.pop()
        tx.wallet.balance(uid, lock=True)
        entry = tx.wallet.apply(uid, principal, want - principal, kind="refund_in", ref=ref, at=now, key=key)
        assert entry is not None
        self._emit(tx, entry)
        return entry

    # -- refund -----------------------------------------------------------------------
    def refund(self, user_id: int, amount: Money | None = None, *, key: str) -> WalletRefund:
        """Pay unspent principal back in cash: all of it, or ``amount`` yuan.

        Only principal is ever paid out. The bonus that came with it is forfeited
        in proportion (all of it when all principal is refunded), so after a full
        refund the wallet and its ledger stand at zero. The cash itself is paid
        by your payment provider; this records it. ``key`` makes it idempotent."""
        key = check_key(key)
        fen = None if amount is None else to_fen(amount, name="amount")
        if fen is not None and fen <= 0:
            raise ValidationError("amount must be more than 0")
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, active=False)
            done = tx.wallet.entry_by_key(key)
            if done is not None:
                if done.user_id != uid or done.kind != "refund_out" or (fen is not None and -done.principal_fen != fen):
                    raise IdempotencyConflict(f"key {key!r} was already used for a different wallet write")
                forfeit = tx.wallet.entry_by_key(f"{key}:forfeit")
                return WalletRefund(user_id=uid, paid_out_fen=-done.principal_fen,
                                    forfeited_fen=-forfeit.bonus_fen if forfeit else 0,
                                    entry_ids=(done.id,) + ((forfeit.id,) if forfeit else ()))
            balance = tx.wallet.balance(uid, lock=True)
            want = balance.principal_fen if fen is None else fen
            if want <= 0:
                raise ValidationError(f"user {uid} has no principal left to refund")
            if want > balance.principal_fen:
                raise InsufficientFunds(
                    f"user {uid} has {balance.principal} yuan of unspent principal; only that can be refunded "
                    f"(the bonus never is), not {to_yuan(want)}",
                    requested_fen=want, available_fen=balance.principal_fen)
            forfeit_fen = (balance.bonus_fen if want == balance.principal_fen
                           else balance.bonus_fen * want // balance.principal_fen)
            self._take_back_recharge_points(tx, uid, want, balance.principal_fen, key, now)
            out = tx.wallet.apply(uid, -want, 0, kind="refund_out", ref="refund", at=now, key=key)
            assert out is not None
            self._emit(tx, out)
            ids = [out.id]
            if forfeit_fen:
                lost = tx.wallet.apply(uid, 0, -forfeit_fen, kind="forfeit", ref="refund", at=now,
                                       key=f"{key}:forfeit")
                assert lost is not None
                self._emit(tx, lost)
                ids.append(lost.id)
        return WalletRefund(user_id=uid, paid_out_fen=want, forfeited_fen=forfeit_fen, entry_ids=tuple(ids))

    def _take_back_recharge_points(self, tx: Transaction, uid: int, want: int, principal: int, key: str,
                                   now: datetime) -> None:
        """A refund of principal takes back the 充值送积分 points that cash earned, in
        proportion (what the member spent already is not clawed back below zero)."""
        if self._points is None:
            return
        keys = [f"rule:recharge:recharge:{r.payment_id}" for r in tx.wallet.recharges(uid) if r.status == "paid"]
        found = tx.points.by_keys(keys) if keys else {}
        earns = sorted((entry_id for entry_id, _ in found.values()), reverse=True)
        left = {}
        for eid in earns:
            entry = tx.points.entry(eid)
            left[eid] = (entry.amount if entry is not None else 0) - tx.points.reversed_amount(eid)
        back = sum(left.values()) * want // principal if principal else 0
        for eid in earns:
            take = min(back, left[eid])
            if take <= 0:
                continue
            try:
                self._points_reverse(tx, eid, take, f"{key}:points:{eid}", now)
            except InsufficientPoints as exc:
                if exc.available > 0:
                    self._points_reverse(tx, eid, exc.available, f"{key}:points:{eid}", now)
                return
            back -= take

    def _points_reverse(self, tx: Transaction, entry_id: int, amount: int, key: str, now: datetime) -> None:
        assert self._points is not None
        self._points.reverse_in(tx, entry_id, key=key[:200], amount=amount, reason="wallet refund", now=now)

    # -- gift cards into the wallet (used by ws.gift_cards) -------------------------------
    def credit_in(self, tx: Transaction, user_id: int, fen: int, *, ref: str, now: datetime) -> WalletEntry:
        """Credit ``fen`` of principal (a gift card's balance), within the named-card cap."""
        balance = tx.wallet.balance(user_id, lock=True)
        check_cap(self._settings(tx).rules, named=True, balance_fen=balance.total_fen, adding_fen=fen,
                  what=f"adding {to_yuan(fen)} yuan to the wallet")
        entry = tx.wallet.apply(user_id, fen, 0, kind="card_in", ref=ref, at=now)
        assert entry is not None
        self._emit(tx, entry)
        return entry

    # -- reports ----------------------------------------------------------------------
    def liability(self) -> Liability:
        """What the shop owes on stored value now (principal, bonus, gift cards) and the
        escrow it must hold: the prepaid cash outstanding at the end of the previous
        quarter (business time zone) times the issuer tier's ratio."""
        now = self._uow.now()
        local = now.astimezone(self._uow.tz)
        quarter_start = datetime(local.year, 3 * ((local.month - 1) // 3) + 1, 1, tzinfo=self._uow.tz)
        with self._uow.read() as tx:
            settings = self._settings(tx)
            principal, bonus = tx.wallet.totals()
            cards = tx.wallet.card_totals()
            base_principal, _ = tx.wallet.ledger_totals(before=quarter_start)
            base = base_principal + tx.wallet.card_totals(before=quarter_start)
        ratio = Decimal(settings.rules.escrow_ratios[settings.issuer_tier])
        escrow = int((Decimal(base) * ratio).to_integral_value())
        return Liability(at=now, principal_fen=principal, bonus_fen=bonus, gift_cards_fen=cards,
                         quarter_start=quarter_start, base_fen=base,
                         issuer_tier=settings.issuer_tier, escrow_ratio=ratio, escrow_fen=escrow,
                         rules_version=settings.rules.version)

    @staticmethod
    def _emit(tx: Transaction, entry: WalletEntry) -> None:
        tx.emit(WalletChanged(at=entry.at, user_id=entry.user_id, entry_id=entry.id, kind=entry.kind,
                              principal_fen=entry.principal_fen, bonus_fen=entry.bonus_fen, ref=entry.ref))

    # -- merge participant -------------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[int]:
        """Move ``drop``'s principal and bonus to ``keep`` (one person, two accounts: the
        balances are combined; the cap then refuses top-ups until it is below again)."""
        moved = tx.wallet.balance(drop, lock=True)
        tx.wallet.balance(keep, lock=True)
        self._move(tx, drop, keep, moved.principal_fen, moved.bonus_fen, f"merge:{drop}->{keep}", at)
        cards = [c.id for c in tx.wallet.cards(owner_id=drop)]
        tx.wallet.move_cards(cards, keep)
        return [moved.principal_fen, moved.bonus_fen, *cards]

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[int], at: datetime) -> None:
        """Give ``drop`` back what the merge moved, as far as ``keep`` still holds it."""
        principal, bonus, *cards = record
        held = tx.wallet.balance(keep, lock=True)
        tx.wallet.balance(drop, lock=True)
        self._move(tx, keep, drop, min(principal, held.principal_fen), min(bonus, held.bonus_fen),
                   f"unmerge:{keep}->{drop}", at)
        tx.wallet.move_cards([c for c in cards if (card := tx.wallet.card(c)) and card.owner_id == keep], drop)

    def _move(self, tx: Transaction, source: int, target: int, principal: int, bonus: int, ref: str,
              at: datetime) -> None:
        if principal <= 0 and bonus <= 0:
            return
        out = tx.wallet.apply(source, -principal, -bonus, kind="merge_out", ref=ref, at=at)
        into = tx.wallet.apply(target, principal, bonus, kind="merge_in", ref=ref, at=at)
        assert out is not None and into is not None
        self._emit(tx, out)
        self._emit(tx, into)

    # -- personal data ---------------------------------------------------------------------
    def export(self, user_id: int) -> dict[str, Any]:
        """The member's wallet for a personal-data export."""
        balance = self.balance(user_id)
        return {"principal": str(balance.principal), "bonus": str(balance.bonus),
                "entries": [attrs.asdict(e) for e in self.history(user_id)],
                "recharges": [attrs.asdict(r) for r in self.recharges(user_id)]}


@lru_cache(maxsize=8)
def _parse_settings(raw: str | None) -> WalletSettings:
    """Settings from their stored text; every payment reads them, and they rarely change."""
    if raw is None:
        return WalletSettings()
    data = json.loads(raw)
    return WalletSettings(spend_rule=data["spend_rule"], issuer_tier=data["issuer_tier"],
                          rules=PrepaidRules.from_dict(data["rules"]),
                          recharge_points=bool(data.get("recharge_points", False)))


def _pairs(tiers: Iterable[tuple[Money, Money]]) -> Sequence[tuple[Money, Money]]:
    if isinstance(tiers, str | bytes) or not isinstance(tiers, Iterable):
        raise ValidationError("tiers must be a list of (pay, bonus) pairs in yuan, e.g. [(100, 20), (500, 120)]")
    out = []
    for item in tiers:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValidationError(f"a tier is a (pay, bonus) pair in yuan, got {item!r}")
        out.append((item[0], item[1]))
    check_int(len(out), "number of tiers", minimum=1, maximum=50)
    return out
