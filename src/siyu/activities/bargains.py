"""砍价 bargains: friends cut a product's price down to a floor, in exactly N helps.

A user *starts* an attempt; each helper's *help* cuts a random but bounded
amount (at least 0.01 yuan; the last help lands exactly on the floor), taken
from a sequence fixed by the attempt's stored seed, so every cut can be
recomputed (:func:`siyu.activities.fairness.cut_sequence`). After the
``helpers``-th help the attempt has *succeeded* and the user may *buy* at the
floor price, through ``ws.orders``, until the attempt's deadline. An attempt
not bought by its deadline (or by the activity's end) has *failed*.

The rules an attempt started under -- helpers needed, floor, deadline -- are
copied onto it: editing the activity changes only attempts started later.
:meth:`Bargains.disclosure` writes those rules out for the activity page,
because hiding how many helps are needed, or until when, is what regulators
fine.

Concurrency: one help per helper per attempt (a unique key), a per-helper
limit per activity (a counter that refuses to pass it), and the attempt's row
locked while a help is added, with a compare-and-set on its help count, so 30
helpers at once never record more than N helps or lose a cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import aware
from .._validation import check_batch, check_id, check_optional_id
from ..errors import (
    ActivityClosed,
    AlreadyHelped,
    BargainClosed,
    Conflict,
    NotFound,
    PolicyViolation,
    QuotaExceeded,
    SiyuError,
    SoldOut,
    ValidationError,
)
from ..events import BargainBought, BargainFailed, BargainHelped, BargainStarted, BargainSucceeded
from ..models.activities import AttemptStatus, Bargain, BargainAttempt, BargainHelp
from ..models.commerce import Order
from ..money import Money, to_fen
from ..services._common import check_int, check_text, require_user
from ..services.pricing import check_price
from ..services.products import Products, check_sku
from ..services.promotions import Promotions
from .fairness import cut_sequence, new_seed

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.orders import Orders
    from ..services.referrals import Referrals
    from ..storage.base import Transaction

__all__ = ["ENTRY_POINTS", "Bargains"]

#: Where a help may come from. Inducing shares of WeChat *external links* with help / 砍价
#: rewards is against WeChat's rules; inside WeCom groups or the mini-program it is allowed.
ENTRY_POINTS = ("miniprogram", "wecom", "wechat_link", "other")
_LINK_POLICIES = ("refuse", "flag")
#: The referral campaign helpers are bound under when they are new to the shop.
BARGAIN_CAMPAIGN = "bargain"


class Bargains:
    """``ws.bargains``: create activities, start attempts, help, buy, expire."""

    name = "bargains"

    def __init__(self, uow: UnitOfWork, *, orders: Orders, referrals: Referrals) -> None:
        self._uow = uow
        self._orders = orders
        self._referrals = referrals

    # -- activities ---------------------------------------------------------------------
    def create(
        self,
        *,
        sku: str,
        floor: Money,
        helpers: int,
        stock: int,
        starts_at: datetime,
        ends_at: datetime,
        price: Money | None = None,
        attempt_ttl: timedelta = timedelta(hours=24),
        attempts_per_user: int = 1,
        helps_per_helper: int = 1,
        external_links: str = "refuse",
        name: str | None = None,
    ) -> Bargain:
        """Create a bargain: ``helpers`` helps cut ``sku`` from ``price`` (default:
        its list price) to ``floor``, and ``stock`` units sell at the floor,
        from ``starts_at`` (included) to ``ends_at`` (excluded).

        Each help cuts at least 0.01 yuan, so ``price - floor`` must be at least
        ``helpers`` x 0.01. ``attempt_ttl`` is how long an attempt has to
        succeed and be bought (never past ``ends_at``); ``attempts_per_user``
        and ``helps_per_helper`` are the per-activity limits.
        ``external_links``: ``"refuse"`` a help whose entry point is a WeChat
        external link, or ``"flag"`` it (kept, marked for review).

        The floor is a selling price, so it goes through the margin guard:
        below the product's floor it raises :class:`~siyu.errors.PriceBelowFloor`
        unless the product is a traffic or activity item whose loss budget covers
        every unit (the activity then holds that part of the budget)."""
        check_int(helpers, "helpers", minimum=1, maximum=1000)
        check_int(stock, "stock", minimum=1, maximum=10_000_000)
        check_int(attempts_per_user, "attempts_per_user", minimum=1, maximum=1000)
        check_int(helps_per_helper, "helps_per_helper", minimum=1, maximum=1000)
        self._check_ttl(attempt_ttl)
        aware(starts_at, "starts_at")
        aware(ends_at, "ends_at")
        if ends_at <= starts_at:
            raise ValidationError("ends_at must be after starts_at (the window is [starts_at, ends_at))")
        if external_links not in _LINK_POLICIES:
            raise ValidationError(f"external_links must be 'refuse' or 'flag', got {external_links!r}")
        floor_fen = to_fen(floor, name="floor")
        now = self._uow.now()
        with self._uow.write() as tx:
            product = Products.require(tx, [check_sku(sku)])[sku]
            price_fen = product.price_fen if price is None else to_fen(price, name="price")
            self._check_cut(price_fen, floor_fen, helpers)
            left = None if product.loss_budget_fen is None else product.loss_left_fen
            loss = check_price(product, floor_fen, Promotions.rules_in(tx), what="bargain floor price", units=stock,
                               loss_left_fen=left)
            if loss:
                tx.products.use_loss_budget([(product.sku, loss)])
                tx.meta.bump("commerce")
            bargain = Bargain(
                id=0, name=check_text(name or f"砍价 {product.title}", "name", max_length=64), sku=product.sku,
                price_fen=price_fen, floor_fen=floor_fen, helpers=helpers, stock=stock, sold=0, starts_at=starts_at,
                ends_at=ends_at, attempt_ttl=attempt_ttl, attempts_per_user=attempts_per_user,
                helps_per_helper=helps_per_helper, external_links=external_links, loss_fen=loss, created_at=now,
            )
            return attrs.evolve(bargain, id=tx.bargains.add_bargain(bargain))

    @staticmethod
    def _check_ttl(ttl: object) -> None:
        if not isinstance(ttl, timedelta) or not timedelta(minutes=1) <= ttl <= timedelta(days=30):
            raise ValidationError(f"attempt_ttl must be a timedelta between 1 minute and 30 days, got {ttl!r}")

    @staticmethod
    def _check_cut(price_fen: int, floor_fen: int, helpers: int) -> None:
        if floor_fen <= 0 or floor_fen >= price_fen:
            raise ValidationError(f"floor must be more than 0 and below the starting price ({price_fen / 100:.2f})")
        if price_fen - floor_fen < helpers:
            raise ValidationError(
                f"{helpers} helps cannot each cut at least 0.01 off {(price_fen - floor_fen) / 100:.2f}; "
                "lower the floor or ask for fewer helpers"
            )

    def update(self, bargain_id: int, *, floor: Money | None = None, helpers: int | None = None,
               attempt_ttl: timedelta | None = None, ends_at: datetime | None = None,
               active: bool | None = None) -> Bargain:
        """Change the rules for attempts started from now on (running attempts keep
        the rules they started under). The floor goes through the margin guard."""
        with self._uow.write() as tx:
            b = self._bargain(tx, bargain_id)
            changes: dict[str, Any] = {}
            if floor is not None:
                changes["floor_fen"] = to_fen(floor, name="floor")
            if helpers is not None:
                changes["helpers"] = check_int(helpers, "helpers", minimum=1, maximum=1000)
            if attempt_ttl is not None:
                self._check_ttl(attempt_ttl)
                changes["attempt_ttl"] = attempt_ttl
            if ends_at is not None:
                aware(ends_at, "ends_at")
                if ends_at <= b.starts_at:
                    raise ValidationError("ends_at must be after starts_at")
                changes["ends_at"] = ends_at
            if active is not None:
                changes["active"] = bool(active)
            new = attrs.evolve(b, **changes)
            self._check_cut(new.price_fen, new.floor_fen, new.helpers)
            if new.floor_fen != b.floor_fen:
                product = Products.require(tx, [b.sku])[b.sku]
                check_price(product, new.floor_fen, Promotions.rules_in(tx), what="bargain floor price",
                            units=b.stock, loss_left_fen=None if product.loss_budget_fen is None
                            else product.loss_left_fen + b.loss_fen)
            tx.bargains.save_bargain(new)
            return self._bargain(tx, b.id)

    def get(self, bargain_id: int) -> Bargain:
        with self._uow.read() as tx:
            return self._bargain(tx, bargain_id)

    @staticmethod
    def _bargain(tx: Transaction, bargain_id: int) -> Bargain:
        found = tx.bargains.bargain(check_int(bargain_id, "bargain_id", minimum=1))
        if found is None:
            raise NotFound(f"no bargain with id {bargain_id}; list them with ws.bargains.all()")
        return found

    def all(self) -> list[Bargain]:
        with self._uow.read() as tx:
            return tx.bargains.bargains()

    def disclosure(self, bargain_id: int) -> str:
        """The rules as buyers must see them: start and floor price, helps needed,
        how long an attempt lasts, the activity window, units and limits."""
        b = self.get(bargain_id)
        tz = self._uow.tz
        hours = b.attempt_ttl.total_seconds() / 3600
        ttl = f"{hours:g} 小时" if hours >= 1 else f"{b.attempt_ttl.total_seconds() / 60:g} 分钟"
        return (
            f"{b.name}：{b.sku} 原价 {b.price} 元，邀请 {b.helpers} 位好友助力即可砍至 {b.floor} 元"
            f"（每位好友砍价金额随机，最后一位砍至底价）；发起后须在 {ttl}内完成助力并下单，"
            f"且不晚于活动结束；活动时间 {b.starts_at.astimezone(tz):%Y-%m-%d %H:%M} 至 "
            f"{b.ends_at.astimezone(tz):%Y-%m-%d %H:%M}（{tz}）；限量 {b.stock + b.sold} 件，"
            f"每人限发起 {b.attempts_per_user} 次，每人限助力 {b.helps_per_helper} 次；未在期限内完成则砍价失败。"
        )

    # -- attempts -----------------------------------------------------------------------
    def start(self, bargain_id: int, user_id: int) -> BargainAttempt:
        """Start an attempt for ``user_id`` with the activity's current rules.
        Raises :class:`~siyu.errors.ActivityClosed` outside the window,
        :class:`~siyu.errors.SoldOut` with no units left and
        :class:`~siyu.errors.QuotaExceeded` past ``attempts_per_user``."""
        now = self._uow.now()
        with self._uow.write() as tx:
            b = self._bargain(tx, bargain_id)
            uid = require_user(tx, user_id)
            if not b.open_at(now):
                raise ActivityClosed(f"bargain {b.id} is not running now; it runs "
                                     f"[{b.starts_at.astimezone(self._uow.tz).isoformat()}, "
                                     f"{b.ends_at.astimezone(self._uow.tz).isoformat()})")
            if b.stock < 1:
                raise SoldOut(f"bargain {b.id} has no units left to sell")
            if not tx.bargains.count(b.id, uid, "start", b.attempts_per_user):
                raise QuotaExceeded(f"user {uid} started {b.attempts_per_user} attempt(s) of bargain {b.id}, "
                                    "the most one user may")
            attempt = BargainAttempt(
                id=0, bargain_id=b.id, user_id=uid, status=AttemptStatus.OPEN, price_fen=b.price_fen,
                floor_fen=b.floor_fen, helpers=b.helpers, deadline=min(now + b.attempt_ttl, b.ends_at),
                seed=new_seed(), cut_fen=0, helps=0, created_at=now,
            )
            attempt = attrs.evolve(attempt, id=tx.bargains.add_attempt(attempt))
            tx.emit(BargainStarted(at=now, bargain_id=b.id, attempt_id=attempt.id, user_id=uid,
                                   deadline=attempt.deadline, helpers=attempt.helpers))
            return attempt

    def attempt(self, attempt_id: int) -> BargainAttempt:
        with self._uow.read() as tx:
            return self._attempt(tx, attempt_id)

    @staticmethod
    def _attempt(tx: Transaction, attempt_id: int, *, lock: bool = False) -> BargainAttempt:
        found = tx.bargains.attempt(check_int(attempt_id, "attempt_id", minimum=1), lock=lock)
        if found is None:
            raise NotFound(f"no bargain attempt with id {attempt_id}")
        return found

    def attempts(self, *, bargain_id: int | None = None, user_id: int | None = None) -> list[BargainAttempt]:
        check_optional_id(bargain_id, "bargain_id")
        check_optional_id(user_id, "user_id")
        with self._uow.read() as tx:
            return tx.bargains.attempts(bargain_id=bargain_id, user_id=user_id)

    def helps(self, attempt_id: int) -> list[BargainHelp]:
        check_id(attempt_id, "attempt_id")
        with self._uow.read() as tx:
            return tx.bargains.helps(attempt_id)

    def help(self, attempt_id: int, helper_id: int, *, entry: str = "miniprogram", bind: bool = True) -> BargainHelp:
        """``helper_id`` cuts the attempt's price; returns the help with its cut.

        ``entry`` is where the helper came from (:data:`ENTRY_POINTS`); from a
        WeChat external link the help is refused
        (:class:`~siyu.errors.PolicyViolation`) or flagged, per the activity.
        With ``bind``, a helper new to the shop is bound to the attempt's owner
        in the referral graph (campaign ``"bargain"``), with the referral
        guards (new users only, fraud holds); a refused binding does not stop
        the help. Raises :class:`~siyu.errors.BargainClosed` on an attempt that
        succeeded, failed or passed its deadline, :class:`~siyu.errors.AlreadyHelped`
        on a second help by the same helper, :class:`~siyu.errors.QuotaExceeded`
        past ``helps_per_helper`` in this activity."""
        if entry not in ENTRY_POINTS:
            raise ValidationError(f"entry must be one of {', '.join(ENTRY_POINTS)}, got {entry!r}")
        now = self._uow.now()
        with self._uow.write() as tx:
            # Helpers of one attempt queue on its row; the checks below then see the latest help count.
            att = self._attempt(tx, attempt_id, lock=True)
            b = self._bargain(tx, att.bargain_id)
            hid = require_user(tx, helper_id)
            if hid == att.user_id:
                raise PolicyViolation(f"user {hid} started attempt {att.id}; helpers are other people")
            if att.status is not AttemptStatus.OPEN or now >= att.deadline:
                why = f"it {att.status.value}" if att.status is not AttemptStatus.OPEN else \
                    f"its deadline {att.deadline.astimezone(self._uow.tz).isoformat()} has passed"
                raise BargainClosed(f"attempt {att.id} takes no more helps: {why}")
            flagged = entry == "wechat_link"
            if flagged and b.external_links == "refuse":
                raise PolicyViolation("helps from WeChat external links are refused for this bargain (WeChat "
                                      "forbids inducing shares of external links with 砍价 rewards); share it "
                                      "inside the mini-program or a WeCom group")
            seq = att.helps + 1
            cut = cut_sequence(att.price_fen - att.floor_fen, att.helpers, att.seed)[seq - 1]
            help_ = BargainHelp(attempt_id=att.id, helper_id=hid, seq=seq, cut_fen=cut, at=now, flagged=flagged)
            if not tx.bargains.add_help(help_):
                raise AlreadyHelped(f"user {hid} already helped attempt {att.id}; each person helps once")
            if not tx.bargains.count(b.id, hid, "help", b.helps_per_helper):
                raise QuotaExceeded(f"user {hid} already helped {b.helps_per_helper} attempt(s) of bargain {b.id}, "
                                    "the most one person may")
            if not tx.bargains.add_cut(att.id, att.helps, cut):
                raise Conflict(f"attempt {att.id} changed while this help was added; help again")
            tx.emit(BargainHelped(at=now, bargain_id=b.id, attempt_id=att.id, user_id=att.user_id, helper_id=hid,
                                  seq=seq, cut_fen=cut, flagged=flagged))
            if seq == att.helpers:
                tx.bargains.close_attempt(att.id, [AttemptStatus.OPEN], AttemptStatus.SUCCEEDED, now)
                tx.emit(BargainSucceeded(at=now, bargain_id=b.id, attempt_id=att.id, user_id=att.user_id,
                                         price_fen=att.floor_fen))
            if bind:
                self._bind(tx, hid, att.user_id)
            return help_

    def _bind(self, tx: Transaction, helper_id: int, owner_id: int) -> None:
        if tx.referrals.binding(helper_id) is not None:
            return
        try:
            with tx.savepoint():
                self._referrals.bind(helper_id, inviter_id=owner_id, channel_state=BARGAIN_CAMPAIGN)
        except SiyuError:
            pass  # not new, a cycle, held by the fraud guards ...: the help stands, the binding does not

    def buy(self, attempt_id: int, *, paid_at: datetime | None = None, channel: str | None = None) -> Order:
        """Record the order of a succeeded attempt at its floor price, through
        ``ws.orders``; a retry returns the same order. Refused with
        :class:`~siyu.errors.BargainClosed` before success or after the
        deadline, :class:`~siyu.errors.SoldOut` with no units left."""
        now = self._uow.now()
        with self._uow.write() as tx:
            att = self._attempt(tx, attempt_id, lock=True)
            if att.status is AttemptStatus.BOUGHT and att.order_id is not None:
                return self._orders.get(att.order_id)
            if att.status is not AttemptStatus.SUCCEEDED or now >= att.deadline:
                state = "has not reached its floor yet" if att.status is AttemptStatus.OPEN and now < att.deadline \
                    else "has failed: its deadline or the activity's end passed"
                raise BargainClosed(f"attempt {att.id} cannot be bought: it {state}")
            b = self._bargain(tx, att.bargain_id)
            if not tx.bargains.take_unit(b.id):
                raise SoldOut(f"bargain {b.id} has no units left")
            order = self._orders.record(att.user_id, [{"sku": b.sku, "qty": 1, "unit_price": att.current}],
                                        paid_at=paid_at, channel=channel, key=f"bargain:{att.id}")
            tx.bargains.close_attempt(att.id, [AttemptStatus.SUCCEEDED], AttemptStatus.BOUGHT, now, order_id=order.id)
            tx.emit(BargainBought(at=now, bargain_id=b.id, attempt_id=att.id, user_id=att.user_id,
                                  order_id=order.id))
            return order

    def expire_due(self, *, batch: int = 500) -> int:
        """Mark attempts whose deadline passed without a purchase as failed; returns how many."""
        check_batch(batch)
        now = self._uow.now()
        total = 0
        while True:
            with self._uow.write() as tx:
                due = tx.bargains.due_attempts(now, batch)
                for att in due:
                    if tx.bargains.close_attempt(att.id, [AttemptStatus.OPEN, AttemptStatus.SUCCEEDED],
                                                 AttemptStatus.FAILED, now):
                        total += 1
                        tx.emit(BargainFailed(at=now, bargain_id=att.bargain_id, attempt_id=att.id,
                                              user_id=att.user_id, helps=att.helps))
            if len(due) < batch:
                return total

    # -- merge participant -----------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[int]:
        """``drop``'s attempts move to ``keep``; helps stay with the person who gave them."""
        moved = [a.id for a in tx.bargains.attempts(user_id=drop)]
        tx.bargains.move_attempts(moved, keep)
        return moved

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[int], at: datetime) -> None:
        tx.bargains.move_attempts(record, drop)

    @staticmethod
    def check_sequence(attempt: BargainAttempt, helps: Sequence[BargainHelp]) -> bool:
        """Whether recorded helps are exactly the cuts the attempt's seed gives (an audit)."""
        cuts = cut_sequence(attempt.price_fen - attempt.floor_fen, attempt.helpers, attempt.seed)
        return [h.cut_fen for h in sorted(helps, key=lambda h: h.seq)] == cuts[:len(helps)]
