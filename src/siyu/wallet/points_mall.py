"""The points mall (积分商城): rewards members buy with points.

A reward is a coupon (issued at once), a catalogue product or a physical gift
(both shipped later). Redeeming spends the points through the points ledger
(earliest-expiring lots first, pending points untouchable) and takes one unit
of stock, in one transaction. If issuing the coupon fails after the debit,
a compensating ledger entry returns the points, the stock comes back, and
the redemption ends ``failed`` with no coupon left behind. Cancelling a
redemption before it ships returns the points to the lots they came from,
with their original expiry, and the unit to stock, exactly once.

Published terms are required: promotion rules (规范促销行为暂行规定 Art. 14) say
points rewards must disclose their exchange rules, scope and validity.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._validation import check_id, check_int, check_key, check_text
from ..errors import (
    CapExceeded,
    IdempotencyConflict,
    InvalidTransition,
    NotFound,
    PolicyViolation,
    SiyuError,
    ValidationError,
)
from ..events import RedemptionReversed, RewardRedeemed
from ..models.wallet import Redemption, Reward
from ..services._common import require_user
from ..services.products import Products

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.coupons import Coupons
    from ..services.points import Points
    from ..services.tiers import Tiers
    from ..storage.base import Transaction

__all__ = ["REWARD_KINDS", "PointsMall"]

REWARD_KINDS = ("coupon", "product", "gift")
PERIODS = ("day", "week", "month")
#: Redemptions that count against limits (cancelled and failed ones gave everything back).
_LIVE = ("issued", "pending", "fulfilled")


def _limit(value: int | None, name: str) -> int | None:
    """``None`` or ``-1`` means unlimited (the CRMEB convention); else a count >= 1."""
    if value is None or value == -1:
        return None
    return check_int(value, name, minimum=1, maximum=1_000_000_000)


class PointsMall:
    """``ws.points_mall``: rewards, redemptions, cancellations, the redemption report."""

    name = "points_mall"

    def __init__(self, uow: UnitOfWork, *, points: Points, coupons: Coupons, tiers: Tiers) -> None:
        self._uow = uow
        self._points = points
        self._coupons = coupons
        self._tiers = tiers

    # -- catalogue ----------------------------------------------------------------------
    def add_reward(
        self,
        name: str,
        *,
        kind: str,
        points: int,
        terms: str,
        scope: str,
        validity: str,
        stock: int | None = None,
        per_member: int | None = None,
        per_order: int | None = None,
        per_period: int | None = None,
        period: str = "month",
        tiers: Iterable[str] = (),
        coupon_template: str | None = None,
        sku: str | None = None,
    ) -> Reward:
        """Offer a reward for ``points`` points.

        ``kind="coupon"`` needs ``coupon_template`` (a template of ``ws.coupons``);
        ``kind="product"`` needs ``sku``; ``kind="gift"`` is anything else you ship.
        ``terms`` (how to exchange), ``scope`` (what it can be used for) and
        ``validity`` (how long it lasts) are the published rules and cannot be
        empty. ``stock``, ``per_member`` (in total), ``per_order`` (units in one
        redemption) and ``per_period`` (per member per ``period``: ``day``,
        ``week`` or ``month``) are unlimited when ``None`` or ``-1``. ``tiers``
        (empty: everyone) lists the tiers that may redeem."""
        if kind not in REWARD_KINDS:
            raise ValidationError(f"kind={kind!r} is not a reward kind; use one of {', '.join(REWARD_KINDS)}")
        texts: dict[str, str] = {}
        for label, value in (("terms", terms), ("scope", scope), ("validity", validity)):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(
                    f"a reward needs its published {label} (exchange rules, scope and validity must be disclosed "
                    "before a points reward is offered)")
            texts[label] = check_text(value.strip(), label, max_length=2000)
        if period not in PERIODS:
            raise ValidationError(f"period={period!r} is not one of {', '.join(PERIODS)}")
        if kind == "coupon" and coupon_template is None:
            raise ValidationError("a coupon reward needs coupon_template=<name of a ws.coupons template>")
        if kind != "coupon" and coupon_template is not None:
            raise ValidationError("coupon_template= only applies to coupon rewards")
        if kind == "product" and sku is None:
            raise ValidationError("a product reward needs sku=<a catalogue SKU>")
        reward = Reward(
            id=0, name=check_text(name, "name", max_length=64), kind=kind,
            points=check_int(points, "points", minimum=1, maximum=1_000_000_000), stock=_limit(stock, "stock"),
            per_member=_limit(per_member, "per_member"), per_order=_limit(per_order, "per_order"),
            per_period=_limit(per_period, "per_period"), period=period,
            tiers=tuple(sorted({check_text(t, "tier", max_length=64) for t in tiers})),
            coupon_template=coupon_template, sku=sku, created_at=self._uow.now(), terms=texts["terms"],
            scope=texts["scope"], validity=texts["validity"],
        )
        with self._uow.write() as tx:
            if tx.points_mall.reward_by_name(reward.name) is not None:
                raise ValidationError(f"a reward named {reward.name!r} exists; pick another name")
            if coupon_template is not None:
                self._coupons._template(tx, coupon_template)
            if sku is not None:
                Products.require(tx, [sku])
            reward = attrs.evolve(reward, id=tx.points_mall.save_reward(reward))
        return reward

    def reward(self, name_or_id: str | int) -> Reward:
        with self._uow.read() as tx:
            return self._reward(tx, name_or_id)

    @staticmethod
    def _reward(tx: Transaction, name_or_id: str | int) -> Reward:
        found = (tx.points_mall.reward(name_or_id) if isinstance(name_or_id, int)
                 else tx.points_mall.reward_by_name(str(name_or_id)))
        if found is None:
            raise NotFound(f"no reward {name_or_id!r}; add one with ws.points_mall.add_reward(...)")
        return found

    def rewards(self) -> list[Reward]:
        """Every reward, retired ones included."""
        with self._uow.read() as tx:
            return tx.points_mall.rewards()

    def retire(self, name_or_id: str | int) -> Reward:
        """Stop offering a reward; redemptions already made are unaffected."""
        with self._uow.write() as tx:
            reward = attrs.evolve(self._reward(tx, name_or_id), active=False)
            tx.points_mall.save_reward(reward)
        return reward

    # -- redeem -------------------------------------------------------------------------
    def redeem(self, user_id: int, reward_id: str | int, *, key: str, qty: int = 1) -> Redemption:
        """Spend points on ``qty`` units of a reward, in one transaction.

        Refused with nothing changed: too few points
        (:class:`~siyu.errors.InsufficientPoints`), out of stock or over a limit
        (:class:`~siyu.errors.CapExceeded`), a tier not allowed
        (:class:`~siyu.errors.PolicyViolation`). A coupon reward is ``issued`` at
        once; goods are ``pending`` until :meth:`fulfil`. If the coupon cannot be
        issued, the redemption is stored ``failed`` with the points restored and
        returned (check ``status``). ``key`` makes the call idempotent."""
        key = check_key(key)
        qty = check_int(qty, "qty", minimum=1, maximum=10_000)
        now = self._uow.now()
        with self._uow.write() as tx:
            done = tx.points_mall.redemption_by_key(key)
            if done is not None:
                reward = self._reward(tx, reward_id)
                if (done.user_id, done.reward_id, done.qty) != (user_id, reward.id, qty):
                    raise IdempotencyConflict(f"key {key!r} was already used for a different redemption")
                return done
            # The member's lock first: their limits are counted and their points spent under it.
            uid = require_user(tx, user_id, lock=True)
            reward = self._reward(tx, reward_id)
            self._check(tx, reward, uid, qty, now)
            if not tx.points_mall.take_stock(reward.id, qty):
                raise CapExceeded(f"reward {reward.name!r} is out of stock")
            cost = reward.points * qty
            [spend_id] = self._points.spend_many(
                [{"user_id": uid, "amount": cost, "reason": f"mall:{reward.name}"[:128], "key": f"mall:{key}"[:200]}])
            status = "issued" if reward.kind == "coupon" else "pending"
            redemption = Redemption(id=0, reward_id=reward.id, user_id=uid, qty=qty, points=cost, status=status,
                                    key=key, at=now, spend_entry_id=spend_id)
            redemption = attrs.evolve(redemption, id=tx.points_mall.add_redemption(redemption))
            if reward.kind == "coupon":
                redemption = self._issue(tx, reward, redemption, now)
            if redemption.status != "failed":
                tx.emit(RewardRedeemed(at=now, redemption_id=redemption.id, reward_id=reward.id, user_id=uid,
                                       points=cost, status=redemption.status))
        return redemption

    def give_in(self, tx: Transaction, user_id: int, reward_name: str, *, key: str, now: datetime) -> Redemption:
        """One unit of a reward as a gift, for no points (a birthday gift), inside ``tx``.
        Stock still applies; member limits do not. A repeated ``key`` returns the first."""
        done = tx.points_mall.redemption_by_key(key)
        if done is not None:
            return done
        reward = self._reward(tx, reward_name)
        if not tx.points_mall.take_stock(reward.id, 1):
            raise CapExceeded(f"reward {reward.name!r} is out of stock")
        status = "issued" if reward.kind == "coupon" else "pending"
        gift = Redemption(id=0, reward_id=reward.id, user_id=user_id, qty=1, points=0, status=status, key=key,
                          at=now, note="gift")
        gift = attrs.evolve(gift, id=tx.points_mall.add_redemption(gift))
        if reward.kind == "coupon":
            gift = self._issue(tx, reward, gift, now)
        if gift.status != "failed":
            tx.emit(RewardRedeemed(at=now, redemption_id=gift.id, reward_id=reward.id, user_id=user_id, points=0,
                                   status=gift.status))
        return gift

    def _check(self, tx: Transaction, reward: Reward, uid: int, qty: int, now: datetime) -> None:
        if not reward.active:
            raise PolicyViolation(f"reward {reward.name!r} is retired")
        if reward.tiers:
            tier = self._tiers.tier_in(tx, uid)
            if tier is None or tier.name not in reward.tiers:
                raise PolicyViolation(f"reward {reward.name!r} is for tiers {', '.join(reward.tiers)}; user {uid} "
                                      f"is in {tier.name if tier else 'no tier'}")
        if reward.per_order is not None and qty > reward.per_order:
            raise CapExceeded(f"reward {reward.name!r} allows {reward.per_order} per redemption, not {qty}")
        if reward.per_member is None and reward.per_period is None:
            return
        mine = [r for r in tx.points_mall.redemptions(user_id=uid, reward_id=reward.id) if r.status in _LIVE]
        if reward.per_member is not None and sum(r.qty for r in mine) + qty > reward.per_member:
            raise CapExceeded(f"user {uid} has redeemed {sum(r.qty for r in mine)} of {reward.name!r}; the limit "
                              f"per member is {reward.per_member}")
        if reward.per_period is not None:
            start = self._period_start(now, reward.period)
            used = sum(r.qty for r in mine if r.at >= start)
            if used + qty > reward.per_period:
                raise CapExceeded(f"user {uid} has redeemed {used} of {reward.name!r} this {reward.period}; the "
                                  f"limit is {reward.per_period} per {reward.period}")

    def _period_start(self, now: datetime, period: str) -> datetime:
        local = now.astimezone(self._uow.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        if period == "week":
            local -= timedelta(days=local.weekday())
        elif period == "month":
            local = local.replace(day=1)
        return local

    def _issue(self, tx: Transaction, reward: Reward, redemption: Redemption, now: datetime) -> Redemption:
        """Issue the coupons; on failure undo exactly what the redemption did."""
        assert reward.coupon_template is not None
        try:
            with tx.savepoint():
                codes = [c.code for _ in range(redemption.qty)
                         for c in self._coupons.issue(reward.coupon_template, redemption.user_id)]
        except SiyuError as exc:
            note = f"issuing failed: {exc}"[:500]
            self._undo(tx, reward, redemption, now, status="failed", note=note, from_status=("issued",))
            failed = tx.points_mall.redemption(redemption.id)
            assert failed is not None
            return failed
        tx.points_mall.move_redemption(redemption.id, from_status=("issued",), to_status="issued", at=now,
                                       coupon_codes=codes)
        return attrs.evolve(redemption, coupon_codes=tuple(codes), updated_at=now)

    def _undo(self, tx: Transaction, reward: Reward, redemption: Redemption, now: datetime, *, status: str,
              note: str, from_status: tuple[str, ...]) -> bool:
        if not tx.points_mall.move_redemption(redemption.id, from_status=from_status, to_status=status, at=now,
                                              note=note):
            return False
        if redemption.spend_entry_id is not None:  # a gift (a birthday's) cost no points
            back = self._points.reverse_in(tx, redemption.spend_entry_id, key=f"mall:{status}:{redemption.id}",
                                           amount=None, reason=f"mall:{status}", now=now)
            tx.points_mall.move_redemption(redemption.id, from_status=(status,), to_status=status, at=now,
                                           refund_entry_id=back.id)
        tx.points_mall.give_stock(reward.id, redemption.qty)
        tx.emit(RedemptionReversed(at=now, redemption_id=redemption.id, reward_id=reward.id,
                                   user_id=redemption.user_id, points=redemption.points, status=status))
        return True

    # -- after the redemption -------------------------------------------------------------
    def fulfil(self, redemption_id: int) -> Redemption:
        """Mark goods shipped; a fulfilled redemption can no longer be cancelled."""
        rid = check_id(redemption_id, "redemption_id")
        with self._uow.write() as tx:
            found = self._redemption(tx, rid)
            if found.status != "fulfilled" and not tx.points_mall.move_redemption(
                    rid, from_status=("pending",), to_status="fulfilled", at=self._uow.now()):
                raise InvalidTransition(f"redemption {rid} is {found.status}; only pending ones can be fulfilled",
                                        status=found.status, to="fulfilled")
            return self._redemption(tx, rid)

    def cancel(self, redemption_id: int) -> Redemption:
        """Cancel before fulfilment: the points go back to the lots they were taken from
        (with those lots' expiry) and the units back to stock. Cancelling twice does
        nothing the second time; a shipped or issued redemption cannot be cancelled
        (:class:`~siyu.errors.InvalidTransition`)."""
        rid = check_id(redemption_id, "redemption_id")
        now = self._uow.now()
        with self._uow.write() as tx:
            found = self._redemption(tx, rid)
            require_user(tx, found.user_id, lock=True, active=False)
            if found.status == "cancelled":
                return found
            reward = self._reward(tx, found.reward_id)
            if not self._undo(tx, reward, found, now, status="cancelled", note="cancelled", from_status=("pending",)):
                raise InvalidTransition(
                    f"redemption {rid} is {found.status}; only pending (not yet shipped) ones can be cancelled",
                    status=found.status, to="cancelled")
            return self._redemption(tx, rid)

    @staticmethod
    def _redemption(tx: Transaction, rid: int) -> Redemption:
        found = tx.points_mall.redemption(rid)
        if found is None:
            raise NotFound(f"no redemption with id {rid}")
        return found

    def get(self, redemption_id: int) -> Redemption:
        with self._uow.read() as tx:
            return self._redemption(tx, check_id(redemption_id, "redemption_id"))

    def redemptions(self, *, user_id: int | None = None, reward: str | int | None = None) -> list[Redemption]:
        """Redemptions, oldest first, of one member and/or one reward."""
        with self._uow.read() as tx:
            uid = None if user_id is None else require_user(tx, user_id, active=False)
            rid = None if reward is None else self._reward(tx, reward).id
            return tx.points_mall.redemptions(user_id=uid, reward_id=rid)

    # -- reports ------------------------------------------------------------------------
    def points_liability(self) -> dict[str, int]:
        """The points ledger in totals: ``issued`` (earned), ``spent``, ``expired``,
        ``reversed`` (the net of reversals: spends given back count up, earns taken back
        by refunds count down) and what is ``outstanding``: ``usable`` now plus
        ``pending`` (not available yet), unexpired -- the points the shop still owes."""
        with self._uow.read() as tx:
            totals = tx.points.totals(self._uow.now())
        return {
            "issued": totals.get("earn", 0),
            "spent": -totals.get("spend", 0),
            "expired": -totals.get("expire", 0),
            "reversed": totals.get("reverse", 0),
            "usable": totals["usable"],
            "pending": totals["pending"],
            "outstanding": totals["usable"] + totals["pending"],
        }

    def report(self) -> list[dict[str, Any]]:
        """Per reward: units redeemed and live, cancelled, failed, points spent net of
        returns, stock left, and the redemption rate (live units / stock offered)."""
        with self._uow.read() as tx:
            rewards = tx.points_mall.rewards()
            rows = tx.points_mall.redemptions()
        out = []
        for reward in rewards:
            mine = [r for r in rows if r.reward_id == reward.id]
            live = sum(r.qty for r in mine if r.status in _LIVE)
            out.append({
                "reward": reward.name, "kind": reward.kind, "redemptions": len(mine), "units": live,
                "cancelled": sum(r.qty for r in mine if r.status == "cancelled"),
                "failed": sum(r.qty for r in mine if r.status == "failed"),
                "points": sum(r.points for r in mine if r.status in _LIVE),
                "stock_left": reward.left,
                "rate": None if not reward.stock else round(live / reward.stock, 4),
            })
        return out
