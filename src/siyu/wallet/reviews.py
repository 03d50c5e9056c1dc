"""Review and share rewards (评价与分享激励), within the rules on reviews and sharing.

Rewarding a *good* review (好评返现, 全五星返现) is unlawful: rewards may follow
the act of reviewing, never its rating or sentiment. So the reward here is
the same for one star and five, and a configuration that names a rating is
refused. Optional bonuses use objective criteria (photos, length) that a bad
review earns just as well.

A review reward is one per reviewed order line and member (concurrent
submissions yield one). It stays *pending* until the order's return window
closes; :meth:`Reviews.settle_due` then credits it, or voids it if the line was
refunded. Share rewards pay only for what a share led to -- a new member who
registered through the sharer (bound to them in the referral graph) or who then
bought -- never for the share itself; an entry point that is a WeChat external
link is refused (WeChat bans rewarding shares of external links). Both have
per-member daily caps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import start_of_day
from .._validation import check_id, check_int
from ..errors import NotFound, PolicyViolation, ValidationError
from ..services._common import require_user
from ..services.points import Credit
from ..storage.contracts.benefits import Grant

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.points import Points
    from ..storage.base import Transaction

__all__ = ["ENTRY_POINTS", "ReviewRewards", "Reviews"]

_SETTINGS = "reviews.settings"
#: Where a share was opened: only the last is a WeChat external link.
ENTRY_POINTS = ("wecom", "miniprogram", "wechat_link")
#: Words a reward rule may not be conditioned on: the reward follows the act of reviewing.
_RATING_WORDS = ("star", "rating", "score", "sentiment", "positive", "good", "praise", "好评", "五星")


@attrs.frozen(kw_only=True)
class ReviewRewards:
    """The reward policy. ``points`` per reviewed order line; ``photo_points`` extra
    when it has photos; ``long_points`` extra from ``long_chars`` characters of text;
    ``return_days`` the return window the reward waits for; ``daily_cap`` rewarded
    reviews per member per day. ``share_points`` for a new member a share brought,
    ``share_buy_points`` when that member then buys; ``share_daily_cap``."""

    points: int = 10
    photo_points: int = 0
    long_points: int = 0
    long_chars: int = 50
    return_days: int = 7
    daily_cap: int = 5
    share_points: int = 0
    share_buy_points: int = 0
    share_daily_cap: int = 10


class Reviews:
    """``ws.reviews``: reward reviews and attributable shares."""

    name = "reviews"

    def __init__(self, uow: UnitOfWork, *, points: Points) -> None:
        self._uow = uow
        self._points = points

    # -- policy -----------------------------------------------------------------------------
    def configure(self, **options: Any) -> ReviewRewards:
        """Change the reward policy (see :class:`ReviewRewards`). Any option about rating
        or sentiment (``stars=5``, ``min_rating=4`` ...) is refused: a reward tied to a
        good review is unlawful in China (好评返现)."""
        for name in options:
            if any(word in name.lower() for word in _RATING_WORDS):
                raise PolicyViolation(
                    f"review rewards cannot depend on {name!r}: a reward tied to the rating or sentiment of a review "
                    "(好评返现) is unlawful; reward the act of reviewing, with objective bonuses (photos, length) "
                    "that a negative review earns too")
        known = {f.name for f in attrs.fields(ReviewRewards)}
        unknown = set(options) - known
        if unknown:
            raise ValidationError(f"unknown review reward option(s) {sorted(unknown)}; known: {sorted(known)}")
        for name, value in options.items():
            check_int(value, name, minimum=0, maximum=10**9)
        with self._uow.write() as tx:
            policy = attrs.evolve(self._policy(tx), **options)
            tx.meta.set(_SETTINGS, json.dumps(attrs.asdict(policy)))
        return policy

    def policy(self) -> ReviewRewards:
        with self._uow.read() as tx:
            return self._policy(tx)

    @staticmethod
    def _policy(tx: Transaction) -> ReviewRewards:
        raw = tx.meta.get(_SETTINGS)
        return ReviewRewards() if raw is None else ReviewRewards(**json.loads(raw))

    # -- reviews ----------------------------------------------------------------------------
    def review(self, user_id: int, order_id: int, line_no: int, *, stars: int, text: str = "",
               photos: int = 0) -> Grant | None:
        """A member reviewed line ``line_no`` of their order ``order_id``. Returns the
        pending reward (``None`` past the daily cap). ``stars`` (1-5) is checked and
        then ignored: one star earns what five do. A second review of the same line
        returns the first reward."""
        check_int(stars, "stars", minimum=1, maximum=5)
        photos = check_int(photos, "photos", minimum=0, maximum=100)
        if not isinstance(text, str):
            raise ValidationError("text must be a string")
        oid = check_id(order_id, "order_id")
        line = check_int(line_no, "line_no", minimum=0, maximum=10_000)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            order = tx.orders.get(oid)
            if order is None or order.user_id != uid:
                raise NotFound(f"user {uid} has no order {oid}")
            if line >= len(order.lines):
                raise ValidationError(f"order {oid} has lines 0..{len(order.lines) - 1}, not {line}")
            period = f"{oid}:{line}"
            done = tx.benefits.grant(uid, "review", period)
            if done is not None:
                return done
            policy = self._policy(tx)
            if self._today_count(tx, uid, "review") >= policy.daily_cap:
                return None
            amount = policy.points + (policy.photo_points if photos else 0) + (
                policy.long_points if len(text.strip()) >= policy.long_chars else 0)
            due = max(now, order.paid_at + timedelta(days=policy.return_days))
            grant = Grant(id=0, user_id=uid, benefit="review", period=period, status="pending", amount=amount,
                          at=now, due_at=due, ref=f"order:{oid}")
            gid = tx.benefits.add_grant(grant)
            if gid is None:  # a concurrent submission of the same line won
                return tx.benefits.grant(uid, "review", period)
        return attrs.evolve(grant, id=gid)

    def _today_count(self, tx: Transaction, uid: int, benefit: str) -> int:
        start = start_of_day(self._uow.today(), self._uow.tz)
        return sum(1 for g in tx.benefits.grants(user_id=uid, benefit=benefit) if g.at >= start)

    def settle_due(self) -> list[Grant]:
        """Credit the pending review rewards whose return window has closed, and void
        those whose order line was refunded meanwhile. Safe to run any number of times."""
        now = self._uow.now()
        settled: list[Grant] = []
        with self._uow.read() as tx:
            due = tx.benefits.grants(benefit="review", status="pending", due_before=now)
        for grant in due:
            with self._uow.write() as tx:
                order = tx.orders.get(int(grant.period.split(":")[0]))
                line = int(grant.period.split(":")[1])
                refunded = order is None or order.lines[line].refunded_qty > 0
                status = "void" if refunded or grant.amount == 0 else "granted"
                if not tx.benefits.move_grant(grant.id, from_status=("pending",), to_status=status):
                    continue
                if status == "granted":
                    self._points.credit(tx, [Credit(user_id=grant.user_id, amount=grant.amount, reason="review",
                                                    key=f"review:{grant.user_id}:{grant.period}")], now)
                settled.append(attrs.evolve(grant, status=status))
        return settled

    def rewards(self, user_id: int) -> list[Grant]:
        """The member's review and share rewards, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return [g for g in tx.benefits.grants(user_id=uid) if g.benefit in ("review", "share")]

    # -- shares -----------------------------------------------------------------------------
    def share_converted(self, sharer_id: int, new_user_id: int, *, action: str, entry: str,
                        order_id: int | None = None) -> Grant | None:
        """Reward ``sharer_id`` because ``new_user_id`` -- whom they brought (the
        referral graph binds them to the sharer) -- ``action``: ``"registered"`` or
        ``"bought"`` (with ``order_id``, an order of theirs). ``entry`` is where the
        share was opened (``wecom``, ``miniprogram``, ``wechat_link``); a WeChat
        external link is refused. One reward per sharer, new member and action;
        ``None`` past the daily cap or when the policy pays nothing for it."""
        if action not in ("registered", "bought"):
            raise ValidationError("action must be 'registered' or 'bought'; a share alone earns nothing")
        if entry not in ENTRY_POINTS:
            raise ValidationError(f"entry={entry!r} is not one of {', '.join(ENTRY_POINTS)}")
        if entry == "wechat_link":
            raise PolicyViolation("rewards for shares of WeChat external links are banned by WeChat's rules "
                                  "(诱导分享); reward shares inside WeCom or the mini-program only")
        now = self._uow.now()
        with self._uow.write() as tx:
            sharer = require_user(tx, sharer_id, lock=True)
            newcomer = require_user(tx, new_user_id)
            binding = tx.referrals.binding(newcomer)
            if binding is None or binding.inviter_id != sharer or binding.status != "active":
                raise PolicyViolation(f"user {newcomer} was not brought by user {sharer} (no active referral "
                                      "binding): the reward needs an attributable action")
            if action == "bought":
                order = None if order_id is None else tx.orders.get(check_id(order_id, "order_id"))
                if order is None or order.user_id != newcomer:
                    raise ValidationError(f"a 'bought' reward needs order_id of an order by user {newcomer}")
            period = f"{newcomer}:{action}"
            done = tx.benefits.grant(sharer, "share", period)
            if done is not None:
                return done
            policy = self._policy(tx)
            amount = policy.share_points if action == "registered" else policy.share_buy_points
            if amount <= 0 or self._today_count(tx, sharer, "share") >= policy.share_daily_cap:
                return None
            grant = Grant(id=0, user_id=sharer, benefit="share", period=period, status="granted", amount=amount,
                          at=now, ref=f"user:{newcomer}")
            gid = tx.benefits.add_grant(grant)
            if gid is None:
                return tx.benefits.grant(sharer, "share", period)
            self._points.credit(tx, [Credit(user_id=sharer, amount=amount, reason=f"share:{action}",
                                            key=f"share:{sharer}:{period}")], now)
        return attrs.evolve(grant, id=gid)
